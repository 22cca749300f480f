import { DEFAULT_LOCALE, say, type Text } from './i18n/i18n.js';

/** What an `EnhanceError` is about; see its constructor. */
export type EnhanceErrorKind = 'input' | 'options' | 'model' | 'device' | 'limit' | 'cancelled';

/**
 * An error whose message is a one-line reason meant for the person who sent the image. Anything else that
 * escapes the core is a bug and is reported as such; what is wrong with the service's own setup is an
 * `OperatorError`.
 *
 * A reason a person reads is made from a catalogue `Text`, so each door can say it in its person's language;
 * `message` is the English line, for logs. A plain string is a reason that has no catalogue line yet (an option's
 * English check), said as it is.
 *
 * @example
 * throw new EnhanceError({ key: 'reason.empty' }, 'input'); // message: 'the file is empty (0 bytes)'
 */
export class EnhanceError extends Error {
  /** The reason as a catalogue message, when it was made from one. */
  readonly text?: Text;

  constructor(
    reason: string | Text,
    /**
     * `input`: the image; `options`: a bad option; `model`: models missing or damaged; `device`: accelerator;
     * `limit`: a per-person or service limit (queue full, shutting down); `cancelled`: stopped by its owner.
     */
    readonly kind: EnhanceErrorKind,
  ) {
    super(typeof reason === 'string' ? reason : say(DEFAULT_LOCALE, reason));
    if (typeof reason !== 'string') this.text = reason;
    this.name = 'EnhanceError';
  }
}

/**
 * Something wrong with how the service is set up or run, for whoever runs it: a config value, a port in use, a
 * refused token, a second front on one Redis, a CLI argument. One line, in English, naming what to change; start-up
 * and the CLI end with it. Never said to a person who sent an image.
 *
 * @example
 * throw new OperatorError('web: host 0.0.0.0 is reachable from other machines and no access key is set: …');
 */
export class OperatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorError';
  }
}

/** The one-line reason for any thrown value, in English (for logs, the CLI and the English doors). */
export function reasonOf(error: unknown): string {
  if (error instanceof EnhanceError || error instanceof OperatorError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `internal error: ${message.split('\n')[0]}`;
}

/**
 * The reason for any thrown value as a catalogue message, to be said in its person's language: an
 * `EnhanceError`'s own text, else its English line as it is, else `internal error: …`.
 */
export function reasonTextOf(error: unknown): Text {
  if (error instanceof EnhanceError) {
    if (error.text) return error.text;
    // A model or accelerator fault is the operator's to mend (its line names the command to run): the person is
    // told, in their language, that the server could not run it, with that line as it is.
    if (error.kind === 'model' || error.kind === 'device') return { key: 'reason.server', values: { detail: error.message } };
    return plainText(error.message);
  }
  // The service's own setup, should it ever reach a person: the server's fault, in their language.
  if (error instanceof OperatorError) return { key: 'reason.server', values: { detail: withoutPaths(error.message) } };
  const message = error instanceof Error ? error.message : String(error);
  return { key: 'reason.internal', values: { message: withoutPaths(message.split('\n')[0]) } };
}

/**
 * A library's line with the paths taken out: a person never reads where the server keeps its files. Before, a
 * web upload that met a full descriptor table said `internal error: EMFILE … open '<data path>/web/keep/…'`.
 *
 * @example
 * withoutPaths("EACCES: permission denied, open '/srv/data/web/keep/x/input'"); // "EACCES: permission denied, open '…'"
 */
export function withoutPaths(line: string): string {
  // Quoted first (a path may hold spaces), then bare ones; never the path of a URL.
  return line.replace(/(['"])\/[^'"]*\1/g, '$1…$1').replace(/(?<![\w:/.…])\/(?:[^\s'"/]+\/)*[^\s'",;)]*/g, '…');
}

/** A line that has no catalogue entry (an operator's English), carried as a `Text` all the same. */
export function plainText(line: string): Text {
  return { key: 'reason.plain', values: { text: line } };
}

/**
 * The logger: pino on stderr, quiet by default. Readable lines when stderr is a terminal, JSON lines otherwise
 * (for log collectors and the tests); `logFormat` (`LOG_FORMAT=json|pretty`) chooses either. Anything that looks
 * like a secret is redacted in both, since pino redacts before a line is formatted.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type { Logger };

export const REDACT = ['token', 'password', 'secret', 'apiKey', '*.token', '*.password', '*.secret', '*.apiKey', 'headers.authorization'];

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  /** pino's level; default `info`. */
  level?: string;
  /** `auto` (the default): `pretty` on a terminal, `json` elsewhere. */
  format?: LogFormat | 'auto';
  /** Colours in pretty lines (off with `NO_COLOR`, which the config loader reads); default on. */
  colour?: boolean;
  /** Whether the destination is a terminal; default whether stderr is one. */
  isTTY?: boolean;
  /** Where lines go; default stderr. */
  destination?: DestinationStream;
}

/**
 * The format to write: `auto` is `pretty` on a terminal and `json` elsewhere.
 *
 * @example
 * logFormat('auto', true); // 'pretty'
 * logFormat('json', true); // 'json'
 */
export function logFormat(format: LogFormat | 'auto' = 'auto', isTTY = process.stderr.isTTY === true): LogFormat {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format;
}

/**
 * A logger at `level` in `format`, writing to stderr; the settings come from the config (`logLevel`, `logFormat`).
 *
 * @example
 * const log = createLogger({ level: config.logLevel, format: config.logFormat, colour: config.logColour });
 * log.info({ job: 'a1', token: 'xyz' }, 'job queued'); // the token is written as [redacted]
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const isTTY = options.isTTY ?? process.stderr.isTTY === true;
  const format = logFormat(options.format, isTTY);
  const destination = options.destination ?? pino.destination(2);
  return pino(
    // No pid or hostname on every line: one process per service, and the lines stay short.
    { level: options.level ?? 'info', base: undefined, redact: { paths: REDACT, censor: '[redacted]' } },
    format === 'pretty' ? prettyLines(destination, isTTY && options.colour !== false) : destination,
  );
}

type Flushable = DestinationStream & { flush?: (cb?: (error?: Error) => void) => void };

/**
 * pino's JSON lines made readable on their way to `out`, one line each, in this thread and at once. pino-pretty's
 * own stream (and a transport, on its thread) formats on later ticks, so the last lines before `process.exit`
 * (the forced exit on a second signal) could be lost; here a line has reached `out` when `write` returns.
 */
function prettyLines(out: Flushable, colorize: boolean): Flushable {
  const pretty = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', singleLine: true });
  return {
    write: (line: string) => out.write(pretty(line)),
    flush: out.flush && ((cb) => out.flush!(cb)),
  };
}

/** A logger that drops everything, for library use without one. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * The logger: pino on stderr, quiet by default. Readable lines when stderr is a terminal, JSON lines otherwise
 * (for log collectors and the tests); `LOG_FORMAT=json|pretty` chooses either. Anything that looks like a
 * secret is redacted in both, since pino redacts before a line is formatted.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { EnhanceError } from './errors.js';

export type { Logger };

export const REDACT = ['token', 'password', 'secret', 'apiKey', '*.token', '*.password', '*.secret', '*.apiKey', 'headers.authorization'];

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  /** Where `LOG_LEVEL` and `LOG_FORMAT` are read; default the process environment. */
  env?: NodeJS.ProcessEnv;
  /** Whether the destination is a terminal; default whether stderr is one. */
  isTTY?: boolean;
  /** Where lines go; default stderr. */
  destination?: DestinationStream;
}

/**
 * The format `LOG_FORMAT` asks for, else `pretty` on a terminal and `json` elsewhere. Throws an EnhanceError
 * (a bad option) with a one-line reason on any other value.
 *
 * @example
 * logFormat({}, true); // 'pretty'
 * logFormat({ LOG_FORMAT: 'json' }, true); // 'json'
 */
export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY = process.stderr.isTTY === true): LogFormat {
  const asked = env.LOG_FORMAT;
  if (asked === undefined || asked === '') return isTTY ? 'pretty' : 'json';
  if (asked === 'json' || asked === 'pretty') return asked;
  throw new EnhanceError(`LOG_FORMAT must be json or pretty (got ${JSON.stringify(asked)} from the environment)`, 'options');
}

/**
 * A logger at `LOG_LEVEL` (default `fallback`) in the format of {@link logFormat}, writing to stderr.
 *
 * @example
 * const log = createLogger('info');
 * log.info({ job: 'a1', token: 'xyz' }, 'job queued'); // the token is written as [redacted]
 */
export function createLogger(fallback = 'info', options: LoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const isTTY = options.isTTY ?? process.stderr.isTTY === true;
  const format = logFormat(env, isTTY);
  const destination = options.destination ?? pino.destination(2);
  return pino(
    // No pid or hostname on every line: one process per service, and the lines stay short.
    { level: env.LOG_LEVEL ?? fallback, base: undefined, redact: { paths: REDACT, censor: '[redacted]' } },
    format === 'pretty' ? prettyLines(destination, isTTY && !('NO_COLOR' in env)) : destination,
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

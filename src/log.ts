/**
 * The logger: pino, JSON lines on stderr, quiet by default. Anything that looks like a secret is redacted.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT = ['token', 'password', 'secret', 'apiKey', '*.token', '*.password', '*.secret', '*.apiKey', 'headers.authorization'];

/** A logger writing to stderr at `LOG_LEVEL` (default `fallback`). */
export function createLogger(fallback = 'info'): Logger {
  return pino(
    // No pid or hostname on every line: one process per service, and the lines stay short.
    { level: process.env.LOG_LEVEL ?? fallback, base: undefined, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination(2),
  );
}

/** A logger that drops everything, for library use without one. */
export const silentLogger: Logger = pino({ level: 'silent' });

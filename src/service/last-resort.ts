/**
 * The service's last resort: an error that nothing caught (a promise rejected with no handler, a throw in a
 * callback) is logged, and the service keeps running. Node's default ends the process, which stopped every door
 * and, for a delivery whose state could not be saved (ENOSPC), did so again at the next start. Such an error is
 * a bug to fix: the line says so.
 */
import type { Logger } from '../log.js';

/**
 * Installs the handlers once per process.
 *
 * @example
 * installLastResort(log); // in `enhancer serve`, once the logger exists
 */
export function installLastResort(log: Logger): void {
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'a promise failed with no handler (a bug); logged, and the service keeps running'));
  process.on('uncaughtException', (error) => log.error({ err: error }, 'an error was not caught (a bug); logged, and the service keeps running'));
}

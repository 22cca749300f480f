/**
 * What the service has started, to be stopped in the reverse order: each part is added as it starts, and one
 * `close()` undoes them all, the last started first (the order of fastify's `onClose` hooks). A start that fails
 * part way and a stop asked for later run the same steps, so nothing that started is left open: before, a front
 * on Redis whose door failed to start left its health listener and BullMQ's connections open, and the process
 * had to be ended from outside.
 *
 * @example
 * const closer = new Closer(log);
 * const observe = await observeRole(...);
 * closer.add('health endpoint', () => observe.close());
 * // ...
 * await closer.close(); // every step, the last added first; a step that fails is logged and the rest go on
 */
import type { Logger } from '../log.js';

export class Closer {
  private readonly steps: Array<{ name: string; run: () => Promise<unknown> | unknown }> = [];
  private closing?: Promise<void>;

  constructor(private readonly log: Logger) {}

  /** A part that started: `run` stops it. */
  add(name: string, run: () => Promise<unknown> | unknown): void {
    this.steps.push({ name, run });
  }

  /** Runs every step once, the last added first; later calls wait for the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) {
        try {
          await step.run();
        } catch (error) {
          this.log.error({ step: step.name, err: error }, 'stopping a part of the service failed; going on with the rest');
        }
      }
    })();
    return this.closing;
  }
}

/**
 * What the queue tests share, for either queue (in process or on Redis): waiting for one event, and a small
 * request to submit.
 */
import type { EnhanceQueue, QueueEvents } from '../src/queue/queue.js';
import type { EnhanceRequest } from '../src/types.js';
import { scenePng } from './helpers.js';

/** Resolves with the arguments of the next `event` that `test` accepts. */
export function next<E extends keyof QueueEvents>(queue: EnhanceQueue, event: E, test: (...args: QueueEvents[E]) => boolean = () => true) {
  return new Promise<QueueEvents[E]>((resolve) => {
    const events = queue.events();
    const on = (...args: QueueEvents[E]) => {
      if (!test(...args)) return;
      events.off(event, on);
      resolve(args);
    };
    events.on(event, on);
  });
}

/** A 32x24 request from Telegram user 7, named `name`; `seed` makes its picture differ. */
export const request = async (name: string, seed: number, extra: Partial<EnhanceRequest> = {}): Promise<EnhanceRequest> => ({
  input: await scenePng(32, 24, seed),
  name,
  owner: 'telegram:7',
  ...extra,
});

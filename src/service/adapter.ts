/**
 * The small interface every front door (Discord, Telegram, the hot folder) implements. An adapter turns its
 * platform's events into `EnhanceRequest`s for the queue, tells people how their jobs are doing from the queue's
 * events, and delivers the answer when the queue hands it one.
 */
import type { EnhanceQueue, Outcome } from '../queue/queue.js';
import type { Job } from '../types.js';

export interface Adapter {
  /** Unique; jobs carry it in `request.replyTo.adapter` so answers find their way back, even after a restart. */
  readonly name: string;
  /**
   * Requests through a trusted door are not limited per person: the hot folder is, since whoever can write to
   * it already runs the machine.
   */
  readonly trusted?: boolean;
  /**
   * Starts taking requests. Jobs recovered from the spool are already in `queue` (see `EnhanceQueue.getJob`);
   * `queue.events(this.name)` tells it how its own jobs are doing.
   */
  start(queue: EnhanceQueue): Promise<void>;
  /**
   * Hands an ended job's answer to its person: the outputs of a completed job (read each with
   * `queue.readOutput(job.id, kind)`; `outcome.result.outputs` lists them), or the one-line reason it failed or
   * was cancelled. Until it resolves it is called again with growing delays, also after a restart, so it must be
   * idempotent. Throw a `PermanentDeliveryError` when trying again cannot help (the chat is gone).
   */
  deliver(job: Job, outcome: Outcome): Promise<void>;
  /** Stops taking requests; deliveries may still be asked for until the queue has closed. */
  stop(): Promise<void>;
}

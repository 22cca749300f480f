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
  /** Starts taking requests. Jobs recovered from the spool are already in `queue` (see `EnhanceQueue.get`). */
  start(queue: EnhanceQueue): Promise<void>;
  /**
   * Hands a finished job's answer (results, or the one-line reason it failed or was cancelled) to its person.
   * Called again after a crash when it did not resolve, so it must be idempotent.
   */
  deliver(job: Job, outcome: Outcome): Promise<void>;
  /** Stops taking requests; deliveries may still be asked for until the queue has closed. */
  stop(): Promise<void>;
}

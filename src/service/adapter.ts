/**
 * The small interface every front door (Discord, Telegram, the hot folder) implements. An adapter turns its
 * platform's events into `EnhanceRequest`s for the queue, tells people how their jobs are doing from the queue's
 * events, and delivers the answer when the queue hands it one.
 *
 * Start-up goes in two steps, so that one door's platform never holds up the others: every door's `check` (at
 * once, each bounded in time), then every door's `start`, which must not wait on a platform. A door whose platform
 * cannot be reached connects in the background (see door-connection.ts) and says so in `down()`.
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
   * The door counts its people's requests itself (the web door counts uploads of several files), so the queue's
   * per-person limit of jobs does not apply to it.
   */
  readonly ownLimits?: boolean;
  /**
   * Optional: asks the door's platform, before any door starts, whether it accepts this door's credentials.
   * Rejects with a `DoorRefused` (its message the one line start-up stops with) when they are refused; resolves
   * when they are accepted and also when the platform could not be reached, after logging one line (`start` then
   * connects in the background). Must return within seconds, and at once when `signal` (a stop request) aborts.
   */
  check?(signal?: AbortSignal): Promise<void>;
  /**
   * Optional: null while the door is connected to its platform, else why not in one line. `/healthz` shows it as
   * the check `<name> door connected`.
   */
  down?(): string | null;
  /**
   * Starts taking requests; returns without waiting for the platform (a door not yet connected connects in the
   * background). Jobs recovered from the spool are already in `queue` (see `EnhanceQueue.getJob`);
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

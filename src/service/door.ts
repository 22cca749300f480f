/**
 * The port every front door implements (the web page, the hot folder, Telegram, Discord): a door turns its
 * platform's events into `EnhanceRequest`s for the queue it was built with, tells people how their jobs are doing
 * from the queue's events, and delivers the answer when the queue hands it one. The doors live in adapters/,
 * with what they share in adapters/kit/; the core knows them only by this interface.
 *
 * Start-up goes in two steps, so that one door's platform never holds up the others: every door's `check` (at
 * once, each bounded in time), then every door's `start`, which must not wait on a platform. A door whose platform
 * cannot be reached connects in the background (adapters/kit/connection.ts) and says so in `down()`.
 */
import type { Logger } from '../log.js';
import type { HealthCheck } from '../observe/health.js';
import type { EnhanceQueue, Outcome } from '../queue/queue.js';
import type { Job, ReplyTo } from '../types.js';

/**
 * A job answered through a door whose replies are `R`: `request.replyTo` is the door's own type (a chat and
 * message id, a file's place in a watched folder), so a door reads it without a cast.
 */
export type JobOf<R extends ReplyTo> = Omit<Job, 'request'> & { request: Omit<Job['request'], 'replyTo'> & { replyTo: R } };

/** Builds the doors once the queue exists: each door is given its queue when it is built. */
export type DoorFactory = (queue: EnhanceQueue) => Door[];

export interface Door<R extends ReplyTo = ReplyTo> {
  /** Unique; jobs carry it in `request.replyTo.adapter` so answers find their way back, even after a restart. */
  readonly name: R['adapter'];
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
   * Rejects (with the one line start-up stops with) when they are refused; resolves when they are accepted and
   * also when the platform could not be reached, after logging one line (`start` then connects in the
   * background). Must return within seconds, and at once when `signal` (a stop request) aborts.
   */
  check?(signal?: AbortSignal): Promise<void>;
  /** Optional: null while the door is connected to its platform, else why not in one line (`/healthz`). */
  down?(): string | null;
  /**
   * Starts taking requests; returns without waiting for the platform. Jobs recovered from the spool are already
   * in its queue (see `EnhanceQueue.getJob`).
   */
  start(): Promise<void>;
  /**
   * Hands an ended job's answer to its person: the outputs of a completed job (read each with
   * `queue.readOutput(job.id, kind)`; `outcome.result.outputs` lists them), or the one-line reason it failed or
   * was cancelled. Until it resolves it is called again with growing delays, also after a restart, so it must be
   * idempotent. Throw a `PermanentDeliveryError` when trying again cannot help (the chat is gone).
   */
  deliver(job: JobOf<R>, outcome: Outcome): Promise<void>;
  /** Stops taking requests; deliveries may still be asked for until the queue has closed. */
  stop(): Promise<void>;
}

/**
 * The credential checks of every door that has one, at once, before any door starts: so a refused token stops
 * start-up before the hot folder takes a file. Rejects with the first `DoorRefused`; resolves when the others
 * passed or could not reach their platforms (they go on trying once started). Each returns within its try's
 * limit, or at once when `signal` (a stop request) aborts.
 *
 * @example
 * await checkDoors(adapters, log, stopSignal); // then start each adapter
 */
export async function checkDoors(doors: ReadonlyArray<{ name: string; check?(signal?: AbortSignal): Promise<void> }>, log: Logger, signal?: AbortSignal): Promise<void> {
  const checked = doors.filter((d) => d.check);
  if (checked.length === 0) return;
  log.info({ doors: checked.map((d) => d.name) }, 'checking the front doors');
  const results = await Promise.allSettled(checked.map((d) => d.check!(signal)));
  const refusal = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (refusal) throw refusal.reason;
}

/**
 * A `/healthz` check per door that can tell: `telegram door connected`, failing with the door's `down()` line.
 *
 * @example
 * observeRole(config, { queue, worker, checks: doorHealth(adapters) }, log);
 */
export function doorHealth(doors: ReadonlyArray<{ name: string; down?(): string | null }>): HealthCheck[] {
  return doors.filter((d) => d.down).map((door) => ({ name: `${door.name} door connected`, check: async () => door.down!() }));
}

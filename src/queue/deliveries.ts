/**
 * Deliveries: every ended job's answer reaches its person or is accounted for. A failed delivery is tried again
 * with growing delays (from `firstRetryMs`, doubling, at most `maxRetryMs`), across restarts (the attempts are
 * kept in the spool), for `retryForMs` after the first failure. Only a `PermanentDeliveryError` (the chat is
 * gone, the bot was blocked) or running out of that time closes a job undelivered, with its reason in the log.
 *
 * Before, three tries within about three seconds and the job was removed anyway: a chat API outage of a few
 * seconds lost work that had taken minutes.
 */
import type { DiskSpace } from '../disk-space.js';
import { reasonOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Job } from '../types.js';
import { PermanentDeliveryError, type Outcome } from './queue.js';
import type { DeliveryState, Spool } from './spool.js';

export interface RetryPolicy {
  /** Delay before the second attempt; each later one doubles it. */
  firstRetryMs: number;
  /** The longest delay between two attempts. */
  maxRetryMs: number;
  /** How long after the first failure a job keeps being tried before it is closed undelivered. */
  retryForMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { firstRetryMs: 2000, maxRetryMs: 3_600_000, retryForMs: 7 * 24 * 3_600_000 };

/** The delay before attempt `attempts + 1`, after `attempts` failures. */
export function retryDelay(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxRetryMs, policy.firstRetryMs * 2 ** Math.max(0, attempts - 1));
}

export interface DeliveriesOptions {
  spool: Spool;
  policy: RetryPolicy;
  /** The adapter's `deliver`: resolves once the person has the answer. */
  deliver: (job: Job, outcome: Outcome) => Promise<void>;
  /** Called once per job when it is delivered, or closed undelivered (`reason` then says why). */
  onSettled: (job: Job, reason?: string) => Promise<void>;
  /** Called after each failed attempt; `retryInMs` null when the job was closed (after `onSettled`). */
  onFailed: (job: Job, info: { reason: string; attempt: number; retryInMs: number | null }) => void;
  logger: Logger;
  now?: () => number;
  /**
   * Where a delivery that meets a full disk (the outbox, say) waits for room, to be tried again then without
   * counting as a failed attempt. Without one it is retried on the schedule like any failure.
   */
  disk?: DiskSpace;
  /** Called once per job before its answer first waits for room. */
  onHeld?: (job: Job) => void;
}

export class Deliveries {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  /** Ends the waits for disk space on close: those answers stay in the spool for the next start. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: DeliveriesOptions) {}

  /**
   * Delivers now; failures are retried on the schedule, starting from the attempts already made. Never rejects:
   * what cannot be recorded (a state file, removing a delivered job) is logged, and the job stays in the spool,
   * so the worst case is the answer sent again at the next start.
   */
  start(job: Job, outcome: Outcome, state: DeliveryState = { attempts: 0 }): Promise<void> {
    const attempt = this.attempt(job, outcome, state)
      .catch((error: unknown) => this.options.logger.error({ job: job.id, err: error }, 'recording a delivery failed; the job stays in the spool and is delivered again at the next start'))
      .finally(() => this.running.delete(attempt));
    this.running.add(attempt);
    return attempt;
  }

  /**
   * Stops retrying (what is left stays in the spool for the next start) and waits for attempts under way, at
   * most `graceMs`: a chat API that hangs must not hold the service up; its job is delivered again at the next
   * start (deliveries are idempotent).
   */
  async close(graceMs = Infinity): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      if (Number.isFinite(graceMs)) timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.all([...this.running]), late]);
    clearTimeout(timer);
    if (this.running.size > 0) this.options.logger.warn({ deliveries: this.running.size }, 'stopped waiting for deliveries under way; they are tried again at the next start');
  }

  private async attempt(job: Job, outcome: Outcome, state: DeliveryState): Promise<void> {
    const { spool, policy, logger } = this.options;
    const now = this.options.now ?? Date.now;
    try {
      await this.options.deliver(job, outcome);
    } catch (error) {
      if (this.options.disk && !this.closed && this.options.disk.report(error)) return this.afterSpace(job, outcome, state);
      const reason = error instanceof PermanentDeliveryError ? error.message : reasonOf(error);
      const next: DeliveryState = { attempts: state.attempts + 1, firstFailedAt: state.firstFailedAt ?? now(), lastReason: reason };
      const delay = retryDelay(policy, next.attempts);
      const expired = now() + delay - next.firstFailedAt! > policy.retryForMs;
      if (error instanceof PermanentDeliveryError || expired) {
        const why = error instanceof PermanentDeliveryError ? 'permanent failure' : `still failing after ${next.attempts} attempts`;
        logger.error({ job: job.id, state: job.state, attempt: next.attempts, reason }, `delivery given up (${why}): the job is closed undelivered`);
        await this.options.onSettled(job, reason);
        this.options.onFailed(job, { reason, attempt: next.attempts, retryInMs: null });
        return;
      }
      logger.warn({ job: job.id, attempt: next.attempts, reason, retryInS: Math.round(delay / 1000) }, 'delivery failed; trying again later');
      await spool.saveDelivery(job.id, next).catch((e: unknown) => {
        // Only the count of attempts is lost (a full disk, say); the job itself is still in the spool.
        if (!this.options.disk?.report(e)) logger.warn({ job: job.id, err: e }, 'could not record the failed delivery; retrying all the same');
      });
      this.options.onFailed(job, { reason, attempt: next.attempts, retryInMs: delay });
      if (this.closed) return;
      const timer = setTimeout(() => {
        this.timers.delete(job.id);
        void this.start(job, outcome, next);
      }, delay);
      this.timers.set(job.id, timer);
      return;
    }
    if (state.attempts > 0) logger.info({ job: job.id, attempt: state.attempts + 1 }, 'delivered after failed attempts');
    await this.options.onSettled(job);
  }

  /** The answer met a full disk: waits for room (or the stop), then tries again, not counted as a failed attempt. */
  private async afterSpace(job: Job, outcome: Outcome, state: DeliveryState): Promise<void> {
    this.options.onHeld?.(job);
    try {
      await this.options.disk!.whenSpace(this.stopping.signal);
    } catch {
      return; // Stopping: it stays in the spool and is delivered at the next start.
    }
    return this.attempt(job, outcome, state);
  }
}

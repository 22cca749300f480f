/**
 * Deliveries on Redis: every ended job is a BullMQ job of the `deliveries` queue, keyed by the enhance job's id
 * (a job that ended twice, because its worker died after storing the end, is delivered once), run by the front
 * that has the doors. A failed delivery is tried again on the same schedule as in process (deliveries.ts:
 * `retryDelay`, for `retryForMs` after the first failure); the attempts are kept in the BullMQ job, so they
 * survive a restart of the front. A `PermanentDeliveryError` closes the job at once.
 *
 * Redis failing is not the answer failing: a write Redis refuses (out of memory, see refusal.ts) while an attempt
 * is noted or settled is tried again on the same schedule (at most 30 s apart) until Redis takes it, and an
 * attempt that throws for any other reason is tried again by BullMQ (unlimited attempts, the same back-off),
 * never removed. Before, such an error failed the BullMQ job, which `removeOnFail` deleted: the answer was never
 * delivered.
 */
import { DelayedError, Queue, Worker as BullWorker, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { reasonOf } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Job } from '../../types.js';
import { retryDelay, type RetryPolicy } from '../deliveries.js';
import { PermanentDeliveryError, type Outcome } from '../queue.js';
import type { DeliveryState } from '../spool.js';
import { firstLine, untilTaken } from './refusal.js';
import { DELIVERIES_QUEUE, deliveryOptions, PREFIX, type RedisStore } from './store.js';

interface Delivery {
  id: string;
  state?: DeliveryState;
}

export interface RedisDeliveriesOptions {
  redis: Redis;
  store: RedisStore;
  policy: RetryPolicy;
  deliver: (job: Job, outcome: Outcome) => Promise<void>;
  onDelivered: (job: Job) => void;
  onFailed: (job: Job, info: { reason: string; attempt: number; retryInMs: number | null }) => void;
  logger: Logger;
}

/** Deliveries made at once: each waits on a chat API or a disk, not on this machine's CPU. */
const CONCURRENCY = 4;

export class RedisDeliveries {
  private readonly queue: Queue<Delivery>;
  private bull: BullWorker<Delivery> | undefined;
  /** Ends the waits between tries of a refused write when the front stops. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: RedisDeliveriesOptions) {
    this.queue = new Queue<Delivery>(DELIVERIES_QUEUE, { connection: options.redis, prefix: PREFIX });
    this.queue.on('error', () => {});
  }

  /** Hands an ended job to delivery (a no-op while a delivery of it is waiting or running). */
  async add(id: string): Promise<void> {
    await this.queue.add('deliver', { id }, deliveryOptions(id));
  }

  /** Starts delivering, those left from before first. */
  run(): void {
    this.bull = new BullWorker<Delivery>(DELIVERIES_QUEUE, (job, token) => this.attempt(job, token), {
      connection: this.options.redis,
      prefix: PREFIX,
      concurrency: CONCURRENCY,
      // A front killed mid-delivery leaves it stalled; it is delivered again, however often that happens.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      settings: { backoffStrategy: (attemptsMade: number) => retryDelay(this.options.policy, attemptsMade) },
    });
    this.bull.on('error', () => {});
    this.bull.on('failed', (delivery, error) => {
      if (!delivery || error instanceof DelayedError) return;
      const retryInS = Math.round(retryDelay(this.options.policy, delivery.attemptsMade) / 1000);
      this.options.logger.warn({ job: delivery.data.id, reason: firstLine(error), retryInS }, 'delivery interrupted by an error of Redis; trying again later');
    });
  }

  /**
   * Takes no more deliveries, waiting at most `graceMs` for those under way: a chat API that hangs must not hold
   * the service up; what is left is delivered at the next start (deliveries are idempotent).
   */
  async close(graceMs = Infinity): Promise<void> {
    this.stopping.abort();
    if (this.bull) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        if (Number.isFinite(graceMs)) timer = setTimeout(() => resolve('late'), graceMs);
      });
      if ((await Promise.race([this.bull.close(), late])) === 'late') {
        this.options.logger.warn('stopped waiting for deliveries under way; they are tried again at the next start');
        await this.bull.close(true);
      }
      clearTimeout(timer);
    }
    await this.queue.close();
  }

  /** Drops the connections without waiting for Redis. */
  async abandon(): Promise<void> {
    await Promise.allSettled([this.bull?.disconnect(), this.queue.disconnect()]);
  }

  /** `write` tried again while Redis refuses it (refusal.ts); the answer's BullMQ job stays with this attempt. */
  private untilTaken(id: string, msg: string, write: () => Promise<unknown>): Promise<void> {
    return untilTaken(write, {
      policy: this.options.policy,
      signal: this.stopping.signal,
      onRefused: (error, delay) => this.options.logger.warn({ job: id, reason: firstLine(error), retryInS: Math.round(delay / 1000) }, msg),
    });
  }

  private async attempt(delivery: BullJob<Delivery>, token: string | undefined): Promise<void> {
    const { store, policy, logger } = this.options;
    const { id } = delivery.data;
    const [job, outcome] = await Promise.all([store.job(id), store.outcome(id)]);
    if (!job || !outcome || (await store.isSettled(id))) return;
    const state = delivery.data.state ?? { attempts: 0 };
    try {
      await this.options.deliver(job, outcome);
    } catch (error) {
      const reason = error instanceof PermanentDeliveryError ? error.message : reasonOf(error);
      const next: DeliveryState = { attempts: state.attempts + 1, firstFailedAt: state.firstFailedAt ?? Date.now(), lastReason: reason };
      const delay = retryDelay(policy, next.attempts);
      const expired = Date.now() + delay - next.firstFailedAt! > policy.retryForMs;
      if (error instanceof PermanentDeliveryError || expired) {
        const why = error instanceof PermanentDeliveryError ? 'permanent failure' : `still failing after ${next.attempts} attempts`;
        logger.error({ job: id, state: job.state, attempt: next.attempts, reason }, `delivery given up (${why}): the job is closed undelivered`);
        await this.untilTaken(id, 'delivery closed, but Redis refused to note it; trying again', () => store.settle(job));
        this.options.onFailed(job, { reason, attempt: next.attempts, retryInMs: null });
        return;
      }
      logger.warn({ job: id, attempt: next.attempts, reason, retryInS: Math.round(delay / 1000) }, 'delivery failed; trying again later');
      await this.untilTaken(id, 'delivery failed, and Redis refused to note the attempt; trying again', () => delivery.updateData({ id, state: next }));
      this.options.onFailed(job, { reason, attempt: next.attempts, retryInMs: delay });
      await this.untilTaken(id, 'delivery failed, and Redis refused to put it back in line; trying again', () => delivery.moveToDelayed(Date.now() + delay, token));
      throw new DelayedError();
    }
    if (state.attempts > 0) logger.info({ job: id, attempt: state.attempts + 1 }, 'delivered after failed attempts');
    await this.untilTaken(id, 'delivery settled, but Redis refused to note it; trying again', () => store.settle(job));
    logger.info({ job: id, name: job.request.name }, 'job delivered');
    this.options.onDelivered(job);
  }
}


/**
 * The worker side of the queue on Redis: a `JobSource` for the existing `Worker`, fed by a BullMQ worker with
 * concurrency 1, so each worker process runs one job at a time and an idle worker anywhere takes the next.
 *
 * A worker that dies (SIGKILL, power) stops renewing its job's lock; after `lockMs` BullMQ's stalled-job check
 * on any other worker puts the job back in line and it runs again. The model runs on its own thread, so the lock
 * keeps being renewed on the main thread during inference. A job whose end was already stored (the worker died
 * after storing it) is not run again: its delivery is made sure of, and delivery is keyed by the job id, so it
 * is delivered once.
 */
import { hostname } from 'node:os';
import { Queue, Worker as BullWorker, WaitingError, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { EnhanceError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { Job } from '../../types.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../deliveries.js';
import type { Outcome } from '../queue.js';
import type { JobLease, JobSource } from '../worker.js';
import { watch } from './connection.js';
import { firstLine, untilTaken } from './refusal.js';
import { CANCEL_CHANNEL, DELIVERIES_QUEUE, deliveryOptions, JOBS_QUEUE, PREFIX, RedisStore, type QueuedJob } from './store.js';

/** Said to a job's person when they cancelled it. */
const CANCELLED = new EnhanceError({ key: 'reason.cancelled' }, 'cancelled');

export interface RedisJobSourceOptions {
  redis: Redis;
  /**
   * How long a job's lock lasts without renewal: a dead worker's job runs elsewhere after about this long
   * (BullMQ renews it every half of it, and checks for stalled jobs every `lockMs`). Default 30 s.
   */
  lockMs?: number;
  /** Shown in logs, to tell workers apart; default `<host>:<pid>`. */
  name?: string;
  /** The waits between tries of a write Redis refuses (out of memory) when a job ends (`delivery.*`). */
  retry?: RetryPolicy;
  logger?: Logger;
}

/**
 * A job whose worker died this many times while running it is failed with a reason (a job that kills its worker
 * each time, say by memory). BullMQ's own limit is set above it, since BullMQ would fail it without an answer.
 */
const MAX_STALLED = 3;

export class RedisJobSource implements JobSource {
  readonly name: string;
  private readonly store: RedisStore;
  private readonly log: Logger;
  private readonly deliveries: Queue;
  private readonly subscriber: Redis;
  private bull: BullWorker | undefined;
  /** Running jobs' cancel switches, by job id. */
  private readonly running = new Map<string, AbortController>();
  /** Ends the tries of refused writes when this worker stops. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: RedisJobSourceOptions) {
    this.store = new RedisStore(options.redis);
    this.log = options.logger ?? silentLogger;
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.deliveries = new Queue(DELIVERIES_QUEUE, { connection: options.redis, prefix: PREFIX });
    this.subscriber = options.redis.duplicate();
    watch(this.subscriber, this.log, 'worker cancels');
    void this.subscriber.subscribe(CANCEL_CHANNEL);
    this.subscriber.on('message', (_channel: string, id: string) => {
      this.running.get(id)?.abort(new EnhanceError({ key: 'reason.cancelled' }, 'cancelled'));
    });
  }

  process(take: (lease: JobLease) => Promise<void>): void {
    const lockMs = this.options.lockMs ?? 30_000;
    this.bull = new BullWorker<QueuedJob>(JOBS_QUEUE, (bjob, token) => this.run(bjob, token, take), {
      connection: this.options.redis,
      prefix: PREFIX,
      concurrency: 1,
      lockDuration: lockMs,
      stalledInterval: lockMs,
      maxStalledCount: MAX_STALLED + 1,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    });
    // Without a listener an 'error' would end the process; the connection's own watcher logs outages once.
    this.bull.on('error', () => {});
    this.bull.on('stalled', (id) => this.log.warn({ job: id }, 'a worker stopped answering while it ran this job; it runs again'));
    // Without this, an error thrown outside the Worker's own handling would drop the job silently.
    this.bull.on('failed', (bjob, error) => {
      if (!bjob || error instanceof WaitingError) return;
      void this.giveUp(bjob.data.id, `internal error: ${error.message.split('\n')[0]}`).catch((e: unknown) =>
        this.log.error({ job: bjob.data.id, err: e }, 'could not store how the job ended'),
      );
    });
  }

  pause(): void {
    void this.bull?.pause(true);
  }

  /** Stops taking jobs and closes this side's connections; call once the `Worker` has closed. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.bull?.close();
    await this.deliveries.close();
    this.subscriber.disconnect();
  }

  /** Drops this side's connections without waiting for Redis: for a shutdown while Redis is unreachable. */
  async abandon(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([this.bull?.disconnect(), this.deliveries.disconnect()]);
    this.subscriber.disconnect();
  }

  /** A health check: this worker is connected and taking jobs. */
  isRunning(): boolean {
    return Boolean(this.bull?.isRunning()) && this.options.redis.status === 'ready';
  }

  private async run(bjob: BullJob<QueuedJob>, token: string | undefined, take: (lease: JobLease) => Promise<void>): Promise<void> {
    const { id, turn } = bjob.data;
    const job = await this.store.job(id);
    if (!job) {
      this.log.warn({ job: id }, 'a queued job has no record in Redis (removed by hand?); skipped');
      return;
    }
    if (await this.store.outcome(id)) {
      // Ended before its worker died: make sure it is delivered, once (the delivery's id is the job's, and a
      // settled job has no input left).
      if (!(await this.store.isSettled(id))) await this.deliver(id);
      return;
    }
    if (bjob.stalledCounter >= MAX_STALLED) {
      // Its worker died each time it ran (out of memory?): it gets an answer instead of killing more workers.
      return this.giveUp(id, `the job stopped its worker ${bjob.stalledCounter} times (too large for the worker's memory?)`);
    }
    const controller = new AbortController();
    this.running.set(id, controller);
    try {
      if (await this.store.isCancelled(id)) return await this.end(job, { state: 'cancelled', reason: CANCELLED.message, text: CANCELLED.text });
      job.state = 'active';
      await this.store.started(job, turn);
      this.log.info({ job: id, state: 'active', name: job.request.name, worker: this.name }, 'job started');
      await this.store.announce({ event: 'started', job, args: [] });
      let putBack = false;
      let endFailed: unknown;
      let ended!: () => void;
      const over = new Promise<void>((resolve) => (ended = resolve));
      const lease: JobLease = {
        job,
        signal: controller.signal,
        input: () => this.store.input(id),
        progress: (progress) => {
          void this.store.setEta(id, progress.etaMs).catch(() => {});
          void this.store.announce({ event: 'progress', job, args: [progress] }).catch(() => {});
        },
        preview: (preview) => {
          this.log.info({ job: id, ms: Math.round(preview.ms), region: preview.region }, 'early preview ready');
          void this.store.announce({ event: 'preview', job, args: [preview] }).catch(() => {});
        },
        writeOutput: (kind, bytes) => this.store.writeOutput(id, kind, bytes),
        end: async (outcome) => {
          try {
            await this.end(job, outcome);
          } catch (error) {
            endFailed = error;
            throw error;
          } finally {
            ended();
          }
        },
        putBack: async () => {
          putBack = true;
          ended();
        },
      };
      await take(lease);
      // The accelerator is free of it (or it has ended, and this changes nothing): it holds up nobody behind it.
      void this.store.acceleratorDone(id).catch(() => {});
      await over;
      // BullMQ fails the job; the 'failed' handler above tries once more to give it an answer.
      if (endFailed) throw endFailed;
      if (putBack) {
        // The worker is stopping: back in line, for this or another worker.
        job.state = 'waiting';
        await this.store.saveJob(job);
        await bjob.moveToWait(token);
        throw new WaitingError();
      }
    } finally {
      this.running.delete(id);
    }
  }

  /** Fails a job that cannot run; one whose end is stored already is made sure of delivery instead. */
  private async giveUp(id: string, reason: string): Promise<void> {
    const job = await this.store.job(id);
    if (!job) return;
    if (await this.store.outcome(id)) {
      if (!(await this.store.isSettled(id))) await this.untilTaken(id, 'job ended, but Redis refused its delivery; trying again', () => this.deliver(id));
      return;
    }
    this.log.error({ job: id, reason }, 'job given up');
    await this.end(job, { state: 'failed', reason });
  }

  /**
   * Stores the end, announces it, and hands it to the front's deliveries. The writes Redis refuses (out of memory)
   * are tried again until it takes them, the worker waiting meanwhile: before, a refused delivery failed the job,
   * which BullMQ removed, with its end stored and no delivery: the answer was never given.
   */
  private async end(job: Job, outcome: Outcome): Promise<void> {
    job.state = outcome.state;
    if (outcome.state !== 'completed') [job.reason, job.reasonText] = [outcome.reason, outcome.text];
    await this.untilTaken(job.id, 'job ended, but Redis refused to store it; trying again', () => this.store.end(job, outcome));
    const fields = { job: job.id, state: job.state, name: job.request.name, worker: this.name };
    if (outcome.state === 'completed') {
      const r = outcome.result;
      this.log.info({ ...fields, cached: r.cached, tiles: r.tiles, device: r.device, inferMs: Math.round(r.ms.infer) }, 'job completed');
      await this.store.announce({ event: 'completed', job, args: [r] });
    } else {
      this.log.info({ ...fields, reason: outcome.reason }, `job ${outcome.state}`);
      await this.store.announce({ event: outcome.state, job, args: [outcome.reason] });
    }
    await this.untilTaken(job.id, 'job ended, but Redis refused its delivery; trying again', () => this.deliver(job.id));
  }

  private untilTaken(id: string, msg: string, write: () => Promise<unknown>): Promise<void> {
    return untilTaken(write, {
      policy: this.options.retry ?? DEFAULT_RETRY,
      signal: this.stopping.signal,
      onRefused: (error, delay) => this.log.warn({ job: id, worker: this.name, reason: firstLine(error), retryInS: Math.round(delay / 1000) }, msg),
    });
  }

  private async deliver(id: string): Promise<void> {
    await this.deliveries.add('deliver', { id }, deliveryOptions(id));
  }
}

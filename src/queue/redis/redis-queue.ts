/**
 * `RedisQueue`: the queue side on Redis (BullMQ), for front processes; it implements `EnhanceQueue`, so the front
 * doors do not change. `submit` checks a request like the in-process queue (admit.ts), stores the job and its
 * input in Redis, and only then adds it to BullMQ's line, with its fair turn as priority (lower runs first, ties
 * first come first) and announces it `queued`. Workers anywhere run it (redis-source.ts) and publish what
 * happens on `enhancer:events`, which this front re-emits to its doors. Answers are delivered by this front from
 * a durable BullMQ queue (redis-deliveries.ts), so a front restarted mid-job delivers once it is back.
 */
import { EventEmitter } from 'node:events';
import { Queue, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { EnhanceError } from '../../errors.js';
import { DEFAULT_LOCALE, say } from '../../i18n/i18n.js';
import { silentLogger, type Logger } from '../../log.js';
import type { EnhanceRequest, Job, JobPlan, OutputKind } from '../../types.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../deliveries.js';
import { QueueEmitter } from '../emitter.js';
import { lineEtas } from '../eta.js';
import type { EnhanceQueue, JobStatus, Outcome, QueueChecks, QueueListener } from '../queue.js';
import type { FirstGuesses } from '../throughput.js';
import { watch } from './connection.js';
import { RedisDeliveries } from './redis-deliveries.js';
import { firstLine, OUT_OF_MEMORY, redisRefusal, redisRefusalCode } from './refusal.js';
import { RedisSpeeds } from './speeds.js';
import { EVENTS_CHANNEL, JOBS_QUEUE, PREFIX, RedisStore, type Announcement, type QueuedJob } from './store.js';

export interface RedisQueueOptions {
  redis: Redis;
  /** The pipeline's checks of a request before it is stored, and a job's shape for ETAs (`requestChecks`). */
  checks: QueueChecks;
  /** Jobs an owner may have waiting or active, counted in Redis across fronts; Infinity for none. */
  limitFor?: (request: EnhanceRequest) => number;
  /** Hands an ended job's answer to its person (see `LocalQueueOptions.deliver`); must be idempotent. */
  deliver: (job: Job, outcome: Outcome) => Promise<void>;
  retry?: RetryPolicy;
  logger?: Logger;
  /** This machine's first guesses of the models' CPU speeds (the start-up probe's), for ETAs until jobs teach. */
  guesses?: FirstGuesses;
}

/** How long `cancel` waits for the worker running the job to say it stopped (it stops between tiles). */
const CANCEL_WAIT_MS = 60_000;

export class RedisQueue implements EnhanceQueue {
  private readonly store: RedisStore;
  private readonly speeds: RedisSpeeds;
  private readonly line: Queue<QueuedJob>;
  private readonly subscriber: Redis;
  private readonly deliveries: RedisDeliveries;
  private readonly log: Logger;
  private readonly emitter = new QueueEmitter();
  /** Every event, for `cancel` to hear the end of the job it asked to stop. */
  private readonly ends = new EventEmitter().setMaxListeners(0);
  /** Submits per owner still being checked and written, counted before the first await. */
  private readonly submitting = new Map<string, number>();
  private closing = false;

  constructor(private readonly options: RedisQueueOptions) {
    this.store = new RedisStore(options.redis);
    this.speeds = new RedisSpeeds(options.redis, options.guesses);
    this.log = options.logger ?? silentLogger;
    this.line = new Queue<QueuedJob>(JOBS_QUEUE, { connection: options.redis, prefix: PREFIX });
    this.line.on('error', () => {});
    this.subscriber = options.redis.duplicate();
    watch(this.subscriber, this.log, 'front events');
    this.subscriber.on('message', (_channel: string, text: string) => this.hear(text));
    this.deliveries = new RedisDeliveries({
      redis: options.redis,
      store: this.store,
      policy: options.retry ?? DEFAULT_RETRY,
      deliver: options.deliver,
      onDelivered: (job) => this.emitter.emit(job, 'delivered', job),
      onFailed: (job, info) => this.emitter.emit(job, 'undelivered', job, info),
      logger: this.log,
    });
  }

  /** Starts hearing the workers' events; resolves once subscribed. Call before the adapters start. */
  async recover(): Promise<Job[]> {
    await this.subscriber.subscribe(EVENTS_CHANNEL);
    return [];
  }

  /** Starts delivering ended jobs (those left from before too); call once the adapters have started. */
  startDeliveries(): void {
    this.deliveries.run();
  }

  async plan(request: EnhanceRequest): Promise<JobPlan> {
    return (await this.options.checks.admit(request, request.owner ?? 'local')).plan!;
  }

  async submit(request: EnhanceRequest, id?: string): Promise<Job> {
    if (id !== undefined) {
      const known = await this.store.job(id);
      if (known) return known;
    }
    if (this.closing) throw new EnhanceError({ key: 'reason.shuttingDown' }, 'limit');
    const owner = request.owner ?? 'local';
    const limit = this.options.limitFor?.(request) ?? Infinity;
    this.submitting.set(owner, (this.submitting.get(owner) ?? 0) + 1);
    try {
      if (Number.isFinite(limit)) {
        const mine = (await this.store.ownerCount(owner)) + this.submitting.get(owner)! - 1;
        if (mine >= limit) {
          throw new EnhanceError({ key: 'reason.ownerLimit', values: { count: mine, limit } }, 'limit');
        }
      }
      const job = await this.options.checks.admit(request, owner, id);
      await this.enqueue(job, request.input, owner);
      const { position, etaMs } = (await this.getJob(job.id))!;
      // The model and why (the plan's reason, in the log's language): an operator sees what auto chose.
      this.log.info({ job: job.id, state: 'queued', name: job.request.name, owner, position, etaS: Math.round(etaMs / 1000), model: job.request.options.model, why: job.plan && say(DEFAULT_LOCALE, job.plan.reason) }, 'job queued');
      this.emitter.emit(job, 'queued', job, { position, etaMs });
      return job;
    } finally {
      // Gone at zero: one entry per person who ever sent a job would stay for the life of the process.
      const left = this.submitting.get(owner)! - 1;
      if (left > 0) this.submitting.set(owner, left);
      else this.submitting.delete(owner);
    }
  }

  /**
   * Stores the job and adds it to the line, or leaves nothing behind and throws one line for its person: before,
   * a refused add (Redis out of memory) left the job in its owner's count, and after `queuedPerOwner` such
   * refusals that person could never submit again.
   */
  private async enqueue(job: Job, input: Uint8Array, owner: string): Promise<void> {
    let stored = false;
    try {
      const turn = await this.store.nextTurn(owner);
      await this.store.create(job, input);
      stored = true;
      await this.line.add('enhance', { id: job.id, turn }, { jobId: job.id, priority: turn, removeOnComplete: true, removeOnFail: true });
    } catch (error) {
      const why = redisRefusal(error);
      this.log.warn({ job: job.id, owner, stored, reason: firstLine(error) }, 'submit refused: Redis did not take the job; nothing of it is kept');
      // Deletes are allowed while Redis is out of memory; should this fail too, the owner's count drops the id.
      if (stored) await this.store.discard(job).catch((e: unknown) => this.log.error({ job: job.id, reason: firstLine(e) }, 'could not take back a refused job'));
      const code = redisRefusalCode(error);
      const whyText = { key: `redis.${code}` };
      throw new EnhanceError(
        why === OUT_OF_MEMORY ? { key: 'reason.queueFull', values: { why: whyText } } : why ? { key: 'reason.queueUnavailableWhy', values: { why: whyText } } : { key: 'reason.queueUnavailable' },
        'limit',
      );
    }
  }

  async cancel(id: string, owner: string): Promise<Job> {
    const job = await this.store.job(id);
    if (!job || (job.state !== 'waiting' && job.state !== 'active')) throw new EnhanceError({ key: 'reason.noSuchJob', values: { id } }, 'options');
    if (job.request.owner !== owner) throw new EnhanceError({ key: 'reason.notYours' }, 'options');
    const ended = this.endOf(id);
    ended.catch(() => {});
    await this.store.cancel(id);
    // A waiting job leaves the line here; one a worker holds (its lock) cannot be removed and is told instead.
    const removed = await this.line.remove(id).catch(() => 0);
    if (removed === 1) {
      job.state = 'cancelled';
      const cancelled = new EnhanceError({ key: 'reason.cancelled' }, 'cancelled');
      [job.reason, job.reasonText] = [cancelled.message, cancelled.text];
      const outcome: Outcome = { state: 'cancelled', reason: job.reason, text: job.reasonText };
      await this.store.end(job, outcome);
      await this.store.announce({ event: 'cancelled', job, args: [job.reason] });
      await this.deliveries.add(id);
    }
    return await ended;
  }

  async getJob(id: string): Promise<JobStatus | undefined> {
    const standing = await this.standing();
    const found = standing.find((j) => j.id === id);
    if (found) return found;
    const job = await this.store.job(id);
    return job && { ...job, position: 0, etaMs: 0 };
  }

  async getJobs(owner?: string): Promise<JobStatus[]> {
    const line = await this.standing();
    return owner === undefined ? line : line.filter((j) => j.request.owner === owner);
  }

  readOutput(id: string, kind: OutputKind): Promise<Buffer> {
    return this.store.readOutput(id, kind);
  }

  readInput(id: string): Promise<Buffer> {
    return this.store.input(id);
  }

  events(adapter?: string): QueueListener {
    return this.emitter.listener(adapter);
  }

  /** A health check for the front: its connection to Redis is up. */
  connected(): boolean {
    return this.options.redis.status === 'ready';
  }

  /** Stops delivering (what is left stays in Redis for the next start) and closes this side's connections. */
  async close(graceMs?: number): Promise<void> {
    this.closing = true;
    await this.deliveries.close(graceMs);
    await this.line.close();
    this.subscriber.disconnect();
  }

  /** Drops this side's connections without waiting for Redis: for a shutdown while Redis is unreachable. */
  async abandon(): Promise<void> {
    await Promise.allSettled([this.deliveries.abandon(), this.line.disconnect()]);
    this.subscriber.disconnect();
  }

  /**
   * Running jobs, then waiting ones in the order they run, each with its position and its ETA (see eta.ts; as if
   * one worker ran them all, since this front cannot know which worker takes which).
   */
  private async standing(): Promise<JobStatus[]> {
    const now = Date.now();
    const [active, waiting, running, costs] = await Promise.all([
      this.line.getJobs(['active']),
      // Ascending: lowest priority number (earliest turn) first, ties in the order they were added.
      this.line.getJobs(['prioritized', 'wait'], 0, -1, true),
      this.store.running(now),
      this.speeds.costs(now),
    ]);
    const ids = [...active, ...waiting].filter((b): b is BullJob<QueuedJob> => Boolean(b)).map((b) => b.data.id);
    const records = await this.store.jobs(ids);
    const jobs = ids.map((id) => records.get(id)).filter((job): job is Job => job?.state === 'waiting' || job?.state === 'active');
    // A job put back in line (its worker stopped) has its record waiting again: its old run does not count.
    const etas = lineEtas(jobs.map((job) => ({ shape: this.options.checks.shapeOf(job), running: job.state === 'active' ? (running.get(job.id) ?? { since: now }) : undefined })), costs, now);
    return jobs.map((job, i) => ({ ...job, position: i + 1, etaMs: etas[i] }));
  }

  /** Re-emits a worker's event to this front's doors. */
  private hear(text: string): void {
    let a: Announcement;
    try {
      a = JSON.parse(text) as Announcement;
    } catch {
      return;
    }
    this.emitter.emit(a.job, a.event, a.job, ...(a.args as [never]));
    if (a.event === 'completed' || a.event === 'failed' || a.event === 'cancelled') this.ends.emit(a.job.id, a.job);
  }

  /** Resolves with the job once it has ended (its worker stopped it between tiles). */
  private endOf(id: string): Promise<Job> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ends.off(id, done);
        reject(new EnhanceError({ key: 'reason.cancelUnanswered' }, 'options'));
      }, CANCEL_WAIT_MS);
      const done = (job: Job) => {
        clearTimeout(timer);
        resolve(job);
      };
      this.ends.once(id, done);
    });
  }

}

/**
 * The job queue: one job on the accelerator at a time (better-queue, concurrency 1), durable across crashes,
 * with per-person limits, cancel, a result cache and ETAs. Every front door submits `EnhanceRequest`s here and
 * listens to the events; answers go out through the `deliver` function the service gives it.
 *
 * A job's life: `submit` checks the request (size, options, image header, the person's limit), writes it to the
 * spool, and only then announces it `queued`. The worker runs the model (or takes the result from the cache),
 * then hands the job to the finishing line, which renders the preview, comparison and PDF and delivers them
 * while the next job is already on the accelerator. The spool entry goes only after delivery, so a crash at any
 * point means the job runs again at the next start and its answer is still delivered.
 */
import { EventEmitter } from 'node:events';
import BetterQueue from 'better-queue';
import { signatureOf } from '../engine/enhance.js';
import { EngineThread } from '../engine/engine-thread.js';
import { EnhanceError, reasonOf } from '../errors.js';
import { decodeBefore, makeComparison } from '../imaging/compare.js';
import { checkFileSize, probeImage } from '../imaging/input.js';
import { makePreview } from '../imaging/preview.js';
import { silentLogger, type Logger } from '../log.js';
import { findModel, readManifest } from '../models/manifest.js';
import { normalizeOptions } from '../options.js';
import { modelsDir as defaultModelsDir } from '../paths.js';
import { makeReport } from '../report/pdf.js';
import type { EnhanceOptions, EnhanceRequest, EnhanceResult, Job } from '../types.js';
import { ResultCache } from './cache.js';
import type { EnhanceQueue, Outcome, QueueEvents } from './queue.js';
import { newJobId, Spool } from './spool.js';
import { Throughput } from './throughput.js';

export interface JobQueueOptions {
  /** Spool, cache and state live here. */
  dataDir: string;
  modelsDir?: string;
  /** Options every request starts from (the service's configured model, device, tile). */
  defaults?: Partial<EnhanceOptions>;
  maxPixels?: number;
  maxFileBytes?: number;
  /** Jobs an owner may have waiting or active; Infinity for none. */
  limitFor?: (request: EnhanceRequest) => number;
  /** Result cache size in bytes; 0 keeps a result only until its job is delivered. */
  cacheMaxBytes?: number;
  /**
   * Hands a finished job's answer to its person. Called again after a restart when it did not resolve, so
   * it must be idempotent. The job leaves the spool once it resolves.
   */
  deliver: (job: Job, outcome: Outcome) => Promise<void>;
  logger?: Logger;
}

/** Thrown into a running job's signal when the service stops: the job stays in the spool. */
class Shutdown extends Error {}

/** Finished jobs remembered for `get` and status questions. */
const REMEMBER_FINISHED = 200;
/** At most one progress line in the log this often. */
const PROGRESS_LOG_MS = 10_000;
/** Jobs whose finishing may queue up behind the accelerator before it waits: bounds memory. */
const MAX_FINISHING = 2;

/** The in-process queue: the embedded default behind `EnhanceQueue`. */
export class JobQueue extends EventEmitter<QueueEvents> implements EnhanceQueue {
  private readonly spool: Spool;
  private readonly cache: ResultCache;
  private readonly throughput: Throughput;
  private readonly log: Logger;
  private readonly models: string;
  private readonly jobs = new Map<string, Job>();
  /** Waiting job ids in the order they run. */
  private readonly line: string[] = [];
  private readonly worker: BetterQueue<{ id: string }>;
  private running = false;
  private closing = false;
  private active: { job: Job; controller: AbortController; done: Promise<void>; etaMs: number } | null = null;
  private finishing: Promise<void> = Promise.resolve();
  private finishingCount = 0;
  /** Runs the model off the event loop (see engine-thread.ts). */
  private readonly engine = new EngineThread();
  /** Submits per owner still being checked and written. */
  private readonly submitting = new Map<string, number>();

  constructor(private readonly options: JobQueueOptions) {
    super();
    this.spool = new Spool(options.dataDir);
    this.cache = new ResultCache(options.dataDir, options.cacheMaxBytes ?? 2e9);
    this.throughput = new Throughput(options.dataDir);
    this.log = options.logger ?? silentLogger;
    this.models = options.modelsDir ?? defaultModelsDir();
    this.worker = new BetterQueue<{ id: string }>(
      (task: { id: string }, cb: (error?: unknown) => void) => {
        this.process(task.id).then(() => cb(), cb);
      },
      { concurrent: 1, id: 'id', maxRetries: 0, afterProcessDelay: 0 },
    );
  }

  /** Loads the jobs an earlier run left unfinished; they run, oldest first, once `run` is called. */
  async recover(): Promise<Job[]> {
    const recovered = await this.spool.recover();
    for (const job of recovered) {
      this.jobs.set(job.id, job);
      this.line.push(job.id);
      this.log.info({ job: job.id, state: 'waiting', name: job.request.name, owner: job.request.owner }, 'job recovered from the spool');
    }
    return recovered;
  }

  /** Starts taking jobs off the line. */
  run(): void {
    if (this.running) return;
    this.running = true;
    for (const waiting of this.line) this.worker.push({ id: waiting });
  }

  /** See `EnhanceQueue.submit`; here "stored" means in the spool on disk. */
  async submit(request: EnhanceRequest, id?: string): Promise<Job> {
    if (id !== undefined && this.jobs.has(id)) return this.jobs.get(id)!;
    if (this.closing) throw new EnhanceError('the service is shutting down: send it again in a minute', 'limit');
    const owner = request.owner ?? 'local';
    // Counted before the first await, so two quick submits cannot both slip under the limit.
    const limit = this.options.limitFor?.(request) ?? Infinity;
    const mine = this.pending(owner).length + (this.submitting.get(owner) ?? 0);
    if (mine >= limit) {
      throw new EnhanceError(
        `you already have ${mine} image${mine > 1 ? 's' : ''} in the queue (the limit is ${limit}): wait for one to finish or cancel one`,
        'limit',
      );
    }
    this.submitting.set(owner, (this.submitting.get(owner) ?? 0) + 1);
    try {
      return await this.accept(request, owner, id);
    } finally {
      this.submitting.set(owner, this.submitting.get(owner)! - 1);
    }
  }

  private async accept(request: EnhanceRequest, owner: string, id?: string): Promise<Job> {
    checkFileSize(request.input.length, this.options.maxFileBytes ?? Infinity);
    const options = normalizeOptions({ ...this.options.defaults, ...request.options });
    findModel(await readManifest(this.models), options.model);
    const header = await probeImage(request.input, this.options.maxPixels ?? Infinity);
    const { input: _bytes, ...rest } = request;
    const job: Job = {
      id: id ?? newJobId(),
      request: { ...rest, owner, options },
      state: 'waiting',
      createdAt: Date.now(),
      width: header.width,
      height: header.height,
      bytes: request.input.length,
    };
    await this.spool.write(job, request.input);
    this.jobs.set(job.id, job);
    this.line.push(job.id);
    const position = this.positionOf(job.id);
    const etaMs = this.etaOf(job.id);
    this.log.info({ job: job.id, state: 'queued', name: job.request.name, owner: job.request.owner, position, etaS: Math.round(etaMs / 1000) }, 'job queued');
    this.emit('queued', job, { position, etaMs });
    if (this.running) this.worker.push({ id: job.id });
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  pending(owner?: string): Job[] {
    const list = [...(this.active ? [this.active.job] : []), ...this.line.map((id) => this.jobs.get(id)!)];
    return owner === undefined ? list : list.filter((j) => j.request.owner === owner);
  }

  positionOf(id: string): number {
    return this.pending().findIndex((j) => j.id === id) + 1;
  }

  /** What is left of the active job plus the learned estimate of every job up to and including `id`. */
  etaOf(id: string): number {
    let eta = 0;
    for (const job of this.pending()) {
      eta += job === this.active?.job ? this.active.etaMs : this.throughput.estimate(job.request.options.model, job.width * job.height);
      if (job.id === id) return eta;
    }
    return 0;
  }

  /** See `EnhanceQueue.cancel`; a running job stops between two tiles. */
  async cancel(id: string, owner: string): Promise<Job> {
    const job = this.jobs.get(id);
    if (!job || (job.state !== 'waiting' && job.state !== 'active')) throw new EnhanceError(`no job ${id} is waiting or running`, 'options');
    if (job.request.owner !== owner) throw new EnhanceError('only the person who sent an image can cancel it', 'options');
    const reason = 'cancelled by its owner';
    if (job.state === 'active' && this.active?.job === job) {
      this.active.controller.abort(new EnhanceError(reason, 'cancelled'));
      await this.active.done;
      return job;
    }
    this.worker.cancel(id);
    this.unline(id);
    await this.settle(job, { state: 'cancelled', reason });
    return job;
  }

  /**
   * Stops taking work: new submits are refused, the running job gets `graceMs` to finish and is then stopped
   * (it stays in the spool and runs again at the next start), answers already made are delivered.
   */
  async close(graceMs = 15_000): Promise<void> {
    this.closing = true;
    this.worker.pause();
    const active = this.active;
    if (active) {
      const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), graceMs).unref());
      if ((await Promise.race([active.done.then(() => 'done' as const), timer])) === 'late') {
        this.log.warn({ job: active.job.id }, 'stopping the running job; it runs again at the next start');
        active.controller.abort(new Shutdown('shutting down'));
        await active.done;
      }
    }
    await this.finishing;
    await new Promise<void>((resolve) => this.worker.destroy(() => resolve()));
    await this.engine.close();
  }

  private unline(id: string): void {
    const at = this.line.indexOf(id);
    if (at >= 0) this.line.splice(at, 1);
  }

  /** The worker: one job on the accelerator. */
  private async process(id: string): Promise<void> {
    const job = this.jobs.get(id);
    if (!job || job.state !== 'waiting' || this.closing) return;
    // Keep the finishing line short, so results waiting to be rendered cannot pile up in memory.
    while (this.finishingCount >= MAX_FINISHING) await this.finishing;
    this.unline(id);
    job.state = 'active';
    const controller = new AbortController();
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const estimate = this.throughput.estimate(job.request.options.model, job.width * job.height);
    this.active = { job, controller, done, etaMs: estimate };
    const startedAt = Date.now();
    this.log.info({ job: id, state: 'active', name: job.request.name }, 'job started');
    this.emit('started', job);
    try {
      const input = await this.spool.readInput(id);
      const result = await this.enhanceOrReuse(job, input, controller.signal);
      result.ms.wait = startedAt - job.createdAt;
      this.finishingCount++;
      this.finishing = this.finishing.then(() => this.finish(job, input, result)).finally(() => this.finishingCount--);
    } catch (error) {
      const reason = controller.signal.reason;
      if (reason instanceof Shutdown) {
        job.state = 'waiting';
        this.log.info({ job: id, state: 'waiting' }, 'job stopped for shutdown, kept for the next start');
      } else if (error instanceof EnhanceError && error.kind === 'cancelled') {
        await this.settle(job, { state: 'cancelled', reason: error.message });
      } else {
        if (!(error instanceof EnhanceError)) this.log.error({ job: id, err: error }, 'job failed unexpectedly');
        await this.settle(job, { state: 'failed', reason: reasonOf(error) });
      }
    } finally {
      this.active = null;
      resolveDone();
    }
  }

  private async enhanceOrReuse(job: Job, input: Buffer, signal: AbortSignal): Promise<EnhanceResult> {
    const { options } = job.request;
    const entry = findModel(await readManifest(this.models), options.model);
    const signature = signatureOf(input, options, entry.sha256);
    // With the cache off an entry still lives until its job is delivered, so a crash resumes from it.
    const cached = await this.cache.get(signature);
    if (cached) {
      this.log.info({ job: job.id, signature: signature.slice(0, 12) }, 'answered from the cache');
      return { ...cached, cached: true, ms: { ...cached.ms, load: 0, decode: 0, infer: 0, encode: 0, total: 0 } };
    }
    let lastLogged = performance.now();
    const result = await this.engine.enhance(
      { input, name: job.request.name, options },
      {
        modelsDir: this.models,
        maxPixels: this.options.maxPixels,
        signal,
        logger: this.log,
        onProgress: (progress) => {
          if (this.active) this.active.etaMs = progress.etaMs;
          // A line now and then for people watching the log of a long job; every tile would be noise.
          if (performance.now() - lastLogged > PROGRESS_LOG_MS && progress.tilesDone < progress.tilesTotal) {
            lastLogged = performance.now();
            this.log.info({ job: job.id, tiles: `${progress.tilesDone}/${progress.tilesTotal}`, etaS: Math.round(progress.etaMs / 1000) }, 'job progress');
          }
          this.emit('progress', job, progress);
        },
      },
    );
    await this.throughput.learn(options.model, result.device, job.width * job.height, result.ms.infer);
    await this.cache.put(result);
    return { ...result, cached: false };
  }

  /** Renders the preview, comparison and PDF, then delivers; runs while the next job is on the accelerator. */
  private async finish(job: Job, input: Buffer, result: EnhanceResult): Promise<void> {
    try {
      const t = performance.now();
      const before = await decodeBefore(input);
      const [preview, compare] = await Promise.all([
        makePreview(result.png),
        makeComparison(input, result.png, result.output, result.options.model, before),
      ]);
      Object.assign(result, { preview, compare });
      if (job.request.report) {
        result.pdf = await makeReport({ job: { ...job, name: job.request.name }, result, input, before });
      }
      result.ms.render = performance.now() - t;
      await this.settle(job, { state: 'completed', result });
      // Delivered: with the cache off its entry goes too.
      await this.cache.evict(this.cache.maxBytes > 0 ? result.signature : undefined);
    } catch (error) {
      this.log.error({ job: job.id, err: error }, 'finishing failed');
      await this.settle(job, { state: 'failed', reason: reasonOf(error) });
    }
  }

  /** Delivers an outcome, then forgets the spooled job and announces the end. */
  private async settle(job: Job, outcome: Outcome): Promise<void> {
    job.state = outcome.state;
    if (outcome.state !== 'completed') job.reason = outcome.reason;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.deliver(job, outcome);
        break;
      } catch (error) {
        this.log.warn({ job: job.id, attempt, err: reasonOf(error) }, 'delivery failed');
        if (attempt >= 3) break;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
    await this.spool.remove(job.id);
    const fields = { job: job.id, state: job.state, name: job.request.name };
    if (outcome.state === 'completed') {
      const r = outcome.result;
      const rssMB = Math.round(process.memoryUsage.rss() / 1e6);
      this.log.info({ ...fields, cached: r.cached, ms: roundAll(r.ms), tiles: r.tiles, device: r.device, rssMB }, 'job completed');
      this.emit('completed', job, r);
    } else {
      this.log.info({ ...fields, reason: outcome.reason }, `job ${outcome.state}`);
      this.emit(outcome.state, job, outcome.reason);
    }
    this.forgetOldJobs();
  }

  private forgetOldJobs(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state !== 'waiting' && j.state !== 'active');
    for (const job of finished.slice(0, Math.max(0, finished.length - REMEMBER_FINISHED))) this.jobs.delete(job.id);
  }
}

function roundAll(ms: object): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).flatMap(([k, v]) => (typeof v === 'number' ? [[k, Math.round(v)]] : [])));
}

/**
 * `LocalQueue`: the in-process queue, the embedded default behind `EnhanceQueue`, and the `JobSource` its
 * `Worker` takes jobs from.
 *
 * A job's life: `submit` checks the request (size, options, image header, the person's limit), writes it to the
 * spool, and only then announces it `queued`. better-queue (concurrency 1) is the waiting line, ordered by fair
 * turns between people (fair.ts). The worker runs the processor; the job's end is stored in the spool before it
 * is announced, and the job leaves the spool only once its adapter has delivered it (deliveries.ts). A crash at
 * any point therefore means the job runs again, or is delivered again, at the next start.
 */
import BetterQueue from 'better-queue';
import { DISK_WAIT_MESSAGE, DISK_WAIT_TEXT, DiskFullError, DiskSpace } from '../disk-space.js';
import { EnhanceError } from '../errors.js';
import { DEFAULT_LOCALE, say } from '../i18n/i18n.js';
import { silentLogger, type Logger } from '../log.js';
import type { EnhanceRequest, Job, JobPlan, OutputKind } from '../types.js';
import { DEFAULT_RETRY, Deliveries, type RetryPolicy } from './deliveries.js';
import { QueueEmitter } from './emitter.js';
import { lineEtas, type RunningJob } from './eta.js';
import { FairTurns } from './fair.js';
import type { EnhanceQueue, JobStatus, Outcome, QueueChecks, QueueListener } from './queue.js';
import { ResultStore } from './results.js';
import { Spool, type SpooledJob } from './spool.js';
import { Costs, type Throughput } from './throughput.js';
import type { JobLease, JobSource } from './worker.js';

export interface LocalQueueOptions {
  /** Spool and result store live here. */
  dataDir: string;
  /** The pipeline's checks of a request before it is stored, and a job's shape for ETAs (`requestChecks`). */
  checks: QueueChecks;
  /** Jobs an owner may have waiting or active; Infinity for none. */
  limitFor?: (request: EnhanceRequest) => number;
  /** Learned costs, for ETAs (shared with the processor, which teaches them); without them, the first guesses. */
  speeds?: Pick<Throughput, 'costs'>;
  /**
   * Hands an ended job's answer to its person; resolves once they have it. Tried again on failure (see
   * `retry`), also after a restart, so it must be idempotent.
   */
  deliver: (job: Job, outcome: Outcome) => Promise<void>;
  retry?: RetryPolicy;
  /** The clock retry times and ETAs are measured by (ms since the epoch); a test passes its own. */
  now?: () => number;
  /** How soon a full disk is checked again (first delay, doubling to the longest); default 1 s to 30 s. */
  diskChecks?: { firstCheckMs: number; maxCheckMs: number };
  logger?: Logger;
}

/** Ended jobs remembered for status questions. */
const REMEMBER_ENDED = 200;

interface Entry {
  job: Job;
  turn: number;
  /** Submission order, for ties between equal turns. */
  seq: number;
  /** While active: cancels the run. */
  controller?: AbortController;
  /** While active: when it started, the latest time left it reported, when the accelerator was free of it. */
  running?: RunningJob;
  /** While active: resolves once the job has ended or was put back. */
  ended?: Promise<void>;
  /** Delivered or closed: only remembered for status questions. */
  settled?: boolean;
  /** Its person was told it waits for disk space (once is enough). */
  held?: boolean;
}

export class LocalQueue implements EnhanceQueue, JobSource {
  private readonly spool: Spool;
  private readonly results: ResultStore;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  private readonly turns = new FairTurns();
  private seq = 0;
  private readonly line: BetterQueue<{ id: string }>;
  private take: ((lease: JobLease) => Promise<void>) | null = null;
  private readonly deliveries: Deliveries;
  /** Ended jobs found in the spool at start, delivered once `startDeliveries` is called. */
  private recovered: SpooledJob[] = [];
  private closing = false;
  /** Submits per owner still being checked and written. */
  private readonly submitting = new Map<string, number>();
  private readonly emitter = new QueueEmitter();
  /** The data folder's disk: a full one holds jobs and answers instead of failing them. Share it with the worker. */
  readonly disk: DiskSpace;

  constructor(private readonly options: LocalQueueOptions) {
    this.spool = new Spool(options.dataDir);
    this.results = new ResultStore(options.dataDir);
    this.log = options.logger ?? silentLogger;
    this.disk = new DiskSpace({ dir: options.dataDir, logger: this.log, ...options.diskChecks });
    this.line = new BetterQueue<{ id: string }>(
      (task: { id: string }, done: (error?: unknown) => void) => {
        this.hand(task.id).then(() => done(), done);
      },
      {
        concurrent: 1,
        id: 'id',
        maxRetries: 0,
        afterProcessDelay: 0,
        // Higher runs first, ties in push order: turn 1 before turn 2, and within a turn, first come first.
        priority: (task: { id: string }, cb: (error: unknown, priority: number) => void) => cb(null, -(this.entries.get(task.id)?.turn ?? 0)),
      },
    );
    // Nothing is handed out until a worker asks (`process`).
    this.line.pause();
    this.deliveries = new Deliveries({
      spool: this.spool,
      policy: options.retry ?? DEFAULT_RETRY,
      deliver: options.deliver,
      onFailed: (job, info) => this.emitter.emit(job, 'undelivered', job, info),
      onSettled: (job, reason) => this.forget(job, reason),
      disk: this.disk,
      now: options.now,
      onHeld: (job) => this.held(job),
      logger: this.log,
    });
  }

  /**
   * Loads what an earlier run left: unfinished jobs go back in line (they run once a worker is attached), ended
   * ones wait for `startDeliveries`. Call before the adapters start, so they can see their jobs.
   */
  async recover(): Promise<Job[]> {
    const spooled = await this.spool.recover();
    for (const item of spooled) {
      const { job } = item;
      if (item.outcome) {
        this.entries.set(job.id, { job, turn: 0, seq: this.seq++ });
        this.recovered.push(item);
        this.log.info({ job: job.id, state: job.state, name: job.request.name }, 'ended job recovered from the spool; delivering it again');
        continue;
      }
      this.enter(job);
      this.log.info({ job: job.id, state: 'waiting', name: job.request.name, owner: job.request.owner }, 'job recovered from the spool');
    }
    await this.results.prune((id) => this.entries.has(id));
    return spooled.map((s) => s.job);
  }

  /** Delivers the ended jobs found by `recover`; call once the adapters have started. */
  startDeliveries(): void {
    for (const { job, outcome, delivery } of this.recovered.splice(0)) void this.deliveries.start(job, outcome!, delivery);
  }

  // ---- the queue side (EnhanceQueue) ----

  async submit(request: EnhanceRequest, id?: string): Promise<Job> {
    if (id !== undefined && this.entries.has(id)) return this.entries.get(id)!.job;
    if (this.closing) throw new EnhanceError({ key: 'reason.shuttingDown' }, 'limit');
    // Intake is paused while the disk is full: nothing could be stored, and the person is told so at once.
    if (this.disk.full) throw new DiskFullError();
    const owner = request.owner ?? 'local';
    // Counted before the first await, so two quick submits cannot both slip under the limit.
    const limit = this.options.limitFor?.(request) ?? Infinity;
    const mine = this.pending(owner).length + (this.submitting.get(owner) ?? 0);
    if (mine >= limit) {
      throw new EnhanceError({ key: 'reason.ownerLimit', values: { count: mine, limit } }, 'limit');
    }
    this.submitting.set(owner, (this.submitting.get(owner) ?? 0) + 1);
    try {
      return await this.accept(request, owner, id);
    } finally {
      // Gone at zero: one entry per person who ever sent a job would stay for the life of the process.
      const left = this.submitting.get(owner)! - 1;
      if (left > 0) this.submitting.set(owner, left);
      else this.submitting.delete(owner);
    }
  }

  async plan(request: EnhanceRequest): Promise<JobPlan> {
    return (await this.options.checks.admit(request, request.owner ?? 'local')).plan!;
  }

  private async accept(request: EnhanceRequest, owner: string, id?: string): Promise<Job> {
    const job = await this.options.checks.admit(request, owner, id);
    try {
      await this.spool.write(job, request.input);
    } catch (error) {
      if (this.disk.report(error)) throw new DiskFullError();
      throw error;
    }
    this.enter(job);
    const { position, etaMs } = this.status(job.id)!;
    // The model and why (the plan's reason, in the log's language): an operator sees what auto chose.
    this.log.info({ job: job.id, state: 'queued', name: job.request.name, owner, position, etaS: Math.round(etaMs / 1000), model: job.request.options.model, why: job.plan && say(DEFAULT_LOCALE, job.plan.reason) }, 'job queued');
    this.emitter.emit(job, 'queued', job, { position, etaMs });
    return job;
  }

  /** Puts a stored, waiting job in line. */
  private enter(job: Job): void {
    this.entries.set(job.id, { job, turn: this.turns.next(job.request.owner ?? 'local'), seq: this.seq++ });
    this.line.push({ id: job.id });
  }

  async cancel(id: string, owner: string): Promise<Job> {
    const entry = this.entries.get(id);
    const job = entry?.job;
    if (!entry || !job || (job.state !== 'waiting' && job.state !== 'active')) throw new EnhanceError({ key: 'reason.noSuchJob', values: { id } }, 'options');
    if (job.request.owner !== owner) throw new EnhanceError({ key: 'reason.notYours' }, 'options');
    const cancelled = new EnhanceError({ key: 'reason.cancelled' }, 'cancelled');
    if (job.state === 'active') {
      entry.controller?.abort(cancelled);
      await entry.ended;
      return job;
    }
    this.line.cancel(id);
    await this.end(job, { state: 'cancelled', reason: cancelled.message, text: cancelled.text });
    return job;
  }

  async getJob(id: string): Promise<JobStatus | undefined> {
    return this.status(id);
  }

  async getJobs(owner?: string): Promise<JobStatus[]> {
    const line = this.standing();
    return owner === undefined ? line : line.filter((j) => j.request.owner === owner);
  }

  readOutput(id: string, kind: OutputKind): Promise<Buffer> {
    return this.results.read(id, kind);
  }

  readInput(id: string): Promise<Buffer> {
    return this.spool.readInput(id);
  }

  events(adapter?: string): QueueListener {
    return this.emitter.listener(adapter);
  }

  /** Waiting and active jobs in the order they run: active first, then by turn. */
  private pending(owner?: string): Job[] {
    const live = [...this.entries.values()].filter((e) => e.job.state === 'waiting' || e.job.state === 'active');
    live.sort((a, b) => rank(a) - rank(b) || a.turn - b.turn || a.seq - b.seq);
    const jobs = live.map((e) => e.job);
    return owner === undefined ? jobs : jobs.filter((j) => j.request.owner === owner);
  }

  /** Every waiting and active job in order, each with its position and its ETA (see eta.ts), in one pass. */
  private standing(): JobStatus[] {
    const jobs = this.pending();
    const line = jobs.map((job) => ({ shape: this.options.checks.shapeOf(job), running: this.entries.get(job.id)!.running }));
    const etas = lineEtas(line, this.options.speeds?.costs() ?? new Costs({}), this.now());
    return jobs.map((job, i) => ({ ...job, position: i + 1, etaMs: etas[i] }));
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private status(id: string): JobStatus | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    return this.standing().find((j) => j.id === id) ?? { ...entry.job, position: 0, etaMs: 0 };
  }

  // ---- the worker side (JobSource) ----

  process(take: (lease: JobLease) => Promise<void>): void {
    this.take = take;
    this.line.resume();
  }

  pause(): void {
    this.line.pause();
  }

  /** Hands the job `id` to the worker; resolves once the accelerator is free for the next. */
  private async hand(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry || entry.job.state !== 'waiting' || !this.take) return;
    const { job } = entry;
    job.state = 'active';
    this.turns.started(entry.turn);
    entry.controller = new AbortController();
    entry.running = { since: this.now() };
    let ended!: () => void;
    entry.ended = new Promise((resolve) => (ended = resolve));
    this.log.info({ job: id, state: 'active', name: job.request.name }, 'job started');
    this.emitter.emit(job, 'started', job);
    const lease: JobLease = {
      job,
      signal: entry.controller.signal,
      input: () => this.spool.readInput(id),
      progress: (progress) => {
        if (entry.running) [entry.running.etaMs, entry.running.at] = [progress.etaMs, this.now()];
        this.emitter.emit(job, 'progress', job, progress);
      },
      preview: (preview) => {
        this.log.info({ job: id, ms: Math.round(preview.ms), region: preview.region }, 'early preview ready');
        this.emitter.emit(job, 'preview', job, preview);
      },
      writeOutput: (kind, bytes) => this.results.write(id, kind, bytes),
      end: async (outcome, signal) => {
        await this.end(job, outcome, signal);
        ended();
      },
      held: () => this.held(job),
      putBack: async () => {
        // Stays in the spool, out of this run's line: it runs again at the next start.
        job.state = 'waiting';
        entry.running = undefined;
        await this.results.remove(id);
        this.entries.delete(id);
        ended();
      },
    };
    await this.take(lease);
    // The accelerator is free of it; if it has not ended, it is being finished and holds up nobody behind it.
    if (job.state === 'active' && entry.running) entry.running.doneAt = this.now();
  }

  /** Tells a job's person, once, that it waits for disk space. */
  private held(job: Job): void {
    const entry = this.entries.get(job.id);
    if (!entry || entry.held) return;
    entry.held = true;
    this.log.info({ job: job.id, name: job.request.name }, 'job waits for disk space');
    this.emitter.emit(job, 'held', job, { reason: DISK_WAIT_MESSAGE, text: DISK_WAIT_TEXT });
  }

  /**
   * Stores how a job ended (waiting out a full disk, unless `signal` ends the wait), announces it, and hands it
   * to delivery.
   */
  private async end(job: Job, outcome: Outcome, signal?: AbortSignal): Promise<void> {
    await this.disk.keep(() => this.spool.saveOutcome(job.id, outcome), { signal, onHeld: () => this.held(job) });
    job.state = outcome.state;
    if (outcome.state !== 'completed') [job.reason, job.reasonText] = [outcome.reason, outcome.text];
    const entry = this.entries.get(job.id);
    if (entry) entry.running = undefined;
    if (this.pending().length === 0) this.turns.idle();
    const fields = { job: job.id, state: job.state, name: job.request.name };
    if (outcome.state === 'completed') {
      const r = outcome.result;
      const rssMB = Math.round(process.memoryUsage.rss() / 1e6);
      this.log.info({ ...fields, cached: r.cached, ms: roundAll(r.ms), tiles: r.tiles, device: r.device, rssMB }, 'job completed');
      this.emitter.emit(job, 'completed', job, r);
    } else {
      this.log.info({ ...fields, reason: outcome.reason }, `job ${outcome.state}`);
      this.emitter.emit(job, outcome.state, job, outcome.reason);
    }
    // Not awaited: the next job's end must not wait for this one's chat upload. `start` never rejects.
    void this.deliveries.start(job, outcome);
  }

  /** Delivered, or closed undelivered: the job leaves the spool and the result store. */
  private async forget(job: Job, reason?: string): Promise<void> {
    await this.spool.remove(job.id);
    await this.results.remove(job.id);
    const entry = this.entries.get(job.id);
    if (entry) entry.settled = true;
    if (reason === undefined) {
      this.log.info({ job: job.id, name: job.request.name }, 'job delivered');
      this.emitter.emit(job, 'delivered', job);
    }
    const settled = [...this.entries.values()].filter((e) => e.settled);
    for (const e of settled.slice(0, Math.max(0, settled.length - REMEMBER_ENDED))) this.entries.delete(e.job.id);
  }

  /**
   * Takes no more jobs and stops retrying deliveries (what is left stays in the spool), waiting at most `graceMs`
   * for those under way. Close the worker first.
   */
  async close(graceMs?: number): Promise<void> {
    this.closing = true;
    this.line.pause();
    await this.deliveries.close(graceMs);
    this.disk.close();
    await new Promise<void>((resolve) => this.line.destroy(() => resolve()));
  }
}

const rank = (e: Entry) => (e.job.state === 'active' ? 0 : 1);

function roundAll(ms: object): Record<string, number> {
  return Object.fromEntries(Object.entries(ms).flatMap(([k, v]) => (typeof v === 'number' ? [[k, Math.round(v)]] : [])));
}

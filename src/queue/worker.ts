/**
 * The worker side (learned from BullMQ: the work is an injected processor). A `Worker` takes the next job from
 * a `JobSource` (the in-process `LocalQueue`, or `RedisJobSource` for the queue on Redis), runs the `Processor` on it, and reports
 * how it ended. One job is on the accelerator at a time; once the processor says the accelerator is free
 * (`acceleratorDone`), the next job starts while this one's preview, comparison and PDF are still being made.
 */
import { EnhanceError, reasonOf } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { EarlyPreview, EnhanceProgress, EnhanceResult, Job, OutputKind } from '../types.js';

/** What a processor gets besides the job and its input. */
export interface ProcessContext {
  /** Aborted when the owner cancels or the worker stops; check it between steps (the engine does, per tile). */
  signal: AbortSignal;
  progress(progress: EnhanceProgress): void;
  /** Stores the early preview's picture and announces it. */
  preview(preview: Omit<EarlyPreview, 'bytes'>, png: Uint8Array): Promise<void>;
  /** Stores one output of the job in the result store; resolves to its size. */
  writeOutput(kind: OutputKind, bytes: Uint8Array): Promise<number>;
  /** The model is done with this job: the next job may start on the accelerator while this one finishes. */
  acceleratorDone(): void;
  logger: Logger;
}

/**
 * Turns a job into its result: every output written with `writeOutput`, their sizes in `result.outputs`.
 * Throws an `EnhanceError` with the one-line reason for anything wrong with the job.
 *
 * @example
 * const processor: Processor = async (job, input, ctx) => {
 *   const image = await engine.enhance({ input, name: job.request.name, options: job.request.options }, { signal: ctx.signal });
 *   ctx.acceleratorDone();
 *   const { png, ...result } = image;
 *   return { ...result, outputs: { png: await ctx.writeOutput('png', png) } };
 * };
 */
export type Processor = (job: Job, input: Buffer, context: ProcessContext) => Promise<EnhanceResult>;

/** One job handed to a worker, with the calls that report back to its queue. */
export interface JobLease {
  readonly job: Job;
  /** Aborted (with an `EnhanceError` of kind `cancelled`) when its owner cancels it. */
  readonly signal: AbortSignal;
  input(): Promise<Buffer>;
  progress(progress: EnhanceProgress): void;
  preview(preview: EarlyPreview): void;
  writeOutput(kind: OutputKind, bytes: Uint8Array): Promise<number>;
  /** Ended: stored and handed to its adapter for delivery. */
  end(outcome: { state: 'completed'; result: EnhanceResult } | { state: 'failed' | 'cancelled'; reason: string }): Promise<void>;
  /** Not run to the end because the worker stopped: it stays stored and runs again (at the next start). */
  putBack(): Promise<void>;
}

/** Where a worker gets its jobs. */
export interface JobSource {
  /** Hands jobs to `take` one at a time, in their turn; the next comes once `take`'s promise resolves. */
  process(take: (lease: JobLease) => Promise<void>): void;
  /** Hands out no more jobs. */
  pause(): void;
}

export interface WorkerOptions {
  /** Jobs whose finishing may pile up behind the accelerator before it waits: bounds memory. */
  maxFinishing?: number;
  logger?: Logger;
}

/** Thrown into a running job's signal when the worker stops: the job is put back, not failed. */
class Shutdown extends Error {}

/** Runs a processor over the jobs of one source, one on the accelerator at a time. */
export class Worker {
  private readonly log: Logger;
  private readonly maxFinishing: number;
  /** The job on the accelerator, with its last sign of life (start, progress, preview) for `activeJob`. */
  private active: { lease: JobLease; stop: AbortController; onAccelerator: Promise<void>; since: number; lastSignAt: number; etaMs?: number } | null = null;
  /** Every job this worker has not finished, on the accelerator or finishing. */
  private readonly running = new Set<Promise<void>>();
  /** The last job's end: jobs end (are announced and delivered) in the order they started, even when finishing overlaps. */
  private lastEnd: Promise<void> = Promise.resolve();
  private closing = false;
  private started = false;

  constructor(
    private readonly source: JobSource,
    private readonly processor: Processor,
    options: WorkerOptions = {},
  ) {
    this.log = options.logger ?? silentLogger;
    this.maxFinishing = options.maxFinishing ?? 2;
  }

  /** Starts taking jobs. */
  run(): void {
    this.started = true;
    this.source.process((lease) => this.take(lease));
  }

  /**
   * Where the worker stands, for a health check: `idle` or `busy` (a job on the accelerator) once `run()` was
   * called, `closing` from `close()` on, `new` before `run()`.
   *
   * @example
   * if (worker.status === 'closing') return 'the worker is stopping and takes no jobs';
   */
  get status(): 'new' | 'idle' | 'busy' | 'closing' {
    if (this.closing) return 'closing';
    if (!this.started) return 'new';
    return this.active ? 'busy' : 'idle';
  }

  /**
   * The job on the accelerator, when there is one: since when, and its last sign of life with the ETA it gave
   * then, so a health check can tell a long job from a hung one.
   *
   * @example
   * const a = worker.activeJob;
   * if (a && Date.now() > a.lastSignAt + (a.etaMs ?? 0) + 600_000) console.log(`${a.id} is 10 min past its ETA`);
   */
  get activeJob(): { id: string; since: number; lastSignAt: number; etaMs?: number } | undefined {
    const a = this.active;
    return a ? { id: a.lease.job.id, since: a.since, lastSignAt: a.lastSignAt, etaMs: a.etaMs } : undefined;
  }

  /**
   * Takes no more jobs; the job on the accelerator gets `graceMs` to finish and is then stopped and put back;
   * jobs that are finishing (preview, comparison, PDF) are waited for.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.source.pause();
    const active = this.active;
    if (active) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      if ((await Promise.race([active.onAccelerator.then(() => 'free' as const), late])) === 'late') {
        this.log.warn({ job: active.lease.job.id }, 'stopping the running job; it runs again at the next start');
        active.stop.abort(new Shutdown('shutting down'));
      }
      clearTimeout(timer);
    }
    await Promise.all([...this.running]);
  }

  /** Runs one job; resolves once the accelerator is free for the next. */
  private async take(lease: JobLease): Promise<void> {
    if (this.closing) return lease.putBack();
    // Keep the finishing line short, so results waiting to be rendered cannot pile up in memory.
    while (this.running.size > this.maxFinishing) await Promise.race(this.running);
    const stop = new AbortController();
    let free!: () => void;
    const onAccelerator = new Promise<void>((resolve) => (free = resolve));
    const now = Date.now();
    this.active = { lease, stop, onAccelerator, since: now, lastSignAt: now };
    const previous = this.lastEnd;
    const job = this.runOne(lease, AbortSignal.any([lease.signal, stop.signal]), free, previous)
      // Only storing the end can fail here (a full disk, say): the job stays in the spool and runs again at the next start.
      .catch((error: unknown) => this.log.error({ job: lease.job.id, err: error }, 'could not store how the job ended'))
      .finally(() => {
        free();
        this.running.delete(job);
      });
    this.running.add(job);
    this.lastEnd = job;
    await onAccelerator;
    if (this.active?.lease === lease) this.active = null;
  }

  /** Notes that the job on the accelerator moved (a tile done, the preview made), with its new ETA. */
  private signOfLife(lease: JobLease, etaMs?: number): void {
    if (this.active?.lease !== lease) return;
    this.active.lastSignAt = Date.now();
    if (etaMs !== undefined) this.active.etaMs = etaMs;
  }

  private async runOne(lease: JobLease, signal: AbortSignal, acceleratorDone: () => void, previous: Promise<void>): Promise<void> {
    const { job } = lease;
    const end = async (outcome: Parameters<JobLease['end']>[0]) => {
      await previous;
      await lease.end(outcome);
    };
    try {
      const input = await lease.input();
      const result = await this.processor(job, input, {
        signal,
        progress: (p) => {
          this.signOfLife(lease, p.etaMs);
          lease.progress(p);
        },
        preview: async (preview, png) => {
          this.signOfLife(lease);
          lease.preview({ ...preview, bytes: await lease.writeOutput('early', png) });
        },
        writeOutput: (kind, bytes) => lease.writeOutput(kind, bytes),
        acceleratorDone,
        logger: this.log,
      });
      await end({ state: 'completed', result });
    } catch (error) {
      if (signal.reason instanceof Shutdown) {
        this.log.info({ job: job.id, state: 'waiting' }, 'job stopped for shutdown, kept for the next start');
        await lease.putBack();
      } else if (error instanceof EnhanceError && error.kind === 'cancelled') {
        await end({ state: 'cancelled', reason: error.message });
      } else {
        if (!(error instanceof EnhanceError)) this.log.error({ job: job.id, err: error }, 'job failed unexpectedly');
        await end({ state: 'failed', reason: reasonOf(error) });
      }
    }
  }
}

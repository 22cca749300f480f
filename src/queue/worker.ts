/**
 * The worker side (learned from BullMQ: the work is an injected processor). A `Worker` takes the next job from
 * a `JobSource` (the in-process `LocalQueue`, or `RedisJobSource` for the queue on Redis), runs the `Processor` on it, and reports
 * how it ended. One job is on the accelerator at a time; once the processor says the accelerator is free
 * (`acceleratorDone`), the next job starts while this one's preview, comparison and PDF are still being made.
 */
import { DiskWaitStopped, type DiskSpace } from '../disk-space.js';
import { EnhanceError, reasonOf, reasonTextOf } from '../errors.js';
import type { Text } from '../i18n/i18n.js';
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
  /**
   * Ended: stored and handed to its adapter for delivery. Storing may wait for disk space; `signal` ends that
   * wait (rejecting with its reason), and the job then stays as it was stored.
   */
  end(outcome: { state: 'completed'; result: EnhanceResult } | { state: 'failed' | 'cancelled'; reason: string; text?: Text }, signal?: AbortSignal): Promise<void>;
  /** The job waits for disk space: its person is told (once). */
  held?(): void;
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
  /**
   * The disk outputs are stored on: while it is full no job starts, and a job whose output meets a full disk
   * waits for room instead of failing. Without one, such a job fails.
   */
  disk?: DiskSpace;
  logger?: Logger;
}

/** Thrown into a running job's signal when the worker stops: the job is put back, not failed. */
class Shutdown extends Error {}

/** Runs a processor over the jobs of one source, one on the accelerator at a time. */
export class Worker {
  private readonly log: Logger;
  private readonly maxFinishing: number;
  private readonly disk?: DiskSpace;
  /** Aborted by `close()`: jobs handed over but not started (waiting for the finishing line or for room) go back. */
  private readonly closed = new AbortController();
  /** Jobs handed over that have not started yet, until they start or are put back. */
  private readonly handed = new Set<Promise<unknown>>();
  /** The job on the accelerator, with its last sign of life (start, progress, preview) for `activeJob`. */
  private active: { lease: JobLease; stop: AbortController; onAccelerator: Promise<void>; since: number; lastSignAt: number; etaMs?: number } | null = null;
  /** Every job this worker has not finished, on the accelerator or finishing. */
  private readonly running = new Map<Promise<void>, AbortController>();
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
    this.disk = options.disk;
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
   * Takes no more jobs, not even one already handed over that has not started (it is put back, and stays queued
   * for the next start). Within `graceMs` the job on the accelerator may finish and jobs that are finishing
   * (preview, comparison, PDF) are waited for; after it, the job on the accelerator is stopped and put back, and so
   * is a job waiting for disk space.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.source.pause();
    this.closed.abort(new Shutdown('shutting down'));
    await Promise.all([...this.handed]);
    const timer = setTimeout(() => {
      const active = this.active;
      if (active) this.log.warn({ job: active.lease.job.id }, 'stopping the running job; it runs again at the next start');
      // Stops the job on the accelerator, and ends the waits for room of those finishing; neither cuts a write short.
      for (const stop of this.running.values()) stop.abort(new Shutdown('shutting down'));
    }, graceMs);
    await Promise.all([...this.running.keys()]);
    clearTimeout(timer);
  }

  /** Runs one job; resolves once the accelerator is free for the next. */
  private async take(lease: JobLease): Promise<void> {
    const admitted = this.admit().then(async (go) => {
      if (go) return true;
      // Handed over, never started: it stays stored and runs at the next start.
      this.log.info({ job: lease.job.id, state: 'waiting' }, 'job not started for shutdown, kept for the next start');
      await lease.putBack();
      return false;
    });
    this.handed.add(admitted);
    if (!(await admitted.finally(() => this.handed.delete(admitted)))) return;
    const stop = new AbortController();
    let free!: () => void;
    const onAccelerator = new Promise<void>((resolve) => (free = resolve));
    const now = Date.now();
    this.active = { lease, stop, onAccelerator, since: now, lastSignAt: now };
    const previous = this.lastEnd;
    const job = this.runOne(lease, AbortSignal.any([lease.signal, stop.signal]), free, previous)
      // Only storing the end can fail here: the job stays in the spool and runs again at the next start.
      .catch((error: unknown) => this.log.error({ job: lease.job.id, err: error }, 'could not store how the job ended'))
      .finally(() => {
        free();
        this.running.delete(job);
      });
    this.running.set(job, stop);
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

  /**
   * Waits until a job may start: the finishing line is short enough (results waiting to be rendered cannot pile
   * up in memory) and the disk has room (a job started on a full disk could only wait for it, holding its
   * memory). False once `close()` was called, whatever else.
   */
  private async admit(): Promise<boolean> {
    const closed = this.closed.signal;
    // The listener goes when the wait does: `closed` lives as long as the worker, and a `{ once: true }` listener
    // only leaves when it fires. Left there, every job added one (issue 24: Node's MaxListenersExceededWarning
    // after 11 jobs, and the listeners, with what they hold, for the life of the process).
    let onAbort: (() => void) | undefined;
    const onClose = new Promise<void>((resolve) => closed.addEventListener('abort', (onAbort = () => resolve()), { once: true }));
    try {
      while (!closed.aborted && this.running.size > this.maxFinishing) await Promise.race([...this.running.keys(), onClose]);
      while (!closed.aborted && this.disk?.full) await this.disk.whenSpace(closed);
    } catch {
      // The wait for room ended by close(), or the disk module stopped.
      return false;
    } finally {
      closed.removeEventListener('abort', onAbort!);
    }
    return !closed.aborted && !this.closing;
  }

  private async runOne(lease: JobLease, signal: AbortSignal, acceleratorDone: () => void, previous: Promise<void>): Promise<void> {
    const { job } = lease;
    const end = async (outcome: Parameters<JobLease['end']>[0]) => {
      await previous;
      await lease.end(outcome, signal);
    };
    // A full disk holds the output until there is room, rather than failing a job that has done its work.
    const write = (kind: OutputKind, bytes: Uint8Array) =>
      this.disk ? this.disk.keep(() => lease.writeOutput(kind, bytes), { signal, onHeld: () => lease.held?.() }) : lease.writeOutput(kind, bytes);
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
          lease.preview({ ...preview, bytes: await write('early', png) });
        },
        writeOutput: write,
        acceleratorDone,
        logger: this.log,
      });
      await end({ state: 'completed', result });
    } catch (error) {
      if (signal.reason instanceof Shutdown || error instanceof DiskWaitStopped) {
        this.log.info({ job: job.id, state: 'waiting' }, 'job stopped for shutdown, kept for the next start');
        await lease.putBack();
      } else if (error instanceof EnhanceError && error.kind === 'cancelled') {
        await end({ state: 'cancelled', reason: error.message, text: reasonTextOf(error) });
      } else {
        if (!(error instanceof EnhanceError)) this.log.error({ job: job.id, err: error }, 'job failed unexpectedly');
        await end({ state: 'failed', reason: reasonOf(error), text: reasonTextOf(error) });
      }
    }
  }
}

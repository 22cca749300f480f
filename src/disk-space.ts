/**
 * A full disk is a wait, not a failure. `DiskSpace` is the one place that knows whether the service is out of
 * room: any write that fails with ENOSPC (or EDQUOT, a quota) reports it here, intake pauses (one log line),
 * `/healthz` says why, and whatever was being written waits and is written again once there is room (one log
 * line). Before, a full disk failed every job that met it ("internal error: ENOSPC: no space left on device,
 * write"), and the hot folder moved its image to `failed/` for good.
 *
 * Whether room came back is learned by writing a small probe file into each folder that was found full, with
 * growing delays (1 s, doubling, at most 30 s): `statfs` alone would miss a quota (EDQUOT), which only a write
 * meets.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EnhanceError } from './errors.js';
import { DEFAULT_LOCALE, say, type Text } from './i18n/i18n.js';
import { writeSynced } from './files.js';
import { silentLogger, type Logger } from './log.js';

/** What a person is told when an image cannot be stored now. */
const DISK_FULL_TEXT: Text = { key: 'reason.diskFull' };

/** What a person whose job already waits is told (once). */
export const DISK_WAIT_TEXT: Text = { key: 'reason.diskWait' };
export const DISK_WAIT_MESSAGE = say(DEFAULT_LOCALE, DISK_WAIT_TEXT);

/** Thrown by a queue's `submit` while the disk is full: nothing was stored, so the image must come again later. */
export class DiskFullError extends EnhanceError {
  constructor() {
    super(DISK_FULL_TEXT, 'limit');
    this.name = 'DiskFullError';
  }
}

/** Thrown into a wait for space when the service stops: what waited stays stored for the next start. */
export class DiskWaitStopped extends Error {
  constructor() {
    super('stopped waiting for disk space: the service is stopping');
    this.name = 'DiskWaitStopped';
  }
}

/**
 * Whether `error` means the disk (or the user's quota) is full: the one kind of write failure that goes away on
 * its own.
 *
 * @example
 * await fs.writeFile(file, bytes).catch((e) => { if (!isDiskFull(e)) throw e; });
 */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export interface DiskSpaceOptions {
  /** The folder to probe when a failed write does not say where it wrote (the data folder). */
  dir: string;
  logger?: Logger;
  /** First delay before checking for room again; each later one doubles it. */
  firstCheckMs?: number;
  /** The longest delay between two checks. */
  maxCheckMs?: number;
  /** Bytes the probe writes: room for at least this much counts as room. */
  probeBytes?: number;
}

/**
 * The disk's state as the service sees it, and the wait for room.
 *
 * @example
 * const disk = new DiskSpace({ dir: config.data, logger });
 * await disk.keep(() => spool.saveOutcome(id, outcome)); // waits out a full disk, then writes
 * if (disk.full) throw new DiskFullError(); // intake paused
 */
export class DiskSpace extends EventEmitter<{ full: [reason: string]; space: []; closed: [] }> {
  private readonly log: Logger;
  private readonly firstCheckMs: number;
  private readonly maxCheckMs: number;
  private readonly probeBytes: number;
  /** Folders found full, probed until each takes a write again. */
  private readonly dirs = new Set<string>();
  private problem: string | undefined;
  private since = 0;
  private delay: number;
  /** When room last came back: a disk full again soon after keeps its long delay, so a nearly full disk does not flap every second. */
  private resumedAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: DiskSpaceOptions) {
    super();
    this.setMaxListeners(0);
    this.log = options.logger ?? silentLogger;
    this.firstCheckMs = options.firstCheckMs ?? 1000;
    this.maxCheckMs = options.maxCheckMs ?? 30_000;
    this.probeBytes = options.probeBytes ?? 64 * 1024;
    this.delay = this.firstCheckMs;
  }

  /** Out of room right now: intake is paused. */
  get full(): boolean {
    return this.problem !== undefined;
  }

  /** Why, in one line, while `full`: `no space left on device (ENOSPC) writing /data/jobs since 12:00:01`. */
  get reason(): string | undefined {
    return this.problem && `${this.problem} since ${new Date(this.since).toISOString()}; intake paused, checking again every ${Math.round(this.delay / 1000)} s`;
  }

  /**
   * Takes note of a failed write: when `error` is a full disk, the service holds (intake paused, one log line the
   * first time) and true is returned; anything else is not this module's business (false).
   */
  report(error: unknown, dir?: string): boolean {
    if (!isDiskFull(error)) return false;
    const where = dir ?? folderOf(error) ?? this.options.dir;
    this.dirs.add(where);
    if (this.problem !== undefined) return true;
    const code = (error as NodeJS.ErrnoException).code!;
    this.problem = `${code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on device'} (${code}) writing ${where}`;
    this.since = Date.now();
    if (this.since - this.resumedAt > this.maxCheckMs) this.delay = this.firstCheckMs;
    this.log.warn({ reason: this.problem }, 'out of disk space: intake paused; jobs and answers wait until there is room');
    this.emit('full', this.problem);
    this.schedule();
    return true;
  }

  /**
   * Resolves once there is room (at once when there is). Rejects with `signal`'s reason when it is aborted, and
   * with `DiskWaitStopped` once `close()` was called.
   */
  whenSpace(signal?: AbortSignal): Promise<void> {
    if (!this.full) return Promise.resolve();
    if (this.closed) return Promise.reject(new DiskWaitStopped());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const done = () => {
        this.off('space', onSpace);
        this.off('closed', onClosed);
        signal?.removeEventListener('abort', onAbort);
      };
      const onSpace = () => (done(), resolve());
      const onClosed = () => (done(), reject(new DiskWaitStopped()));
      const onAbort = () => (done(), reject(signal!.reason));
      this.once('space', onSpace);
      this.once('closed', onClosed);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Runs `write`; while it fails for want of room, reports it, waits for room and runs it again. `onHeld` is
   * called before the first wait (to tell the person once). Only waiting looks at `signal`: a write under way
   * is never cut short. Other errors are thrown as they are.
   *
   * @example
   * await disk.keep(() => results.write(id, 'png', png), { signal, onHeld: () => tell(job) });
   */
  async keep<T>(write: () => Promise<T>, { signal, onHeld }: { signal?: AbortSignal; onHeld?: () => void } = {}): Promise<T> {
    let told = false;
    for (;;) {
      try {
        return await write();
      } catch (error) {
        if (!this.report(error)) throw error;
        if (!told) {
          told = true;
          onHeld?.();
        }
        await this.whenSpace(signal);
      }
    }
  }

  /** Stops checking; every wait, now or later, rejects with `DiskWaitStopped`. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.emit('closed');
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), this.delay);
    // Waiting for room must not keep a stopping process alive.
    this.timer.unref();
  }

  /** Probes every folder found full; all take a write: room is back. */
  private async check(): Promise<void> {
    for (const dir of this.dirs) {
      if (!(await this.probe(dir))) {
        this.delay = Math.min(this.maxCheckMs, this.delay * 2);
        this.schedule();
        return;
      }
    }
    if (this.closed) return;
    const heldS = Math.round((Date.now() - this.since) / 1000);
    this.dirs.clear();
    this.problem = undefined;
    this.resumedAt = Date.now();
    this.log.info({ heldS }, 'disk space is back: intake resumed');
    this.emit('space');
  }

  /** Whether `dir` takes a write of `probeBytes`; a folder that cannot be probed for another reason counts as room. */
  private async probe(dir: string): Promise<boolean> {
    const file = path.join(dir, `.space-probe.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeSynced(file, Buffer.alloc(this.probeBytes), 'wx');
      return true;
    } catch (error) {
      return !isDiskFull(error);
    } finally {
      await fs.rm(file, { force: true }).catch(() => {});
    }
  }
}

/** The folder a failed write was writing into, when the error says (`files.ts` makes sure its writes do). */
function folderOf(error: unknown): string | undefined {
  const file = (error as NodeJS.ErrnoException).path;
  return file ? path.dirname(file) : undefined;
}

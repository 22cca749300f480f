/**
 * The keep: what the web door holds for its job pages, one folder a job under `<data>/web/keep/<job id>/`: the
 * upload (`input`, for the slider's "before"), the outputs the queue made (moved here by `deliver`, since the
 * queue forgets a job once delivered) and `job.json` (name, options, state, result or reason). Kept until the
 * job's link expires, within a total size (the oldest ended jobs go first), so a job page keeps working across
 * restarts. Only job ids (checked) and fixed kinds ever become paths; a request's file name never does.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { JOB_ID, mkdirPrivate, writeAtomic, type EnhanceOptions, type EnhanceResult, type JobState, type OutputKind, type Text } from '../../src/index.js';

/** Files a kept job may have: the upload and the queue's outputs. */
export type KeptKind = OutputKind | 'input';
export const KEPT_KINDS: readonly KeptKind[] = ['input', 'result', 'preview', 'compare', 'pdf', 'early'];

/** A kept job's `job.json`. */
export interface KeptJob {
  id: string;
  /** The file's name as uploaded: shown and offered as the download's name, never a path. */
  name: string;
  createdAt: number;
  /** When its link and files expire (ms since the epoch). */
  expires: number;
  options: EnhanceOptions;
  report: boolean;
  /** The input's format (`jpeg`, `png`, …) and size from its header. */
  format: string;
  width: number;
  height: number;
  bytes: number;
  /** `waiting` until the queue delivers its end; the queue knows where it stands meanwhile. */
  state: JobState;
  /** Why it failed or was cancelled, in English (logs), and as a catalogue message for each viewer's language. */
  reason?: string;
  reasonText?: Text;
  result?: EnhanceResult;
  /** When the end was kept, for "oldest out first". */
  endedAt?: number;
  /** Who uploaded it (people.ts): the API answers about a job only to them. Absent for a chat job's page. */
  people?: string[];
}

export class Keep {
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  private folder(id: string): string {
    // The id is the only part of a path that comes from outside; it is checked here, where paths are made.
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${JSON.stringify(id)}`);
    return path.join(this.dir, id);
  }

  file(id: string, kind: KeptKind): string {
    if (!KEPT_KINDS.includes(kind)) throw new Error(`not a kept kind: ${JSON.stringify(kind)}`);
    return path.join(this.folder(id), kind);
  }

  async open(): Promise<void> {
    await mkdirPrivate(this.dir);
  }

  /** Keeps a new job's record and its upload, before it is queued. */
  async add(job: KeptJob, input: Uint8Array): Promise<void> {
    await mkdirPrivate(this.folder(job.id));
    await writeAtomic(this.file(job.id, 'input'), input);
    await writeAtomic(path.join(this.folder(job.id), 'job.json'), JSON.stringify(job));
  }

  /** The job's record, or undefined when it is not (or no longer) kept. */
  async get(id: string): Promise<KeptJob | undefined> {
    if (!JOB_ID.test(id)) return undefined;
    try {
      return JSON.parse(await fs.readFile(path.join(this.folder(id), 'job.json'), 'utf8')) as KeptJob;
    } catch {
      return undefined;
    }
  }

  /** Writes one output beside the record (atomically: a page never sees half a PNG). */
  async put(id: string, kind: KeptKind, bytes: Uint8Array): Promise<void> {
    await writeAtomic(this.file(id, kind), bytes);
  }

  /** Records the job's end; after this its files are served from here. */
  async end(id: string, change: Pick<KeptJob, 'state' | 'reason' | 'reasonText' | 'result'>): Promise<KeptJob | undefined> {
    const job = await this.get(id);
    if (!job) return undefined;
    const ended: KeptJob = { ...job, ...change, endedAt: job.endedAt ?? Date.now() };
    await writeAtomic(path.join(this.folder(id), 'job.json'), JSON.stringify(ended));
    return ended;
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.folder(id), { recursive: true, force: true });
  }

  /**
   * Removes jobs past their expiry, then, while the ended jobs together are over `maxBytes`, the oldest ended
   * first. A job still in the queue is left: its end is yet to be delivered here. Returns the ids removed.
   */
  async prune(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    const ended: Array<{ id: string; at: number; bytes: number }> = [];
    for (const id of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (!JOB_ID.test(id)) continue;
      const job = await this.get(id);
      if (!job || job.expires <= now) {
        await this.remove(id);
        removed.push(id);
        continue;
      }
      if (job.state === 'waiting' || job.state === 'active') continue;
      let bytes = 0;
      for (const entry of await fs.readdir(this.folder(id))) bytes += (await fs.stat(path.join(this.folder(id), entry)).catch(() => ({ size: 0 }))).size;
      ended.push({ id, at: job.endedAt ?? job.createdAt, bytes });
    }
    let total = ended.reduce((sum, e) => sum + e.bytes, 0);
    for (const e of ended.sort((a, b) => a.at - b.at)) {
      if (total <= this.maxBytes) break;
      await this.remove(e.id);
      removed.push(e.id);
      total -= e.bytes;
    }
    return removed;
  }
}

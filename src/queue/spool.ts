/**
 * The durable spool: every job that is not yet delivered has a folder `<data>/jobs/<id>/` holding `job.json`
 * and the input bytes. The folder is written under a temporary name and renamed, so after a crash a job is
 * either wholly there or not at all. Once a job has ended, `outcome.json` says how (its outputs wait in the
 * result store) and `delivery.json` counts the failed deliveries: at the next start a job with an outcome is
 * delivered again, one without runs again.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirPrivate, PRIVATE_DIR, tempNameFor, writeAtomic, writeSynced } from '../files.js';
import type { Outcome } from './queue.js';
import type { Job } from '../types.js';

/** Short ids that sort by creation time: 9 base-36 digits of milliseconds, then 6 random hex digits. */
export function newJobId(now = Date.now()): string {
  return now.toString(36).padStart(9, '0') + randomBytes(3).toString('hex');
}

export const JOB_ID = /^[0-9a-z]{9}[0-9a-f]{6}$/;

/** Failed deliveries of an ended job so far. */
export interface DeliveryState {
  attempts: number;
  /** When the first attempt failed (ms since the epoch): retries stop some days after it. */
  firstFailedAt?: number;
  lastReason?: string;
}

/** A job found in the spool at start: it runs again, or (with an outcome) is delivered again. */
export interface SpooledJob {
  job: Job;
  outcome?: Outcome;
  delivery: DeliveryState;
}

export class Spool {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'jobs');
  }

  private folder(id: string): string {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    return path.join(this.dir, id);
  }

  /** Stores a job and its input; resolves once both are on disk. */
  async write(job: Job, input: Uint8Array): Promise<void> {
    await mkdirPrivate(this.dir);
    const temp = tempNameFor(this.folder(job.id));
    await fs.mkdir(temp, { mode: PRIVATE_DIR });
    try {
      await writeSynced(path.join(temp, 'input'), input);
      await writeSynced(path.join(temp, 'job.json'), JSON.stringify(job));
      await fs.rename(temp, this.folder(job.id));
    } catch (error) {
      await fs.rm(temp, { recursive: true, force: true });
      throw error;
    }
  }

  readInput(id: string): Promise<Buffer> {
    return fs.readFile(path.join(this.folder(id), 'input'));
  }

  /** Records how a job ended; from now on a restart delivers it instead of running it. */
  async saveOutcome(id: string, outcome: Outcome): Promise<void> {
    await writeAtomic(path.join(this.folder(id), 'outcome.json'), JSON.stringify(outcome));
  }

  async saveDelivery(id: string, delivery: DeliveryState): Promise<void> {
    await writeAtomic(path.join(this.folder(id), 'delivery.json'), JSON.stringify(delivery));
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.folder(id), { recursive: true, force: true });
  }

  /** Every job left by an earlier run, oldest first. Leftover temporary folders are cleared. */
  async recover(): Promise<SpooledJob[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return [];
    }
    const jobs: SpooledJob[] = [];
    for (const name of names) {
      if (name.endsWith('.tmp')) {
        await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
        continue;
      }
      if (!JOB_ID.test(name)) continue;
      try {
        const job = JSON.parse(await fs.readFile(path.join(this.dir, name, 'job.json'), 'utf8')) as Job;
        const outcome = await readJson<Outcome>(path.join(this.dir, name, 'outcome.json'));
        const delivery = (await readJson<DeliveryState>(path.join(this.dir, name, 'delivery.json'))) ?? { attempts: 0 };
        jobs.push({ job: { ...job, state: outcome?.state ?? 'waiting', reason: outcome && 'reason' in outcome ? outcome.reason : undefined }, outcome, delivery });
      } catch {
        // A folder without a readable job.json was never announced as queued (the rename comes last).
        await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
      }
    }
    return jobs.sort((a, b) => a.job.createdAt - b.job.createdAt || a.job.id.localeCompare(b.job.id));
  }
}

/** A small state file, or undefined when it is missing (never written: they are written whole or not at all). */
async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

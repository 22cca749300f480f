/**
 * What a front door has sent of each job's answer, in `<state dir>/<job>.json`, so that a delivery tried again
 * (after a failure, or a restart between two uploads) sends each part once: the queue retries `deliver` as a
 * whole. A note goes when its job is closed (the door hears `delivered`, or `undelivered` with no retry).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirPrivate, writeAtomic } from '../files.js';
import { JOB_ID } from '../queue/spool.js';

interface Note {
  /** The parts sent so far, named by the door (`png`, `compare`, …). */
  sent: string[];
  /** What the PNG step had to say (a file fitted to the upload limit), for the status message of a later try. */
  remark?: string;
}

/**
 * @example
 * const notes = new SentNotes('/srv/data/telegram');
 * await notes.once(job.id, 'png', () => api.sendDocument(chat, file));
 */
export class SentNotes {
  constructor(private readonly dir: string) {}

  async open(): Promise<void> {
    await mkdirPrivate(this.dir);
  }

  /** Runs `send` unless the note says `step` was done; `send` may hand back a remark to keep. */
  async once(job: string, step: string, send: () => Promise<string | void>): Promise<void> {
    const note = await this.read(job);
    if (note.sent.includes(step)) return;
    const remark = await send();
    const now = await this.read(job);
    await writeAtomic(this.file(job), JSON.stringify({ sent: [...now.sent, step], remark: remark ?? now.remark } satisfies Note));
  }

  /** The remark kept for `job`, if any. */
  async remark(job: string): Promise<string | undefined> {
    return (await this.read(job)).remark;
  }

  async forget(job: string): Promise<void> {
    await fs.rm(this.file(job), { force: true });
  }

  /** Removes the notes of jobs `known` says are gone (closed while the service was down). */
  async prune(known: (job: string) => Promise<boolean>): Promise<void> {
    for (const entry of await fs.readdir(this.dir)) {
      const id = entry.replace(/\.json$/, '');
      if (JOB_ID.test(id) && !(await known(id))) await this.forget(id);
    }
  }

  private file(job: string): string {
    return path.join(this.dir, `${job}.json`);
  }

  private async read(job: string): Promise<Note> {
    try {
      return JSON.parse(await fs.readFile(this.file(job), 'utf8')) as Note;
    } catch {
      return { sent: [] };
    }
  }
}

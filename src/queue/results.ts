/**
 * The result store: a job's outputs (`<data>/results/<job id>/<kind>`) from the moment they are made until its
 * adapter has delivered them. Events and outcomes carry only sizes; an adapter reads the one file it sends, so a
 * 4x PNG of hundreds of megabytes never sits in an event, a log line or a second copy in memory.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { mkdirPrivate, writeAtomic } from '../files.js';
import type { OutputKind } from '../types.js';
import { JOB_ID } from './spool.js';

const KINDS: readonly OutputKind[] = ['result', 'preview', 'compare', 'pdf', 'early'];

export class ResultStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'results');
  }

  /** The file of one output; ids and kinds are checked, so no name from outside ever becomes a path. */
  path(id: string, kind: OutputKind): string {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    if (!KINDS.includes(kind)) throw new Error(`not an output kind: ${kind} (kinds: ${KINDS.join(', ')})`);
    return path.join(this.dir, id, kind);
  }

  /** Stores one output whole or not at all; resolves to its size in bytes. */
  async write(id: string, kind: OutputKind, bytes: Uint8Array): Promise<number> {
    const file = this.path(id, kind);
    await mkdirPrivate(path.dirname(file));
    await writeAtomic(file, bytes);
    return bytes.length;
  }

  async read(id: string, kind: OutputKind): Promise<Buffer> {
    try {
      return await fs.readFile(this.path(id, kind));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`job ${id} has no stored ${kind} (delivered already, or never made)`);
      throw error;
    }
  }

  /** Forgets every output of a job. */
  async remove(id: string): Promise<void> {
    await fs.rm(path.join(this.dir, id), { recursive: true, force: true });
  }

  /** Removes the outputs of jobs that `keep` does not name (left by a crash after delivery). */
  async prune(keep: (id: string) => boolean): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) if (!keep(name)) await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
  }
}

/**
 * Results kept by signature (`<data>/cache/<signature>/`): the same input with the same options and model is
 * answered without running the model again. Also how a job whose inference finished before a crash picks up
 * where it stopped. The oldest entries go once the cache is over its size.
 *
 * An entry remembers who asked for it (as hashes of their owner names), so only they are told a result came
 * from the cache: before, an uploader saw `cached: true` and 0 ms, and so learnt that someone else had already
 * enhanced the same image.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EnhancedImage, EnhanceResult } from '../types.js';
import { mkdirPrivate, writeAtomic } from '../files.js';

type Stored = Omit<EnhanceResult, 'outputs' | 'cached'> & { askedBy?: string[] };

/** An owner's name as an entry keeps it: not the name itself. */
const askerId = (owner: string) => createHash('sha256').update(`cache-owner:${owner}`).digest('base64url').slice(0, 16);

/** A hit: the result, and whether `owner` asked for it before (only then is it said to come from the cache). */
export interface CacheHit {
  image: EnhancedImage;
  seenBefore: boolean;
}

export class ResultCache {
  readonly dir: string;

  constructor(
    dataDir: string,
    /** Bytes kept at most; 0 keeps nothing past the job that made it. */
    readonly maxBytes: number,
  ) {
    this.dir = path.join(dataDir, 'cache');
  }

  private folder(signature: string): string {
    if (!/^[0-9a-f]{64}$/.test(signature)) throw new Error(`not a signature: ${signature}`);
    return path.join(this.dir, signature);
  }

  /**
   * The stored result for `signature` asked for by `owner`, or null; the owner is remembered. A hit counts as a
   * use for eviction.
   */
  async get(signature: string, owner = 'local'): Promise<CacheHit | null> {
    const folder = this.folder(signature);
    let stored: Stored;
    let image: Buffer;
    try {
      const [meta, bytes] = await Promise.all([fs.readFile(path.join(folder, 'result.json'), 'utf8'), fs.readFile(path.join(folder, 'result'))]);
      stored = JSON.parse(meta) as Stored;
      image = bytes;
    } catch {
      return null;
    }
    const { askedBy = [], ...meta } = stored;
    const id = askerId(owner);
    const seenBefore = askedBy.includes(id);
    if (!seenBefore) await writeAtomic(path.join(folder, 'result.json'), JSON.stringify({ ...meta, askedBy: [...askedBy, id] })).catch(() => {});
    const now = new Date();
    await fs.utimes(folder, now, now).catch(() => {});
    return { image: { ...meta, image }, seenBefore };
  }

  /** Keeps `result`, made for `owner`. */
  async put(result: EnhancedImage, owner = 'local'): Promise<void> {
    const folder = this.folder(result.signature);
    await mkdirPrivate(folder);
    const { image, outputs: _o, cached: _k, ...meta } = result;
    // The image first: an entry counts only once its result.json is there.
    await writeAtomic(path.join(folder, 'result'), image);
    await writeAtomic(path.join(folder, 'result.json'), JSON.stringify({ ...meta, askedBy: [askerId(owner)] } satisfies Stored));
  }

  /** Removes the least recently used entries until the cache fits, never `keep`. */
  async evict(keep?: string): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return;
    }
    const entries = [];
    for (const name of names) {
      const folder = path.join(this.dir, name);
      try {
        const stat = await fs.stat(folder);
        let bytes = 0;
        for (const file of await fs.readdir(folder)) bytes += (await fs.stat(path.join(folder, file))).size;
        entries.push({ name, folder, bytes, used: stat.mtimeMs });
      } catch {
        // Removed meanwhile.
      }
    }
    let total = entries.reduce((sum, e) => sum + e.bytes, 0);
    entries.sort((a, b) => a.used - b.used);
    for (const entry of entries) {
      if (total <= this.maxBytes) break;
      if (entry.name === keep) continue;
      await fs.rm(entry.folder, { recursive: true, force: true });
      total -= entry.bytes;
    }
  }
}

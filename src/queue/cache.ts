/**
 * Results kept by signature (`<data>/cache/<signature>/`): the same input with the same options and model is
 * answered without running the model again. Also how a job whose inference finished before a crash picks up
 * where it stopped. The oldest entries go once the cache is over its size.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EnhancedImage, EnhanceResult } from '../types.js';
import { writeAtomic } from '../files.js';

type Stored = Omit<EnhanceResult, 'outputs' | 'cached'>;

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

  /** The stored result for `signature`, or null. A hit counts as a use for eviction. */
  async get(signature: string): Promise<EnhancedImage | null> {
    const folder = this.folder(signature);
    try {
      const [meta, png] = await Promise.all([fs.readFile(path.join(folder, 'result.json'), 'utf8'), fs.readFile(path.join(folder, 'result.png'))]);
      const now = new Date();
      await fs.utimes(folder, now, now).catch(() => {});
      return { ...(JSON.parse(meta) as Stored), png };
    } catch {
      return null;
    }
  }

  async put(result: EnhancedImage): Promise<void> {
    const folder = this.folder(result.signature);
    await fs.mkdir(folder, { recursive: true });
    const { png, outputs: _o, cached: _k, ...meta } = result;
    // PNG first: an entry counts only once its result.json is there.
    await writeAtomic(path.join(folder, 'result.png'), png);
    await writeAtomic(path.join(folder, 'result.json'), JSON.stringify(meta));
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

/**
 * The result cache, as files in the data folder. (The learned costs, kept there too, are tested in eta.test.ts.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ResultCache } from '../src/pipeline/cache.js';
import type { EnhancedImage } from '../src/types.js';
import { tempDir } from './helpers.js';

let dir: string;
beforeEach(() => (dir = tempDir('enhancer-cache-')));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const result = (signature: string, bytes: number): EnhancedImage => ({
  image: Buffer.alloc(bytes, 7),
  outputs: { result: bytes, preview: 10 },
  cached: false,
  input: { width: 2, height: 2, channels: 3, bits: 8, format: 'png' },
  output: { width: 8, height: 8, channels: 3, bits: 8 },
  format: 'png',
  options: { model: 'x4fast', scale: 4, tile: 'auto', tune: 'gentle', alpha: 'resize', device: 'auto', precision: 'fp32', format: 'png' },
  modelSha256: 'f'.repeat(64),
  device: 'cpu',
  precision: 'fp32',
  tile: 0,
  tiles: 1,
  signature,
  ms: { load: 1, decode: 1, infer: 1, encode: 1, total: 3 },
});
const sig = (c: string) => c.repeat(64);

describe('ResultCache', () => {
  it('gives back what it stored, without what belonged to the job that made it', async () => {
    const cache = new ResultCache(dir, 1e6);
    await cache.put(result(sig('a'), 100));
    const hit = await cache.get(sig('a'));
    expect(hit?.image.image.equals(Buffer.alloc(100, 7))).toBe(true);
    expect(hit?.image).toMatchObject({ signature: sig('a'), output: { width: 8 } });
    expect(hit?.image.outputs).toBeUndefined();
    expect(hit?.image.cached).toBeUndefined();
    expect(await cache.get(sig('b'))).toBeNull();
  });

  it('tells only whoever asked for a result before that it is a hit, and never keeps their name itself', async () => {
    const cache = new ResultCache(dir, 1e6);
    await cache.put(result(sig('a'), 100), 'web:v:alice');
    expect((await cache.get(sig('a'), 'web:v:alice'))?.seenBefore).toBe(true);
    expect((await cache.get(sig('a'), 'telegram:42'))?.seenBefore).toBe(false);
    // Asked once, known from then on.
    expect((await cache.get(sig('a'), 'telegram:42'))?.seenBefore).toBe(true);
    const stored = fs.readFileSync(path.join(dir, 'cache', sig('a'), 'result.json'), 'utf8');
    expect(stored).not.toContain('alice');
    expect(stored).not.toContain('telegram');
  });

  it('drops the least recently used entries once over its size, never the one just made', async () => {
    // Each entry is 1000 bytes of PNG and about 520 of JSON: two fit.
    const cache = new ResultCache(dir, 3200);
    for (const [i, c] of ['a', 'b', 'c'].entries()) {
      await cache.put(result(sig(c), 1000));
      const t = new Date(Date.now() - (10 - i) * 1000);
      fs.utimesSync(path.join(dir, 'cache', sig(c)), t, t);
    }
    await cache.get(sig('a')); // a is now the most recently used
    await cache.put(result(sig('d'), 1000));
    await cache.evict(sig('d'));
    expect(fs.readdirSync(path.join(dir, 'cache')).sort()).toEqual([sig('a'), sig('d')]);
    await new ResultCache(dir, 0).evict(sig('d'));
    expect(fs.readdirSync(path.join(dir, 'cache'))).toEqual([sig('d')]);
  });
});

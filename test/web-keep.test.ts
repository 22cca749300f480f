/**
 * The web door's keep (adapters/web/keep.ts) on a real folder: results leave when their link expires, and past
 * `keepBytes` the oldest ended jobs go first while jobs still in the queue stay.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Keep, type KeptJob } from '../adapters/web/keep.js';
import { tempDir } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = tempDir('enhancer-keep-');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function job(id: string, over: Partial<KeptJob> = {}): KeptJob {
  return {
    id,
    name: 'a.png',
    createdAt: 1_000,
    expires: 100_000,
    options: { model: 'x4fast', scale: 4, tile: 'auto', tune: 'gentle', alpha: 'resize', device: 'auto', precision: 'fp32', format: 'png' },
    report: false,
    format: 'png',
    width: 10,
    height: 10,
    bytes: 1_000,
    state: 'waiting',
    ...over,
  };
}

describe('keep', () => {
  it('removes expired jobs, then the oldest ended ones past keepBytes; a waiting job stays', async () => {
    const keep = new Keep(dir, 1_500_000);
    await keep.open();
    const ids = ['000000001aaaaaa', '000000002aaaaaa', '000000003aaaaaa', '000000004aaaaaa'];
    // Ended in this order (ids[2] last); `end` keeps an end time already set.
    for (const [i, id] of ids.entries()) await keep.add(job(id, { endedAt: 2_000 + i }), Buffer.alloc(1_000_000));
    await keep.end(ids[0], { state: 'completed' });
    await keep.end(ids[1], { state: 'failed', reason: 'no' });
    // ids[2] ended last but expires first; ids[3] is still in the queue.
    await keep.end(ids[2], { state: 'completed' });
    const third = JSON.parse(fs.readFileSync(path.join(dir, ids[2], 'job.json'), 'utf8')) as KeptJob;
    fs.writeFileSync(path.join(dir, ids[2], 'job.json'), JSON.stringify({ ...third, expires: 5_000 }));

    expect(await keep.prune(10_000)).toEqual([ids[2], ids[0]]);
    expect(fs.readdirSync(dir).sort()).toEqual([ids[1], ids[3]]);
    expect(await keep.get(ids[1])).toMatchObject({ state: 'failed', reason: 'no' });
    // Past every expiry, the waiting one goes too.
    expect((await keep.prune(200_000)).sort()).toEqual([ids[1], ids[3]]);
  });

  it('never makes a path from anything but a job id and a fixed kind', async () => {
    const keep = new Keep(dir, 1e9);
    expect(() => keep.file('../../etc', 'result')).toThrow('not a job id: "../../etc"');
    expect(() => keep.file('000000001aaaaaa', '../x' as 'result')).toThrow('not a kept kind: "../x"');
    expect(await keep.get('../../etc/passwd')).toBeUndefined();
  });
});

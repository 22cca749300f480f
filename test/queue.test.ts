/**
 * The job queue in process, with the real engine and models: events, order, limits, cancel, shutdown.
 */
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnhanceError } from '../src/errors.js';
import { JobQueue } from '../src/queue/job-queue.js';
import type { Outcome } from '../src/queue/queue.js';
import type { EnhanceRequest, Job } from '../src/types.js';
import { scenePng, tempDir } from './helpers.js';

let dir: string;
let queues: JobQueue[] = [];
let delivered: Array<{ job: Job; outcome: Outcome }>;
let events: string[];

beforeEach(() => {
  dir = tempDir('enhancer-queue-');
  queues = [];
  delivered = [];
  events = [];
});
afterEach(async () => {
  for (const q of queues) await q.close(0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function queue(limit = Infinity): JobQueue {
  const q = new JobQueue({
    dataDir: dir,
    defaults: { model: 'x4fast' },
    maxPixels: 1_000_000,
    maxFileBytes: 5_000_000,
    limitFor: () => limit,
    deliver: async (job, outcome) => {
      delivered.push({ job, outcome });
    },
  });
  for (const name of ['queued', 'started', 'completed', 'failed', 'cancelled'] as const) {
    q.on(name, (job: Job) => events.push(`${name} ${job.request.name}`));
  }
  queues.push(q);
  return q;
}

const request = async (name: string, seed: number, extra: Partial<EnhanceRequest> = {}): Promise<EnhanceRequest> => ({
  input: await scenePng(32, 24, seed),
  name,
  owner: 'telegram:7',
  ...extra,
});

const settled = (q: JobQueue, n: number) =>
  new Promise<void>((resolve) => {
    const check = () => delivered.length >= n && resolve();
    check();
    for (const name of ['completed', 'failed', 'cancelled'] as const) q.on(name, check);
  });

describe('JobQueue', () => {
  it('spools before announcing, reports position and ETA, runs in order and delivers every output', async () => {
    const q = queue();
    const spooled: boolean[] = [];
    const positions: number[] = [];
    q.on('queued', (job, info) => {
      spooled.push(fs.existsSync(path.join(dir, 'jobs', job.id, 'input')));
      positions.push(info.position);
      expect(info.etaMs).toBeGreaterThan(0);
    });
    const a = await q.submit(await request('a.png', 1, { report: true }));
    const b = await q.submit(await request('b.png', 2));
    expect([a.state, b.state]).toEqual(['waiting', 'waiting']);
    expect(q.etaOf(b.id)).toBeGreaterThan(q.etaOf(a.id));
    q.run();
    await settled(q, 2);
    expect(spooled).toEqual([true, true]);
    expect(positions).toEqual([1, 2]);
    // Finishing a overlaps b on the accelerator, so only the order within each kind is fixed.
    expect(events.indexOf('started a.png')).toBeLessThan(events.indexOf('started b.png'));
    expect(events.indexOf('completed a.png')).toBeLessThan(events.indexOf('completed b.png'));
    const [first, second] = delivered;
    expect(first.outcome.state).toBe('completed');
    if (first.outcome.state !== 'completed' || second.outcome.state !== 'completed') throw new Error('not completed');
    const r = first.outcome.result;
    expect(await sharp(r.png).metadata()).toMatchObject({ width: 128, height: 96 });
    expect(await sharp(r.preview!).metadata()).toMatchObject({ format: 'jpeg', width: 128, height: 96 });
    expect((await sharp(r.compare!).metadata()).format).toBe('jpeg');
    expect(r.pdf!.subarray(0, 5).toString()).toBe('%PDF-');
    expect(second.outcome.result.pdf).toBeUndefined();
    expect(r.ms.wait).toBeGreaterThanOrEqual(0);
    expect(r.ms.render).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([]);
  });

  it('never runs two inferences at once: progress of one job ends before the next begins', async () => {
    const q = queue();
    const progress: string[] = [];
    q.on('progress', (job, p) => progress.push(`${job.request.name}:${p.tilesDone}/${p.tilesTotal}`));
    for (const [i, name] of ['a.png', 'b.png', 'c.png'].entries()) await q.submit(await request(name, i, { options: { tile: 16 } }));
    q.run();
    await settled(q, 3);
    const owners = progress.map((p) => p.split(':')[0]);
    expect(owners.filter((o, i) => o !== owners[i - 1])).toEqual(['a.png', 'b.png', 'c.png']);
    expect(progress.filter((p) => p.startsWith('a.png'))).toEqual(['a.png:1/4', 'a.png:2/4', 'a.png:3/4', 'a.png:4/4']);
  });

  it('refuses bad requests at submit with one line, and spools nothing', async () => {
    const q = queue();
    const reason = (p: Promise<unknown>) => p.then(() => 'accepted', (e: Error) => `${e instanceof EnhanceError}: ${e.message}`);
    expect(await reason(q.submit({ input: new Uint8Array(0), name: 'x.png' }))).toBe('true: the file is empty (0 bytes)');
    expect(await reason(q.submit({ input: Buffer.from('hello'), name: 'x.png' }))).toMatch(/^true: not an image in a supported format/);
    expect(await reason(q.submit({ ...(await request('x.png', 1)), options: { model: 'x9' } }))).toBe(
      'true: unknown model "x9": allowed models are x4plus, x4fast',
    );
    expect(await reason(q.submit({ input: await scenePng(1200, 900, 1), name: 'big.png' }))).toBe(
      'true: the image is 1200x900 (1.1 MP), over the limit of 1.0 MP',
    );
    expect(await reason(q.submit({ input: Buffer.alloc(6_000_000), name: 'huge.png' }))).toBe('true: the file is 6.0 MB, over the limit of 5.0 MB');
    expect(fs.existsSync(path.join(dir, 'jobs')) ? fs.readdirSync(path.join(dir, 'jobs')) : []).toEqual([]);
  });

  it('limits queued jobs per person and lets only the owner cancel', async () => {
    const q = queue(2);
    const a = await q.submit(await request('a.png', 1));
    await q.submit(await request('b.png', 2));
    await expect(q.submit(await request('c.png', 3))).rejects.toThrow(
      'you already have 2 images in the queue (the limit is 2): wait for one to finish or cancel one',
    );
    await q.submit(await request('d.png', 4, { owner: 'telegram:8' }));
    // Two at once from one person: both checked before either is written, so only one gets the last slot.
    const e = await request('e.png', 5, { owner: 'telegram:8' });
    const f = await request('f.png', 6, { owner: 'telegram:8' });
    const both = await Promise.allSettled([q.submit(e), q.submit(f)]);
    expect(both.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    await q.cancel((both[0] as PromiseFulfilledResult<Job>).value.id, 'telegram:8');
    await expect(q.cancel(a.id, 'telegram:8')).rejects.toThrow('only the person who sent an image can cancel it');
    await q.cancel(a.id, 'telegram:7');
    expect(delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([
      ['e.png', 'cancelled'],
      ['a.png', 'cancelled'],
    ]);
    // The slot is free again.
    await q.submit(await request('c.png', 3));
    q.run();
    await settled(q, 5);
    expect(events.filter((e) => e.startsWith('started'))).toEqual(['started b.png', 'started d.png', 'started c.png']);
  });

  it('cancels a running job between tiles and goes on with the next', async () => {
    const q = queue();
    const slow = await q.submit(await request('slow.png', 1, { options: { model: 'x4plus', tile: 16 } }));
    await q.submit(await request('next.png', 2));
    q.on('progress', (job, p) => {
      if (job.id === slow.id && p.tilesDone === 1) void q.cancel(slow.id, 'telegram:7');
    });
    q.run();
    await settled(q, 2);
    expect(delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([
      ['slow.png', 'cancelled'],
      ['next.png', 'completed'],
    ]);
    expect(delivered[0].outcome).toMatchObject({ reason: 'cancelled by its owner' });
  });

  it('on close keeps the running job in the spool, and a new queue runs it to the end', async () => {
    const q = queue();
    const job = await q.submit(await request('kept.png', 1, { options: { model: 'x4plus', tile: 16 } }));
    const started = new Promise<void>((resolve) => q.on('progress', () => resolve()));
    q.run();
    await started;
    await q.close(0);
    expect(delivered).toEqual([]);
    await expect(q.submit(await request('late.png', 2))).rejects.toThrow('the service is shutting down: send it again in a minute');
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([job.id]);

    const again = queue();
    expect((await again.recover()).map((j) => j.id)).toEqual([job.id]);
    again.run();
    await settled(again, 1);
    expect(delivered.map((d) => [d.job.id, d.outcome.state])).toEqual([[job.id, 'completed']]);
  });

  it('keeps the event loop free while the model runs, so timers, chats and progress go on', async () => {
    const q = queue();
    // One 160x160 x4fast window: about 0.4 s of inference in one synchronous onnxruntime call.
    await q.submit({ input: await scenePng(160, 160, 5), name: 'big.png', owner: 'local', options: { tile: 0 } });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    delay.enable();
    q.run();
    await settled(q, 1);
    delay.disable();
    clearInterval(timer);
    expect(delivered[0].outcome.state).toBe('completed');
    const result = delivered[0].outcome.state === 'completed' ? delivered[0].outcome.result : null;
    expect(result?.ms.infer).toBeGreaterThan(150);
    // In-process the loop stood still for the whole inference; on the engine thread it only waits for
    // this thread's own work (decoding, rendering), never for the model.
    expect(delay.max / 1e6).toBeLessThan(result!.ms.infer / 2);
    expect(ticks).toBeGreaterThan(result!.ms.infer / 20 / 2);
  });

  it('loads a model once for a run of jobs on it, and again after a job on the other model', async () => {
    const q = queue();
    await q.submit(await request('a.png', 1, { options: { model: 'x4plus' } }));
    await q.submit(await request('b.png', 2, { options: { model: 'x4plus' } }));
    await q.submit(await request('c.png', 3));
    q.run();
    await settled(q, 3);
    const load = (name: string) => {
      const { outcome } = delivered.find((d) => d.job.request.name === name)!;
      return outcome.state === 'completed' ? outcome.result.ms.load : NaN;
    };
    // Loading x4plus (checking and optimising its 67 MB) takes hundreds of milliseconds, even a second time;
    // reusing the loaded session only reads the manifest. The switch to x4fast loads that one.
    expect(load('a.png')).toBeGreaterThan(100);
    expect(load('b.png')).toBeLessThan(load('a.png') / 10);
    expect(load('c.png')).toBeGreaterThan(load('b.png'));
  });
});

/**
 * ETAs: the learned costs (throughput.ts, and the same lines on Redis) and the arithmetic over a line of jobs
 * (eta.ts), exact: the queue's clock is the test's, the costs are given lines, the engine is the scripted one, and
 * every step waits for an event. How close ETAs come on real jobs is measured by `enhancer bench --eta`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { previewWindowPixels } from '../src/pipeline/shape.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import { connectRedis } from '../src/queue/redis/connection.js';
import { RedisQueue } from '../src/queue/redis/redis-queue.js';
import { RedisSpeeds } from '../src/queue/redis/speeds.js';
import { RedisStore } from '../src/queue/redis/store.js';
import { addTo, Costs, DECAY, GUESSES, Throughput, type CostState, type JobSample, type JobShape, type Line, type Sums } from '../src/queue/throughput.js';
import { Worker, type Processor } from '../src/queue/worker.js';
import type { EnhanceProgress, Job } from '../src/types.js';
import { scenePng, tempDir } from './helpers.js';
import { next } from './queue-helpers.js';
import { RedisServer, redisMissing } from './redis-server.js';
import { ScriptedEngine } from './scripted-engine.js';
import { requestChecks } from '../src/pipeline/admission.js';

let dir: string;
let close: Array<() => Promise<void>>;
beforeEach(() => {
  dir = tempDir('enhancer-eta-');
  close = [];
});
afterEach(async () => {
  for (const c of close.reverse()) await c();
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (line: Line, x: number) => line.fixedMs + line.msPerMP * x;
/** Two jobs exactly on `line`: its sums fit back to it. */
const onLine = (line: Line, x1 = 0.01, x2 = 0.05): Sums => addTo(addTo(undefined, x1, at(line, x1)), x2, at(line, x2));
const shape = (width: number, height: number, extra: Partial<JobShape> = {}): JobShape => ({
  model: 'x4fast',
  mp: (width * height) / 1e6,
  outMP: (width * height * 16) / 1e6,
  previewMP: 0,
  report: false,
  ...extra,
});
const sample = (s: JobShape, runMs: number, extra: Partial<JobSample> = {}): JobSample => ({
  shape: s,
  device: 'cpu',
  accelerator: { runMs, loadMs: 0, tailMs: 5 },
  renderMs: 50,
  ...extra,
});
const expectLine = (line: Line, fixedMs: number, msPerMP: number) => {
  expect(line.fixedMs).toBeCloseTo(fixedMs, 6);
  expect(line.msPerMP).toBeCloseTo(msPerMP, 4);
};

describe('learned costs', () => {
  it('fit a fixed part and a rate per megapixel to jobs of different sizes, and are kept for the next start', async () => {
    const first = new Throughput(dir);
    // Nothing learned: the first guesses.
    expect(first.costs().accelerator(shape(320, 320), false)).toBeCloseTo(at(GUESSES.run.x4fast, 0.1024), 6);
    await first.learn(sample(shape(100, 100), 300));
    await first.learn(sample(shape(500, 100), 1100));
    // 300 ms at 0.01 MP, 1100 ms at 0.05 MP: 100 ms + 20 000 ms per megapixel.
    expectLine(first.costs().line('x4fast:cpu:run'), 100, 20_000);
    expect(first.costs().accelerator(shape(320, 320), false)).toBeCloseTo(100 + 20_000 * 0.1024, 6);
    expectLine(new Throughput(dir).costs().line('x4fast:cpu:run'), 100, 20_000);
    // The newest job weighs most: a third job on another line moves it towards itself.
    await first.learn(sample(shape(300, 100), 1000));
    const moved = first.costs().accelerator(shape(300, 100), false);
    expect(moved).toBeGreaterThan(700);
    expect(moved).toBeLessThan(1000);
  });

  it('keep the guessed rate while the jobs are all of one size, with the fixed part through them', async () => {
    const speeds = new Throughput(dir);
    await speeds.learn(sample(shape(100, 1000), 4000));
    await speeds.learn(sample(shape(100, 1000), 3000));
    // Their weighted mean: (4000 * DECAY + 3000) / (DECAY + 1) at 0.1 MP.
    const mean = (4000 * DECAY + 3000) / (DECAY + 1);
    expectLine(speeds.costs().line('x4fast:cpu:run'), mean - GUESSES.run.x4fast.msPerMP * 0.1, GUESSES.run.x4fast.msPerMP);
    // Faster than the guessed rate alone: the line goes through the origin, never below it.
    const fast = new Throughput(path.join(dir, 'fast'));
    await fast.learn(sample(shape(100, 1000), 1000));
    expectLine(fast.costs().line('x4fast:cpu:run'), 0, 10_000);
  });

  it('read the old file, one inference rate per model and device, as the rate of the first guess; a damaged one as none', async () => {
    fs.mkdirSync(path.join(dir, 'state'));
    fs.writeFileSync(path.join(dir, 'state', 'throughput.json'), JSON.stringify({ 'x4fast:cpu': 30_000 }));
    const speeds = new Throughput(dir);
    expectLine(speeds.costs().line('x4fast:cpu:run'), GUESSES.run.x4fast.fixedMs, 30_000);
    // The preview's rate is its run's.
    expect(speeds.costs().line('x4fast:cpu:preview').msPerMP).toBe(30_000);
    await speeds.learn(sample(shape(100, 100), 500));
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'state', 'throughput.json'), 'utf8')) as CostState;
    expect(saved['x4fast:cpu']).toBe(30_000);
    expect(saved['x4fast:cpu:run']).toMatchObject({ n: 1, x: 0.01, y: 500 });
    // A field damaged by hand counts as not learned.
    fs.writeFileSync(path.join(dir, 'state', 'throughput.json'), JSON.stringify({ 'x4fast:cpu:run': { n: 2, x: 'a' }, render: 'fast' }));
    expect(new Throughput(dir).costs().line('x4fast:cpu:run')).toEqual(GUESSES.run.x4fast);
    expect(new Throughput(dir).costs().line('render')).toEqual(GUESSES.render);
  });

  it('count the model load only for a job that needs it, and learn it only from a job that loaded', async () => {
    let now = 1_000_000;
    const speeds = new Throughput(dir, () => now);
    const s = shape(100, 100);
    const guess = speeds.costs().accelerator(s, false);
    expect(speeds.costs().accelerator(s, true)).toBeCloseTo(guess + GUESSES.load.x4fast, 6);
    expect(speeds.costs().loaded).toBeUndefined();
    await speeds.learn(sample(s, 300, { accelerator: { runMs: 300, loadMs: 400, tailMs: 5 } }));
    expect(speeds.costs().line('x4fast:cpu:load')).toEqual({ fixedMs: 400, msPerMP: 0 });
    // The engine holds the model it ran for a minute.
    expect(speeds.costs().loaded).toBe('x4fast');
    now += 60_000;
    expect(speeds.costs().loaded).toBeUndefined();
    // The first job of an engine ran cold: it teaches the load only.
    const fresh = new Throughput(path.join(dir, 'fresh'));
    await fresh.learn(sample(s, 9000, { accelerator: { runMs: 9000, loadMs: 500, tailMs: 900, cold: true }, renderMs: 900 }));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'fresh', 'state', 'throughput.json'), 'utf8'))).toEqual({ 'x4fast:cpu:load': { n: 1, x: 0, y: 500, xx: 0, xy: 0 } });
    // A job answered from the cache teaches the render only.
    await speeds.learn({ shape: s, device: 'cpu', renderMs: 80 });
    expect(speeds.costs().line('x4fast:cpu:run').fixedMs).toBeCloseTo(300 - GUESSES.run.x4fast.msPerMP * 0.01, 6);
    expect(speeds.costs().render(s)).toBeGreaterThan(0);
  });
});

/** The lines every ETA test below runs on. */
const RUN: Line = { fixedMs: 100, msPerMP: 20_000 };
const PREVIEW: Line = { fixedMs: 50, msPerMP: 20_000 };
const LOAD = 300;
const TAIL: Line = { fixedMs: 10, msPerMP: 100 };
const RENDER: Line = { fixedMs: 40, msPerMP: 200 };
const STATE: CostState = {
  'x4fast:cpu:run': onLine(RUN),
  'x4fast:cpu:preview': onLine(PREVIEW),
  'x4fast:cpu:load': addTo(undefined, 0, LOAD),
  tail: onLine(TAIL, 0.1, 1),
  render: onLine(RENDER, 0.1, 1),
};

/** A job of `width` x `height` on those lines: its time on the accelerator (without the load), its tail and render. */
function costsOf(width: number, height: number, earlyPreview = false) {
  const mp = (width * height) / 1e6;
  const preview = earlyPreview ? at(PREVIEW, previewWindowPixels(width, height) / 1e6) : 0;
  return { accelerator: preview + at(RUN, mp), tail: at(TAIL, mp * 16), render: at(RENDER, mp * 16) };
}

describe('ETAs in the in-process queue', () => {
  it('count the jobs ahead, the preview and the render; the running job by what is left of it', async () => {
    let now = 1_000_000;
    // Given lines that the jobs do not change; what a job teaches is only which model the engine holds.
    let loaded: string | undefined;
    const speeds = { costs: () => new Costs(STATE, undefined, loaded), learn: async (s: JobSample) => void (loaded = s.shape.model) };
    const engine = new ScriptedEngine();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // Holds a.png's finishing at its thumbnail, so it is being rendered while b.png runs.
    const hold = (processor: Processor): Processor => (job, input, ctx) =>
      processor(job, input, {
        ...ctx,
        writeOutput: async (kind, bytes) => {
          if (kind === 'preview' && job.request.name === 'a.png') await held;
          return ctx.writeOutput(kind, bytes);
        },
      });
    const queue = new LocalQueue({ dataDir: dir, checks: requestChecks({ defaults: { model: 'x4fast' } }), speeds, now: () => now, deliver: async () => {} });
    const worker = new Worker(queue, hold(enhanceProcessor({ engine, speeds })));
    close.push(async () => {
      await worker.close(0);
      await queue.close(100);
    });
    const submit = async (name: string, size: number, earlyPreview = false) => {
      const queued = next(queue, 'queued', (job) => job.request.name === name);
      const job = await queue.submit({ input: await scenePng(size, size, size), name, earlyPreview });
      return { job, etaMs: (await queued)[1].etaMs };
    };
    const [a, b, c] = [costsOf(64, 64), costsOf(128, 128), costsOf(320, 320, true)];
    expect(previewWindowPixels(320, 320)).toBe(78 * 78);

    // Queued while nothing runs: the model's load (the engine holds none yet), a's and b's runs, c's preview and
    // run, and c's own render; a's and b's renders overlap the next job and hold up nobody.
    const first = await submit('a.png', 64);
    const second = await submit('b.png', 128);
    const third = await submit('c.png', 320, true);
    expect(first.etaMs).toBeCloseTo(LOAD + a.accelerator + a.render, 6);
    expect(second.etaMs).toBeCloseTo(LOAD + a.accelerator + b.accelerator + b.render, 6);
    expect(third.etaMs).toBeCloseTo(LOAD + a.accelerator + b.accelerator + c.accelerator + c.render, 6);
    const eta = async (job: Job) => (await queue.getJob(job.id))!.etaMs;

    // a.png runs; 50 ms later, before any tile, the line counts what is left of its expected time.
    worker.run();
    const callA = await engine.next();
    now += 50;
    expect(await eta(third.job)).toBeCloseTo(LOAD + a.accelerator - 50 + b.accelerator + c.accelerator + c.render, 6);

    // Its first tile of three: the engine says 20 ms for the other two; its person is told that, plus what
    // follows the tiles and its render; those behind count the tiles and what follows them.
    const progress = new Promise<[EnhanceProgress, number]>((resolve) =>
      queue.events().on('progress', (job, p) => p.tilesDone === 1 && job.id === first.job.id && void eta(third.job).then((ms) => resolve([p, ms]))),
    );
    callA.finish(3);
    const [told, behind] = await progress;
    expect(told.etaMs).toBeCloseTo(20 + a.tail + a.render, 6);
    expect(behind).toBeCloseTo(20 + a.tail + b.accelerator + c.accelerator + c.render, 6);

    // a.png is rendered (held at its thumbnail) while b.png runs: it holds up nobody, and b.png needs no load.
    const callB = await engine.next();
    expect(callB.name).toBe('b.png');
    expect(await eta(first.job)).toBeCloseTo(a.render, 6);
    expect(await eta(third.job)).toBeCloseTo(b.accelerator + c.accelerator + c.render, 6);
    now += 100;
    // a.png is late: nothing left of its render is counted, and b.png cannot end before it.
    expect(await eta(first.job)).toBe(0);
    expect(await eta(second.job)).toBeCloseTo(b.accelerator - 100 + b.render, 6);
    release();
    callB.finish();

    // c.png's early preview runs: its own ETA counts the preview and the run, then its render.
    const preview = await engine.next();
    expect(preview.region).toBeDefined();
    now += 10;
    expect(await eta(third.job)).toBeCloseTo(c.accelerator - 10 + c.render, 6);
    preview.finish();
    (await engine.next()).finish();
    await next(queue, 'completed', (job) => job.id === third.job.id);
  });
});

describe.skipIf(redisMissing)('ETAs on Redis', () => {
  let server: RedisServer;
  beforeEach(async () => {
    server = await RedisServer.start();
    close.push(() => server.remove());
  });
  const redis = async () => {
    const r = await connectRedis(server.url, silentLogger, 'test');
    close.push(async () => r.disconnect());
    return r;
  };

  it('learn the same lines as the in-process queue, and read the old format', async () => {
    const r = await redis();
    await r.hset('enhancer:speeds', 'x4plus:cpu', '300000');
    const speeds = new RedisSpeeds(r);
    const local = new Throughput(dir);
    const samples = [
      sample(shape(100, 100), 300, { accelerator: { runMs: 300, loadMs: 250, tailMs: 4 } }),
      sample(shape(320, 320, { previewMP: 0.006, report: true }), 2400, { accelerator: { runMs: 2400, previewMs: 160, loadMs: 0, tailMs: 30 }, renderMs: 400 }),
      sample(shape(200, 100), 500),
      { shape: shape(50, 50), device: 'cpu' as const, renderMs: 30 },
    ];
    for (const s of samples) {
      await speeds.learn(s);
      await local.learn(s);
    }
    const [there, here] = [await speeds.costs(), local.costs()];
    for (const field of ['x4fast:cpu:run', 'x4fast:cpu:preview', 'x4fast:cpu:load', 'tail', 'render', 'report']) {
      expect(there.line(field).fixedMs).toBeCloseTo(here.line(field).fixedMs, 6);
      expect(there.line(field).msPerMP).toBeCloseTo(here.line(field).msPerMP, 4);
    }
    expect(there.loaded).toBe('x4fast');
    expect(there.line('x4plus:cpu:run').msPerMP).toBe(300_000);
  });

  it('keep a running job\'s start, reports and the accelerator\'s end; nothing once it ended', async () => {
    const store = new RedisStore(await redis());
    const job = { id: 'j1', request: { name: 'a.png', options: {} }, state: 'active' } as unknown as Job;
    const before = Date.now();
    await store.started(job, 1);
    const started = (await store.running()).get('j1')!;
    expect(started.since).toBeGreaterThanOrEqual(before);
    await store.setEta('j1', 1234);
    expect((await store.running()).get('j1')).toMatchObject({ since: started.since, etaMs: 1234 });
    await store.acceleratorDone('j1');
    expect((await store.running()).get('j1')).toMatchObject({ since: started.since, etaMs: 1234, doneAt: expect.any(Number) });
    await store.end(job, { state: 'completed', result: {} as never });
    await store.acceleratorDone('j1');
    expect((await store.running()).has('j1')).toBe(false);
    // What an older worker left, the time left as a number, counts from now.
    await store.redis.hset('enhancer:eta', 'j2', '5000');
    expect((await store.running(42)).get('j2')).toEqual({ since: 42, etaMs: 5000, at: 42 });
  });

  it('on the front count the jobs ahead, the preview and the render as the in-process queue does', async () => {
    const r = await redis();
    for (const [field, sums] of Object.entries(STATE)) await r.hset('enhancer:speeds', field, JSON.stringify(sums));
    const queue = new RedisQueue({ redis: r, checks: requestChecks({ defaults: { model: 'x4fast' } }), deliver: async () => {} });
    await queue.recover();
    close.push(() => queue.close(100));
    const etas: number[] = [];
    queue.events().on('queued', (_job, info) => etas.push(info.etaMs));
    for (const [name, size, earlyPreview] of [['a.png', 64, false], ['b.png', 128, false], ['c.png', 320, true]] as const) {
      await queue.submit({ input: await scenePng(size, size, size), name, earlyPreview });
    }
    const [a, b, c] = [costsOf(64, 64), costsOf(128, 128), costsOf(320, 320, true)];
    expect(etas[0]).toBeCloseTo(LOAD + a.accelerator + a.render, 6);
    expect(etas[1]).toBeCloseTo(LOAD + a.accelerator + b.accelerator + b.render, 6);
    expect(etas[2]).toBeCloseTo(LOAD + a.accelerator + b.accelerator + c.accelerator + c.render, 6);
  });
});

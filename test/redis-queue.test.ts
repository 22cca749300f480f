/**
 * The queue on Redis in one process, driven by the scripted engine: order between people, the per-person limit,
 * cancel of a waiting job, deliveries that fail for a while, a job that ended twice. Real Redis, real BullMQ,
 * the real Worker and processor; each step waits for an event, never for time.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { shapeOf } from '../src/pipeline/shape.js';
import { PermanentDeliveryError, type Outcome } from '../src/queue/queue.js';
import { connectRedis } from '../src/queue/redis/connection.js';
import { redisConnected } from '../src/observe/health.js';
import { RedisQueue } from '../src/queue/redis/redis-queue.js';
import { RedisJobSource } from '../src/queue/redis/redis-source.js';
import { RedisSpeeds } from '../src/queue/redis/speeds.js';
import { Costs } from '../src/queue/throughput.js';
import { Worker } from '../src/queue/worker.js';
import type { EnhanceRequest, Job } from '../src/types.js';
import { scenePng } from './helpers.js';
import { RedisServer, redisMissing } from './redis-server.js';
import { next, request as plainRequest } from './queue-helpers.js';
import { ScriptedEngine } from './scripted-engine.js';
import { requestChecks } from '../src/pipeline/admission.js';

let server: RedisServer;
let open: Array<() => Promise<void>>;

beforeEach(async () => {
  if (redisMissing) return;
  server = await RedisServer.start();
  open = [];
});
afterEach(async () => {
  if (redisMissing) return;
  for (const close of open.reverse()) await close();
  await server.remove();
});

interface Setup {
  deliver?: (job: Job, outcome: Outcome) => Promise<void>;
  limit?: number;
}

/** A front (RedisQueue) and a worker (RedisJobSource + Worker) on the scripted engine; `log` collects "event name" lines. */
async function setup({ deliver, limit = Infinity }: Setup = {}) {
  const engine = new ScriptedEngine();
  const delivered: Array<{ job: Job; outcome: Outcome }> = [];
  const frontRedis = await connectRedis(server.url, silentLogger, 'front');
  const workerRedis = await connectRedis(server.url, silentLogger, 'worker');
  const queue = new RedisQueue({
    redis: frontRedis,
    checks: requestChecks({ defaults: { model: 'x4fast' }, maxPixels: 1_000_000 }),
    limitFor: () => limit,
    retry: { firstRetryMs: 100, maxRetryMs: 200, retryForMs: 60_000 },
    deliver: deliver ?? (async (job, outcome) => void delivered.push({ job, outcome })),
  });
  await queue.recover();
  queue.startDeliveries();
  const source = new RedisJobSource({ redis: workerRedis, name: 'w' });
  const worker = new Worker(source, enhanceProcessor({ engine, speeds: new RedisSpeeds(workerRedis) }));
  const log: string[] = [];
  for (const name of ['queued', 'started', 'completed', 'failed', 'cancelled', 'delivered'] as const) {
    queue.events().on(name, (job: Job, ..._rest: unknown[]) => log.push(`${name} ${job.request.name}`));
  }
  open.push(async () => {
    await worker.close(0);
    await source.close();
    await queue.close(100);
    frontRedis.disconnect();
    workerRedis.disconnect();
  });
  return { queue, worker, engine, delivered, log, frontRedis };
}

/** Answers go to the test's own door. */
const request = (name: string, seed: number, extra: Partial<EnhanceRequest> = {}) => plainRequest(name, seed, { replyTo: { adapter: 'test' }, ...extra });

describe.skipIf(redisMissing)('RedisQueue and RedisJobSource', () => {
  it('takes turns between people: A submits five, then B one, and B runs second', async () => {
    const { queue, worker, engine, log } = await setup();
    for (let i = 1; i <= 5; i++) await queue.submit(await request(`a${i}.png`, i, { owner: 'A' }));
    await queue.submit(await request('b1.png', 9, { owner: 'B' }));
    expect((await queue.getJobs()).map((j) => [j.request.name, j.position])).toEqual(
      ['a1.png', 'b1.png', 'a2.png', 'a3.png', 'a4.png', 'a5.png'].map((n, i) => [n, i + 1]),
    );
    engine.auto = true;
    const all = next(queue, 'delivered', (job) => job.request.name === 'a5.png');
    worker.run();
    await all;
    expect(log.filter((l) => l.startsWith('started'))).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5'].map((n) => `started ${n}.png`));
  });

  it('takes turns also when B arrives while A is running', async () => {
    const { queue, worker, engine, log } = await setup();
    for (let i = 1; i <= 3; i++) await queue.submit(await request(`a${i}.png`, i, { owner: 'A' }));
    worker.run();
    const first = await engine.next();
    expect(first.name).toBe('a1.png');
    await queue.submit(await request('b1.png', 8, { owner: 'B' }));
    await queue.submit(await request('b2.png', 9, { owner: 'B' }));
    expect((await queue.getJobs()).map((j) => j.request.name)).toEqual(['a1.png', 'b1.png', 'a2.png', 'b2.png', 'a3.png']);
    const all = next(queue, 'delivered', (job) => job.request.name === 'a3.png');
    engine.auto = true;
    first.finish();
    await all;
    expect(log.filter((l) => l.startsWith('started'))).toEqual(['a1', 'b1', 'a2', 'b2', 'a3'].map((n) => `started ${n}.png`));
  });

  it('counts each person\'s jobs in Redis: over the limit is refused with one line, a finished job frees a place', async () => {
    const { queue, worker, engine } = await setup({ limit: 2 });
    await queue.submit(await request('a.png', 1));
    await queue.submit(await request('b.png', 2));
    await expect(queue.submit(await request('c.png', 3))).rejects.toThrow('you already have 2 images in the queue (the limit is 2): wait for one to finish or cancel one');
    // Someone else is not held up by it.
    await queue.submit(await request('d.png', 4, { owner: 'telegram:8' }));
    worker.run();
    const a = await engine.next();
    const done = next(queue, 'delivered', (job) => job.request.name === 'a.png');
    a.finish();
    await done;
    await queue.submit(await request('c.png', 3));
    expect((await queue.getJobs('telegram:7')).map((j) => j.request.name)).toEqual(['b.png', 'c.png']);
  });

  it('cancels a waiting job at once: it never runs, its answer is the cancel, and only its owner may', async () => {
    const { queue, worker, engine, delivered, log } = await setup();
    await queue.submit(await request('a.png', 1));
    const b = await queue.submit(await request('b.png', 2));
    await expect(queue.cancel(b.id, 'telegram:9')).rejects.toThrow('only the person who sent an image can cancel it');
    const cancelled = await queue.cancel(b.id, 'telegram:7');
    expect(cancelled.state).toBe('cancelled');
    expect((await queue.getJobs()).map((j) => j.request.name)).toEqual(['a.png']);
    engine.auto = true;
    const done = next(queue, 'delivered', (job) => job.request.name === 'a.png');
    worker.run();
    await done;
    expect(log.filter((l) => l.startsWith('started'))).toEqual(['started a.png']);
    expect(delivered.map((d) => [d.job.request.name, d.outcome.state])).toContainEqual(['b.png', 'cancelled']);
    await expect(queue.readOutput(b.id, 'result')).rejects.toThrow('has no stored result');
  });

  it('reads outputs from Redis until delivered, tries a failing delivery again, and closes a permanent failure', async () => {
    let failures = 2;
    const outputs: number[] = [];
    let queueRef: RedisQueue | undefined;
    const { queue, worker, engine } = await setup({
      deliver: async (job, outcome) => {
        if (job.request.name === 'gone.png') throw new PermanentDeliveryError('the chat is gone');
        if (failures-- > 0) throw new Error('chat API down');
        if (outcome.state === 'completed') outputs.push((await queueRef!.readOutput(job.id, 'result')).length);
      },
    });
    queueRef = queue;
    const undelivered: Array<number | null> = [];
    queue.events().on('undelivered', (_job, info) => undelivered.push(info.retryInMs));
    engine.auto = true;
    const ok = await queue.submit(await request('ok.png', 1));
    const delivered = next(queue, 'delivered', (job) => job.id === ok.id);
    worker.run();
    await delivered;
    expect(undelivered).toEqual([100, 200]);
    expect(outputs).toHaveLength(1);
    expect(outputs[0]).toBeGreaterThan(100);
    await expect(queue.readOutput(ok.id, 'result')).rejects.toThrow('has no stored result');
    expect(await queue.getJob(ok.id)).toMatchObject({ state: 'completed', position: 0 });

    const gone = await queue.submit(await request('gone.png', 2));
    const closed = next(queue, 'undelivered', (job) => job.id === gone.id);
    expect((await closed)[1]).toEqual({ reason: 'the chat is gone', attempt: 1, retryInMs: null });
  });

  it('puts a job back in line when its worker stops mid-job, and another worker runs it', async () => {
    const { queue, worker, engine, delivered } = await setup();
    const job = await queue.submit(await request('a.png', 1));
    worker.run();
    await engine.next();
    expect((await queue.getJob(job.id))?.state).toBe('active');
    await worker.close(0);
    expect((await queue.getJob(job.id))).toMatchObject({ state: 'waiting', position: 1 });

    const other = new ScriptedEngine();
    other.auto = true;
    const redis = await connectRedis(server.url, silentLogger, 'worker 2');
    const source = new RedisJobSource({ redis, name: 'w2' });
    const second = new Worker(source, enhanceProcessor({ engine: other }));
    open.push(async () => {
      await second.close(0);
      await source.close();
      redis.disconnect();
    });
    const done = next(queue, 'delivered', (j) => j.id === job.id);
    second.run();
    await done;
    expect(other.calls.map((c) => c.name)).toEqual(['a.png']);
    expect(delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([['a.png', 'completed']]);
  });

  it('brings the worker\'s progress and early preview to the front, and shares learned speeds for ETAs', async () => {
    const { queue, worker, engine, frontRedis } = await setup();
    const seen: string[] = [];
    queue.events().on('progress', (_job, p) => seen.push(`progress ${p.tilesDone}/${p.tilesTotal}`));
    queue.events().on('preview', (_job, p) => seen.push(`preview ${p.region.width}x${p.region.height}`));
    const first = await queue.submit({ ...(await request('big.png', 1)), input: await scenePng(320, 320, 1), earlyPreview: true });
    const guessed = (await queue.getJob(first.id))!.etaMs;
    const done = next(queue, 'delivered', (job) => job.id === first.id);
    worker.run();
    (await engine.next()).finish(1); // the early preview's run
    (await engine.next()).finish(3);
    await done;
    expect(seen[0]).toMatch(/^preview \d+x\d+$/);
    expect(seen.slice(1)).toEqual(['progress 1/3', 'progress 2/3', 'progress 3/3']);
    // The scripted engine runs in a few ms: what the worker learned is far below the first guess (from the second
    // job on: the first of an engine runs cold and teaches nothing of its run), and the front's ETA for the next
    // job is what the worker learned: its run and render, less what it has run already should the stopped worker's
    // source have taken it for a moment (it puts it back), and at least its render and tail.
    engine.auto = true;
    const warm = await queue.submit({ ...(await request('warm.png', 3)), input: await scenePng(320, 320, 3) });
    await next(queue, 'delivered', (job) => job.id === warm.id);
    await worker.close(0);
    const again = await queue.submit({ ...(await request('again.png', 2)), input: await scenePng(320, 320, 2) });
    const learned = await new RedisSpeeds(frontRedis).costs();
    const shape = shapeOf(again);
    expect(guessed).toBeGreaterThan(1000);
    expect(learned.accelerator(shape, false)).toBeLessThan(new Costs({}).accelerator(shape, false) / 10);
    const { etaMs } = (await queue.getJob(again.id))!;
    expect(etaMs).toBeLessThanOrEqual(learned.accelerator(shape, false) + learned.render(shape) + 1e-6);
    expect(etaMs).toBeGreaterThanOrEqual(learned.tail(shape) + learned.render(shape) - 1e-6);
  });

  it('keeps a queued job through a Redis restart: a worker that comes later runs it', async () => {
    const { queue, worker, engine, delivered } = await setup();
    const job = await queue.submit(await request('kept.png', 1));
    await server.restart();
    engine.auto = true;
    const done = next(queue, 'delivered', (j) => j.id === job.id);
    worker.run();
    await done;
    expect(delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([['kept.png', 'completed']]);
  });

  it('reports Redis health: null while connected, one line once it is gone', async () => {
    // A bare connection: the check is about it alone, and BullMQ's close would wait on its own reconnects.
    const frontRedis = await connectRedis(server.url, silentLogger, 'front');
    open.push(async () => frontRedis.disconnect());
    if (frontRedis.status !== 'ready') await new Promise<void>((resolve) => frontRedis.once('ready', () => resolve()));
    const check = redisConnected(frontRedis);
    expect(await check.check()).toBeNull();
    await server.stop();
    await new Promise<void>((resolve) => frontRedis.once('reconnecting', () => resolve()));
    expect(await check.check()).toMatch(/^not connected to Redis \(\w+\)$/);
    await server.restart();
    await new Promise<void>((resolve) => frontRedis.once('ready', () => resolve()));
    expect(await check.check()).toBeNull();
  });
});


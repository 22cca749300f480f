/**
 * The queue on Redis with its roles as separate processes: a front (the hot folder: files in, files out) and
 * workers, each a real `enhancer serve --role …` on the real x4fast model, against a real redis-server of the
 * test's own. Each step waits for log lines or files, never for time.
 */
import fs from 'node:fs';
import net from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectRedis } from '../src/queue/redis/connection.js';
import { RedisQueue } from '../src/queue/redis/redis-queue.js';
import type { Outcome } from '../src/queue/queue.js';
import type { Job } from '../src/types.js';
import { silentLogger } from '../src/log.js';
import { Changes } from './changes.js';
import { freePort, get, metric } from './http.js';
import { scenePng, tempDir } from './helpers.js';
import { RedisServer, redisMissing } from './redis-server.js';
import { listing, ServiceProcess } from './service.js';
import { requestChecks } from '../src/pipeline/admission.js';

let dir: string;
let redis: RedisServer;
let processes: ServiceProcess[];
const inbox = (...p: string[]) => path.join(dir, 'front', 'inbox', ...p);
const outbox = (...p: string[]) => path.join(dir, 'front', 'outbox', ...p);

beforeEach(async () => {
  if (redisMissing) return;
  dir = tempDir('enhancer-redis-roles-');
  fs.mkdirSync(inbox(), { recursive: true });
  redis = await RedisServer.start();
  processes = [];
});
afterEach(async () => {
  if (redisMissing) return;
  for (const p of processes) await p.stop('SIGKILL');
  await redis.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Common to every role: this test's Redis, a quick stalled-job check, small tiles (so a job has many). */
function env(): Record<string, string> {
  return { ENHANCER_REDIS_URL: redis.url, ENHANCER_REDIS_LOCK_MS: '2000', ENHANCER_TILE: '64', ENHANCER_HOTFOLDER_SETTLE_MS: '300' };
}

/** A front in `dir/<folder>` (its own inbox, outbox and data folder). */
function front(extra: Record<string, string> = {}, folder = 'front'): ServiceProcess {
  fs.mkdirSync(path.join(dir, folder), { recursive: true });
  const p = new ServiceProcess(path.join(dir, folder), { ...env(), ...extra }, 'direct', ['--role', 'front']);
  processes.push(p);
  return p;
}

function worker(name: string, extra: Record<string, string> = {}): ServiceProcess {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  const p = new ServiceProcess(path.join(dir, name), { ...env(), ...extra }, 'direct', ['--role', 'worker']);
  processes.push(p);
  return p;
}

/** Ids of the jobs a worker's log says it completed. */
const completed = (w: ServiceProcess) => w.lines('job completed').map((l) => l.job);

async function expectResult(stem: string, side: number): Promise<void> {
  const png = await sharp(outbox(`${stem}.png`)).metadata();
  expect([png.format, png.width, png.height]).toEqual(['png', side * 4, side * 4]);
}

describe.skipIf(redisMissing)('the queue on Redis, front and workers as processes', () => {
  it('spreads six jobs over two workers, and the front delivers each once', async () => {
    const [frontPort, workerPort] = [await freePort(), await freePort()];
    const [f, w1, w2] = [front({ ENHANCER_HTTP_PORT: String(frontPort) }), worker('w1', { ENHANCER_HTTP_PORT: String(workerPort) }), worker('w2')];
    await Promise.all([f.started(), w1.started(), w2.started()]);
    for (let i = 1; i <= 6; i++) fs.writeFileSync(inbox(`img${i}.png`), await scenePng(128, 128, i));
    await f.count('job delivered', 6, 120_000);

    expect(listing(outbox()).filter((n) => n.endsWith('.png')).sort()).toEqual([1, 2, 3, 4, 5, 6].map((i) => `img${i}.png`));
    for (let i = 1; i <= 6; i++) await expectResult(`img${i}`, 128);
    expect(completed(w1).length).toBeGreaterThan(0);
    expect(completed(w2).length).toBeGreaterThan(0);
    expect(completed(w1).length + completed(w2).length).toBe(6);
    // Neither worker loaded the front's doors, and the front loaded no model.
    expect(f.lines('model loaded')).toEqual([]);
    expect(w1.lines('watching the inbox')).toEqual([]);

    // Each role's /healthz has the checks of what it runs; the front's /metrics counts what the workers ran.
    const checks = async (port: number) => JSON.parse((await get(port, '/healthz')).body) as { ok: boolean; checks: Array<{ name: string; ok: boolean }> };
    expect(await checks(frontPort)).toEqual({ ok: true, checks: [{ name: 'queue connected', ok: true }] });
    expect(await checks(workerPort)).toEqual({
      ok: true,
      checks: ['models verified', 'queue connected', 'worker alive', 'taking jobs from Redis'].map((name) => ({ name, ok: true })),
    });
    const metrics = (await get(frontPort, '/metrics')).body;
    expect(metric(metrics, 'enhancer_jobs_submitted_total', { adapter: 'hotfolder' })).toBe(6);
    expect(metric(metrics, 'enhancer_jobs_ended_total', { state: 'completed', model: 'x4fast', adapter: 'hotfolder' })).toBe(6);
    expect(metric(metrics, 'enhancer_job_duration_seconds_count', { model: 'x4fast', device: 'cpu' })).toBe(6);
    expect(metric(metrics, 'enhancer_deliveries_pending', { adapter: 'hotfolder' })).toBe(0);
    expect(metric(metrics, 'enhancer_queue_depth')).toBe(0);
  });

  it('runs the job of a worker killed mid-job on the other worker, and delivers it once', async () => {
    const [f, w1, w2] = [front(), worker('w1'), worker('w2')];
    await Promise.all([f.started(), w1.started(), w2.started()]);
    fs.writeFileSync(inbox('big.png'), await scenePng(448, 448, 7));
    const runner = await new Changes().until(() => [w1, w2].find((w) => w.lines('job started').length > 0), { what: () => 'a worker to start the job', pollMs: 50 });
    await runner.stop('SIGKILL');
    const other = runner === w1 ? w2 : w1;
    await f.count('job delivered', 1, 120_000);

    expect(completed(runner)).toEqual([]);
    expect(completed(other)).toHaveLength(1);
    expect(listing(outbox())).toEqual(['big.compare.jpg', 'big.pdf', 'big.png', 'big.preview.jpg']);
    await expectResult('big', 448);
    expect(f.lines('job delivered')).toHaveLength(1);
  });

  it('delivers a job that ended while its front was down once the front is back', async () => {
    const w = worker('w1');
    let f = front();
    await Promise.all([f.started(), w.started()]);
    fs.writeFileSync(inbox('cat.png'), await scenePng(256, 256, 3));
    await w.count('job started', 1);
    await f.stop('SIGKILL');
    await w.count('job completed', 1, 120_000);
    expect(listing(outbox())).toEqual([]);

    f = front();
    await f.count('job delivered', 1);
    await expectResult('cat', 256);
    expect(listing(inbox('done'))).toEqual(['cat.png']);
  });

  it('goes on after Redis restarts between two jobs: both are delivered', async () => {
    const [f, w] = [front(), worker('w1')];
    await Promise.all([f.started(), w.started()]);
    fs.writeFileSync(inbox('one.png'), await scenePng(96, 96, 1));
    await f.count('job delivered', 1);
    await redis.restart();
    fs.writeFileSync(inbox('two.png'), await scenePng(96, 96, 2));
    await f.count('job delivered', 2, 120_000);
    await expectResult('one', 96);
    await expectResult('two', 96);
    expect(f.lines('lost the connection to Redis; reconnecting').length).toBeGreaterThan(0);
  });

  it('stops a running job on a worker in another process when its owner cancels it: the answer is the cancel', async () => {
    const w = worker('w1');
    await w.started();
    const client = await connectRedis(redis.url, silentLogger, 'test');
    const answers: Array<{ job: Job; outcome: Outcome }> = [];
    const changes = new Changes();
    const queue = new RedisQueue({
      redis: client,
      checks: requestChecks({ defaults: { model: 'x4fast', tile: 64 } }),
      deliver: async (job, outcome) => {
        answers.push({ job, outcome });
        changes.notify();
      },
    });
    try {
      await queue.recover();
      queue.startDeliveries();
      const started = new Promise<Job>((resolve) => queue.events().once('started', resolve));
      const job = await queue.submit({ input: await scenePng(448, 448, 5), name: 'long.png', owner: 'telegram:1', replyTo: { adapter: 'test' } });
      await started;
      await expect(queue.cancel(job.id, 'telegram:2')).rejects.toThrow('only the person who sent an image can cancel it');
      const cancelled = await queue.cancel(job.id, 'telegram:1');
      expect(cancelled.state).toBe('cancelled');
      await changes.until(() => answers.length === 1, { what: () => 'the answer' });
      // The reason as its catalogue message too, so the door says it in its person's language.
      expect(answers[0].outcome).toEqual({ state: 'cancelled', reason: 'cancelled by its owner', text: { key: 'reason.cancelled' } });
      expect(w.lines('job cancelled').map((l) => l.job)).toEqual([job.id]);
      expect(completed(w)).toEqual([]);
    } finally {
      await queue.close(100);
      client.disconnect();
    }
  });

  it('never shows the Redis password: not in logs, errors or files, also through a Redis restart', async () => {
    await redis.remove();
    const password = 'pw-0f3c9a7e5b1d';
    redis = await RedisServer.start(password);
    const [f, w] = [front(), worker('w1')];
    await Promise.all([f.started(), w.started()]);
    fs.writeFileSync(inbox('one.png'), await scenePng(64, 64, 1));
    await f.count('job delivered', 1);
    await redis.restart();
    fs.writeFileSync(inbox('two.png'), await scenePng(64, 64, 2));
    await f.count('job delivered', 2);
    await f.stop();
    await w.stop();
    expect(f.lines('service started')[0].redis).toBe(`redis://:***@127.0.0.1:${redis.port}`);
    expect(f.lines('lost the connection to Redis; reconnecting').length).toBeGreaterThan(0);
    for (const p of [f, w]) expect(JSON.stringify(p.logs) + p.stderr.join('\n')).not.toContain(password);
    const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(files.length).toBeGreaterThan(8);
    for (const e of files) expect(fs.readFileSync(path.join(e.parentPath, e.name)).includes(password), e.name).toBe(false);
  });

  it('refuses a second front on the same Redis with one line, and lets a new one take over from a killed front within the lock\'s TTL', async () => {
    // The front lock lives min(10 s, redis.lockMs): 6 s here, longer than a front takes to start.
    const ttl = { ENHANCER_REDIS_LOCK_MS: '6000' };
    const [first, w] = [front(ttl), worker('w1', ttl)];
    await Promise.all([first.started(), w.started()]);
    fs.mkdirSync(path.join(dir, 'second', 'inbox'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'second', 'inbox', 'waits.png'), await scenePng(32, 32, 1));
    const second = front(ttl, 'second');
    const { code } = await second.exited;
    await second.closed;
    expect(code).toBe(1);
    expect(second.stderr.filter((l) => l.trim() !== '')).toEqual([
      expect.stringMatching(
        new RegExp(`^error: another front is running on this Redis \\(host ${hostname()}, pid ${first.pid}, since \\d{4}-[\\dT:.-]+Z\\); run one front per Redis, any number of workers \\(--role worker\\)$`),
      ),
    ]);
    // It took nothing from its inbox, and the first front goes on.
    expect(listing(path.join(dir, 'second', 'inbox'))).toEqual(['waits.png']);
    fs.writeFileSync(inbox('one.png'), await scenePng(64, 64, 1));
    await first.count('job delivered', 1);

    await first.stop('SIGKILL');
    const third = front(ttl, 'third');
    await third.started();
    const [took] = third.lines('took the front lock: the front that held it stopped renewing it');
    expect(took.waitedMs).toBeGreaterThan(0);
    expect(took.waitedMs).toBeLessThanOrEqual(6000);
    fs.writeFileSync(path.join(dir, 'third', 'inbox', 'two.png'), await scenePng(64, 64, 2));
    await third.count('job delivered', 1);
  });

  it('gives the front lock back when a front\'s start fails after taking it: the next front starts', async () => {
    const port = await freePort();
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const failed = front({ ENHANCER_HTTP_PORT: String(port) });
      await new Changes().until(() => failed.stderr.find((l) => l.includes('is already in use')), { what: () => 'the port error', pollMs: 50 });
      const next = front({}, 'next');
      await next.started();
      expect(next.lines('another front holds the front lock; waiting to see whether it is alive')).toEqual([]);
      // And the failed front ends by itself with its one line (its Redis connections once kept it up, deaf to SIGTERM).
      expect((await failed.exited).code).toBe(1);
    } finally {
      taken.close();
    }
  });

  it('undoes a front whose door fails to start after its health listener and queue connections opened: it ends by itself with one line', async () => {
    const taken = net.createServer();
    const webPort = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as net.AddressInfo).port)));
    try {
      const failed = front({ ENHANCER_HTTP_PORT: String(await freePort()), ENHANCER_WEB_PORT: String(webPort) });
      expect((await failed.exited).code).toBe(1);
      await failed.closed;
      expect(failed.stderr.filter(Boolean)).toEqual([expect.stringMatching(new RegExp(`^error: web: port ${webPort} .* is already in use`))]);
      // Before, the health listener and BullMQ's connections stayed open, and the process had to be ended.
      expect(failed.lines('the process did not end by itself after a failed start; ending it')).toEqual([]);
    } finally {
      taken.close();
    }
  });

  it('refuses to start with one line and exit 1 when Redis cannot be reached', async () => {
    const url = redis.url;
    await redis.stop();
    const p = new ServiceProcess(path.join(dir, 'front'), { ENHANCER_REDIS_URL: url.replace('redis://', 'redis://:hunter2@') }, 'direct', ['--role', 'worker']);
    processes.push(p);
    const { code } = await p.exited;
    await p.closed;
    expect(code).toBe(1);
    expect(p.stderr.filter((l) => l.trim() !== '')).toEqual([`error: cannot reach Redis at redis://:***@127.0.0.1:${redis.port} (connect ECONNREFUSED 127.0.0.1:${redis.port}); check ENHANCER_REDIS_URL and that Redis runs`]);
  });
});

describe('serve --role without Redis', () => {
  it('refuses front and worker with one line, since only the in-process queue is there', async () => {
    const own = tempDir('enhancer-role-');
    try {
      for (const role of ['front', 'worker']) {
        const p = new ServiceProcess(own, {}, 'direct', ['--role', role]);
        const { code } = await p.exited;
        await p.closed;
        expect(code).toBe(2);
        expect(p.stderr.filter((l) => l.trim() !== '')).toEqual([
          `error: --role ${role} needs the queue on Redis: set ENHANCER_REDIS_URL (without it the service is one process, --role all)`,
        ]);
      }
      const bad = new ServiceProcess(own, {}, 'direct', ['--role', 'gpu']);
      expect((await bad.exited).code).toBe(2);
      await bad.closed;
      expect(bad.stderr.filter((l) => l.trim() !== '')).toEqual(['error: serve: --role must be one of all, front, worker (got "gpu")']);
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
    }
  });
});

/**
 * Health and metrics over HTTP: the real service in a child process with the endpoint on (a real x4fast job through
 * the hot folder moves the counters), and the queue with a scripted engine in process, for exact values at each
 * step of a job's life. Each step waits for an event or a log line, never for time.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS_DIR, projectRoot } from '../src/paths.js';
import { inProcessQueue, runChecks, workerAlive } from '../src/observe/health.js';
import { startObservability, type Observability } from '../src/observe/http.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import type { QueueEvents } from '../src/queue/queue.js';
import { Worker } from '../src/queue/worker.js';
import { scenePng, tempDir } from './helpers.js';
import { freePort, get, metric as value } from './http.js';
import { ScriptedEngine } from './scripted-engine.js';
import { listing, ServiceProcess, withConfig } from './service.js';
import { requestChecks } from '../src/pipeline/admission.js';

let dir: string;
let cleanup: Array<() => Promise<unknown>>;

beforeEach(() => {
  dir = tempDir('enhancer-observe-');
  cleanup = [];
});
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The Dockerfile's HEALTHCHECK command against a port: its exit code and what it printed. */
function healthcheck(port: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(projectRoot, 'bin', 'healthcheck.js')], { env: { ...process.env, ENHANCER_HTTP_PORT: String(port) } }, (error, stdout) =>
      resolve({ code: error ? Number(error.code) : 0, out: stdout.trim() }),
    );
  });
}

describe('the service with ENHANCER_HTTP_PORT', () => {
  function start(env: Record<string, string> = {}): ServiceProcess {
    const service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { settleMs: 300 } }), ...env });
    cleanup.push(() => service.stop('SIGKILL'));
    return service;
  }

  it('answers /healthz and /metrics, and a real x4fast job through the hot folder moves the counters', async () => {
    const port = await freePort();
    const s = start({ ENHANCER_HTTP_PORT: String(port) });
    await s.started();

    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({
      ok: true,
      checks: [
        { name: 'models verified', ok: true },
        { name: 'queue connected', ok: true },
        { name: 'worker alive', ok: true },
        { name: 'disk space', ok: true },
      ],
    });
    expect(await healthcheck(port)).toEqual({ code: 0, out: '' });
    const before = await get(port, '/metrics');
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(value(before.body, 'enhancer_jobs', { state: 'waiting' })).toBe(0);
    expect(value(before.body, 'enhancer_jobs_ended_total')).toBeUndefined();
    // Node's own process metrics come along.
    expect(value(before.body, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    fs.mkdirSync(path.join(dir, 'inbox'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'inbox', 'cat.png'), await scenePng(48, 40, 3));
    await s.count('job delivered', 1);
    expect(listing(path.join(dir, 'outbox'))).toContain('cat.png');

    const after = (await get(port, '/metrics')).body;
    expect(value(after, 'enhancer_jobs_submitted_total', { adapter: 'hotfolder' })).toBe(1);
    expect(value(after, 'enhancer_jobs_ended_total', { state: 'completed', model: 'x4fast', adapter: 'hotfolder' })).toBe(1);
    expect(value(after, 'enhancer_job_duration_seconds_count', { model: 'x4fast', device: 'cpu' })).toBe(1);
    expect(value(after, 'enhancer_job_duration_seconds_sum', { model: 'x4fast', device: 'cpu' })).toBeGreaterThan(0);
    for (const stage of ['wait', 'load', 'decode', 'infer', 'encode', 'render']) {
      expect(value(after, 'enhancer_stage_duration_seconds_count', { stage, model: 'x4fast', device: 'cpu' }), stage).toBe(1);
    }
    expect(value(after, 'enhancer_jobs', { state: 'waiting' })).toBe(0);
    expect(value(after, 'enhancer_queue_depth')).toBe(0);
    expect(value(after, 'enhancer_deliveries_pending', { adapter: 'hotfolder' })).toBe(0);

    const other = await get(port, '/');
    expect(other.status).toBe(404);
    expect((await s.stop()).code).toBe(0);
  });

  it('says 503 with the line of a model file altered after start', async () => {
    // A models folder of its own, so the project's stays untouched: the manifest and a copy of x4fast.
    const models = path.join(dir, 'models');
    fs.mkdirSync(models);
    fs.copyFileSync(path.join(DEFAULT_MODELS_DIR, 'manifest.json'), path.join(models, 'manifest.json'));
    fs.copyFileSync(path.join(DEFAULT_MODELS_DIR, 'realesrgan-x4fast.onnx'), path.join(models, 'realesrgan-x4fast.onnx'));
    const port = await freePort();
    const s = start({ ENHANCER_HTTP_PORT: String(port), ENHANCER_MODELS: models, ENHANCER_HOTFOLDER: 'off' });
    await s.started();
    expect((await get(port, '/healthz')).status).toBe(200);

    fs.appendFileSync(path.join(models, 'realesrgan-x4fast.onnx'), Buffer.from([0]));
    const health = await get(port, '/healthz');
    expect(health.status).toBe(503);
    const { ok, checks } = JSON.parse(health.body) as { ok: boolean; checks: Array<{ name: string; ok: boolean; problem?: string }> };
    expect(ok).toBe(false);
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['models verified', false],
      ['queue connected', true],
      ['worker alive', true],
      ['disk space', true],
    ]);
    expect(checks[0].problem).toMatch(/^x4fast: .*realesrgan-x4fast\.onnx does not match its checksum in the manifest \(sha256 [0-9a-f]{12}…, expected [0-9a-f]{12}…\)$/);
    // The Dockerfile's HEALTHCHECK says so in one line, which `docker inspect` shows.
    const probe = await healthcheck(port);
    expect(probe.code).toBe(1);
    expect(probe.out).toBe(`unhealthy (503): models verified: ${checks[0].problem}`);
  });

  it('exits 1 with one line naming the port and where it came from when the port is in use', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as net.AddressInfo).port;
    const s = start({ ENHANCER_HTTP_PORT: String(port) });
    expect((await s.exited).code).toBe(1);
    await s.closed;
    expect(s.stderr.filter(Boolean)).toEqual([`error: http: port ${port} (from $ENHANCER_HTTP_PORT) is already in use on 127.0.0.1; stop what uses it or set another port`]);
  });

  it('refuses a port that is not a number with the config line, exit 2', async () => {
    const s = start({ ENHANCER_HTTP_PORT: 'http' });
    expect((await s.exited).code).toBe(2);
    await s.closed;
    expect(s.stderr.filter(Boolean)).toEqual(['error: config: http.port must be a whole number from 0 to 65535 (got "http" from $ENHANCER_HTTP_PORT)']);
  });
});

describe('metrics and health of a queue and worker in process', () => {
  async function setup() {
    const engine = new ScriptedEngine();
    // The first delivery fails; the retries wait until the test has read the metrics in between.
    let failNext = true;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const queue = new LocalQueue({
      dataDir: dir,
      checks: requestChecks({ defaults: { model: 'x4fast' }, maxPixels: 1_000_000, maxFileBytes: 5_000_000 }),
      limitFor: () => Infinity,
      retry: { firstRetryMs: 100, maxRetryMs: 100, retryForMs: 60_000 },
      deliver: async () => {
        if (failNext) {
          failNext = false;
          throw new Error('the chat is down');
        }
        await released;
      },
    });
    const worker = new Worker(queue, enhanceProcessor({ engine }));
    const observe: Observability = await startObservability({
      port: 0,
      host: '127.0.0.1',
      queue,
      worker,
      checks: [inProcessQueue(), workerAlive(worker)],
      processMetrics: false,
    });
    cleanup.push(async () => {
      await worker.close(0);
      await queue.close(100);
      await observe.close();
    });
    const next = <E extends keyof QueueEvents>(event: E) => new Promise<QueueEvents[E]>((resolve) => queue.events().once(event, ((...args: QueueEvents[E]) => resolve(args)) as never));
    const metrics = async () => (await get(observe.port, '/metrics')).body;
    return { engine, queue, worker, observe, next, metrics, release };
  }

  it('counts jobs by state and door, and deliveries pending and failing, at each step', async () => {
    const { engine, queue, worker, next, metrics, release } = await setup();
    const a = await queue.submit({ input: await scenePng(32, 24, 1), name: 'a.png', owner: 'telegram:7', replyTo: { adapter: 'telegram', chat: 7 } });
    await queue.submit({ input: await scenePng(24, 32, 2), name: 'b.png', owner: 'discord:8', replyTo: { adapter: 'discord', channel: 8 } });
    let text = await metrics();
    expect(value(text, 'enhancer_jobs_submitted_total', { adapter: 'telegram' })).toBe(1);
    expect(value(text, 'enhancer_jobs_submitted_total', { adapter: 'discord' })).toBe(1);
    expect(value(text, 'enhancer_jobs', { state: 'waiting' })).toBe(2);
    expect(value(text, 'enhancer_jobs', { state: 'active' })).toBe(0);
    expect(value(text, 'enhancer_queue_depth')).toBe(2);
    expect(value(text, 'enhancer_worker_busy')).toBe(0);

    worker.run();
    const first = await engine.next();
    text = await metrics();
    expect(value(text, 'enhancer_jobs', { state: 'waiting' })).toBe(1);
    expect(value(text, 'enhancer_jobs', { state: 'active' })).toBe(1);
    expect(value(text, 'enhancer_queue_depth')).toBe(1);
    expect(value(text, 'enhancer_worker_busy')).toBe(1);

    // a.png completes; its first delivery fails, and a retry is due in 100 ms.
    const undelivered = next('undelivered');
    first.finish();
    const [job, info] = await undelivered;
    expect([job.id, info.retryInMs]).toEqual([a.id, 100]);
    text = await metrics();
    expect(value(text, 'enhancer_jobs_ended_total', { state: 'completed', model: 'x4fast', adapter: 'telegram' })).toBe(1);
    expect(value(text, 'enhancer_job_duration_seconds_count', { model: 'x4fast', device: 'cpu' })).toBe(1);
    expect(value(text, 'enhancer_deliveries_pending', { adapter: 'telegram' })).toBe(1);
    expect(value(text, 'enhancer_deliveries_failing', { adapter: 'telegram' })).toBe(1);
    expect(value(text, 'enhancer_delivery_failures_total', { adapter: 'telegram', permanent: 'false' })).toBe(1);

    // The retry delivers it.
    const delivered = next('delivered');
    release();
    await delivered;
    text = await metrics();
    expect(value(text, 'enhancer_deliveries_pending', { adapter: 'telegram' })).toBe(0);
    expect(value(text, 'enhancer_deliveries_failing', { adapter: 'telegram' })).toBe(0);

    // b.png is cancelled by its owner while it runs.
    await engine.next();
    const cancelledAndDelivered = Promise.all([next('cancelled'), next('delivered')]);
    await queue.cancel((await queue.getJobs())[0].id, 'discord:8');
    await cancelledAndDelivered;
    text = await metrics();
    expect(value(text, 'enhancer_jobs_ended_total', { state: 'cancelled', model: 'x4fast', adapter: 'discord' })).toBe(1);
    expect(value(text, 'enhancer_jobs', { state: 'active' })).toBe(0);
    expect(value(text, 'enhancer_worker_busy')).toBe(0);
  });

  it('answers only GET and HEAD, and names its two routes on any other path', async () => {
    const { observe } = await setup();
    const base = `http://127.0.0.1:${observe.port}`;
    const post = await fetch(`${base}/healthz`, { method: 'POST', body: 'x' });
    expect([post.status, post.headers.get('allow'), await post.text()]).toEqual([405, 'GET, HEAD', 'only GET\n']);
    const other = await get(observe.port, '/status?x=1');
    expect([other.status, other.type, other.body]).toEqual([404, 'text/plain; charset=utf-8', 'not found: try /healthz or /metrics\n']);
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-type'), head.headers.get('cache-control'), await head.text()]).toEqual([503, 'application/json', 'no-store', '']);
    const metrics = await fetch(`${base}/metrics?format=text`);
    expect([metrics.status, metrics.headers.get('content-type'), metrics.headers.get('cache-control')]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8', 'no-store']);
  });

  it('/healthz: 503 until the worker runs, 200 while it takes jobs, 503 once it is closing', async () => {
    const { worker, observe } = await setup();
    let health = await get(observe.port, '/healthz');
    expect([health.status, JSON.parse(health.body)]).toEqual([
      503,
      {
        ok: false,
        checks: [
          { name: 'queue connected', ok: true },
          { name: 'worker alive', ok: false, problem: 'the worker has not started taking jobs yet' },
        ],
      },
    ]);
    worker.run();
    health = await get(observe.port, '/healthz');
    expect([health.status, health.type]).toEqual([200, 'application/json']);
    await worker.close(0);
    health = await get(observe.port, '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body).checks[1]).toEqual({ name: 'worker alive', ok: false, problem: 'the worker is stopping and takes no more jobs' });
  });

  it('/healthz: 503 while the running job is far past its ETA with no progress, 200 again once it moves', async () => {
    const { engine, queue, worker, next } = await setup();
    await queue.submit({ input: await scenePng(32, 24, 1), name: 'a.png', owner: 'telegram:7', replyTo: { adapter: 'telegram', chat: 7 } });
    let clock = 0;
    const check = workerAlive(worker, { stuckAfterMs: 60_000, now: () => Date.now() + clock });
    worker.run();
    // The scripted engine holds the job on the accelerator, with no tile done, until the test finishes it.
    const call = await engine.next();
    const id = worker.activeJob!.id;
    expect(await check.check()).toBeNull();
    clock = 61_000;
    expect(await check.check()).toMatch(new RegExp(`^job ${id} has shown no progress for 1 min, 1 min past its ETA: the accelerator may be hung`));
    const completed = next('completed');
    call.finish();
    await completed;
    expect(worker.activeJob).toBeUndefined();
    expect(await check.check()).toBeNull();
  });

  it('fails a check that throws or never answers, with its own line, and hides passwords in URLs', async () => {
    const results = await runChecks(
      [
        { name: 'queue connected', check: () => new Promise(() => {}) },
        { name: 'disk', check: async () => { throw new Error('no space left\non device'); } },
        { name: 'fine', check: async () => null },
        { name: 'redis', check: async () => 'cannot reach redis://:hunter2@redis:6379/0 (ECONNREFUSED)' },
      ],
      50,
    );
    expect(results).toEqual([
      { name: 'queue connected', ok: false, problem: 'did not answer within 0.05 s' },
      { name: 'disk', ok: false, problem: 'no space left on device' },
      { name: 'fine', ok: true },
      // A password in a URL never reaches the answer or the log.
      { name: 'redis', ok: false, problem: 'cannot reach redis://:***@redis:6379/0 (ECONNREFUSED)' },
    ]);
  });
});

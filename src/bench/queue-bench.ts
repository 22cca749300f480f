/**
 * `enhancer bench --queue`: the queue's own cost and what more workers buy. A batch of twenty 128x128 x4fast
 * jobs, submitted at once, timed from the first submit to the last delivery, on the in-process queue, on Redis
 * with one worker process (every core), and on Redis with two worker processes (one thread each); and the
 * overhead per job, submit to `started` with an idle worker (median of ten). Starts its own redis-server on a
 * free port; the model is loaded by a warm-up job before anything is timed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cliSettings } from '../config.js';
import { EngineProcess } from '../engine/engine-process.js';
import { silentLogger } from '../log.js';
import { requestChecks } from '../pipeline/admission.js';
import { enhanceProcessor } from '../pipeline/process.js';
import { LocalQueue } from '../queue/local-queue.js';
import type { EnhanceQueue, Outcome } from '../queue/queue.js';
import { connectRedis } from '../queue/redis/connection.js';
import { RedisQueue } from '../queue/redis/redis-queue.js';
import { Worker } from '../queue/worker.js';
import { projectRoot } from '../paths.js';
import type { Job } from '../types.js';
import { scenePng } from './scene.js';

const BATCH = 20;
const SIZE = 128;
const MODEL = 'x4fast';
const OVERHEAD_RUNS = 10;

export interface QueueBenchRow {
  setup: string;
  jobsPerMinute: number;
  batchMs: number;
  /** Submit to `started` with an idle worker, median, ms. */
  overheadMs: number;
}

/** A queue to measure, with what turns a delivery into a resolved wait. */
interface Measured {
  queue: EnhanceQueue;
  delivered: Map<string, () => void>;
  close(): Promise<void>;
}

const deliverTo = (delivered: Map<string, () => void>) => async (job: Job, outcome: Outcome) => {
  if (outcome.state !== 'completed') throw new Error(`bench job ${outcome.state}: ${outcome.reason}`);
  delivered.get(job.id)?.();
};

async function measure(setup: string, m: Measured): Promise<QueueBenchRow> {
  const inputs = await Promise.all(Array.from({ length: BATCH + OVERHEAD_RUNS + 1 }, (_, i) => scenePng(SIZE, SIZE, i + 1)));
  let n = 0;
  const submit = async () => {
    const input = inputs[n++];
    let done!: () => void;
    const over = new Promise<void>((resolve) => (done = resolve));
    const started = new Promise<number>((resolve) => {
      const events = m.queue.events();
      const on = (job: Job) => {
        if (job.request.name !== `q${n0}.png`) return;
        events.off('started', on);
        resolve(performance.now());
      };
      const n0 = n;
      events.on('started', on);
    });
    const t = performance.now();
    const job = await m.queue.submit({ input, name: `q${n}.png`, options: { model: MODEL } });
    m.delivered.set(job.id, done);
    return { t, started, over };
  };
  // Warm-up: the model loads.
  await (await submit()).over;
  const overheads: number[] = [];
  for (let i = 0; i < OVERHEAD_RUNS; i++) {
    const { t, started, over } = await submit();
    overheads.push((await started) - t);
    await over;
  }
  const t0 = performance.now();
  const all: Promise<void>[] = [];
  for (let i = 0; i < BATCH; i++) all.push((await submit()).over);
  await Promise.all(all);
  const batchMs = performance.now() - t0;
  await m.close();
  overheads.sort((a, b) => a - b);
  return { setup, jobsPerMinute: (BATCH / batchMs) * 60_000, batchMs, overheadMs: overheads[OVERHEAD_RUNS >> 1] };
}

async function inProcess(dir: string): Promise<Measured> {
  const delivered = new Map<string, () => void>();
  const engine = new EngineProcess({ dataDir: path.join(dir, 'local'), ...cliSettings(), modelsDir: cliSettings().models });
  const queue = new LocalQueue({ dataDir: path.join(dir, 'local'), checks: requestChecks({ modelsDir: cliSettings().models }), deliver: deliverTo(delivered) });
  const worker = new Worker(queue, enhanceProcessor({ engine }));
  worker.run();
  return {
    queue,
    delivered,
    close: async () => {
      await worker.close(0);
      await queue.close();
      await engine.close();
    },
  };
}

async function onRedis(url: string, dir: string, workers: number, threads: number): Promise<Measured> {
  const delivered = new Map<string, () => void>();
  const children: ChildProcess[] = [];
  const config = path.join(dir, 'worker.json');
  fs.writeFileSync(config, JSON.stringify({ cache: { maxBytes: 0 } }));
  // A clean line for each setup: what the one before left (records of delivered jobs) does not count.
  const redis = await connectRedis(url, silentLogger, 'bench');
  await redis.flushdb();
  for (let i = 0; i < workers; i++) {
    const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'enhancer.js'), 'serve', '--role', 'worker'], {
      env: { ...process.env, ENHANCER_REDIS_URL: url, ENHANCER_DATA: path.join(dir, `w${i}`), ENHANCER_CONFIG: config, ENHANCER_THREADS: String(threads), ENHANCER_MODEL: MODEL, LOG_FORMAT: 'json' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      let text = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('"service started"')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`bench worker exited with ${code}: ${text.slice(-300)}`)));
    });
    child.stderr!.resume();
  }
  const queue = new RedisQueue({ redis, checks: requestChecks({ modelsDir: cliSettings().models }), deliver: deliverTo(delivered) });
  await queue.recover();
  queue.startDeliveries();
  return {
    queue,
    delivered,
    close: async () => {
      await queue.close();
      redis.disconnect();
      await Promise.all(children.map((c) => new Promise((resolve) => (c.once('exit', resolve), c.kill('SIGTERM')))));
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs the three setups; prints a table (or JSON) on stdout. */
export async function benchQueue(json: boolean): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enhancer-queue-bench-'));
  const rows: QueueBenchRow[] = [];
  try {
    rows.push(await measure('in-process queue, 1 worker', await inProcess(dir)));
    if (spawnSync('redis-server', ['--version']).status !== 0) {
      process.stderr.write('bench: redis-server is not installed; only the in-process queue was measured\n');
    } else {
      const port = await freePort();
      const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        const url = `redis://127.0.0.1:${port}`;
        await new Promise<void>((resolve, reject) => {
          let text = '';
          server.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
            text += chunk;
            if (text.includes('Ready to accept connections')) resolve();
          });
          server.on('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
        });
        server.stdout!.resume();
        const threads = os.availableParallelism();
        rows.push(await measure(`Redis, 1 worker (${threads} threads)`, await onRedis(url, dir, 1, threads)));
        rows.push(await measure('Redis, 2 workers (1 thread each)', await onRedis(url, dir, 2, 1)));
      } finally {
        server.kill('SIGTERM');
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ cpu: os.cpus()[0]?.model, threads: os.availableParallelism(), batch: BATCH, size: SIZE, model: MODEL, rows })}\n`);
    return;
  }
  const out = [`queue: ${BATCH} ${MODEL} jobs of ${SIZE}x${SIZE} submitted at once, first submit to last delivery; overhead = submit to started, idle worker (median of ${OVERHEAD_RUNS})`];
  for (const r of rows) out.push(`  ${r.setup.padEnd(36)} ${r.jobsPerMinute.toFixed(0).padStart(5)} jobs/min  (${(r.batchMs / 1000).toFixed(1)} s)   overhead ${r.overheadMs.toFixed(1)} ms`);
  process.stdout.write(`${out.join('\n')}\n`);
}

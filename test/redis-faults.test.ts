/**
 * Faults of Redis itself while the queue on Redis runs (issue 20): Redis out of memory under `noeviction` while
 * people submit, and while an answer is settled; Redis restarted while a delivery is settled. Real redis-server,
 * real BullMQ, the real Worker on the scripted engine; each step waits for an event or a log line, never for time.
 */
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../src/log.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import type { Outcome } from '../src/queue/queue.js';
import { connectRedis } from '../src/queue/redis/connection.js';
import { RedisQueue } from '../src/queue/redis/redis-queue.js';
import { RedisJobSource } from '../src/queue/redis/redis-source.js';
import { OUT_OF_MEMORY, redisRefusal } from '../src/queue/redis/refusal.js';
import { Worker } from '../src/queue/worker.js';
import type { Job } from '../src/types.js';
import { Changes } from './changes.js';
import { scenePng } from './helpers.js';
import { next, request as plainRequest } from './queue-helpers.js';
import { RedisServer, redisMissing } from './redis-server.js';
import { ScriptedEngine } from './scripted-engine.js';
import { requestChecks } from '../src/pipeline/admission.js';

let server: RedisServer;
let admin: Redis;
let open: Array<() => Promise<void>>;

beforeEach(async () => {
  if (redisMissing) return;
  server = await RedisServer.start();
  admin = new Redis(server.url, { maxRetriesPerRequest: null });
  // What docs/queue.md asks of a Redis for BullMQ: refuse writes when full rather than evict keys.
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  open = [];
});
afterEach(async () => {
  if (redisMissing) return;
  // Room again, should a test have ended before it gave it back: a worker waits for Redis to store a job's end.
  await admin.config('SET', 'maxmemory', '0');
  for (const close of open.reverse()) await close();
  admin.disconnect();
  await server.remove();
});

interface LogLine {
  msg: string;
  [key: string]: unknown;
}

/** A JSON logger whose lines the test reads; each line wakes `changes`' waiters. */
function recordingLogger(): { log: Logger; lines: LogLine[]; changes: Changes } {
  const lines: LogLine[] = [];
  const changes = new Changes();
  const log = createLogger({
    level: 'info',
    format: 'json',
    isTTY: false,
    destination: {
      write: (line: string) => {
        lines.push(JSON.parse(line) as LogLine);
        changes.notify();
      },
    },
  });
  return { log, lines, changes };
}

/** Redis' own count of the memory it uses, in bytes. */
async function usedMemory(): Promise<number> {
  const info = await admin.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

/** A front and a worker (not yet running) on the scripted engine, each with its own connection. */
async function setup(options: { limit?: number; deliver?: (job: Job, outcome: Outcome) => Promise<void> } = {}) {
  const { log, lines, changes } = recordingLogger();
  const engine = new ScriptedEngine();
  const frontRedis = await connectRedis(server.url, log, 'front');
  const workerRedis = await connectRedis(server.url, log, 'worker');
  const delivered: Job[] = [];
  const queue = new RedisQueue({
    redis: frontRedis,
    checks: requestChecks({ defaults: { model: 'x4fast' } }),
    limitFor: () => options.limit ?? Infinity,
    retry: { firstRetryMs: 100, maxRetryMs: 400, retryForMs: 60_000 },
    deliver: options.deliver ?? (async (job) => void delivered.push(job)),
    logger: log,
  });
  await queue.recover();
  queue.startDeliveries();
  const source = new RedisJobSource({ redis: workerRedis, name: 'w', logger: log });
  const worker = new Worker(source, enhanceProcessor({ engine }), { logger: log });
  open.push(async () => {
    await worker.close(0);
    await source.close();
    await queue.close(100);
    frontRedis.disconnect();
    workerRedis.disconnect();
  });
  return { queue, worker, engine, log, lines, changes, delivered };
}

const request = (name: string, seed: number, side = 32, owner = 'telegram:7') =>
  plainRequest(name, seed, { owner, replyTo: { adapter: 'test' } }).then(async (r) => ({ ...r, input: side === 32 ? r.input : await scenePng(side, side, seed) }));

describe.skipIf(redisMissing)('the queue on Redis when Redis fails', () => {
  it('refuses a submit with one line while Redis is out of memory, and never locks its person out', async () => {
    const limit = 2;
    const { queue, lines } = await setup({ limit });
    const reasons: string[] = [];
    // Where the line of memory falls decides which write Redis refuses. A little more room than the input needs
    // stores the input and refuses BullMQ's add, the next write: the case that left a job counted against its
    // owner for good. Redis' count moves by allocator steps, so the room is walked over until that case came up
    // more than `limit` times; a submit that got through is cancelled, to keep the count at nothing.
    const storedThenRefused = () => lines.filter((l) => l.msg === 'submit refused: Redis did not take the job; nothing of it is kept' && l.stored === true).length;
    for (let round = 0; storedThenRefused() <= limit; round++) {
      expect(round, 'rounds before BullMQ\'s add was refused after the input was stored').toBeLessThan(400);
      const big = await request(`big${round}.png`, round + 1, 256);
      await admin.config('SET', 'maxmemory', String((await usedMemory()) + Math.round(big.input.length * (0.95 + (round % 40) * 0.01))));
      const outcome = await queue.submit(big).then((job) => job, (e: Error) => e.message);
      await admin.config('SET', 'maxmemory', '0');
      if (typeof outcome === 'string') reasons.push(outcome);
      else await queue.cancel(outcome.id, 'telegram:7');
    }
    // And with no room at all, the first write (the person's turn) is refused.
    await admin.config('SET', 'maxmemory', '1');
    reasons.push(await queue.submit(await request('tiny.png', 9)).then(() => 'queued', (e: Error) => e.message));
    await admin.config('SET', 'maxmemory', '0');
    expect(reasons.length).toBeGreaterThan(limit + 1);
    // Should another of Redis' errors come up, the message names what Redis said.
    const said = [...new Set(lines.filter((l) => l.msg.startsWith('submit refused')).map((l) => String(l.reason)))];
    expect(new Set(reasons), `Redis said: ${said.join(' | ')}`).toEqual(new Set(['the queue is full (Redis is out of memory): send it again later']));

    // Nothing of the refused submits is counted, or left behind; the person submits up to the limit again.
    expect(await admin.scard('enhancer:owner:telegram:7')).toBe(0);
    expect(await admin.keys('enhancer:input:*')).toEqual([]);
    for (let i = 1; i <= limit; i++) await queue.submit(await request(`ok${i}.png`, 1000 + i));
    await expect(queue.submit(await request('over.png', 2000))).rejects.toThrow(`you already have ${limit} images in the queue (the limit is ${limit})`);
    expect((await queue.getJobs('telegram:7')).map((j) => j.request.name)).toEqual(['ok1.png', 'ok2.png']);
    expect(await admin.scard('enhancer:owner:telegram:7')).toBe(limit);
  });

  it('does not count a job its front stored but never added to the line (the front died in between)', async () => {
    const { queue } = await setup({ limit: 1 });
    // What a front killed between storing a job and adding it to BullMQ's line leaves: the record and the id.
    const left = { id: 'left0', request: { name: 'left.png', owner: 'telegram:7', options: {} }, state: 'waiting', createdAt: Date.now() - 10 * 60_000, width: 32, height: 24, bytes: 1 };
    await admin.multi().set('enhancer:job:left0', JSON.stringify(left)).sadd('enhancer:owner:telegram:7', 'left0').exec();
    const job = await queue.submit(await request('after.png', 1));
    expect(await admin.smembers('enhancer:owner:telegram:7')).toEqual([job.id]);
    // A submit under way (stored a moment ago, not yet in the line) counts.
    await admin.multi().set('enhancer:job:young0', JSON.stringify({ ...left, id: 'young0', request: { ...left.request, owner: 'telegram:8' }, createdAt: Date.now() })).sadd('enhancer:owner:telegram:8', 'young0').exec();
    await expect(queue.submit(await request('other.png', 2, 32, 'telegram:8'))).rejects.toThrow('you already have 1 image in the queue (the limit is 1)');
  });

  it('keeps an answer whose failed attempt Redis could not record (out of memory), and delivers it once there is room', async () => {
    let attempts = 0;
    let holder: Awaited<ReturnType<typeof setup>> | undefined;
    const s = await setup({
      deliver: async (job) => {
        attempts++;
        if (attempts === 1) {
          // The chat API fails, and Redis has no room to note the attempt.
          await admin.config('SET', 'maxmemory', '1');
          throw new Error('chat API down');
        }
        holder!.delivered.push(job);
      },
    });
    holder = s;
    const { queue, worker, engine, lines, changes } = s;
    engine.auto = true;
    const job = await queue.submit(await request('kept.png', 1));
    const done = next(queue, 'delivered', (j) => j.id === job.id);
    worker.run();
    const refused = await changes.until(() => lines.find((l) => l.msg.startsWith('delivery') && /OOM/.test(String(l.reason))), {
      what: () => `a log line about the refused write; lines: ${JSON.stringify(lines.slice(-4))}`,
      timeoutMs: 15_000,
    });
    expect(refused.job).toBe(job.id);
    await admin.config('SET', 'maxmemory', '0');
    await done;
    expect(s.delivered.map((j) => j.request.name)).toEqual(['kept.png']);
    expect(attempts).toBe(2);
    await expect(queue.readOutput(job.id, 'result')).rejects.toThrow('has no stored result');
  });

  it('stores the end of a job that ended while Redis was out of memory once there is room, and delivers it', async () => {
    const answers: Array<{ name: string; outcome: Outcome }> = [];
    const { queue, worker, engine, lines, changes } = await setup({ deliver: async (job, outcome) => void answers.push({ name: job.request.name, outcome }) });
    const job = await queue.submit(await request('ended.png', 1));
    const done = next(queue, 'delivered', (j) => j.id === job.id);
    worker.run();
    const call = await engine.next();
    await admin.config('SET', 'maxmemory', '1');
    call.fail(new Error('the accelerator went away'));
    const refused = await changes.until(() => lines.find((l) => l.msg === 'job ended, but Redis refused to store it; trying again'), {
      what: () => `the worker's line about the refused end; lines: ${JSON.stringify(lines.slice(-4))}`,
      timeoutMs: 15_000,
    });
    expect([refused.job, refused.reason]).toEqual([job.id, expect.stringMatching(/^OOM command not allowed/)]);
    await admin.config('SET', 'maxmemory', '0');
    await done;
    expect(answers).toEqual([{ name: 'ended.png', outcome: { state: 'failed', reason: 'internal error: the accelerator went away', text: { key: 'reason.internal', values: { message: 'the accelerator went away' } } } }]);
    expect(await admin.scard('enhancer:owner:telegram:7')).toBe(0);
  });

  it('delivers an answer once though Redis restarts while it is being settled', async () => {
    let restarts = 0;
    const s = await setup({
      deliver: async (job) => {
        if (restarts++ === 0) await server.restart();
        s.delivered.push(job);
      },
    });
    const { queue, worker, engine } = s;
    engine.auto = true;
    const job = await queue.submit(await request('restart.png', 1));
    const done = next(queue, 'delivered', (j) => j.id === job.id);
    worker.run();
    await done;
    expect(s.delivered.map((j) => j.request.name)).toEqual(['restart.png']);
    await expect(queue.readOutput(job.id, 'result')).rejects.toThrow('has no stored result');
    expect(await queue.getJob(job.id)).toMatchObject({ state: 'completed', position: 0 });
  });
});

describe('which Redis errors are refusals (try again later) and which are not', () => {
  it('reads the refusal from a command, a script, a transaction whose commands were refused, and one whose EXEC was', () => {
    const oom = "OOM command not allowed when used memory > 'maxmemory'.";
    expect(redisRefusal(new Error(oom))).toBe(OUT_OF_MEMORY);
    expect(redisRefusal(new Error(`${oom} script: 9e9730859c2e0cc3187f91ed07a918c29d77c768, on @user_script:5.`))).toBe(OUT_OF_MEMORY);
    expect(redisRefusal(Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), { previousErrors: [new Error(oom)] }))).toBe(OUT_OF_MEMORY);
    // Memory ran out between queueing the commands and EXEC (the queued input counts): Redis refuses EXEC itself,
    // and no command has an error of its own. Before, that submit was told "the queue is unavailable right now".
    expect(redisRefusal(new Error(`EXECABORT Transaction discarded because of: -${oom}`))).toBe(OUT_OF_MEMORY);
    expect(redisRefusal(new Error('MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.'))).toBe('Redis cannot save to its disk');
    expect(redisRefusal(new Error('EXECABORT Transaction discarded because of previous errors.'))).toBeUndefined();
    expect(redisRefusal(new Error("ERR unknown command 'FOO'"))).toBeUndefined();
  });
});

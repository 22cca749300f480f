/**
 * The engine in its child process, on the real models: a cancel that ends an x4plus job mid-window within 3 s,
 * a stop that does the same and keeps the job, a child killed from outside that fails only its own job, and no
 * result file left behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ABORT_GRACE_MS, EngineProcess } from '../src/engine/engine-process.js';
import { EnhanceError } from '../src/errors.js';
import { say } from '../src/i18n/i18n.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import { Worker } from '../src/queue/worker.js';
import type { EnhanceProgress } from '../src/types.js';
import { ENGINE_ENV, scenePng, tempDir } from './helpers.js';
import { next } from './queue-helpers.js';
import { requestChecks } from '../src/pipeline/admission.js';

/** A logger whose lines the test reads, and waits on: `until('model loaded')` is the model about to run. */
function watchedLogger() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const waiting = new Set<() => void>();
  const logger = pino({ level: 'debug', base: undefined }, {
    write: (line: string) => {
      lines.push(JSON.parse(line));
      for (const check of [...waiting]) check();
    },
  });
  const until = (msg: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!lines.some((l) => l.msg === msg)) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      check();
    });
  return { logger, lines, until };
}

let dir: string;
let engine: EngineProcess;
beforeEach(() => {
  dir = tempDir('enhancer-engine-process-');
});
afterEach(async () => {
  await engine?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('EngineProcess', () => {
  it('ends an x4plus job mid-window within 3 s of a cancel, with the cancel reason; the next job runs in a fresh child', async () => {
    const { logger, lines, until } = watchedLogger();
    engine = new EngineProcess({ dataDir: dir, logger, env: ENGINE_ENV });
    const cancel = new AbortController();
    const progress: EnhanceProgress[] = [];
    // One 256x256 window of x4plus: about 12 s of one synchronous onnxruntime call on 2 cores.
    const running = engine.enhance(
      { input: await scenePng(256, 256, 4), name: 'big.png', options: { model: 'x4plus', tile: 0, device: 'cpu' } },
      { signal: cancel.signal, logger, onProgress: (p) => progress.push(p) },
    );
    const outcome = running.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await until('model loaded');
    const first = engine.pid;
    const reason = new EnhanceError({ key: 'reason.cancelled' }, 'cancelled');
    const abortedAt = performance.now();
    cancel.abort(reason);
    const error = await outcome;
    const ms = performance.now() - abortedAt;
    console.log(`cancel mid-window to rejection: ${ms.toFixed(0)} ms (grace ${ABORT_GRACE_MS} ms)`);
    expect(error).toBe(reason);
    expect(ms).toBeLessThan(3_000);
    // No window had finished: the run was cut inside its only one, and said so once.
    expect(progress).toEqual([]);
    expect(lines.filter((l) => /ended mid-tile/.test(l.msg))).toHaveLength(1);

    const small = await engine.enhance({ input: await scenePng(32, 24, 1), name: 'small.png', options: { model: 'x4fast' } }, { logger });
    expect(small.output).toMatchObject({ width: 128, height: 96 });
    expect(await sharp(small.image).metadata()).toMatchObject({ format: 'png', width: 128, height: 96 });
    expect(engine.pid).toBeDefined();
    expect(engine.pid).not.toBe(first);
    // The results crossed as files in the data folder, and none is left there.
    expect(fs.readdirSync(path.join(dir, 'engine'))).toEqual([]);
  });

  it('a child killed from outside fails only the job it ran, with a one-line reason; the next job runs', async () => {
    const { logger, until } = watchedLogger();
    engine = new EngineProcess({ dataDir: dir, logger, env: ENGINE_ENV });
    const queue = new LocalQueue({ dataDir: path.join(dir, 'data'), checks: requestChecks(), deliver: async () => {} });
    const worker = new Worker(queue, enhanceProcessor({ engine }), { logger });
    try {
      const killed = await queue.submit({ input: await scenePng(128, 128, 2), name: 'killed.png', options: { model: 'x4plus', tile: 0, device: 'cpu' } });
      const after = await queue.submit({ input: await scenePng(32, 24, 3), name: 'after.png', options: { model: 'x4fast' } });
      const failed = next(queue, 'failed');
      const completed = next(queue, 'completed');
      worker.run();
      await until('model loaded');
      process.kill(engine.pid!, 'SIGKILL');

      const [job, reason] = await failed;
      expect(job.id).toBe(killed.id);
      expect(reason).toBe(
        "the server's engine stopped while enhancing this image (its process was ended by SIGKILL, perhaps for lack of memory): send it again, or a smaller image",
      );
      expect(say('zh-Hans', (await queue.getJob(killed.id))!.reasonText!)).toMatch(/^服务器的增强进程.*SIGKILL/);
      const [done, result] = await completed;
      expect(done.id).toBe(after.id);
      expect(result.output).toMatchObject({ width: 128, height: 96 });
      expect(await sharp(await queue.readOutput(after.id, 'result')).metadata()).toMatchObject({ width: 128, height: 96 });
    } finally {
      await worker.close(0);
      await queue.close();
    }
  });

  it('a worker stopped past its grace ends an x4plus job mid-window within 3 s and keeps it for the next start', async () => {
    const { logger, until } = watchedLogger();
    engine = new EngineProcess({ dataDir: dir, logger, env: ENGINE_ENV });
    const data = path.join(dir, 'data');
    const queue = new LocalQueue({ dataDir: data, checks: requestChecks(), deliver: async () => {} });
    const worker = new Worker(queue, enhanceProcessor({ engine }), { logger });
    let job;
    try {
      job = await queue.submit({ input: await scenePng(256, 256, 5), name: 'kept.png', options: { model: 'x4plus', tile: 0, device: 'cpu' } });
      worker.run();
      await until('model loaded');
      const stoppedAt = performance.now();
      // No grace: the running job is stopped at once, as after `shutdownGraceMs`.
      await worker.close(0);
      const ms = performance.now() - stoppedAt;
      console.log(`worker stop mid-window to the job kept: ${ms.toFixed(0)} ms`);
      expect(ms).toBeLessThan(3_000);
      expect(engine.pid).toBeUndefined();
    } finally {
      await worker.close(0);
      await queue.close();
    }
    // The next start finds it waiting.
    const next = new LocalQueue({ dataDir: data, checks: requestChecks(), deliver: async () => {} });
    try {
      expect((await next.recover()).map((j) => [j.id, j.state])).toEqual([[job.id, 'waiting']]);
    } finally {
      await next.close();
    }
  });
});

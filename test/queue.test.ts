/**
 * The queue and its worker, driven by a scripted engine: order, fairness, cancel, shutdown, deliveries that fail
 * for a while. Each step waits for an event, never for time, so these hold on any machine, GPU or slow CPU.
 * (queue-engine.test.ts runs the same queue on the real models.)
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnhanceError } from '../src/errors.js';
import { say, type Text } from '../src/i18n/i18n.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import { PermanentDeliveryError, type Outcome } from '../src/queue/queue.js';
import { Worker, type Processor } from '../src/queue/worker.js';
import type { Job } from '../src/types.js';
import { scenePng, tempDir } from './helpers.js';
import { next, request } from './queue-helpers.js';
import { ScriptedEngine } from './scripted-engine.js';
import { requestChecks } from '../src/pipeline/admission.js';

let dir: string;
let open: Array<{ queue: LocalQueue; worker: Worker }>;

beforeEach(() => {
  dir = tempDir('enhancer-queue-');
  open = [];
});
afterEach(async () => {
  for (const { queue, worker } of open) {
    await worker.close(0);
    await queue.close(100);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  engine?: ScriptedEngine;
  /** Wraps the real processor (to hold a job at some step). */
  wrap?: (processor: Processor) => Processor;
  deliver?: (job: Job, outcome: Outcome) => Promise<void>;
  limit?: number;
  retry?: { firstRetryMs: number; maxRetryMs: number; retryForMs: number };
  now?: () => number;
}

/**
 * Holds the finishing of the jobs `which` picks at their first stored picture (the thumbnail, after the model
 * run) until `release()`: a job then stays in the finishing line for as long as a test needs.
 */
function holdPreviews(which: (job: Job) => boolean): { wrap: (processor: Processor) => Processor; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const wrap = (processor: Processor): Processor => (job, input, ctx) =>
    processor(job, input, {
      ...ctx,
      writeOutput: async (kind, bytes) => {
        if (kind === 'preview' && which(job)) await held;
        return ctx.writeOutput(kind, bytes);
      },
    });
  return { wrap, release };
}

/** A queue and worker on the scripted engine; `log` collects "event name" lines of every job. */
function setup({ engine = new ScriptedEngine(), wrap = (p) => p, deliver, limit = Infinity, retry, now }: Setup = {}) {
  const delivered: Array<{ job: Job; outcome: Outcome }> = [];
  const queue = new LocalQueue({
    dataDir: dir,
    checks: requestChecks({ defaults: { model: 'x4fast' }, maxPixels: 1_000_000, maxFileBytes: 5_000_000 }),
    limitFor: () => limit,
    retry,
    now,
    deliver:
      deliver ??
      (async (job, outcome) => {
        delivered.push({ job, outcome });
      }),
  });
  const worker = new Worker(queue, wrap(enhanceProcessor({ engine })));
  const log: string[] = [];
  const events = queue.events();
  for (const name of ['queued', 'started', 'preview', 'completed', 'failed', 'cancelled', 'delivered'] as const) {
    events.on(name, (job: Job, ..._rest: unknown[]) => log.push(`${name} ${job.request.name}`));
  }
  open.push({ queue, worker });
  return { queue, worker, engine, delivered, log, events };
}

describe('LocalQueue and Worker', () => {
  it('spools before announcing, reports position and ETA, and delivers outputs by reference', async () => {
    const { queue, worker, engine, delivered } = setup();
    const spooled: boolean[] = [];
    const positions: number[] = [];
    queue.events().on('queued', (job, info) => {
      spooled.push(fs.existsSync(path.join(dir, 'jobs', job.id, 'input')));
      positions.push(info.position);
    });
    const a = await queue.submit(await request('a.png', 1, { report: true }));
    const b = await queue.submit(await request('b.png', 2));
    expect(spooled).toEqual([true, true]);
    expect(positions).toEqual([1, 2]);
    expect((await queue.getJobs()).map((j) => [j.request.name, j.position])).toEqual([
      ['a.png', 1],
      ['b.png', 2],
    ]);
    const completed = next(queue, 'completed', (job) => job.id === a.id);
    const deliveredA = next(queue, 'delivered', (job) => job.id === a.id);
    worker.run();
    (await engine.next()).finish();
    const [, result] = await completed;
    // Events carry sizes, never bytes: a 4x PNG can be hundreds of megabytes.
    expect(Object.keys(result.outputs!).sort()).toEqual(['compare', 'pdf', 'preview', 'result']);
    expect(JSON.stringify(result).length).toBeLessThan(3000);
    await deliveredA;
    expect(delivered.map((d) => d.job.request.name)).toEqual(['a.png']);
    // Delivered: the spool entry and the stored outputs are gone.
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([b.id]);
    expect(fs.readdirSync(path.join(dir, 'results'))).not.toContain(a.id);
    await expect(queue.readOutput(a.id, 'result')).rejects.toThrow(`job ${a.id} has no stored result`);
    expect(await queue.getJob(a.id)).toMatchObject({ state: 'completed', position: 0, etaMs: 0 });
    expect(await queue.getJob(b.id)).toMatchObject({ state: 'active', position: 1 });
    (await engine.next()).finish();
    await next(queue, 'delivered', (job) => job.id === b.id);
  });

  it('lets an adapter read each output while it delivers, and hear only its own jobs', async () => {
    const seen: Record<string, { width?: number; format?: string; bytes: number }> = {};
    const { queue, worker, engine } = setup({
      deliver: async (job, outcome) => {
        if (outcome.state !== 'completed') return;
        for (const kind of ['result', 'preview', 'compare'] as const) {
          const bytes = await queue.readOutput(job.id, kind);
          const meta = await sharp(bytes).metadata();
          seen[kind] = { width: meta.width, format: meta.format, bytes: bytes.length };
          expect(bytes.length).toBe(outcome.result.outputs![kind]);
        }
      },
    });
    const mine: string[] = [];
    const other: string[] = [];
    queue.events('telegram').on('started', (job) => mine.push(job.request.name));
    queue.events('discord').on('started', (job) => other.push(job.request.name));
    engine.auto = true;
    await queue.submit(await request('t.png', 1, { replyTo: { adapter: 'telegram', chat: 1 } }));
    await queue.submit(await request('d.png', 2, { replyTo: { adapter: 'discord', channel: 2 } }));
    const done = next(queue, 'delivered', (job) => job.request.name === 'd.png');
    worker.run();
    await done;
    expect([mine, other]).toEqual([['t.png'], ['d.png']]);
    expect(seen.result).toMatchObject({ width: 128, format: 'png' });
    expect(seen.preview).toMatchObject({ width: 128, format: 'jpeg' });
    expect(seen.compare?.format).toBe('jpeg');
  });

  it('takes turns between people: A submits five, then B one, and B runs second', async () => {
    const { queue, worker, engine, log } = setup();
    for (let i = 1; i <= 5; i++) await queue.submit(await request(`a${i}.png`, i, { owner: 'A' }));
    await queue.submit(await request('b1.png', 9, { owner: 'B' }));
    expect((await queue.getJobs()).map((j) => j.request.name)).toEqual(['a1.png', 'b1.png', 'a2.png', 'a3.png', 'a4.png', 'a5.png']);
    engine.auto = true;
    const all = next(queue, 'delivered', (job) => job.request.name === 'a5.png');
    worker.run();
    await all;
    expect(log.filter((l) => l.startsWith('started'))).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5'].map((n) => `started ${n}.png`));
  });

  it('takes turns also when B arrives while A is running, and keeps one person\'s own order', async () => {
    const { queue, worker, engine, log } = setup();
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

  it('never runs two inferences at once, but finishes one job while the next is on the accelerator', async () => {
    // a's finishing is held at its first stored picture until b is on the accelerator.
    const { wrap, release } = holdPreviews((job) => job.request.name === 'a.png');
    const { queue, worker, engine, log } = setup({ wrap });
    for (const [i, name] of ['a.png', 'b.png', 'c.png'].entries()) await queue.submit(await request(name, i, { report: true }));
    worker.run();
    const a = await engine.next();
    a.finish(3);
    const b = await engine.next();
    // a's model run has ended and b's began while a's thumbnail, comparison and PDF are still to be made.
    expect(engine.running).toBe(1);
    expect(log).not.toContain('completed a.png');
    release();
    b.finish(2);
    (await engine.next()).finish();
    await next(queue, 'delivered', (job) => job.request.name === 'c.png');
    expect(engine.maxRunning).toBe(1);
    expect(log.filter((l) => l.startsWith('completed'))).toEqual(['completed a.png', 'completed b.png', 'completed c.png']);
  });

  it('refuses bad requests at submit with one line, and spools nothing', async () => {
    const { queue } = setup();
    const reason = (p: Promise<unknown>) => p.then(() => 'accepted', (e: Error) => `${e instanceof EnhanceError}: ${e.message}`);
    expect(await reason(queue.submit({ input: new Uint8Array(0), name: 'x.png' }))).toBe('true: the file is empty (0 bytes)');
    expect(await reason(queue.submit({ input: Buffer.from('hello'), name: 'x.png' }))).toMatch(/^true: not an image in a supported format/);
    expect(await reason(queue.submit({ ...(await request('x.png', 1)), options: { model: 'x9' } }))).toBe(
      'true: unknown model "x9": allowed models are x4plus, x4fast, anime, anime-fast',
    );
    expect(await reason(queue.submit({ input: await scenePng(1200, 900, 1), name: 'big.png' }))).toBe(
      'true: the image is 1200x900 (1.1 MP), over the limit of 1.0 MP',
    );
    expect(await reason(queue.submit({ input: Buffer.alloc(6_000_000), name: 'huge.png' }))).toBe('true: the file is 6.0 MB, over the limit of 5.0 MB');
    expect(fs.existsSync(path.join(dir, 'jobs')) ? fs.readdirSync(path.join(dir, 'jobs')) : []).toEqual([]);
  });

  it('limits queued jobs per person and lets only the owner cancel, waiting or running', async () => {
    const { queue, worker, engine, delivered } = setup({ limit: 2 });
    const a = await queue.submit(await request('a.png', 1));
    const b = await queue.submit(await request('b.png', 2));
    await expect(queue.submit(await request('c.png', 3))).rejects.toThrow(
      'you already have 2 images in the queue (the limit is 2): wait for one to finish or cancel one',
    );
    // Two at once from one person: both checked before either is written, so only one gets the last slot.
    await queue.submit(await request('d.png', 4, { owner: 'telegram:8' }));
    const both = await Promise.allSettled([queue.submit(await request('e.png', 5, { owner: 'telegram:8' })), queue.submit(await request('f.png', 6, { owner: 'telegram:8' }))]);
    expect(both.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    await expect(queue.cancel(b.id, 'telegram:8')).rejects.toThrow('only the person who sent an image can cancel it');
    await queue.cancel(b.id, 'telegram:7');
    worker.run();
    const running = await engine.next();
    expect(running.name).toBe('a.png');
    // A running job stops between two tiles.
    const gone = next(queue, 'delivered', (job) => job.id === a.id);
    await queue.cancel(a.id, 'telegram:7');
    await gone;
    expect(delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([
      ['b.png', 'cancelled'],
      ['a.png', 'cancelled'],
    ]);
    expect(delivered[1].outcome).toMatchObject({ reason: 'cancelled by its owner' });
    // The slots are free again, and the next job runs.
    await queue.submit(await request('c.png', 3));
    await expect(queue.cancel(a.id, 'telegram:7')).rejects.toThrow(`no job ${a.id} is waiting or running`);
    expect((await engine.next()).name).toBe('d.png');
  });

  it('on close puts the running job back in the spool, and a new queue runs it to the end', async () => {
    const first = setup();
    const job = await first.queue.submit(await request('kept.png', 1));
    first.worker.run();
    await first.engine.next();
    await first.worker.close(0);
    await first.queue.close();
    expect(first.delivered).toEqual([]);
    await expect(first.queue.submit(await request('late.png', 2))).rejects.toThrow('the service is shutting down: send it again in a minute');
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([job.id]);

    const again = setup();
    again.engine.auto = true;
    expect((await again.queue.recover()).map((j) => j.id)).toEqual([job.id]);
    const done = next(again.queue, 'delivered');
    again.worker.run();
    await done;
    expect(again.delivered.map((d) => [d.job.id, d.outcome.state])).toEqual([[job.id, 'completed']]);
  });

  it('keeps a job’s language across a restart, and says its end in that language', async () => {
    const first = setup();
    const job = await first.queue.submit(await request('kept.png', 1, { locale: 'zh-Hans' }));
    await first.queue.close();

    const again = setup();
    const [recovered] = await again.queue.recover();
    expect([recovered.id, recovered.request.locale]).toEqual([job.id, 'zh-Hans']);
    again.worker.run();
    const running = await again.engine.next();
    running.fail(new EnhanceError({ key: 'reason.damaged' }, 'input'));
    await next(again.queue, 'delivered');
    const [{ job: ended, outcome }] = again.delivered;
    expect(outcome).toMatchObject({ state: 'failed', reason: 'the file is damaged or incomplete: send it again, or export it anew' });
    expect(say(ended.request.locale!, (outcome as { text: Text }).text)).toBe('文件已损坏或不完整：请重新发送，或重新导出一次');
    expect(say('zh-Hans', ended.reasonText!)).toBe('文件已损坏或不完整：请重新发送，或重新导出一次');
  });

  it('on close starts no job handed over while three finish at once: those three are delivered, the fourth kept and run by the next start', async () => {
    // a, b and c are held at their first stored picture after their model run, so all three finish together.
    const { wrap, release } = holdPreviews((job) => job.request.name !== 'd.png');
    const first = setup({ wrap });
    const jobs = [];
    for (const [i, name] of ['a.png', 'b.png', 'c.png', 'd.png'].entries()) jobs.push(await first.queue.submit(await request(name, i)));
    const dHanded = next(first.queue, 'started', (job) => job.request.name === 'd.png');
    first.worker.run();
    for (const name of ['a.png', 'b.png', 'c.png']) {
      const call = await first.engine.next();
      expect(call.name).toBe(name);
      call.finish();
    }
    // d is handed to the worker, which waits for room in the finishing line (three finishing, two allowed).
    await dHanded;
    const closing = first.worker.close(60_000);
    release();
    await closing;
    await first.queue.close();
    expect(first.engine.calls.map((c) => c.name)).toEqual(['a.png', 'b.png', 'c.png']);
    expect(first.delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([
      ['a.png', 'completed'],
      ['b.png', 'completed'],
      ['c.png', 'completed'],
    ]);
    // d was never run: it stays queued in the spool, without an outcome.
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([jobs[3].id]);
    expect(fs.readdirSync(path.join(dir, 'jobs', jobs[3].id)).sort()).toEqual(['input', 'job.json']);

    const again = setup();
    again.engine.auto = true;
    expect((await again.queue.recover()).map((j) => [j.request.name, j.state])).toEqual([['d.png', 'waiting']]);
    const done = next(again.queue, 'delivered');
    again.worker.run();
    await done;
    expect(again.delivered.map((d) => [d.job.request.name, d.outcome.state])).toEqual([['d.png', 'completed']]);
  });

  it('delivers exactly once a job whose delivery fails for a while, across a restart, without running it again', async () => {
    const retry = { firstRetryMs: 5, maxRetryMs: 40, retryForMs: 60_000 };
    let tries = 0;
    const received: Array<{ id: string; width?: number }> = [];
    const flaky = (queue: () => LocalQueue, failures: number) => async (job: Job, outcome: Outcome) => {
      tries++;
      if (tries <= failures) throw new Error(`chat API unreachable (try ${tries})`);
      if (outcome.state !== 'completed') throw new Error(`not completed: ${outcome.state}`);
      received.push({ id: job.id, width: (await sharp(await queue().readOutput(job.id, 'result')).metadata()).width });
    };
    const first: ReturnType<typeof setup> = setup({ retry, deliver: flaky(() => first.queue, 100) });
    first.engine.auto = true;
    const job = await first.queue.submit(await request('flaky.png', 1));
    const third = next(first.queue, 'undelivered', (_job, info) => info.attempt === 3);
    first.worker.run();
    const [, info] = await third;
    expect(info).toEqual({ reason: 'internal error: chat API unreachable (try 3)', attempt: 3, retryInMs: 20 });
    await first.worker.close(0);
    await first.queue.close();
    // Still there: the job, how it ended, its failed attempts and its PNG.
    expect(fs.readdirSync(path.join(dir, 'jobs', job.id)).sort()).toEqual(['delivery.json', 'input', 'job.json', 'outcome.json']);
    expect(fs.existsSync(path.join(dir, 'results', job.id, 'result'))).toBe(true);

    tries = 0;
    const second: ReturnType<typeof setup> = setup({ retry, deliver: flaky(() => second.queue, 1) });
    const recovered = await second.queue.recover();
    expect(recovered.map((j) => [j.id, j.state])).toEqual([[job.id, 'completed']]);
    const failedAgain = next(second.queue, 'undelivered');
    const delivered = next(second.queue, 'delivered');
    second.queue.startDeliveries();
    second.worker.run();
    // The attempts go on counting across the restart.
    expect((await failedAgain)[1]).toMatchObject({ attempt: 4, retryInMs: 40 });
    await delivered;
    expect(received).toEqual([{ id: job.id, width: 128 }]);
    expect(first.engine.calls.length + second.engine.calls.length).toBe(1);
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'results'))).toEqual([]);
  });

  it('closes a job at once on a permanent delivery failure, and after its retry time otherwise', async () => {
    // Retries after 20, 40 and 80 ms; the next, 160 ms later, would come after the 200 ms allowed. Measured on a
    // clock that moves by exactly each delay, so a late timer on a busy machine cannot close it an attempt early.
    const retry = { firstRetryMs: 20, maxRetryMs: 1000, retryForMs: 200 };
    let clock = 0;
    const { queue, worker, engine } = setup({
      retry,
      now: () => clock,
      deliver: async (job) => {
        if (job.request.name === 'blocked.png') throw new PermanentDeliveryError('the bot was blocked by the user');
        throw new Error('timeout');
      },
    });
    engine.auto = true;
    const closed: Array<[string, number]> = [];
    queue.events().on('undelivered', (job, info) => {
      clock += info.retryInMs ?? 0;
      if (info.retryInMs === null) closed.push([job.request.name, info.attempt]);
    });
    await queue.submit(await request('blocked.png', 1));
    await queue.submit(await request('down.png', 2));
    const both = new Promise<void>((resolve) => queue.events().on('undelivered', () => closed.length === 2 && resolve()));
    worker.run();
    await both;
    expect(closed[0]).toEqual(['blocked.png', 1]);
    expect(closed[1]).toEqual(['down.png', 4]);
    expect(fs.readdirSync(path.join(dir, 'jobs'))).toEqual([]);
  });

  it('does not let a delivery that hangs hold up stopping: the job is kept for the next start', async () => {
    let attempted!: () => void;
    const hanging = new Promise<void>((resolve) => (attempted = resolve));
    const { queue, worker, engine } = setup({
      deliver: () => {
        attempted();
        return new Promise(() => {});
      },
    });
    engine.auto = true;
    const job = await queue.submit(await request('stuck.png', 1));
    worker.run();
    await hanging;
    await worker.close(0);
    await queue.close(20);
    expect(fs.readdirSync(path.join(dir, 'jobs', job.id))).toContain('outcome.json');
  });

  it('announces the early preview before the whole image, with the same signature and options', async () => {
    const { queue, worker, engine } = setup();
    const events: string[] = [];
    queue.events().on('preview', () => events.push('preview')).on('progress', () => events.push('progress')).on('completed', () => events.push('completed'));
    await queue.submit({ input: await scenePng(320, 320, 3), name: 'photo.png', owner: 'telegram:7', earlyPreview: true, options: { scale: 2 } });
    await queue.submit({ input: await scenePng(40, 40, 4), name: 'tiny.png', owner: 'telegram:7', earlyPreview: true });
    const preview = next(queue, 'preview');
    const completed = next(queue, 'completed');
    worker.run();
    const crop = await engine.next();
    expect(crop.region).toBeDefined();
    crop.finish();
    const [job, p] = await preview;
    const picture = await queue.readOutput(job.id, 'early');
    expect(await sharp(picture).metadata()).toMatchObject({ width: p.region.width, height: p.region.height });
    // Its run, with 16 pixels of context on each side, covers at most 6% of the image: sqrt(0.06 * 320 * 320) - 32.
    expect(crop.region).toMatchObject({ width: 46, height: 46 });
    expect(p.region).toMatchObject({ left: crop.region!.left * 2, top: crop.region!.top * 2, width: 92, height: 92 });
    const whole = await engine.next();
    expect(whole.region).toBeUndefined();
    whole.finish(2);
    const [, result] = await completed;
    expect(result.signature).toBe(p.signature);
    expect(events).toEqual(['preview', 'progress', 'progress', 'completed']);
    // Too small to need one: straight to the whole image.
    const tiny = await engine.next();
    expect([tiny.name, tiny.region]).toEqual(['tiny.png', undefined]);
    tiny.finish();
  });
});

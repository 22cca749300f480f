/**
 * The queue and worker on the real models, through the engine process: what a job delivers, the early preview
 * against the final result, the event loop kept free, a model loaded once for a run of jobs.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EngineProcess } from '../src/engine/engine-process.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import type { Outcome } from '../src/queue/queue.js';
import { Worker } from '../src/queue/worker.js';
import type { EnhanceRequest, EnhanceResult, Job, OutputKind } from '../src/types.js';
import { ENGINE_ENV, pixels, psnr, scenePng, tempDir } from './helpers.js';
import { requestChecks } from '../src/pipeline/admission.js';

let dir: string;
let engine: EngineProcess;
let queue: LocalQueue;
let worker: Worker;
/** What each delivery read back from the result store, as an adapter does. */
let delivered: Array<{ job: Job; outcome: Outcome; files: Map<OutputKind, Buffer> }>;

beforeEach(() => {
  dir = tempDir('enhancer-queue-engine-');
  engine = new EngineProcess({ dataDir: dir, env: ENGINE_ENV });
  delivered = [];
  queue = new LocalQueue({
    dataDir: dir,
    checks: requestChecks({ defaults: { model: 'x4fast' } }),
    deliver: async (job, outcome) => {
      const files = new Map<OutputKind, Buffer>();
      if (outcome.state === 'completed') {
        for (const kind of Object.keys(outcome.result.outputs!) as OutputKind[]) files.set(kind, await queue.readOutput(job.id, kind));
      }
      delivered.push({ job, outcome, files });
    },
  });
  worker = new Worker(queue, enhanceProcessor({ engine }));
});
afterEach(async () => {
  await worker.close(0);
  await queue.close();
  await engine.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the requests to the end (delivered); resolves to their results in order. */
async function run(...requests: EnhanceRequest[]): Promise<EnhanceResult[]> {
  const jobs = [];
  for (const request of requests) jobs.push(await queue.submit({ owner: 'local', ...request }));
  const results = new Map<string, EnhanceResult>();
  let left = jobs.length;
  const done = new Promise<void>((resolve, reject) => {
    queue.events().on('completed', (job, result) => results.set(job.id, result));
    queue.events().on('delivered', () => --left === 0 && resolve());
    queue.events().on('failed', (job, reason) => reject(new Error(`${job.request.name}: ${reason}`)));
  });
  worker.run();
  await done;
  return jobs.map((job) => results.get(job.id)!);
}

/** The `region` of a PNG, as raw samples. */
const cut = async (png: Buffer, region: { left: number; top: number; width: number; height: number }) =>
  pixels(await sharp(png).extract(region).png().toBuffer());

describe('LocalQueue and Worker on the real models', () => {
  it('delivers a 4x PNG, a thumbnail, a before/after and a PDF, all readable by reference', async () => {
    const [result] = await run({ input: await scenePng(32, 24, 1), name: 'a.png', report: true });
    expect(result).toMatchObject({ output: { width: 128, height: 96 }, device: 'cpu', tiles: 1 });
    expect(result.ms.infer).toBeGreaterThan(0);
    expect(result.ms.render).toBeGreaterThan(0);
    const reading = delivered[0].files;
    expect(Object.keys(result.outputs!).sort()).toEqual(['compare', 'pdf', 'preview', 'result']);
    expect(await sharp(reading.get('result')!).metadata()).toMatchObject({ format: 'png', width: 128, height: 96 });
    expect(await sharp(reading.get('preview')!).metadata()).toMatchObject({ format: 'jpeg', width: 128, height: 96 });
    expect((await sharp(reading.get('compare')!).metadata()).format).toBe('jpeg');
    expect(reading.get('pdf')!.subarray(0, 5).toString()).toBe('%PDF-');
    expect(delivered.map((d) => d.outcome.state)).toEqual(['completed']);
  });

  for (const [model, size, tile, scale] of [
    ['x4fast', 320, 'auto', 4],
    ['x4plus', 272, 136, 3],
  ] as const) {
    it(`early preview (${model}, ${size}x${size}, tile ${tile}, ${scale}x): before the whole image, same signature, same pixels as the final's region`, async () => {
      const early: Buffer[] = [];
      const order: string[] = [];
      let region!: { left: number; top: number; width: number; height: number };
      let signature = '';
      queue.events().on('preview', async (job, preview) => {
        order.push('preview');
        region = preview.region;
        signature = preview.signature;
        early.push(await queue.readOutput(job.id, 'early'));
      });
      queue.events().on('progress', () => order.push('progress'));
      queue.events().on('completed', () => order.push('completed'));
      const [result] = await run({ input: await scenePng(size, size, 7), name: 'photo.png', earlyPreview: true, options: { model, tile, scale } });
      const final = delivered[0].files.get('result')!;
      expect(order[0]).toBe('preview');
      expect(order.at(-1)).toBe('completed');
      expect(signature).toBe(result.signature);
      const a = await pixels(early[0]);
      const b = await cut(final, region);
      expect([a.width, a.height]).toEqual([region.width, region.height]);
      const db = psnr(a.samples, b.samples);
      console.log(`early preview against the final's region: ${db.toFixed(1)} dB (${region.width}x${region.height} at ${region.left},${region.top})`);
      expect(db).toBeGreaterThan(40);
      // Its run covers at most 6% of the image (with its context), so it adds little to the job.
      expect(result.ms.preview).toBeGreaterThan(0);
    });
  }

  it('fails a damaged image that asked for an early preview with the plain one-line reason', async () => {
    const jpeg = await sharp(await scenePng(400, 400, 9)).jpeg().toBuffer();
    await queue.submit({ input: jpeg.subarray(0, jpeg.length >> 1), name: 'cut.jpg', owner: 'local', earlyPreview: true });
    const failed = new Promise<string>((resolve) => queue.events().once('failed', (_job, reason) => resolve(reason)));
    worker.run();
    expect(await failed).toBe('the file is damaged or incomplete: send it again, or export it anew');
  });

  it('keeps the event loop free while the model runs, so timers, chats and progress go on', async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    delay.enable();
    // One 160x160 x4fast window: about 0.4 s of inference in one synchronous onnxruntime call.
    // On the CPU, where onnxruntime's run is one synchronous call (on a GPU it may take only milliseconds).
    const [result] = await run({ input: await scenePng(160, 160, 5), name: 'big.png', options: { tile: 0, device: 'cpu' } });
    delay.disable();
    clearInterval(timer);
    // In-process the loop stood still for the whole inference; with the engine's process it only waits for this
    // thread's own work (decoding, rendering), never for the model.
    expect(delay.max / 1e6).toBeLessThan(result.ms.infer / 2);
    expect(ticks).toBeGreaterThan(result.ms.infer / 20 / 2);
  });

  it('loads a model once for a run of jobs on it, and again after a job on the other model', async () => {
    const [a, b, c] = await run(
      { input: await scenePng(32, 24, 1), name: 'a.png', options: { model: 'x4plus' } },
      { input: await scenePng(32, 24, 2), name: 'b.png', options: { model: 'x4plus' } },
      { input: await scenePng(32, 24, 3), name: 'c.png' },
    );
    // Loading x4plus (checking and optimising its 67 MB) takes hundreds of milliseconds, even a second time;
    // reusing the loaded session only reads the manifest. The switch to x4fast loads that one.
    expect(a.ms.load).toBeGreaterThan(100);
    expect(b.ms.load).toBeLessThan(a.ms.load / 10);
    expect(c.ms.load).toBeGreaterThan(b.ms.load);
  });
});

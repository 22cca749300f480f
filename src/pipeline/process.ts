/**
 * The processor a worker runs for every job: the result cache, the early preview, the engine, learned speeds,
 * then the thumbnail, the before/after picture and the PDF, each stored in the result store. The engine is
 * passed in (the service's `EngineProcess`, a GPU worker's own, or a test's scripted stand-in), so the same
 * processor runs in process or inside a worker on another machine.
 */
import { isDiskFull } from '../disk-space.js';
import { signatureOf, type Engine } from '../engine/enhance.js';
import { mapRegion } from '../engine/sizing.js';
import { planRun } from '../engine/session.js';
import { DEFAULT_LOCALE, say } from '../i18n/i18n.js';
import { decodeBefore, makeComparison, type Before } from '../imaging/compare.js';
import { makePreview } from '../imaging/preview.js';
import { preparationMs, type ModelPreparer } from '../models/on-demand.js';
import { outputSize } from '../options.js';
import { DEFAULT_MODELS_DIR } from '../paths.js';
import { Costs, MODEL_KEPT_MS, type JobSample } from '../queue/throughput.js';
import type { ProcessContext, Processor } from '../queue/worker.js';
import { makeReport } from '../report/pdf.js';
import type { EnhancedImage, EnhanceProgress, EnhanceResult, Job, OutputKind } from '../types.js';
import type { ResultCache } from './cache.js';
import { previewRegion, shapeOf } from './shape.js';

export interface EnhanceProcessorOptions {
  engine: Engine;
  /** Results by signature; none (or `maxBytes` 0) keeps nothing. */
  cache?: ResultCache;
  /**
   * Learned costs (a `Throughput`, or `RedisSpeeds` on Redis): taught here after every job, read here for the time
   * left that progress reports, and by the queue for ETAs. Without them progress counts the first guesses.
   */
  speeds?: { learn(sample: JobSample): Promise<void>; costs(): Costs | Promise<Costs> };
  modelsDir?: string;
  maxPixels?: number;
  /**
   * Prepares a model the first time a job needs it (see src/models/on-demand.ts); the job's person is told
   * through its progress. Without it a model that is not prepared fails the job with the command that prepares it.
   */
  preparer?: Pick<ModelPreparer, 'ensure'>;
  /** Keep the input's GPS position in the result's EXIF (config `metadata.keepGps`). */
  keepGps?: boolean;
}

/**
 * The processor for `Worker`.
 *
 * @example
 * const worker = new Worker(queue, enhanceProcessor({ engine: new EngineProcess({ dataDir }), cache, speeds }));
 * worker.run();
 */
export function enhanceProcessor(deps: EnhanceProcessorOptions): Processor {
  const models = deps.modelsDir ?? DEFAULT_MODELS_DIR;
  /**
   * The model the engine ran last and when it was done with it. The engine keeps one model loaded between jobs,
   * so only a job of another model, or one after a pause, loads it: the time the engine reports for the load in
   * other jobs is its bookkeeping (reading the manifest), 20-100 ms on a busy 2-core machine, and stays in the run.
   */
  let held: { model: string; at: number } | undefined;
  /** No job has run on the engine yet: the first one runs cold (see `JobSample`). */
  let cold = true;
  return async (job, input, ctx) => {
    const { options } = job.request;
    const wait = Date.now() - job.createdAt;
    const shape = shapeOf(job);
    // Learned costs are an extra: where they cannot be read (Redis away), the first guesses do.
    const costs = (await Promise.resolve(deps.speeds?.costs()).catch(() => undefined)) ?? new Costs({});
    // The time left a person reads is until the end: the engine counts its remaining tiles only.
    const afterTiles = costs.tail(shape) + costs.render(shape);
    const { entry, precision } = await planRun(models, options);
    const signature = signatureOf(input, options, entry.sha256, deps.keepGps);
    const cache = deps.cache && deps.cache.maxBytes > 0 ? deps.cache : undefined;
    const owner = job.request.owner ?? 'local';
    const hit = await cache?.get(signature, owner);
    let image = hit?.image;
    // Only whoever asked for this result before is told it came from the cache; anyone else sees the times it
    // took when it was made, as if made now.
    const cached = hit?.seenBefore === true;
    let before: Before | undefined;
    let preview: { ms: number; loadMs: number } | undefined;
    let accelerator: JobSample['accelerator'];
    if (image) {
      ctx.logger.info({ job: job.id, signature: signature.slice(0, 12) }, 'answered from the cache');
      if (cached) image.ms = { ...image.ms, load: 0, decode: 0, infer: 0, encode: 0, total: 0 };
    } else {
      const unit = { model: options.model, precision };
      await deps.preparer?.ensure(
        unit,
        (text) => {
          ctx.logger.info({ job: job.id, model: options.model }, say(DEFAULT_LOCALE, text));
          ctx.progress({ tilesDone: 0, tilesTotal: 0, etaMs: preparationMs(unit) + costs.accelerator(shape, true) + costs.render(shape), preparing: text });
        },
        ctx.signal,
      );
      const context = { modelsDir: models, maxPixels: deps.maxPixels, keepGps: deps.keepGps, signal: ctx.signal, logger: ctx.logger };
      const loads = held?.model !== options.model || Date.now() - held.at >= MODEL_KEPT_MS;
      const t0 = performance.now();
      if (job.request.earlyPreview) {
        before = await decodeBefore(input, ctx.logger.child({ job: job.id }));
        preview = await earlyPreview(deps.engine, job, input, before, context, ctx);
      }
      let lastTile: number | undefined;
      const onProgress = (p: EnhanceProgress) => {
        if (p.tilesDone >= p.tilesTotal) lastTile = performance.now();
        ctx.progress({ ...p, etaMs: p.etaMs + afterTiles });
      };
      image = await deps.engine.enhance({ input, name: job.request.name, options }, { ...context, onProgress });
      // The cache is an extra: a full disk skips it rather than holding or failing the job.
      if (cache) {
        await skipOnFullDisk(() => cache.put(image!, owner), 'result not cached', ctx);
        await cache.evict(signature);
      }
      const t = performance.now();
      const [runLoad, previewLoad] = loads ? [image.ms.load, preview?.loadMs ?? 0] : [0, 0];
      accelerator = {
        runMs: t - t0 - (preview?.ms ?? 0) - runLoad,
        previewMs: preview && preview.ms - previewLoad,
        loadMs: runLoad + previewLoad,
        tailMs: lastTile === undefined ? image.ms.encode : t - lastTile,
        cold,
      };
      held = { model: options.model, at: Date.now() };
      cold = false;
    }
    ctx.acceleratorDone();
    const result = await finish(job, input, { ...image, cached, ms: { ...image.ms, wait, preview: preview?.ms } }, before, ctx);
    // Nor does a job that is done fail for what its costs could not teach (a full disk, Redis away).
    const sample = { shape, device: result.device, accelerator, renderMs: result.ms.render ?? 0 };
    await deps.speeds?.learn(sample).catch((error: unknown) => ctx.logger.warn({ job: job.id, err: (error as Error).message }, 'learned costs not saved'));
    return result;
  };
}

/**
 * Runs and announces the early preview; resolves to the milliseconds it took and the model's load among them, or
 * undefined when skipped.
 */
async function earlyPreview(
  engine: Engine,
  job: Job,
  input: Buffer,
  before: Before,
  context: { modelsDir: string; maxPixels?: number; keepGps?: boolean; signal: AbortSignal; logger: ProcessContext['logger'] },
  ctx: ProcessContext,
): Promise<{ ms: number; loadMs: number } | undefined> {
  const region = previewRegion(before);
  if (!region) return undefined;
  const t = performance.now();
  const { options } = job.request;
  const crop = await engine.enhance({ input, name: job.request.name, options }, { ...context, region });
  const ms = performance.now() - t;
  // Where the region lies in the result, as the engine cut it (exact at scales 1-4; to a pixel for a `size`).
  const at = mapRegion(region, { width: job.width, height: job.height }, outputSize(job.width, job.height, options));
  await ctx.preview({ signature: crop.signature, region: { ...at, width: crop.output.width, height: crop.output.height }, ms }, crop.image);
  return { ms, loadMs: crop.ms.load };
}

/** Stores the result, then makes and stores the thumbnail, the comparison and (when asked) the PDF. */
async function finish(job: Job, input: Buffer, image: EnhancedImage, before: Before | undefined, ctx: ProcessContext): Promise<EnhanceResult> {
  const t = performance.now();
  const { image: bytes, ...result } = image;
  const outputs: Partial<Record<OutputKind, number>> = { result: await ctx.writeOutput('result', bytes) };
  const original = before ?? (await decodeBefore(input));
  // The picture's labels and the PDF speak the job's language (stored with the request, so after a restart too).
  const locale = job.request.locale ?? DEFAULT_LOCALE;
  const [preview, compare] = await Promise.all([makePreview(bytes), makeComparison(input, bytes, image.output, image.options.model, { before: original, locale })]);
  outputs.preview = await ctx.writeOutput('preview', preview);
  outputs.compare = await ctx.writeOutput('compare', compare);
  if (job.request.report) {
    const pdf = await makeReport({ job: { ...job, name: job.request.name }, result: image, input, before: original, locale });
    outputs.pdf = await ctx.writeOutput('pdf', pdf);
  }
  return { ...result, outputs, ms: { ...result.ms, render: performance.now() - t } };
}

/** Runs an optional write; a full disk (ENOSPC, EDQUOT) is logged and skipped, anything else is thrown. */
async function skipOnFullDisk(write: () => Promise<unknown> | undefined, what: string, ctx: ProcessContext): Promise<void> {
  try {
    await write();
  } catch (error) {
    if (!isDiskFull(error)) throw error;
    ctx.logger.warn({ err: (error as Error).message }, `out of disk space: ${what}`);
  }
}

/**
 * `enhance`: the one call that turns an `EnhanceRequest` into an `EnhanceResult` and its image. Decode (and
 * reduce, for a small output), load the model, tiled inference, finish and encode; progress after every window.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { decodeImage } from '../imaging/input.js';
import { finishImage, resizeAlpha } from '../imaging/output.js';
import { reduceImage } from '../imaging/reduce.js';
import { gentleColourMap, type ColourMap } from '../imaging/tune.js';
import { silentLogger, type Logger } from '../log.js';
import { AUTO_MODEL, normalizeOptions } from '../options.js';
import { EnhanceError } from '../errors.js';
import { DEFAULT_MODELS_DIR } from '../paths.js';
import type { DecodedImage } from '../imaging/input.js';
import type { Device, EnhancedImage, EnhanceOptions, EnhanceProgress, EnhanceRequest, Region } from '../types.js';
import { runTiled, type Samples } from './infer.js';
import { loadModel, planRun, type ModelPool, type RuntimeSettings } from './session.js';
import { mapRegion, planSize } from './sizing.js';

export interface EnhanceContext {
  /** Folder with the prepared models and manifest.json (default: models/ or ENHANCER_MODELS). */
  modelsDir?: string;
  /** Largest input accepted, in pixels, checked from the header before decoding (default 16 megapixels). */
  maxPixels?: number;
  /** Overlap added around each window, in input pixels (default 16). */
  overlap?: number;
  onProgress?: (progress: EnhanceProgress) => void;
  /** Keeps models loaded between calls (the service's engine process); without it each call loads its own. */
  models?: ModelPool;
  /**
   * Keeps a region run's decoded image for the whole run of the same input that follows (the early preview,
   * then the job): without it each call decodes its own.
   */
  decodes?: DecodeReuse;
  /** Threads and GPU for a model this call loads itself (a `models` pool has its own); default every core, GPU 0. */
  runtime?: RuntimeSettings;
  /**
   * Runs only this region of the input, in input pixels, as one window with `overlap` pixels of real context on
   * every side that has any (as a tile of the whole run has), and returns that region of the result: the early
   * preview.
   */
  region?: Region;
  /**
   * Reduce the input before the model when the output is at most this share of the model's (default
   * `REDUCE_FIRST_AT`): 0 never, 1 always; the size benchmark compares the two ways with it.
   */
  reduceFirstAt?: number;
  /** Keep the input's GPS position in the result's EXIF (config `metadata.keepGps`); default dropped. */
  keepGps?: boolean;
  /** Stops the run between two tiles; `enhance` then rejects with the signal's reason. */
  signal?: AbortSignal;
  logger?: Logger;
}

/**
 * What the queue's worker runs: `enhance` itself, or `EngineProcess` (the same call in a child process), or in
 * tests a scripted stand-in whose timing the test controls.
 */
export interface Engine {
  enhance(request: EnhanceRequest, context?: EnhanceContext): Promise<EnhancedImage>;
}

export const DEFAULT_MAX_PIXELS = 16_000_000;
export const DEFAULT_OVERLAP = 16;

/**
 * Working memory per window pixel, measured with onnxruntime's CPU provider (arena off) on 128-512 px windows:
 * RRDBNet keeps 64 channels at 4x resolution alive, the compact net works at 1x. Unknown models get the larger.
 */
const BYTES_PER_WINDOW_PIXEL: Record<string, number> = { x4plus: 15_500, x4fast: 3_800 };
/** Memory for a window's activations plus the blending band; with the process itself this stays under 1.5 GB. */
const WINDOW_BUDGET = 1.05e9;
/**
 * Window after window, the heap fragments (freed activations do not quite fit the next window's; collecting
 * the JS heap after every window did not change that): x4plus peaked at about twice one window's measured
 * activations (13 kB a pixel), 1.57 GB at 1024x1024 before this was counted. Tiled runs budget for it; with
 * the 15.5 kB estimate above that is this factor. A single window has nothing before it.
 */
const SEVERAL_WINDOWS = 1.7;
/** The blending band: float32 RGB at 4x for one window height across the image (4 * 4 * 3 * 4 bytes). */
const BAND_BYTES_PER_WINDOW_ROW_PIXEL = 192;

/**
 * Picks a tile for `auto`: the largest window whose activations and blending band fit the memory budget (the
 * whole image when it fits). On a GPU 192, which fits an 8 GB card.
 */
export function autoTile(model: string, device: Device, width: number, height: number, overlap: number): number {
  if (device === 'cuda') return 192;
  const perPixel = BYTES_PER_WINDOW_PIXEL[model] ?? 15_500;
  const budget = Math.min(WINDOW_BUDGET, os.freemem() * 0.5);
  if (perPixel * width * height <= budget) return 0;
  const cost = (side: number) => SEVERAL_WINDOWS * perPixel * side * side + BAND_BYTES_PER_WINDOW_ROW_PIXEL * side * width;
  let side = Math.floor(Math.sqrt(budget / (SEVERAL_WINDOWS * perPixel)));
  while (side > 64 && cost(side) > budget) side -= 8;
  return Math.max(32, side - 2 * overlap);
}

/**
 * The signature of a result: input bytes, normalised options, model checksum and whether GPS is kept (the
 * result's bytes differ by it).
 */
export function signatureOf(input: Uint8Array, options: EnhanceOptions, modelSha256: string, keepGps = false): string {
  const hash = createHash('sha256');
  hash.update(input);
  const { model, scale, tile, tune, alpha, format, size, quality } = options;
  // A PNG has no quality: it would split the cache over a number that changes nothing.
  hash.update(JSON.stringify([model, scale, tile, tune, alpha, modelSha256, format, size ?? null, format === 'png' ? null : (quality ?? null), keepGps]));
  return hash.digest('hex');
}

/** Precision fallbacks already logged by this process: one line per cause, not one per job. */
const fellBack = new Set<string>();

const isOutOfMemory = (error: unknown) => /alloc|out of memory|bad_alloc|OOM/i.test(String((error as Error)?.message));

/**
 * The decoded image of a region run (the early preview), kept for the whole run of the same input that follows:
 * a job with a preview decoded its image twice in the engine, and a 12 MP JPEG takes about a second to decode on
 * these CPUs. One image at most, and only until that run takes it.
 */
export class DecodeReuse {
  private held?: { key: string; maxPixels: number; image: DecodedImage };

  /** `bytes` decoded (or the kept image of the same bytes); kept for the next call when `keep`. */
  async decode(bytes: Uint8Array, maxPixels: number, keep: boolean, logger?: Logger): Promise<DecodedImage> {
    const key = createHash('sha256').update(bytes).digest('hex');
    const held = this.held;
    this.held = undefined;
    const image = held?.key === key && held.maxPixels === maxPixels ? held.image : await decodeImage(bytes, maxPixels, logger);
    if (keep) this.held = { key, maxPixels, image };
    return image;
  }
}

/** Enhances one image. Throws `EnhanceError` with a one-line reason for anything wrong with the request. */
export async function enhance(request: EnhanceRequest, context: EnhanceContext = {}): Promise<EnhancedImage> {
  const log = context.logger ?? silentLogger;
  const options = normalizeOptions(request.options);
  // `auto` is chosen by the plan (src/pipeline/plan.ts) before a job reaches the engine; a caller that skipped it
  // hears so, not "unknown model auto".
  if (options.model === AUTO_MODEL) throw new EnhanceError('model auto is chosen by the plan before the engine runs: name a model such as x4plus', 'options');
  const overlap = context.overlap ?? DEFAULT_OVERLAP;

  context.signal?.throwIfAborted();
  const dir = context.modelsDir ?? DEFAULT_MODELS_DIR;
  const plan = await planRun(dir, options);
  const t0 = performance.now();
  const maxPixels = context.maxPixels ?? DEFAULT_MAX_PIXELS;
  const whole = context.decodes ? await context.decodes.decode(request.input, maxPixels, Boolean(context.region), log) : await decodeImage(request.input, maxPixels, log);
  const sizes = planSize(whole.width, whole.height, options, plan.entry.scale, context.reduceFirstAt);
  const work = sizes.reduceTo ? await reduceImage(whole, sizes.reduceTo.width, sizes.reduceTo.height) : whole;
  const region = context.region && mapRegion(context.region, whole, work);
  const window = region ? contextWindow(region, work, overlap) : undefined;
  const image = window ? cropImage(work, window) : work;
  const tDecoded = performance.now();

  const tLoad = performance.now();
  if (plan.precisionFallback && !fellBack.has(plan.precisionFallback)) {
    fellBack.add(plan.precisionFallback);
    log.warn({ model: options.model, reason: plan.precisionFallback }, 'precision auto runs float32: int8 is not available');
  }
  const model = await (context.models
    ? context.models.acquire(dir, options.model, plan.device, plan.precision)
    : loadModel(dir, options.model, plan.device, plan.precision, context.runtime));
  const loadMs = performance.now() - tLoad;
  log.info(
    { model: options.model, precision: model.precision, asked: options.precision, device: model.device, fallback: model.fallback, ms: Math.round(loadMs) },
    'model loaded',
  );
  try {
    const tInfer = performance.now();
    // A region runs as one window, as its tile would in the whole run.
    let tile = window ? 0 : options.tile === 'auto' ? autoTile(options.model, model.device, image.width, image.height, overlap) : options.tile;
    const passes = image.alpha && options.alpha === 'model' ? 2 : 1;
    const windows = { done: 0, total: 0 };
    const report = (done: number, perPass: number) => {
      windows.total = perPass * passes;
      const elapsed = performance.now() - tInfer;
      const all = windows.done + done;
      context.onProgress?.({ tilesDone: all, tilesTotal: windows.total, etaMs: (elapsed / all) * (windows.total - all) });
    };
    const run = async (samples: Samples, colour?: ColourMap): Promise<Samples> => {
      for (;;) {
        try {
          const out = await runTiled(model.session, samples, {
            tile,
            overlap,
            scale: model.entry.scale,
            colour,
            signal: context.signal,
            onTile: (done, plan) => report(done, plan.count),
          });
          windows.done += windows.total / passes;
          return out;
        } catch (error) {
          const smallest = Math.min(samples.width, samples.height);
          if (!isOutOfMemory(error) || (tile !== 0 && tile <= 32) || smallest <= 32) throw error;
          const halved = Math.max(32, Math.floor((tile === 0 ? smallest : tile) / 2));
          log.warn({ model: options.model, tile, next: halved }, 'out of memory: halving the tile and retrying');
          tile = halved;
        }
      }
    };

    const max = image.bits === 16 ? 65535 : 255;
    const colour = options.tune === 'gentle' ? gentleColourMap(max) : undefined;
    const rgb = await run({ width: image.width, height: image.height, channels: 3, max, data: image.rgb }, colour);
    let alpha: Uint8Array | Uint16Array | null = null;
    if (image.alpha && options.alpha === 'model') {
      alpha = (await run({ width: image.width, height: image.height, channels: 1, max, data: image.alpha })).data;
    }
    const tInferred = performance.now();
    if (image.alpha && options.alpha === 'resize') {
      alpha = await resizeAlpha(image.alpha, image.width, image.height, model.entry.scale, image.bits);
    }
    // Output pixels per pixel of the model's output: 1 at scale 4, below it for smaller outputs.
    const fx = sizes.out.width / (work.width * model.entry.scale);
    const fy = sizes.out.height / (work.height * model.entry.scale);
    const outWidth = window ? Math.round(rgb.width * fx) : sizes.out.width;
    const outHeight = window ? Math.round(rgb.height * fy) : sizes.out.height;
    const extract = window && region ? mapRegion(offsetRegion(region, window), image, { width: outWidth, height: outHeight }) : undefined;
    // The early preview (a region) is a PNG whatever the job's format, and carries no metadata.
    const format = window ? 'png' : options.format;
    const { bytes, channels, bits } = await finishImage(
      { width: rgb.width, height: rgb.height, bits: image.bits, rgb: rgb.data, alpha, grey: image.grey },
      {
        tune: options.tune,
        width: outWidth,
        height: outHeight,
        extract,
        format,
        quality: options.quality,
        kept: window ? undefined : image.kept,
        densityScale: sizes.out.width / whole.width,
        keepGps: context.keepGps,
      },
    );
    const tDone = performance.now();

    const inputChannels = (image.grey ? 1 : 3) + (image.alpha ? 1 : 0);
    const tiles = windows.done;
    const result: EnhancedImage = {
      image: bytes,
      input: { width: whole.width, height: whole.height, channels: inputChannels, bits: image.bits, format: image.format },
      output: { width: extract?.width ?? outWidth, height: extract?.height ?? outHeight, channels, bits },
      format,
      options,
      modelSha256: model.entry.sha256,
      device: model.device,
      precision: model.precision,
      tile,
      tiles,
      signature: signatureOf(request.input, options, model.entry.sha256, context.keepGps),
      ms: {
        load: loadMs,
        decode: tDecoded - t0,
        infer: tInferred - tInfer,
        encode: tDone - tInferred,
        total: tDecoded - t0 + (tDone - tInfer),
      },
    };
    log.debug({ name: request.name, signature: result.signature.slice(0, 12), ms: result.ms, tile, tiles }, 'enhanced');
    return result;
  } finally {
    await model.release();
  }
}

/** The window a region runs in: the region with `overlap` pixels of context wherever the image has them. */
function contextWindow(region: Region, image: { width: number; height: number }, overlap: number): Region {
  const { left, top, width, height } = region;
  if (left < 0 || top < 0 || width < 1 || height < 1 || left + width > image.width || top + height > image.height) {
    throw new Error(`region ${JSON.stringify(region)} does not fit a ${image.width}x${image.height} image`);
  }
  const x0 = Math.max(0, left - overlap);
  const y0 = Math.max(0, top - overlap);
  const x1 = Math.min(image.width, left + width + overlap);
  const y1 = Math.min(image.height, top + height + overlap);
  return { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
}

/** `region` relative to `window`'s corner. */
const offsetRegion = (region: Region, window: Region): Region => ({ ...region, left: region.left - window.left, top: region.top - window.top });

/**
 * An input-pixel region in output pixels at `scale`. Exact: every output scale is a whole number of pixels per
 * input pixel, so a window's resized grid lines up with the whole image's.
 */
export function scaleRegion(region: Region, scale: number): Region {
  return { left: region.left * scale, top: region.top * scale, width: region.width * scale, height: region.height * scale };
}

/** One window of a decoded image. */
function cropImage(image: DecodedImage, window: Region): DecodedImage {
  const cut = <T extends Uint8Array | Uint16Array>(samples: T, channels: number): T => {
    const out = new (samples.constructor as new (n: number) => T)(window.width * window.height * channels);
    for (let y = 0; y < window.height; y++) {
      const from = ((window.top + y) * image.width + window.left) * channels;
      out.set(samples.subarray(from, from + window.width * channels), y * window.width * channels);
    }
    return out;
  };
  return { ...image, width: window.width, height: window.height, rgb: cut(image.rgb, 3), alpha: image.alpha && cut(image.alpha, 1) };
}

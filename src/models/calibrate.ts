/**
 * Calibration of the int8 models: runs the float calibration graph (see `buildGraph` in `quantize.ts`) over
 * patches of a few natural photos and picks, for every observed tensor, the range that minimises the expected
 * squared error of uint8 quantization (clipping plus rounding).
 *
 * Deterministic by construction: one thread (no reordered sums), a fixed sample of every tensor, and scales
 * rounded to a grid in `quantParams`; two preparations give the same bytes.
 */
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { Range } from './quantize.js';

/** Side of the square patches the photos are cut into: x4plus runs a 64x64 patch in about 1 s on one thread. */
export const PATCH = 64;
/** Every SAMPLE_STRIDE-th value of a tensor is kept: x4plus has ~700 observed tensors, memory stays ~150 MB. */
const SAMPLE_STRIDE = 29;

/**
 * Cuts `photo` (any format sharp reads) into non-overlapping PATCH x PATCH RGB patches, float32 NCHW in [0,1].
 *
 * @example const patches = await photoPatches(await fs.readFile('models/calibration/coffee.png'));
 */
export async function photoPatches(photo: Uint8Array): Promise<Float32Array[]> {
  const { data, info } = await sharp(photo).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const patches: Float32Array[] = [];
  for (let top = 0; top + PATCH <= info.height; top += PATCH) {
    for (let left = 0; left + PATCH <= info.width; left += PATCH) {
      const patch = new Float32Array(3 * PATCH * PATCH);
      for (let y = 0; y < PATCH; y++) {
        for (let x = 0; x < PATCH; x++) {
          const at = ((top + y) * info.width + left + x) * info.channels;
          for (let c = 0; c < 3; c++) patch[c * PATCH * PATCH + y * PATCH + x] = data[at + Math.min(c, info.channels - 1)] / 255;
        }
      }
      patches.push(patch);
    }
  }
  return patches;
}

/**
 * Runs `graph` on every patch and returns the chosen range of every observed tensor.
 *
 * @example const ranges = await calibrate(graph.onnx, graph.observed, patches);
 */
export async function calibrate(graph: Uint8Array, observed: string[], patches: Float32Array[], say: (line: string) => void = () => {}): Promise<Map<string, Range>> {
  const session = await ort.InferenceSession.create(graph, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    logSeverityLevel: 3,
  });
  const samples = new Map<string, Float32Array[]>(observed.map((name) => [name, []]));
  try {
    for (const [i, patch] of patches.entries()) {
      const feeds = { input: new ort.Tensor('float32', patch, [1, 3, PATCH, PATCH]) };
      const results = await session.run(feeds, observed);
      for (const name of observed) {
        const data = results[name].data as Float32Array;
        const kept = new Float32Array(Math.ceil(data.length / SAMPLE_STRIDE));
        for (let j = 0, k = 0; j < data.length; j += SAMPLE_STRIDE, k++) kept[k] = data[j];
        samples.get(name)!.push(kept);
        results[name].dispose();
      }
      say(`calibration patch ${i + 1}/${patches.length}`);
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<string, Range>();
  for (const [name, parts] of samples) {
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    ranges.set(name, bestRange(all.sort()));
  }
  return ranges;
}

/** Tail fractions tried at each end: from the exact extreme to the 1% quantile. */
const TAILS = [0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2];

/**
 * The range over `sorted` values with the least expected squared uint8 error: values outside are clipped to
 * it, values inside are rounded to a step of (hi - lo) / 255 (uniform error, variance step^2 / 12). Clipping
 * sums come from prefix sums, so each candidate costs O(1).
 *
 * @example bestRange(Float32Array.from([0, 0.1, 0.2, 5]).sort())
 */
export function bestRange(sorted: Float32Array): Range {
  const n = sorted.length;
  if (n === 0) return { lo: 0, hi: 1 };
  const sum = new Float64Array(n + 1);
  const sq = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    sum[i + 1] = sum[i] + sorted[i];
    sq[i + 1] = sq[i] + sorted[i] * sorted[i];
  }
  let best = { lo: sorted[0], hi: sorted[n - 1], err: Infinity };
  for (const tailLo of TAILS) {
    for (const tailHi of TAILS) {
      const a = Math.floor(tailLo * n);
      const b = n - 1 - Math.floor(tailHi * n);
      const lo = Math.min(0, sorted[a]);
      const hi = Math.max(0, sorted[b]);
      // Values below lo: sum (lo - v)^2; above hi: sum (v - hi)^2; lo <= 0 <= hi, so zero itself is exact.
      const below = lowerBound(sorted, lo);
      const above = upperBound(sorted, hi);
      const clipLo = below * lo * lo - 2 * lo * sum[below] + sq[below];
      const m = n - above;
      const clipHi = sq[n] - sq[above] - 2 * hi * (sum[n] - sum[above]) + m * hi * hi;
      const step = (hi - lo) / 255;
      const err = clipLo + clipHi + (above - below) * (step * step) / 12;
      if (err < best.err) best = { lo, hi, err };
    }
  }
  return { lo: best.lo, hi: best.hi };
}

/** First index whose value is >= x. */
function lowerBound(sorted: Float32Array, x: number): number {
  let l = 0;
  let r = sorted.length;
  while (l < r) {
    const mid = (l + r) >> 1;
    if (sorted[mid] < x) l = mid + 1;
    else r = mid;
  }
  return l;
}

/** First index whose value is > x. */
function upperBound(sorted: Float32Array, x: number): number {
  let l = 0;
  let r = sorted.length;
  while (l < r) {
    const mid = (l + r) >> 1;
    if (sorted[mid] <= x) l = mid + 1;
    else r = mid;
  }
  return l;
}

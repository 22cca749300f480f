/**
 * Calibration of the int8 models: runs the float calibration graph (see `buildGraph` in `quantize.ts`) over
 * patches of a few natural photos and takes, for every observed tensor, the whole range it showed (min to max).
 *
 * Clipping the rare extremes instead (the range of least expected clipping plus rounding error, over tails of
 * 1e-5 to 1e-2) was better on the calibration photos themselves but worse on photos it had not seen: on the
 * held-out rocket photos, x4plus 36.2 / 38.5 dB against float32 with it, 37.3 / 38.6 dB with min/max, and its
 * red channel was 2.1 levels darker instead of 1.2; x4fast 36.4 / 40.5 dB against 36.9 / 39.9 dB. Three small
 * photos do not show enough of the tails to clip them safely.
 *
 * Deterministic by construction: one thread (no reordered sums; the Gram matrices' Gemm splits its output, never
 * a sum, between its two threads), exact extremes, and scales rounded to a grid in `quantParams`; two
 * preparations give the same bytes.
 */
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import type { NcnnLayer, NcnnNet } from './ncnn.js';
import { buildGraph, readersOf, type BuiltGraph, type Range } from './quantize.js';
import { choleskyUpper, GramAccumulator } from './rounding.js';

/** Side of the square patches the photos are cut into: x4plus's calibration runs take about 2 s a patch on one thread. */
export const PATCH = 64;

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

/** A single-threaded session: float sums in one fixed order, so every preparation sees the same values. */
async function oneThread(graph: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(graph, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    logSeverityLevel: 3,
  });
}

/** Runs `graph` on every patch and hands each of the `names` outputs (data, channels) to `visit`. */
async function runPatches(
  graph: Uint8Array,
  names: string[],
  patches: Float32Array[],
  visit: (name: string, data: Float32Array, channels: number) => void | Promise<void>,
): Promise<void> {
  const session = await oneThread(graph);
  try {
    for (const patch of patches) {
      const results = await session.run({ input: new ort.Tensor('float32', patch, [1, 3, PATCH, PATCH]) }, names);
      for (const name of names) {
        await visit(name, results[name].data as Float32Array, results[name].dims[1]);
        results[name].dispose();
      }
    }
  } finally {
    await session.release();
  }
}

/** Accumulates per-channel means of NCHW tensors. */
class ChannelMeans {
  readonly sums = new Map<string, { sum: Float64Array; count: number }>();
  add(name: string, data: Float32Array, channels: number): void {
    const plane = data.length / channels;
    let acc = this.sums.get(name);
    if (!acc) this.sums.set(name, (acc = { sum: new Float64Array(channels), count: 0 }));
    for (let c = 0; c < channels; c++) {
      let s = 0;
      for (let i = c * plane; i < (c + 1) * plane; i++) s += data[i];
      acc.sum[c] += s;
    }
    acc.count += plane;
  }
  mean(name: string): Float64Array {
    const acc = this.sums.get(name)!;
    return acc.sum.map((s) => s / acc.count);
  }
}

/** How one model is made int8: see `BUILT_IN` in prepare.ts for what each model uses and why. */
export interface Int8Recipe {
  /** How many of the last convolutions stay float32 (at least 1). */
  floatConvs: number;
  /** See `Int8Plan.sharedConcat`. */
  sharedConcat?: boolean;
  /** Equalise each split PReLU's pair of convolutions (`equalisePRelus`). */
  equalise?: boolean;
  /** Round the weights against their inputs' Gram matrices (rounding.ts) instead of to nearest. */
  roundAgainstInputs?: boolean;
}

/**
 * Calibrates `net` on `patches` and returns the int8 QDQ ONNX: ranges from the float calibration graph, then
 * bias correction from the per-channel means of every convolution's input (see `Int8Plan.inputMeans`).
 *
 * @example const onnx = await quantizeNet(net, 'x4fast', await photoPatches(photo), { floatConvs: 2, equalise: true });
 */
export async function quantizeNet(net: NcnnNet, modelName: string, patches: Float32Array[], recipe: Int8Recipe): Promise<Uint8Array> {
  const { floatConvs, sharedConcat } = recipe;
  if (recipe.equalise) net = await equalisePRelus(net, modelName, patches, floatConvs);
  const graph = buildGraph(net, modelName, undefined, floatConvs);
  const ranges = new Map<string, Range>(graph.observed.map((name) => [name, { lo: Infinity, hi: -Infinity }]));
  const means = new ChannelMeans();
  const grams = new GramAccumulator();
  const inputs = new Set(graph.convInputs);
  const fetched = [...new Set([...graph.observed, ...graph.convInputs.filter((n) => n !== 'input'), graph.lastConvOutput])];
  const heads = recipe.roundAgainstInputs ? prefixHeads(graph.convReads) : new Map<string, string>();
  const addGram = async (name: string, data: Float32Array, channels: number) => {
    const read = graph.convReads.get(name);
    const side = Math.sqrt(data.length / channels);
    if (read && heads.get(name) === name) await grams.add(name, data, channels, side, side, read.k, read.pad);
  };
  try {
    for (const patch of patches) {
      means.add('input', patch, 3);
      await addGram('input', patch, 3);
    }
    await runPatches(graph.onnx, fetched, patches, async (name, data, channels) => {
      const range = ranges.get(name);
      if (range) {
        for (let i = 0; i < data.length; i++) {
          if (data[i] < range.lo) range.lo = data[i];
          if (data[i] > range.hi) range.hi = data[i];
        }
      }
      if (inputs.has(name) || name === graph.lastConvOutput) means.add(name, data, channels);
      if (inputs.has(name)) await addGram(name, data, channels);
    });
  } finally {
    await grams.release();
  }
  const inputMeans = new Map([...inputs].map((name) => [name, means.mean(name)]));
  const factors = new Map([...grams.grams].map(([name, gram]) => [name, { r: choleskyUpper(gram), size: gram.size }]));
  const roundingFactors = new Map([...heads].map(([name, head]) => [name, factors.get(head)!]));
  const plan = { ranges, inputMeans, sharedConcat, roundingFactors, rounded: new Map<string, Int8Array>() };
  const probe = buildGraph(net, modelName, { ...plan, probe: true }, floatConvs);
  const int8Means = new ChannelMeans();
  await runPatches(probe.onnx, [probe.lastConvOutput], patches, (name, data, channels) => int8Means.add(name, data, channels));
  const floatLast = means.mean(graph.lastConvOutput);
  const lastShift = int8Means.mean(probe.lastConvOutput).map((v, c) => v - floatLast[c]);
  return buildGraph(net, modelName, { ...plan, lastShift }, floatConvs).onnx;
}

/**
 * For each convolution input, the input whose Gram matrix and factor it can use: the longest one it is the first
 * channels of, read with the same kernel. In x4plus each dense block's five convolutions read [x], [x, x1], ...,
 * [x, x1, x2, x3, x4]: the leading block of the last one's Cholesky factor is each other's (H's leading block is
 * R's leading block squared), so one Gram matrix and one factor (K = 1728) serve all five, half the work of five.
 * (The damping is then the last one's, 1% of its mean diagonal, for all five.)
 */
function prefixHeads(reads: BuiltGraph['convReads']): Map<string, string> {
  const startsWith = (long: string[], short: string[]) => short.length <= long.length && short.every((part, i) => part === long[i]);
  const heads = new Map<string, string>();
  for (const [name, read] of reads) {
    let head = name;
    for (const [other, candidate] of reads) {
      const best = reads.get(head)!;
      if (candidate.k === read.k && candidate.pad === read.pad && candidate.parts.length > best.parts.length && startsWith(candidate.parts, read.parts)) head = other;
    }
    heads.set(name, head);
  }
  return heads;
}

/**
 * Cross-layer equalisation of each Conv-PReLU-Conv pair whose PReLU the int8 graph splits (see `splitPRelu` in
 * quantize.ts): PReLU(a * x) = a * PReLU(x) for a > 0, so channel c of the first convolution can be scaled by
 * a_c and the second convolution's input c by 1 / a_c without changing the float result. All channels share one
 * uint8 range, so a channel that spans a small part of it is rounded coarsely; a_c = (R / r_c)^0.75 (r_c the
 * channel's largest magnitude on the patches, R the largest of all, a_c on a grid of 8 steps per octave for
 * deterministic bytes) brings the channels three quarters of the way together in log scale, leaving the second
 * convolution's per-output-channel weight scales some room. Measured on x4fast (two float convolutions): without
 * it the clear sky of rocket-nose.png had row banding of 1.18 levels (held under 1); exponent 0.5: columns 1.66;
 * 1: rows 1.38; 0.75: rows 0.85, columns 0.65, and 41.1 dB against float32 on that photo instead of 39.9.
 *
 * @example const equalised = await equalisePRelus(net, 'x4fast', patches, 2);
 */
export async function equalisePRelus(net: NcnnNet, modelName: string, patches: Float32Array[], floatConvs: number): Promise<NcnnNet> {
  const graph = buildGraph(net, modelName, undefined, floatConvs);
  const split = new Set(graph.convInputs.filter((n) => n.endsWith('_split')));
  const pairs: { value: string; before: NcnnLayer; after: NcnnLayer[] }[] = [];
  for (const layer of net.layers) {
    const value = `blob_${layer.outputs[0]}_split`;
    if (layer.type !== 'PReLU' || !split.has(value)) continue;
    const before = net.layers.find((l) => l.outputs.includes(layer.inputs[0]));
    if (before?.type !== 'Convolution' || (before.params.get(9)?.[0] ?? 0) !== 0) continue;
    pairs.push({ value, before, after: readersOf(net, layer.outputs[0]) });
  }
  const peaks = new Map<string, Float64Array>();
  await runPatches(graph.onnx, pairs.map((p) => p.value), patches, (name, data, channels) => {
    // The second half of the split value is x itself.
    const half = channels / 2;
    const plane = data.length / channels;
    const peak = peaks.get(name) ?? new Float64Array(half);
    for (let c = 0; c < half; c++) {
      for (let i = (half + c) * plane; i < (half + c + 1) * plane; i++) peak[c] = Math.max(peak[c], Math.abs(data[i]));
    }
    peaks.set(name, peak);
  });
  const layers = net.layers.map((l) => ({ ...l, weight: l.weight?.slice(), bias: l.bias?.slice() }));
  const copyOf = new Map(net.layers.map((l, i) => [l, layers[i]]));
  for (const { value, before, after } of pairs) {
    const peak = peaks.get(value)!;
    const all = Math.max(...peak);
    const scale = [...peak].map((r) => (r > 0 ? 2 ** (Math.round(0.75 * Math.log2(all / r) * 8) / 8) : 1));
    const first = copyOf.get(before)!;
    const perOut = first.weight!.length / scale.length;
    for (let c = 0; c < scale.length; c++) {
      for (let i = c * perOut; i < (c + 1) * perOut; i++) first.weight![i] *= scale[c];
      if (first.bias) first.bias[c] *= scale[c];
    }
    for (const reader of after) {
      const second = copyOf.get(reader)!;
      const outCh = second.params.get(0)![0];
      const taps = second.weight!.length / outCh / scale.length;
      for (let o = 0; o < outCh; o++) {
        for (let c = 0; c < scale.length; c++) {
          for (let t = 0; t < taps; t++) second.weight![(o * scale.length + c) * taps + t] /= scale[c];
        }
      }
    }
  }
  return { ...net, layers };
}

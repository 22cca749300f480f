/**
 * Runs a model over an image window by window (see tiler.ts) and blends the windows into the output.
 *
 * Memory stays bounded whatever the image size: besides the output samples, only one window's tensors and a
 * float band one window high (the rows that later windows still add to) are alive at a time.
 */
import ort from 'onnxruntime-node';
import type { ColourMap } from '../imaging/tune.js';
import { blendWeights, planTiles, type TilePlan } from './tiler.js';

/** Interleaved samples, 1 or 3 channels; 1-channel images run through the model as grey RGB. */
export interface Samples {
  width: number;
  height: number;
  channels: 1 | 3;
  /** Largest sample value: 255 or 65535. */
  max: number;
  data: Uint8Array | Uint16Array;
}

export interface InferOptions {
  /** Window contribution in input pixels; 0 = whole image. */
  tile: number;
  /** Context added on each inner side of a window, in input pixels. */
  overlap: number;
  /** The model's scale (4 for RealESRGAN x4). */
  scale: number;
  /** Applied to 3-channel output while it is quantised (the gentle touch-up's saturation and contrast). */
  colour?: ColourMap;
  /** Checked before every window. */
  signal?: AbortSignal;
  /** Called after each window with the number done. */
  onTile?: (done: number, plan: TilePlan) => void;
}

/** Runs `session` over `image`; the result has the same channel count and sample type, `scale` times larger. */
export async function runTiled(session: ort.InferenceSession, image: Samples, options: InferOptions): Promise<Samples> {
  const { width, height, channels, max, data } = image;
  const S = options.scale;
  const plan = planTiles(width, height, options.tile, options.overlap);
  const outW = width * S;
  const outH = height * S;
  const out = data instanceof Uint16Array ? new Uint16Array(outW * outH * channels) : new Uint8Array(outW * outH * channels);
  const winW = plan.x.size;
  const winH = plan.y.size;
  const bandH = winH * S;
  // One window needs no blending: its output is written straight into `out` (see below).
  const band = new Float32Array(plan.count === 1 ? 0 : bandH * outW * channels);
  const input = new Float32Array(3 * winH * winW);
  const plane = winH * winW;
  const inv = 1 / max;
  const xWeights = blendWeights(plan.x, S);
  const yWeightsAll = blendWeights(plan.y, S);
  let done = 0;

  for (let j = 0; j < plan.y.starts.length; j++) {
    const y0 = plan.y.starts[j];
    const yWeights = yWeightsAll[j];
    for (let i = 0; i < plan.x.starts.length; i++) {
      const x0 = plan.x.starts[i];
      options.signal?.throwIfAborted();
      // Window → CHW float tensor in [0,1].
      for (let y = 0; y < winH; y++) {
        let s = ((y0 + y) * width + x0) * channels;
        let d = y * winW;
        for (let x = 0; x < winW; x++, d++, s += channels) {
          const r = data[s] * inv;
          input[d] = r;
          input[plane + d] = channels === 3 ? data[s + 1] * inv : r;
          input[2 * plane + d] = channels === 3 ? data[s + 2] * inv : r;
        }
      }
      const result = await session.run({ input: new ort.Tensor('float32', input, [1, 3, winH, winW]) });
      const tensor = result.output;
      const pred = tensor.data as Float32Array;
      const pw = winW * S;
      const ph = winH * S;
      const pplane = pw * ph;
      if (plan.count === 1) {
        quantizePlanes(pred, pplane, out, channels, max, options.colour);
        tensor.dispose();
        options.onTile?.(++done, plan);
        break;
      }
      const wx = xWeights[i];
      const bx = x0 * S;
      for (let y = 0; y < ph; y++) {
        const wy = yWeights[y];
        let b = (y * outW + bx) * channels;
        let p = y * pw;
        for (let x = 0; x < pw; x++, p++) {
          const w = wy * wx[x];
          if (channels === 3) {
            band[b++] += pred[p] * w;
            band[b++] += pred[pplane + p] * w;
            band[b++] += pred[2 * pplane + p] * w;
          } else {
            band[b++] += ((pred[p] + pred[pplane + p] + pred[2 * pplane + p]) / 3) * w;
          }
        }
      }
      tensor.dispose();
      options.onTile?.(++done, plan);
    }
    if (plan.count === 1) break;
    // Rows above the next window row are final: quantise them and slide the rest of the band up.
    const next = plan.y.starts[j + 1];
    const finalRows = next === undefined ? bandH : (next - y0) * S;
    const rowBase = y0 * S * outW * channels;
    const n = finalRows * outW * channels;
    quantize(band.subarray(0, n), out.subarray(rowBase, rowBase + n), max, channels === 3 ? options.colour : undefined);
    band.copyWithin(0, n);
    band.fill(0, band.length - n);
  }
  return { width: outW, height: outH, channels, max, data: out };
}

/** Float samples in [0,1] (a hair outside after blending) to integers 0..max, rounded; `colour` maps RGB first. */
function quantize(from: Float32Array, to: Uint8Array | Uint16Array, max: number, colour?: ColourMap): void {
  if (colour) {
    mapColour(from, 1, 3, from.length / 3, colour, to, max);
    return;
  }
  if (max === 255) {
    // A clamped view rounds and clamps natively, several times faster than doing it here.
    const clamped = new Uint8ClampedArray(to.buffer, to.byteOffset, to.length);
    for (let k = 0; k < from.length; k++) clamped[k] = from[k] * 255;
    return;
  }
  for (let k = 0; k < from.length; k++) {
    const v = from[k] * max + 0.5;
    to[k] = v < 0 ? 0 : v > max ? max : v;
  }
}

/** Model output planes (CHW) straight to interleaved integer samples; one channel takes the mean of three. */
function quantizePlanes(
  pred: Float32Array,
  plane: number,
  to: Uint8Array | Uint16Array,
  channels: 1 | 3,
  max: number,
  colour?: ColourMap,
): void {
  if (channels === 3 && colour) {
    mapColour(pred, plane, 1, plane, colour, to, max);
    return;
  }
  const target = max === 255 ? new Uint8ClampedArray(to.buffer, to.byteOffset, to.length) : to;
  // Uint8ClampedArray rounds on store; Uint16Array truncates, so add 0.5 there (values are within [0,1]).
  const half = max === 255 ? 0 : 0.5;
  if (channels === 3) {
    for (let p = 0, o = 0; p < plane; p++) {
      target[o++] = pred[p] * max + half;
      target[o++] = pred[plane + p] * max + half;
      target[o++] = pred[2 * plane + p] * max + half;
    }
  } else {
    for (let p = 0; p < plane; p++) target[p] = ((pred[p] + pred[plane + p] + pred[2 * plane + p]) / 3) * max + half;
  }
}

/**
 * `pixels` RGB pixels through `colour` into interleaved integer samples, rounded and clamped to 0..max. Pixel p
 * reads from[p * step], from[p * step + gap] and from[p * step + 2 * gap]: planes (gap = plane size, step 1)
 * or interleaved samples (gap 1, step 3).
 */
function mapColour(from: Float32Array, gap: number, step: number, pixels: number, m: ColourMap, to: Uint8Array | Uint16Array, max: number): void {
  const [r0, g0, b0, o0, r1, g1, b1, o1, r2, g2, b2, o2] = Array.from(m, (v) => v * max);
  if (max === 255) {
    // Uint8ClampedArray rounds and clamps on store; a loop without branches runs twice as fast.
    const clamped = new Uint8ClampedArray(to.buffer, to.byteOffset, to.length);
    for (let p = 0, i = 0, o = 0; p < pixels; p++, i += step) {
      const r = from[i];
      const g = from[i + gap];
      const b = from[i + 2 * gap];
      clamped[o++] = r0 * r + g0 * g + b0 * b + o0;
      clamped[o++] = r1 * r + g1 * g + b1 * b + o1;
      clamped[o++] = r2 * r + g2 * g + b2 * b + o2;
    }
    return;
  }
  const put = (o: number, v: number) => (to[o] = v < 0 ? 0 : v >= max ? max : v + 0.5);
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += step, o += 3) {
    const r = from[i];
    const g = from[i + gap];
    const b = from[i + 2 * gap];
    put(o, r0 * r + g0 * g + b0 * b + o0);
    put(o + 1, r1 * r + g1 * g + b1 * b + o1);
    put(o + 2, r2 * r + g2 * g + b2 * b + o2);
  }
}

/**
 * The arithmetic under the int8 graph (quantize.ts): a measured range as uint8 parameters, the groups of values
 * that meet in a concat and so share one range, the readers of a value, and the weights of a convolution that
 * reads a PReLU split into its two halves.
 */
import type { NcnnLayer, NcnnNet } from './ncnn.js';

/** A measured range of one tensor. */
export interface Range {
  lo: number;
  hi: number;
}

/** uint8 quantization of one tensor. */
export interface QParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Turns a range into uint8 parameters. The scale is rounded to a grid of 64 steps per octave (at most 0.55%
 * away), so that a last-bit difference in a calibration sum cannot change the file: the same photos give the
 * same bytes.
 *
 * @example quantParams({ lo: 0, hi: 1 }, false) // { scale: 1 / 255, zeroPoint: 0 }
 */
export function quantParams(range: Range, onGrid = true): QParams {
  const lo = Math.min(0, range.lo);
  const hi = Math.max(0, range.hi, lo + 1e-6);
  let scale = (hi - lo) / 255;
  if (onGrid) scale = 2 ** (Math.round(Math.log2(scale) * 64) / 64);
  scale = Math.fround(scale);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/**
 * For `sharedConcat`: the values that meet in concats, joined transitively, each group with the parameters of
 * the union of its members' ranges (one object per group, so equal parameters are recognisably the same), and
 * the concats' outputs with them. Members that a sum reads are left out of the map (they keep their own range)
 * but not out of the union, which must hold them. Only measured values group; a concat reading anything else
 * keeps its own envelope.
 */
export function concatGroups(net: NcnnNet, ranges: Map<string, Range>): Map<string, QParams> {
  const valueOf = new Map<string, string>();
  const parent = new Map<string, string>();
  const members = new Set<string>();
  const find = (v: string): string => {
    const p = parent.get(v) ?? v;
    if (p === v) return v;
    const r = find(p);
    parent.set(v, r);
    return r;
  };
  const summed = new Set<string>();
  const outputs = new Map<string, string>();
  for (const layer of net.layers) {
    if (layer.type === 'Input') valueOf.set(layer.outputs[0], 'input');
    else if (layer.type === 'Split') for (const o of layer.outputs) valueOf.set(o, valueOf.get(layer.inputs[0])!);
    else valueOf.set(layer.outputs[0], `blob_${layer.outputs[0]}`);
    if (layer.type === 'Eltwise' || layer.type === 'BinaryOp') for (const b of layer.inputs) summed.add(valueOf.get(b)!);
    if (layer.type !== 'Concat') continue;
    const values = layer.inputs.map((b) => valueOf.get(b)!);
    if (!values.every((v) => ranges.has(v))) continue;
    for (const v of values) members.add(v);
    outputs.set(`blob_${layer.outputs[0]}`, values[0]);
    for (const v of values.slice(1)) if (find(v) !== find(values[0])) parent.set(find(v), find(values[0]));
  }
  const union = new Map<string, Range>();
  for (const v of members) {
    const root = find(v);
    const r = ranges.get(v)!;
    const u = union.get(root) ?? { lo: Infinity, hi: -Infinity };
    union.set(root, { lo: Math.min(u.lo, r.lo), hi: Math.max(u.hi, r.hi) });
  }
  const params = new Map([...union].map(([root, range]) => [root, quantParams(range)]));
  const own = [...members].filter((v) => !summed.has(v));
  return new Map([...own.map((v) => [v, params.get(find(v))!] as const), ...[...outputs].map(([o, v]) => [o, params.get(find(v))!] as const)]);
}

/** The layers that read `blob` (through Splits). */
export function readersOf(net: NcnnNet, blob: string): NcnnLayer[] {
  const readers: NcnnLayer[] = [];
  for (const layer of net.layers) {
    if (layer.type === 'Input' || !layer.inputs.includes(blob)) continue;
    if (layer.type === 'Split') for (const o of layer.outputs) readers.push(...readersOf(net, o));
    else readers.push(layer);
  }
  return readers;
}

/**
 * The weights of a convolution that reads [Relu(x), x] instead of PReLU(x): [W * (1 - slope), W * slope] along
 * the input channels, so that W * PReLU(x) is unchanged.
 *
 * @example splitWeights(Float32Array.of(2), 1, 1, Float32Array.of(0.25)) // [1.5, 0.5]
 */
export function splitWeights(weight: Float32Array, outCh: number, taps: number, slopes: Float32Array): Float32Array {
  const inCh = weight.length / outCh / taps;
  const split = new Float32Array(2 * weight.length);
  for (let o = 0; o < outCh; o++) {
    for (let c = 0; c < inCh; c++) {
      for (let t = 0; t < taps; t++) {
        const w = weight[(o * inCh + c) * taps + t];
        split[(o * 2 * inCh + c) * taps + t] = w * (1 - slopes[c]);
        split[(o * 2 * inCh + inCh + c) * taps + t] = w * slopes[c];
      }
    }
  }
  return split;
}

/**
 * Where a run's sizes come from: the output size (`scale` or `size`), whether the input is reduced before the
 * model (a small output), and how a region of the input (the early preview) maps into the output.
 */
import { outputSize } from '../options.js';
import type { EnhanceOptions, Region } from '../types.js';

/**
 * Reduce the input first only when the output is at most this share of the model's full output, side for side,
 * and the input is over {@link REDUCE_FIRST_ABOVE} pixels. `enhancer bench --sizes` on the 12 held photos
 * (x4fast; docs/doors.md#sizes): reducing first lost 5.2 dB against the truth at 25% of 4x, 2.5 dB at 50% and
 * 0.6 dB at 75%, for 18%, 34% and 70% of the time. So the full path wins wherever its time is bearable; past
 * half of 4x on a large photo it is not (x4plus on 4 MP is about 14 minutes on two cores, 4x the reduced run).
 */
export const REDUCE_FIRST_AT = 0.5;
/** Input pixels above which a small output reduces first (see {@link REDUCE_FIRST_AT}). */
export const REDUCE_FIRST_ABOVE = 4_000_000;

export interface SizePlan {
  /** The result's size. */
  out: { width: number; height: number };
  /** The size the input is reduced to before the model, or undefined when it runs at full size. */
  reduceTo?: { width: number; height: number };
}

/** The plan for an input of `width` x `height` with a model that enlarges `modelScale` times. */
export function planSize(width: number, height: number, options: Pick<EnhanceOptions, 'scale' | 'size'>, modelScale: number, reduceAt?: number): SizePlan {
  const out = outputSize(width, height, options, modelScale);
  const share = Math.max(out.width / (width * modelScale), out.height / (height * modelScale));
  // Asked for (the benchmark): that share, whatever the input's size; else the rule above.
  const large = reduceAt !== undefined || width * height > REDUCE_FIRST_ABOVE;
  if (!large || share > (reduceAt ?? REDUCE_FIRST_AT)) return { out };
  // The model's output lands on the target or just above it; the last reduction is then a few pixels at most.
  const reduceTo = { width: Math.ceil(out.width / modelScale), height: Math.ceil(out.height / modelScale) };
  return reduceTo.width < width && reduceTo.height < height ? { out, reduceTo } : { out };
}

/** `region` of an image `from` big in the same image `to` big (rounded outwards, inside the image). */
export function mapRegion(region: Region, from: { width: number; height: number }, to: { width: number; height: number }): Region {
  if (from.width === to.width && from.height === to.height) return region;
  const kx = to.width / from.width;
  const ky = to.height / from.height;
  const left = Math.min(to.width - 1, Math.floor(region.left * kx));
  const top = Math.min(to.height - 1, Math.floor(region.top * ky));
  const right = Math.min(to.width, Math.max(left + 1, Math.ceil((region.left + region.width) * kx)));
  const bottom = Math.min(to.height, Math.max(top + 1, Math.ceil((region.top + region.height) * ky)));
  return { left, top, width: right - left, height: bottom - top };
}

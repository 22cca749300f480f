/**
 * The `gentle` touch-up applied after the model unless `tune: 'raw'` is asked for: the model's output is a
 * little soft and flat, and these small amounts bring it back without halos.
 *
 * | step       | value                                                         |
 * | ---------- | ------------------------------------------------------------- |
 * | saturation | x1.05 around Rec. 709 luma                                    |
 * | contrast   | x1.04 around mid-grey                                         |
 * | sharpen    | 3x3 unsharp mask, amount 0.35 (out = in + 0.35 * (in - blur)) |
 *
 * Saturation and contrast together are one affine colour map, applied to the model's float output while it is
 * quantised (see `runTiled`): no pass of its own and one rounding instead of two (sharp's recomb() would also
 * drop 16-bit samples to 8-bit precision). The sharpening is a sharp convolve(). Sharp's LAB-based sharpen()
 * and modulate() took 140 ms on a 1024x1024 result.
 */
import type { Sharp } from 'sharp';

export const GENTLE = { saturation: 1.05, contrast: 1.04, sharpen: 0.35 } as const;

/** Rec. 709 luma weights. */
const LUMA = [0.2126, 0.7152, 0.0722] as const;

/**
 * An affine map of RGB samples in [0,1]: out[c] = m[4c] * r + m[4c+1] * g + m[4c+2] * b + m[4c+3].
 * The result is clamped to [0,1] when it is quantised.
 */
export type ColourMap = Float32Array;

const BLUR = [1, 2, 1, 2, 4, 2, 1, 2, 1].map((v) => v / 16);
const SHARPEN_KERNEL = BLUR.map((v, i) => (i === 4 ? 1 + GENTLE.sharpen : 0) - GENTLE.sharpen * v);

/**
 * The gentle saturation and contrast as one `ColourMap` for samples whose largest value is `max`: saturation
 * moves each sample away from the pixel's luma, contrast away from mid-grey (0.5). It also adds half a level,
 * because the sharpening after it (libvips' convolve) truncates where it should round; the kernel sums to one,
 * so the half level passes through it unchanged and turns truncation into rounding.
 */
export function gentleColourMap(max: number): ColourMap {
  const s = GENTLE.saturation;
  const k = GENTLE.contrast;
  const map = new Float32Array(12);
  for (let c = 0; c < 3; c++) {
    for (let j = 0; j < 3; j++) map[4 * c + j] = k * (1 - s) * LUMA[j] + (c === j ? k * s : 0);
    map[4 * c + 3] = 0.5 * (1 - k) + 0.5 / max;
  }
  return map;
}

/** Adds the gentle sharpening to a sharp pipeline. */
export function sharpenGently(pipeline: Sharp): Sharp {
  return pipeline.convolve({ width: 3, height: 3, kernel: SHARPEN_KERNEL });
}

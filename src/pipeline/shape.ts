/**
 * What a job will cost, known from its request and its image's header before it runs: the early preview's region
 * and window, and the job's shape (model, megapixels in and out, preview, PDF) that learned costs turn into an
 * ETA. The processor uses them to run the job; the queue, through its checks (admission.ts), to say when it is done.
 */
import { DEFAULT_OVERLAP } from '../engine/enhance.js';
import { detailRegion, type Before } from '../imaging/compare.js';
import { outputSize } from '../options.js';
import type { JobShape } from '../queue/throughput.js';
import type { Job, Region } from '../types.js';

/** The longest side of the early preview's region, in input pixels: 768 output pixels at 4x, a chat photo. */
export const PREVIEW_SIDE = 192;
/**
 * The early preview's model run (its region and the context around it) covers at most this share of the image,
 * so it adds little to the job on a CPU, where the model's time grows with the pixels. Measured with 8% on x4plus
 * 256x256 (a 72x72 window): the preview's run took 1.1-1.6 s besides the model load, 9-12% of the job, since a
 * first run of a new shape costs more than its share; hence 6%, which skips images that small.
 */
export const PREVIEW_SHARE = 0.06;
/** Below this side the region says too little to be worth a preview: the whole job is quick anyway. */
const PREVIEW_MIN_SIDE = 32;

/**
 * The region an early preview shows, in input pixels, or null when the image is too small to need one: the
 * most detailed square of up to `PREVIEW_SIDE`, whose run with its context stays within `PREVIEW_SHARE`.
 */
export function previewRegion(before: Before, overlap = DEFAULT_OVERLAP): Region | null {
  const side = previewSide(before.width, before.height, overlap);
  return side === null ? null : detailRegion(before, before.width, before.height, side);
}

/** The side of the early preview's square region for an image of this size, or null when it gets none. */
function previewSide(width: number, height: number, overlap: number): number | null {
  const side = Math.min(PREVIEW_SIDE, width, height, Math.floor(Math.sqrt(PREVIEW_SHARE * width * height)) - 2 * overlap);
  return side < PREVIEW_MIN_SIDE ? null : side;
}

/**
 * The pixels the early preview's run sees for an image of this size (its region and the context around it, at
 * most), or 0 when the image is too small for one: what the preview costs, known from the header at submit.
 */
export function previewWindowPixels(width: number, height: number, overlap = DEFAULT_OVERLAP): number {
  const side = previewSide(width, height, overlap);
  return side === null ? 0 : Math.min(width, side + 2 * overlap) * Math.min(height, side + 2 * overlap);
}

/** A job's shape for its costs, from what the queue knows at submit. */
export function shapeOf(job: Job): JobShape {
  const { options, earlyPreview, report } = job.request;
  // Output pixels per input pixel along a side: `scale`, or what `size` makes of this input.
  const scale = outputSize(job.width, job.height, options).width / job.width;
  return shapeFor({ model: options.model, width: job.width, height: job.height, scale, earlyPreview, report });
}

/** The shape of a job not made yet (the plan weighs each model it could run with this). */
export function shapeFor(job: { model: string; width: number; height: number; scale: number; earlyPreview?: boolean; report?: boolean }): JobShape {
  const pixels = job.width * job.height;
  return {
    model: job.model,
    mp: pixels / 1e6,
    outMP: (pixels * job.scale ** 2) / 1e6,
    previewMP: job.earlyPreview ? previewWindowPixels(job.width, job.height) / 1e6 : 0,
    report: Boolean(job.report),
  };
}

/**
 * How large one image may be, whatever the config says: its 4x result must fit in one Node Buffer, which the
 * engine's result and sharp's raw input and PNG output each must hold whole. The config loader bounds
 * `limits.maxPixels` with it; the header check (src/imaging/input.ts) refuses an image past it.
 */
import { constants as bufferConstants } from 'node:buffer';

/**
 * The most bytes one image's samples may take: Node's largest Buffer (4 GiB on 64-bit), which the engine's result
 * and sharp's raw input and PNG output each must fit in whole. Before this was checked, `limits.maxPixels` took
 * up to 268 MP but an 8-bit RGB input over about 89 MP failed deep in the engine ("Invalid typed array length").
 */
export const MAX_RAW_BYTES = bufferConstants.MAX_LENGTH;

/**
 * Bytes of an input's 4x result as raw samples (the model always runs at 4x; scale 2 and 3 are a downscale after).
 * The model's output holds at least RGB; alpha adds a channel; 16-bit input gives 16-bit samples.
 *
 * @example resultRawBytes(1000, 1000, 3, 8) // 48_000_000
 */
export function resultRawBytes(width: number, height: number, channels: number, bits: 8 | 16): number {
  return width * height * 16 * Math.max(3, channels) * (bits / 8);
}

/** The largest input whose result can be held at all: 8-bit RGB, about 89.5 MP; `limits.maxPixels` stops here. */
export const MAX_INPUT_PIXELS = Math.floor(MAX_RAW_BYTES / resultRawBytes(1, 1, 3, 8));

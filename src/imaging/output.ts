/**
 * Output: turns the model's 4x samples into the delivered PNG (lossless): touch-up, greyscale and alpha
 * restored, downscale to the asked scale, same bit depth as the input. No metadata is copied.
 */
import sharp, { type Sharp } from 'sharp';
import type { Region, Tune } from '../types.js';
import { sharpenGently } from './tune.js';

export interface ModelOutput {
  width: number;
  height: number;
  bits: 8 | 16;
  /** width * height * 3 samples. */
  rgb: Uint8Array | Uint16Array;
  /** width * height samples, or null. */
  alpha: Uint8Array | Uint16Array | null;
  grey: boolean;
}

export interface FinishOptions {
  /** `gentle` sharpens here; its colour step is applied earlier, while the model's output is quantised. */
  tune: Tune;
  /** Final size; smaller than the model's output for scale 2 and 3. */
  width: number;
  height: number;
  /** Keep only this part of the final size (the early preview's region, cut after sharpening and resizing). */
  extract?: Region;
}

/** zlib level 3: 2-3x faster than the default 6 on photos, for files about 3% larger. */
const PNG_LEVEL = 3;

const rawInput = (samples: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4) =>
  sharp(samples, { raw: { width, height, channels }, limitInputPixels: false });

async function toSamples(pipeline: Sharp, bits: 8 | 16): Promise<Uint8Array | Uint16Array> {
  const data = await pipeline.raw({ depth: bits === 16 ? 'ushort' : 'uchar' }).toBuffer();
  return bits === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data);
}

/** Produces the final PNG from the model's output. */
export async function finishPng(image: ModelOutput, options: FinishOptions): Promise<{ png: Buffer; channels: number }> {
  const { width, height, bits, alpha, grey } = image;
  const gentle = options.tune === 'gentle';
  const colour = grey ? 1 : 3;
  const channels = (colour + (alpha ? 1 : 0)) as 1 | 2 | 3 | 4;
  let pipeline: Sharp;
  if (channels === 3) {
    // The common case runs as one pipeline: sharpening, resize and encode.
    pipeline = rawInput(image.rgb, width, height, 3);
    if (bits === 16) pipeline = pipeline.toColourspace('rgb16');
    if (gentle) pipeline = sharpenGently(pipeline);
  } else {
    let rgb = image.rgb;
    if (gentle) {
      let sharpened = rawInput(rgb, width, height, 3);
      if (bits === 16) sharpened = sharpened.toColourspace('rgb16');
      rgb = await toSamples(sharpenGently(sharpened).toColourspace(bits === 16 ? 'rgb16' : 'srgb'), bits);
    }
    pipeline = rawInput(interleave(rgb, alpha, grey, width * height, bits), width, height, channels);
  }
  if (options.width !== width || options.height !== height) {
    pipeline = pipeline.resize(options.width, options.height, { kernel: 'lanczos3', fit: 'fill' });
  }
  if (options.extract) pipeline = pipeline.extract(options.extract);
  if (bits === 16) pipeline = pipeline.toColourspace(grey ? 'grey16' : 'rgb16');
  else if (grey) pipeline = pipeline.toColourspace('b-w');
  const png = await pipeline.png({ compressionLevel: PNG_LEVEL }).toBuffer();
  return { png, channels };
}

/** RGB (+ alpha) into interleaved samples; grey images keep one colour channel (the mean of R, G, B). */
function interleave(
  rgb: Uint8Array | Uint16Array,
  alpha: Uint8Array | Uint16Array | null,
  grey: boolean,
  pixels: number,
  bits: 8 | 16,
): Uint8Array | Uint16Array {
  const channels = (grey ? 1 : 3) + (alpha ? 1 : 0);
  const out = bits === 16 ? new Uint16Array(pixels * channels) : new Uint8Array(pixels * channels);
  for (let p = 0, o = 0; p < pixels; p++) {
    if (grey) {
      out[o++] = Math.round((rgb[p * 3] + rgb[p * 3 + 1] + rgb[p * 3 + 2]) / 3);
    } else {
      out[o++] = rgb[p * 3];
      out[o++] = rgb[p * 3 + 1];
      out[o++] = rgb[p * 3 + 2];
    }
    if (alpha) out[o++] = alpha[p];
  }
  return out;
}

/** Enlarges an alpha channel with a high-quality filter (alpha: 'resize'). */
export async function resizeAlpha(
  alpha: Uint8Array | Uint16Array,
  width: number,
  height: number,
  scale: number,
  bits: 8 | 16,
): Promise<Uint8Array | Uint16Array> {
  const pipeline = rawInput(alpha, width, height, 1)
    .resize(width * scale, height * scale, { kernel: 'lanczos3', fit: 'fill' })
    // Without this sharp hands back three channels.
    .toColourspace(bits === 16 ? 'grey16' : 'b-w');
  return toSamples(pipeline, bits);
}

/**
 * Output: turns the model's 4x samples into the delivered image: touch-up, greyscale and alpha restored, reduced
 * to the asked size, the input's metadata written back (see metadata.ts), encoded in the asked format. PNG keeps
 * the input's bit depth; WebP and JPEG are 8-bit; AVIF 16-bit input is written at 12 bits.
 */
import sharp, { type Sharp } from 'sharp';
import { EnhanceError } from '../errors.js';
import type { OutputFormat, Region, Tune } from '../types.js';
import { withMetadata, type KeptMetadata } from './metadata.js';
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
  format: OutputFormat;
  /** For webp (lossy only when given), jpeg and avif. */
  quality?: number;
  /** The input's metadata to write back; none for a picture that is not the result (the early preview). */
  kept?: KeptMetadata;
  /** Output pixels per input pixel, for the density. */
  densityScale?: number;
  keepGps?: boolean;
}

/** Default qualities: JPEG 90 and AVIF 60 (see docs/doors.md#formats for the bytes and PSNR they gave). */
export const DEFAULT_QUALITY = { jpeg: 90, avif: 60 } as const;
/** WebP's largest side. */
const WEBP_MAX_SIDE = 16383;

/** zlib level 3: 2-3x faster than the default 6 on photos, for files about 3% larger. */
const PNG_LEVEL = 3;

const rawInput = (samples: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4) =>
  sharp(samples, { raw: { width, height, channels }, limitInputPixels: false });

async function toSamples(pipeline: Sharp, bits: 8 | 16): Promise<Uint8Array | Uint16Array> {
  const data = await pipeline.raw({ depth: bits === 16 ? 'ushort' : 'uchar' }).toBuffer();
  return bits === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data);
}

/** Produces the final image from the model's output. */
export async function finishImage(image: ModelOutput, options: FinishOptions): Promise<{ bytes: Buffer; channels: number; bits: 8 | 12 | 16 }> {
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
  const { format } = options;
  const size = options.extract ?? { width: options.width, height: options.height };
  if (format === 'webp' && Math.max(size.width, size.height) > WEBP_MAX_SIDE) {
    throw new EnhanceError(`format webp holds at most ${WEBP_MAX_SIDE} pixels a side, and this result is ${size.width}x${size.height}: ask for a smaller size, or png`, 'options');
  }
  const kept = options.kept ?? {};
  const carries = Boolean(kept.exif || kept.icc || kept.density);
  const outBits = format === 'png' ? bits : format === 'avif' && bits === 16 ? 12 : 8;
  if (format === 'jpeg' && alpha) {
    // JPEG has no transparency: on white, as the preview and the PDF show it, rather than libvips' black.
    pipeline = pipeline.flatten({ background: '#ffffff' });
  }
  const outChannels = format === 'jpeg' && alpha ? channels - 1 : channels;
  if (format !== 'png' && !carries) return { bytes: await encode(pipeline, format, options.quality, bits), channels: outChannels, bits: outBits };
  // A PNG first, its metadata chunks written in; for another format, sharp reads them back from it (keepMetadata)
  // and writes them its own way. Compression level 0 there: the PNG lives only between two steps.
  const png = await pipeline.png({ compressionLevel: format === 'png' ? PNG_LEVEL : 0 }).toBuffer();
  const written = carries
    ? withMetadata(png, kept, { width: size.width, height: size.height, densityScale: options.densityScale ?? 1, keepGps: options.keepGps ?? false })
    : png;
  if (format === 'png') return { bytes: written, channels, bits };
  return { bytes: await encode(sharp(written, { limitInputPixels: false }).keepMetadata(), format, options.quality, bits), channels: outChannels, bits: outBits };
}

/** Encodes `pipeline` as `format`; 16-bit samples become 8 bits (12 for AVIF) as each format allows. */
async function encode(pipeline: Sharp, format: Exclude<OutputFormat, 'png'>, quality: number | undefined, bits: 8 | 16): Promise<Buffer> {
  switch (format) {
    case 'webp':
      return pipeline.webp(quality === undefined ? { lossless: true } : { quality }).toBuffer();
    case 'jpeg':
      return pipeline.jpeg({ quality: quality ?? DEFAULT_QUALITY.jpeg }).toBuffer();
    case 'avif':
      return pipeline.avif({ quality: quality ?? DEFAULT_QUALITY.avif, bitdepth: bits === 16 ? 12 : 8 }).toBuffer();
  }
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

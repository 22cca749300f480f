/**
 * Input: checks an image from its header, then decodes it to RGB samples the model can read, with EXIF
 * orientation applied and alpha split off: in the input's own RGB colour space when it has an ICC profile (kept,
 * with its EXIF and density, for the result: see metadata.ts), else sRGB. Every refusal is an `EnhanceError` with a one-line reason.
 */
import sharp, { type Metadata } from 'sharp';
import { EnhanceError } from '../errors.js';
import { MAX_RAW_BYTES, resultRawBytes } from '../limits.js';
import type { Text } from '../i18n/i18n.js';
import type { Logger } from '../log.js';
import { isRgbProfile, keptMetadata, type KeptMetadata } from './metadata.js';

/** Formats accepted as input. SVG and PDF are left out on purpose: they can reference other files. */
export const INPUT_FORMATS = ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif', 'heif'] as const;

/** A decoded image, interleaved, 3 colour channels in sRGB or in the space of `kept.icc`. */
export interface DecodedImage {
  width: number;
  height: number;
  bits: 8 | 16;
  /** width * height * 3 samples. */
  rgb: Uint8Array | Uint16Array;
  /** width * height samples, or null when the image is opaque. */
  alpha: Uint8Array | Uint16Array | null;
  /** The source had no colour: the result is written as greyscale too. */
  grey: boolean;
  /** Detected container format, e.g. `png`. */
  format: string;
  /** What the result carries of the input's metadata. */
  kept: KeptMetadata;
}

/**
 * Reads sharp's error text into a reason a person can act on, in their language. libvips' own words ("VipsJpeg:
 * premature end of JPEG image", "vipspng: libpng read error") stay out of it: they say nothing a person can do,
 * and are English on every page; {@link unreadable} logs them for the operator instead.
 *
 * @example
 * decodeReason('VipsJpeg: premature end of JPEG image'); // { key: 'reason.damaged' }
 */
export function decodeReason(message: string): Text {
  if (/unsupported image format/i.test(message)) return { key: 'reason.notImage' };
  // A HEIC photo (an iPhone's default) has a HEIF header sharp reads, but sharp's own libvips is built without the
  // HEVC decoder (a patent matter): "heif: Error while loading plugin: Support for this compression format has not
  // been built in", or "Unsupported codec" from newer libheif.
  if (/compression format has not been built in|unsupported (codec|feature)/i.test(message)) return { key: 'reason.unsupportedKind' };
  // With failOn 'warning', sharp sometimes reports only that a warning stopped it, without libvips' own text
  // (seen on the same truncated JPEG, about one run in ten): decoding warnings mean damaged data.
  if (/warning treated as error/i.test(message)) return { key: 'reason.damagedAtWarning' };
  // What sharp 0.34 said for files cut at 60% or after their header: "VipsJpeg: premature end of JPEG image",
  // "vipspng: libpng read error", "webp: unable to parse image", "gifload_buffer: Unexpected end of GIF source
  // data", "heif: ... bad seek", and "Input buffer has corrupt header" for a PNG with a broken first chunk.
  if (/premature end|truncated|unexpected end|corrupt|invalid|bad |read error|damaged|unable to parse/i.test(message)) return { key: 'reason.damaged' };
  return { key: 'reason.undecodable' };
}

/**
 * The refusal for an image sharp could not read: {@link decodeReason}'s line for its person, and sharp's own words
 * written to `logger` for the operator, who may need them (a library without a codec, a file damaged in transit).
 */
export function unreadable(error: unknown, logger?: Pick<Logger, 'warn'>): EnhanceError {
  const said = error instanceof Error ? error.message : String(error);
  const reason = decodeReason(said);
  // A file that is no image at all tells the operator nothing; a damaged one or a missing codec may.
  if (reason.key !== 'reason.notImage') logger?.warn({ reason: reason.key, decoder: said.split('\n')[0] }, 'an image could not be decoded; its person is told in plain words');
  return new EnhanceError(reason, 'input');
}

/** Refuses a file over `maxBytes`; callers check this before reading a large file into memory. */
export function checkFileSize(bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) throw new EnhanceError({ key: 'reason.fileTooLarge', values: { bytes, limit: maxBytes } }, 'input');
}

export { MAX_INPUT_PIXELS, MAX_RAW_BYTES, resultRawBytes } from '../limits.js';

/** What the header says, checked: a supported still image within the pixel limit. */
export interface ImageHeader {
  width: number;
  height: number;
  format: string;
  meta: Metadata;
}

/**
 * Checks the header of `bytes` without decoding the pixels; refuses anything over `maxPixels`. `logger` gets
 * sharp's own words when it cannot read the header.
 */
export async function probeImage(bytes: Uint8Array, maxPixels: number, logger?: Pick<Logger, 'warn'>): Promise<ImageHeader> {
  if (bytes.length === 0) throw new EnhanceError({ key: 'reason.empty' }, 'input');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw unreadable(error, logger);
  }
  const format = meta.format ?? 'unknown';
  if (!(INPUT_FORMATS as readonly string[]).includes(format)) {
    throw new EnhanceError({ key: 'reason.formatRefused', values: { format: format.toUpperCase() } }, 'input');
  }
  if ((meta.pages ?? 1) > 1) {
    throw new EnhanceError({ key: 'reason.animated', values: { frames: meta.pages ?? 0 } }, 'input');
  }
  // Orientations 5-8 swap the sides once EXIF rotation is applied.
  const swap = (meta.orientation ?? 1) >= 5;
  const width = (swap ? meta.height : meta.width) ?? 0;
  const height = (swap ? meta.width : meta.height) ?? 0;
  if (width * height > maxPixels) {
    throw new EnhanceError({ key: 'reason.tooManyPixels', values: { width, height, pixels: width * height, limit: maxPixels } }, 'input');
  }
  const bits = meta.depth === 'ushort' ? 16 : 8;
  const channels = meta.channels ?? 3;
  const raw = resultRawBytes(width, height, channels, bits);
  if (raw > MAX_RAW_BYTES) {
    const most = Math.floor(MAX_RAW_BYTES / resultRawBytes(1, 1, channels, bits));
    throw new EnhanceError(
      { key: 'reason.tooManyBytes', values: { width, height, pixels: width * height, channels, bits, bytes: raw, limit: MAX_RAW_BYTES, most } },
      'input',
    );
  }
  return { width, height, format, meta };
}


/**
 * Checks the header of `bytes` and decodes it; refuses anything over `maxPixels` before decoding. `logger` gets
 * sharp's own words when it cannot read the image.
 */
export async function decodeImage(bytes: Uint8Array, maxPixels: number, logger?: Pick<Logger, 'warn'>): Promise<DecodedImage> {
  const { format, meta } = await probeImage(bytes, maxPixels, logger);
  const bits = meta.depth === 'ushort' ? 16 : 8;
  const grey = meta.space === 'b-w' || meta.space === 'grey16';
  const kept = keptMetadata(meta);
  try {
    let pipeline = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'warning' }).rotate();
    // The samples stay in the profile's space: through sRGB, a saturated Display P3 red (255, 0, 0) came back as
    // (234, 51, 34), clipped to sRGB's gamut and rounded twice. The model reads any RGB with sRGB's curve alike.
    if (isRgbProfile(meta.icc)) pipeline = pipeline.keepIccProfile();
    const { data, info } = await pipeline
      .toColourspace(bits === 16 ? 'rgb16' : 'srgb')
      .raw({ depth: bits === 16 ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const samples =
      bits === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const pixels = info.width * info.height;
    if (info.channels === 3) return { width: info.width, height: info.height, bits, rgb: samples, alpha: null, grey, format, kept };
    const rgb = bits === 16 ? new Uint16Array(pixels * 3) : new Uint8Array(pixels * 3);
    const alpha = bits === 16 ? new Uint16Array(pixels) : new Uint8Array(pixels);
    let opaque = true;
    const max = bits === 16 ? 65535 : 255;
    for (let p = 0; p < pixels; p++) {
      rgb[p * 3] = samples[p * 4];
      rgb[p * 3 + 1] = samples[p * 4 + 1];
      rgb[p * 3 + 2] = samples[p * 4 + 2];
      alpha[p] = samples[p * 4 + 3];
      if (alpha[p] !== max) opaque = false;
    }
    return { width: info.width, height: info.height, bits, rgb, alpha: opaque && !meta.hasAlpha ? null : alpha, grey, format, kept };
  } catch (error) {
    if (error instanceof EnhanceError) throw error;
    throw unreadable(error, logger);
  }
}

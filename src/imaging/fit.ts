/**
 * Fitting a result into a chat's upload limit. Before queueing, a front door checks from the input's header
 * whether the PNG at the asked scale can fit (`largestFittingScale`), so a person can pick a smaller scale at
 * once instead of waiting minutes for a file that cannot be sent. When a finished PNG is still too large,
 * `fitToLimit` gives the most faithful file that fits: lossless WebP of the same pixels first, then smaller
 * scales, and says in one line exactly what was sent and why.
 */
import sharp from 'sharp';
import type { Text } from '../i18n/i18n.js';

/**
 * PNG bytes per output pixel and channel, on the high side: RealESRGAN's 4x output of photos is smooth and
 * compresses to about 0.4-0.5 bytes per 8-bit sample at zlib level 3 (the benchmark scene through x4fast: 0.45), noise-free
 * art far better; 0.6 leaves room for grainy photos, so a "fits" is rarely wrong and a "does not fit" is checked
 * again on the real file anyway.
 */
const PNG_BYTES_PER_SAMPLE = 0.6;
/** WebP's largest side. */
const WEBP_MAX_SIDE = 16383;

/** Expected size of the PNG for an input of `width` x `height` at `scale`, from its header alone. */
export function estimatePngBytes(width: number, height: number, scale: number, channels = 3, bits: 8 | 16 = 8): number {
  return Math.ceil(width * scale * height * scale * channels * (bits / 8) * PNG_BYTES_PER_SAMPLE);
}

/**
 * The largest of `scales` (default 4, 3, 2) whose PNG should fit in `limitBytes`, or null when none does.
 *
 * @example
 * largestFittingScale(2000, 1500, 50e6); // 3: a 4x PNG would be about 86 MB, 3x about 49 MB
 */
export function largestFittingScale(
  width: number,
  height: number,
  limitBytes: number,
  options: { channels?: number; bits?: 8 | 16; scales?: readonly (2 | 3 | 4)[] } = {},
): 2 | 3 | 4 | null {
  for (const scale of options.scales ?? ([4, 3, 2] as const)) {
    if (estimatePngBytes(width, height, scale, options.channels, options.bits) <= limitBytes) return scale;
  }
  return null;
}

/** What `fitToLimit` chose to send. */
export interface FittedFile {
  bytes: Buffer;
  format: 'png' | 'webp';
  width: number;
  height: number;
  /** One line for the person when it is not the PNG as made; undefined when it is. */
  note?: Text;
}

/**
 * The most faithful file of `png` that fits in `limitBytes`: the PNG itself, else lossless WebP (the same pixels,
 * 8-bit images only), else the largest of 3/4, 1/2, 1/4 of the size that fits as PNG or lossless WebP. Null when
 * not even a quarter fits.
 *
 * @example
 * const sent = await fitToLimit(png, 10 * 2 ** 20);
 * if (sent?.note) say(sent.note); // "sent as lossless WebP (8.1 MB, the same pixels): the PNG is 14.2 MB, over the 10.5 MB limit"
 */
export async function fitToLimit(png: Buffer, limitBytes: number): Promise<FittedFile | null> {
  const meta = await sharp(png, { limitInputPixels: false }).metadata();
  const width = meta.width!;
  const height = meta.height!;
  if (png.length <= limitBytes) return { bytes: png, format: 'png', width, height };
  const over: Text = { key: 'fit.over', values: { bytes: png.length, limit: limitBytes } };
  const eightBit = meta.depth !== 'ushort';
  const webp = async (input: Buffer) => sharp(input, { limitInputPixels: false }).webp({ lossless: true, effort: 4 }).toBuffer();
  if (eightBit && Math.max(width, height) <= WEBP_MAX_SIDE) {
    const bytes = await webp(png);
    if (bytes.length <= limitBytes) return { bytes, format: 'webp', width, height, note: { key: 'fit.webp', values: { bytes: bytes.length, why: over } } };
  }
  for (const factor of [0.75, 0.5, 0.25]) {
    const w = Math.max(1, Math.round(width * factor));
    const h = Math.max(1, Math.round(height * factor));
    const smaller = await sharp(png, { limitInputPixels: false }).resize(w, h, { kernel: 'lanczos3', fit: 'fill' }).png({ compressionLevel: 6 }).toBuffer();
    const why: Text = { key: 'fit.overWebp', values: { over } };
    const smallerValues = { width: w, height: h, percent: factor * 100, fullWidth: width, fullHeight: height, why };
    if (smaller.length <= limitBytes) return { bytes: smaller, format: 'png', width: w, height: h, note: { key: 'fit.smallerPng', values: { ...smallerValues, bytes: smaller.length } } };
    if (eightBit && Math.max(w, h) <= WEBP_MAX_SIDE) {
      const bytes = await webp(smaller);
      if (bytes.length <= limitBytes) return { bytes, format: 'webp', width: w, height: h, note: { key: 'fit.smallerWebp', values: { ...smallerValues, bytes: bytes.length } } };
    }
  }
  return null;
}

/**
 * Fitting a result into a chat's upload limit. A chat gets the whole result: the PNG when it fits, else the same
 * pixels as lossless WebP, else the full resolution as JPEG at the best quality that fits (`fitToLimit`), and
 * says in one line exactly what was sent and why. Only when not even a JPEG of the full resolution can fit is a
 * smaller size sent, and a front door checks that from the input's header before queueing
 * (`largestFittingScale`), so a person can pick a smaller scale at once instead of waiting minutes for a file
 * that cannot be sent.
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
/**
 * Lossless WebP of a 4x result measured 0.38-0.95 of its PNG (0.38-0.51 on 512x512 results of the calibration
 * photos, 0.86 on a 2400x1800 part of a 6400x4800 one), and it is slow: 3 s a megapixel at effort 4 on a busy
 * 2-core machine, where the PNG's 30 MP took 100 s to fit before this gate. It is tried only when it could fit.
 */
const WEBP_BEST_SHARE = 0.38;
/** JPEG's largest side. */
const JPEG_MAX_SIDE = 65535;
/**
 * The JPEG qualities tried, best first. Below 70 the blocks show on a 4x result's smooth areas; the chat is then
 * better served by fewer pixels. The colour is always at half resolution (4:2:0): a 4x result's colour is smooth,
 * and full-resolution colour (4:4:4) took 1.4-2x the bytes, so that the size no longer fell with the quality
 * across the switch and the search picked q87 where q95 at 4:2:0 fitted.
 */
const JPEG_QUALITIES = [95, 92, 90, 87, 85, 82, 80, 77, 75, 72, 70] as const;
const LOWEST_JPEG_QUALITY = 70;
/**
 * JPEG bytes per output pixel at quality 70, on the high side. Measured on x4fast's 4x results: of the
 * calibration photos (128x128: 0.073-0.099 at q70, 0.28-0.32 at q95, against 1.7-2.6 as PNG) and of a 1600x1200
 * picture (6400x4800: 0.086 at q95, against 1.06 as PNG); larger pictures have less detail per output pixel. A
 * "fits" that proves wrong costs little: the real file decides, and a smaller size goes out then.
 */
const JPEG_BYTES_PER_PIXEL = 0.1;

/** Expected size of the PNG for an input of `width` x `height` at `scale`, from its header alone. */
export function estimatePngBytes(width: number, height: number, scale: number, channels = 3, bits: 8 | 16 = 8): number {
  return Math.ceil(width * scale * height * scale * channels * (bits / 8) * PNG_BYTES_PER_SAMPLE);
}

/** Expected size, on the high side, of the lowest-quality JPEG a chat is sent at full resolution. */
export function estimateJpegBytes(width: number, height: number, scale: number): number {
  return Math.ceil(width * scale * height * scale * JPEG_BYTES_PER_PIXEL);
}

/**
 * The largest of `scales` (default 4, 3, 2) whose result can be sent whole in `limitBytes` (as PNG, or at least
 * as a JPEG of quality 70), or null when none can.
 *
 * @example
 * largestFittingScale(1600, 1200, 10 * 2 ** 20); // 4: the 6400x4800 PNG is too large, but a JPEG fits
 * largestFittingScale(4000, 3000, 10 * 2 ** 20); // 2: 4x would be 192 MP, about 19 MB even as JPEG
 */
export function largestFittingScale(
  width: number,
  height: number,
  limitBytes: number,
  options: { channels?: number; bits?: 8 | 16; scales?: readonly (2 | 3 | 4)[] } = {},
): 2 | 3 | 4 | null {
  for (const scale of options.scales ?? ([4, 3, 2] as const)) {
    const png = estimatePngBytes(width, height, scale, options.channels, options.bits);
    const jpeg = Math.max(width, height) * scale <= JPEG_MAX_SIDE ? estimateJpegBytes(width, height, scale) : Infinity;
    if (Math.min(png, jpeg) <= limitBytes) return scale;
  }
  return null;
}

/** What `fitToLimit` chose to send. */
export interface FittedFile {
  bytes: Buffer;
  format: 'png' | 'webp' | 'jpeg' | 'avif';
  width: number;
  height: number;
  /** One line for the person when it is not the PNG as made; undefined when it is. */
  note?: Text;
}

/**
 * The most faithful file of `png` that fits in `limitBytes`: the PNG itself, else lossless WebP (the same pixels,
 * 8-bit images only), else a JPEG of the full resolution at the best quality from 95 to 70 that fits, else the
 * largest of 3/4, 1/2, 1/4 of the size that fits as PNG, lossless WebP or JPEG. Null when not even a quarter fits.
 * An alpha channel is kept in PNG and WebP; a JPEG shows it over white.
 *
 * @example
 * const sent = await fitToLimit(png, 10 * 2 ** 20);
 * if (sent?.note) say(sent.note); // "sent as JPEG, quality 90, full resolution (6.2 MB): the PNG is 41.3 MB, over the 10.5 MB upload limit"
 */
export async function fitToLimit(png: Buffer, limitBytes: number): Promise<FittedFile | null> {
  const meta = await sharp(png, { limitInputPixels: false }).metadata();
  const width = meta.width!;
  const height = meta.height!;
  // The result as its person asked it (PNG by default; WebP, JPEG or AVIF when asked) goes as it is when it fits.
  const format = meta.format === 'heif' ? 'avif' : (meta.format as FittedFile['format']);
  if (png.length <= limitBytes) return { bytes: png, format, width, height };
  const over: Text =
    format === 'png'
      ? { key: 'fit.over', values: { bytes: png.length, limit: limitBytes } }
      : { key: 'fit.overFile', values: { format: format.toUpperCase(), bytes: png.length, limit: limitBytes } };
  // Lossless WebP keeps a PNG's pixels; of a lossy result it would only be larger.
  const eightBit = meta.depth !== 'ushort' && format === 'png';
  const webp = async (input: Buffer) => sharp(input, { limitInputPixels: false }).webp({ lossless: true, effort: 4 }).toBuffer();
  if (eightBit && Math.max(width, height) <= WEBP_MAX_SIDE && png.length * WEBP_BEST_SHARE <= limitBytes) {
    const bytes = await webp(png);
    if (bytes.length <= limitBytes) return { bytes, format: 'webp', width, height, note: { key: 'fit.webp', values: { bytes: bytes.length, why: over } } };
  }
  const whole = await bestJpeg(png, limitBytes, width, height);
  if (whole) return { ...whole, width, height, note: { key: 'fit.jpeg', values: { quality: whole.quality, bytes: whole.bytes.length, why: over } } };
  for (const factor of [0.75, 0.5, 0.25]) {
    const w = Math.max(1, Math.round(width * factor));
    const h = Math.max(1, Math.round(height * factor));
    const smaller = await sharp(png, { limitInputPixels: false }).resize(w, h, { kernel: 'lanczos3', fit: 'fill' }).png({ compressionLevel: 6 }).toBuffer();
    const why: Text = { key: 'fit.overJpeg', values: { over, quality: LOWEST_JPEG_QUALITY } };
    const smallerValues = { width: w, height: h, percent: factor * 100, fullWidth: width, fullHeight: height, why };
    if (smaller.length <= limitBytes) return { bytes: smaller, format: 'png', width: w, height: h, note: { key: 'fit.smallerPng', values: { ...smallerValues, bytes: smaller.length } } };
    if (eightBit && Math.max(w, h) <= WEBP_MAX_SIDE && smaller.length * WEBP_BEST_SHARE <= limitBytes) {
      const bytes = await webp(smaller);
      if (bytes.length <= limitBytes) return { bytes, format: 'webp', width: w, height: h, note: { key: 'fit.smallerWebp', values: { ...smallerValues, bytes: bytes.length } } };
    }
    const jpeg = await bestJpeg(smaller, limitBytes, w, h);
    if (jpeg) return { ...jpeg, width: w, height: h, note: { key: 'fit.smallerJpeg', values: { ...smallerValues, quality: jpeg.quality, bytes: jpeg.bytes.length } } };
  }
  return null;
}

/**
 * The JPEG of `image` at the best of `JPEG_QUALITIES` that fits in `limitBytes`, or null. A binary search: the
 * size falls with the quality, so three or four encodes find it (a 6400x4800 result: about a second each on
 * two cores). 16-bit samples become 8-bit, and transparency is laid over white.
 */
async function bestJpeg(image: Buffer, limitBytes: number, width: number, height: number): Promise<{ bytes: Buffer; format: 'jpeg'; quality: number } | null> {
  if (Math.max(width, height) > JPEG_MAX_SIDE) return null;
  const encode = (quality: number) =>
    sharp(image, { limitInputPixels: false })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .jpeg({ quality, chromaSubsampling: '4:2:0' })
      .toBuffer();
  let best: { bytes: Buffer; quality: number } | null = null;
  let [lo, hi] = [0, JPEG_QUALITIES.length - 1];
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const bytes = await encode(JPEG_QUALITIES[mid]);
    if (bytes.length <= limitBytes) [best, hi] = [{ bytes, quality: JPEG_QUALITIES[mid] }, mid - 1];
    else lo = mid + 1;
  }
  return best && { ...best, format: 'jpeg' };
}

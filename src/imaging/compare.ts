/**
 * The before/after picture. The "before" is the original enlarged to the result's size with a plain bicubic
 * resize, which is what enlarging without the model gives, so the difference is what the model added.
 *
 * Small results are shown whole, side by side. Past `WHOLE_MAX` pixels a whole picture would be scaled down
 * until the difference vanished, so a pair of crops of the most detailed region is shown at 1:1 instead.
 */
import sharp from 'sharp';
import { drawText } from '../fonts/cjk.js';
import { DEFAULT_LOCALE, translator, type Locale } from '../i18n/i18n.js';
import type { Logger } from '../log.js';
import { unreadable } from './input.js';
import type { Region } from '../types.js';
import { FLATTEN_BACKGROUND } from './preview.js';

/** Results whose longest side is at most this are compared whole. */
export const WHOLE_MAX = 1024;
/** Side of the zoomed crops, in output pixels. */
export const CROP_SIDE = 768;

/** Smaller results are shown enlarged (nearest neighbour) to at least this many pixels. */
const MIN_PANEL = 384;
const GAP = 8;
const LABEL_HEIGHT = 32;

/** An original, decoded once for the comparison and the report. */
export interface Before {
  /** The original after EXIF rotation, 8-bit sRGB, flattened. */
  rgb: Buffer;
  width: number;
  height: number;
}

/** The original decoded for the comparison; `logger` gets sharp's own words when it cannot read it. */
export async function decodeBefore(input: Uint8Array, logger?: Pick<Logger, 'warn'>): Promise<Before> {
  try {
    const { data, info } = await sharp(input, { limitInputPixels: false })
      .rotate()
      .flatten({ background: FLATTEN_BACKGROUND })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { rgb: data, width: info.width, height: info.height };
  } catch (error) {
    // The early preview decodes here before the engine does: a damaged file must get the engine's one-line
    // reason, not "internal error: VipsJpeg: premature end of JPEG image" (seen through the Discord bot).
    throw unreadable(error, logger);
  }
}

/**
 * The `side` x `side` output region (clipped to the image) where the original has the most detail: the
 * largest sum of absolute neighbour differences, searched on a grid of half a crop.
 */
export function detailRegion(before: Before, outWidth: number, outHeight: number, side = CROP_SIDE): Region {
  const scale = outWidth / before.width;
  const width = Math.min(side, outWidth);
  const height = Math.min(side, outHeight);
  const w = Math.max(1, Math.round(width / scale));
  const h = Math.max(1, Math.round(height / scale));
  const { rgb, width: W, height: H } = before;
  // Detail per input row prefix sums would be exact; a strided scan is plenty to pick a region.
  const energyAt = (x0: number, y0: number) => {
    let sum = 0;
    for (let y = y0; y < Math.min(H - 1, y0 + h); y += 2) {
      for (let x = x0; x < Math.min(W - 1, x0 + w); x += 2) {
        const p = (y * W + x) * 3;
        sum += Math.abs(rgb[p + 1] - rgb[p + 3 + 1]) + Math.abs(rgb[p + 1] - rgb[p + 3 * W + 1]);
      }
    }
    return sum;
  };
  let best = { x: Math.max(0, (W - w) >> 1), y: Math.max(0, (H - h) >> 1), energy: -1 };
  const stepX = Math.max(1, w >> 1);
  const stepY = Math.max(1, h >> 1);
  for (let y = 0; y <= Math.max(0, H - h); y += stepY) {
    for (let x = 0; x <= Math.max(0, W - w); x += stepX) {
      const energy = energyAt(x, y);
      if (energy > best.energy) best = { x, y, energy };
    }
  }
  const left = Math.min(outWidth - width, Math.round(best.x * scale));
  const top = Math.min(outHeight - height, Math.round(best.y * scale));
  return { left, top, width, height };
}

/** The original's `region` (in output pixels) enlarged to the region's size, as 8-bit RGB JPEG-ready pixels. */
export async function beforeCrop(before: Before, outWidth: number, region: Region): Promise<Buffer> {
  const scale = outWidth / before.width;
  const left = Math.floor(region.left / scale);
  const top = Math.floor(region.top / scale);
  const width = Math.min(before.width - left, Math.ceil(region.width / scale));
  const height = Math.min(before.height - top, Math.ceil(region.height / scale));
  return sharp(before.rgb, { raw: { width: before.width, height: before.height, channels: 3 } })
    .extract({ left, top, width, height })
    .resize(region.width, region.height, { kernel: 'cubic', fit: 'fill' })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** The result's `region`, 8-bit sRGB on white. */
export async function afterCrop(png: Uint8Array, region: Region): Promise<Buffer> {
  return sharp(png, { limitInputPixels: false })
    .extract(region)
    .flatten({ background: FLATTEN_BACKGROUND })
    .toColourspace('srgb')
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** A label drawn from the project's own font (src/fonts/cjk.ts), so it reads the same on any system. */
async function label(text: string, width: number): Promise<Buffer> {
  const { svg } = await drawText(text, { size: 16, x: 10, baseline: 22, fill: '#222', maxWidth: width - 20, minSize: 11 });
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${LABEL_HEIGHT}">${svg}</svg>`);
}

/**
 * The comparison JPEG: before | after, each under a label in the job's language.
 *
 * @example
 * const jpg = await makeComparison(originalBytes, result.png, result.output, 'x4plus', { locale: 'zh-Hans' });
 */
export async function makeComparison(
  input: Uint8Array,
  png: Uint8Array,
  output: { width: number; height: number },
  model: string,
  { before, locale = DEFAULT_LOCALE }: { before?: Before; locale?: Locale } = {},
): Promise<Buffer> {
  const t = translator(locale);
  const original = before ?? (await decodeBefore(input));
  const whole = Math.max(output.width, output.height) <= WHOLE_MAX;
  const region = whole ? { left: 0, top: 0, width: output.width, height: output.height } : detailRegion(original, output.width, output.height);
  let [left, right] = await Promise.all([beforeCrop(original, output.width, region), afterCrop(png, region)]);
  // Tiny results are blown up (pixels kept square) so there is something to see and room for the labels.
  const zoom = Math.max(1, Math.floor(MIN_PANEL / Math.max(region.width, region.height)));
  const panel = region.width * zoom;
  const height = region.height * zoom;
  if (zoom > 1) {
    const blowUp = (b: Buffer) => sharp(b).resize(panel, height, { kernel: 'nearest', fit: 'fill' }).png().toBuffer();
    [left, right] = await Promise.all([blowUp(left), blowUp(right)]);
  }
  const beforeLine = whole ? t('compare.before') : t('compare.beforeDetail');
  const afterLine = whole
    ? t('compare.after', { model })
    : t('compare.afterDetail', { model, left: region.left, top: region.top, width: output.width, height: output.height });
  const [beforeLabel, afterLabel] = await Promise.all([label(beforeLine, panel), label(afterLine, panel)]);
  return sharp({
    create: { width: panel * 2 + GAP, height: height + LABEL_HEIGHT, channels: 3, background: '#f4f4f4' },
  })
    .composite([
      { input: beforeLabel, left: 0, top: 0 },
      { input: afterLabel, left: panel + GAP, top: 0 },
      { input: left, left: 0, top: LABEL_HEIGHT },
      { input: right, left: panel + GAP, top: LABEL_HEIGHT },
    ])
    .jpeg({ quality: 88 })
    .toBuffer();
}

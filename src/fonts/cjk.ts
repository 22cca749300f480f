/**
 * The font every PDF and picture label is written in: Noto Sans SC (Google and Adobe, SIL Open Font License 1.1),
 * from the npm package `@openfonts/noto-sans-sc_chinese-simplified`. It has Latin, punctuation and the ~7000
 * common Simplified Chinese characters in one 1.8 MB file per weight, and it comes with `npm ci` (so the Docker
 * image has it too): no system font is needed, and Chinese never turns into empty boxes.
 *
 * Picture labels are drawn as the font's glyph outlines (fontkit layout → SVG `<path>`), which librsvg fills
 * exactly as it would any path. Measured before choosing: sharp's `text` input with `fontfile` pointed at this
 * WOFF drew the Chinese as hex boxes (Pango/fontconfig did not take the WOFF and fell back to system fonts), and
 * an SVG `<text>` names a system font family, which is what drew boxes before.
 *
 * @example
 * const { svg, width } = await drawText('处理前：双三次插值放大', { size: 16, x: 10, baseline: 22, fill: '#222' });
 * sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width + 20}" height="32">${svg}</svg>`));
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import * as fontkit from 'fontkit';

const require = createRequire(import.meta.url);
const file = (weight: number) =>
  require.resolve(`@openfonts/noto-sans-sc_chinese-simplified/files/noto-sans-sc-chinese-simplified-${weight}.woff`);

export type Weight = 'regular' | 'bold';

/** The font files as the package ships them (WOFF 1.0, CFF outlines). */
export const FONT_FILES: Readonly<Record<Weight, string>> = { regular: file(400), bold: file(700) };

/**
 * A WOFF 1.0 file as the plain OpenType font it wraps: its tables inflated (zlib) and laid out again. fontkit reads
 * WOFF too, but inflates it in JavaScript for every font object, and pdfkit makes one per document: that was
 * 0.4 s of each report. Done once here with Node's zlib (off the event loop), a report takes the ready bytes.
 */
export async function woffToOpenType(woff: Buffer): Promise<Buffer> {
  if (woff.toString('latin1', 0, 4) !== 'wOFF') throw new Error('not a WOFF 1.0 font');
  const count = woff.readUInt16BE(12);
  const tables = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const at = 44 + 20 * i;
      const [offset, packed, length] = [woff.readUInt32BE(at + 4), woff.readUInt32BE(at + 8), woff.readUInt32BE(at + 12)];
      const stored = woff.subarray(offset, offset + packed);
      return { tag: woff.subarray(at, at + 4), checksum: woff.readUInt32BE(at + 16), data: packed < length ? await inflate(stored) : stored };
    }),
  );
  const pad = (n: number) => (n + 3) & ~3;
  const power = 2 ** Math.floor(Math.log2(count));
  const head = Buffer.alloc(12 + 16 * count);
  head.writeUInt32BE(woff.readUInt32BE(4), 0); // the flavour: 'OTTO' for CFF outlines
  head.writeUInt16BE(count, 4);
  head.writeUInt16BE(power * 16, 6);
  head.writeUInt16BE(Math.log2(power), 8);
  head.writeUInt16BE(count * 16 - power * 16, 10);
  let offset = head.length;
  const parts: Buffer[] = [head];
  tables.forEach((table, i) => {
    table.tag.copy(head, 12 + 16 * i);
    head.writeUInt32BE(table.checksum, 16 + 16 * i);
    head.writeUInt32BE(offset, 20 + 16 * i);
    head.writeUInt32BE(table.data.length, 24 + 16 * i);
    parts.push(table.data, Buffer.alloc(pad(table.data.length) - table.data.length));
    offset += pad(table.data.length);
  });
  return Buffer.concat(parts);
}

const inflate = promisify(zlib.inflate);

/** `make()` once per weight; a failure is not kept, so the next call tries again. */
function once<T>(make: (weight: Weight) => Promise<T>): (weight?: Weight) => Promise<T> {
  const made = new Map<Weight, Promise<T>>();
  return (weight = 'regular') => {
    let value = made.get(weight);
    if (!value) {
      made.set(weight, (value = make(weight)));
      value.catch(() => made.delete(weight));
    }
    return value;
  };
}

/** The font as OpenType bytes (read and inflated once per process), for pdfkit's `registerFont`. */
export const fontBytes = once(async (weight) => woffToOpenType(await fs.promises.readFile(FONT_FILES[weight])));

/** The parsed font, kept for the process: fontkit caches its glyphs and layout tables in it. */
export const cjkFont = once(async (weight) => fontkit.create(await fontBytes(weight)));

export interface DrawOptions {
  /** Font size in pixels. */
  size: number;
  /** Where the text starts, and its baseline, in pixels. */
  x: number;
  baseline: number;
  fill: string;
  weight?: Weight;
  /** Text wider than this is drawn smaller to fit (down to `minSize`, then cut off by the picture's edge). */
  maxWidth?: number;
  minSize?: number;
}

/**
 * `text` as SVG paths in Noto Sans SC: `svg` goes inside an `<svg>` element; `width` and `size` are what was drawn.
 *
 * @example
 * (await drawText('after: x4plus', { size: 16, x: 10, baseline: 22, fill: '#222', maxWidth: 360 })).width; // 96
 */
export async function drawText(text: string, options: DrawOptions): Promise<{ svg: string; width: number; size: number }> {
  const font = await cjkFont(options.weight);
  const run = font.layout(text);
  let size = options.size;
  if (options.maxWidth !== undefined && run.advanceWidth > 0) {
    const fits = (options.maxWidth / run.advanceWidth) * font.unitsPerEm;
    size = Math.max(Math.min(size, fits), Math.min(size, options.minSize ?? 10));
  }
  const scale = size / font.unitsPerEm;
  const paths: string[] = [];
  let pen = 0;
  run.glyphs.forEach((glyph, i) => {
    const p = run.positions[i];
    const d = glyph.path.toSVG();
    if (d) paths.push(`<path transform="translate(${pen + p.xOffset} ${p.yOffset})" d="${d}"/>`);
    pen += p.xAdvance;
  });
  // Font units have y upwards; the picture's go down.
  const svg = `<g transform="translate(${options.x} ${options.baseline}) scale(${scale} ${-scale})" fill="${options.fill}">${paths.join('')}</g>`;
  return { svg, width: pen * scale, size };
}

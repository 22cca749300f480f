/**
 * The PDF summary of one job (pdfkit): before and after, a zoomed pair of crops, and a table of everything
 * needed to reproduce or audit the result. One A4 page, in the job's language.
 *
 * All its text is set in Noto Sans SC (src/fonts/cjk.ts), whatever the language: a Chinese file name in an English
 * report must not come out as garbage, as it did in Helvetica. pdfkit embeds only the glyphs the page uses, not the
 * 1.8 MB font: measured on a 300x280 job, 49 KB in English and 88 KB in Chinese, against 14 KB in Helvetica (the
 * subsets carry the font's shared CFF subroutines, 10-40 KB a weight), and 0.1-0.3 s more CPU per report.
 */
import PDFDocument from 'pdfkit';
import sharp, { type Sharp } from 'sharp';
import { cjkFont, fontBytes } from '../fonts/cjk.js';
import { afterCrop, beforeCrop, decodeBefore, detailRegion, type Before } from '../imaging/compare.js';
import { DEFAULT_LOCALE, translator, type Locale } from '../i18n/i18n.js';
import type { EnhancedImage, Job } from '../types.js';

const MARGIN = 40;
const PAGE = { width: 595.28, height: 841.89 };
const COLUMN = (PAGE.width - 2 * MARGIN - 12) / 2;
/** Pixels per point for the embedded pictures: enough for print, small enough for chat uploads. */
const DPI_SCALE = 2;
const REGULAR = 'NotoSansSC';
const BOLD = 'NotoSansSC-Bold';

export interface ReportInput {
  job: Pick<Job, 'id' | 'createdAt'> & { name: string };
  /** The result with its PNG. */
  result: EnhancedImage;
  /** The original bytes. */
  input: Uint8Array;
  /** Already decoded original, when the caller has one. */
  before?: Before;
  /** Printed as the report date (default now). */
  date?: Date;
  /** The language of its words (default `en`), the job's `request.locale`. */
  locale?: Locale;
}

const jpeg = (pipeline: Sharp) => pipeline.jpeg({ quality: 85 }).toBuffer();

/** A date as the report's reader writes it, in UTC as the server cannot know the reader's zone. */
const dateOf = (locale: Locale, date: Date) => new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeStyle: 'long', timeZone: 'UTC' }).format(date);

/** The table rows: label, value, in the report's language. */
export function reportRows(input: ReportInput): Array<[string, string]> {
  const { result, job } = input;
  const t = translator(input.locale ?? DEFAULT_LOCALE);
  const o = result.options;
  const ms = (value: number | undefined) =>
    value === undefined ? '–' : value < 1000 ? t('report.milliseconds', { n: Math.round(value) }) : t('report.seconds', { n: (value / 1000).toFixed(2) });
  const size = (s: { width: number; height: number; channels: number; bits: number }) =>
    t('report.imageSize', { width: s.width, height: s.height, count: s.channels, bits: s.bits });
  const asked = o.tile === 'auto' ? t('report.tileAuto') : String(o.tile);
  const times = { wait: ms(result.ms.wait), load: ms(result.ms.load), decode: ms(result.ms.decode), infer: ms(result.ms.infer), encode: ms(result.ms.encode) };
  const date = (d: Date) => dateOf(input.locale ?? DEFAULT_LOCALE, d);
  return [
    [t('report.row.input'), t('report.inputValue', { size: size(result.input), format: result.input.format.toUpperCase(), bytes: input.input.length })],
    [t('report.row.output'), t('report.outputValue', { size: size(result.output), bytes: result.png.length })],
    [t('report.row.model'), t('report.modelValue', { model: o.model, scale: o.scale })],
    [t('report.row.modelSha'), result.modelSha256],
    [t('report.row.tile'), result.tile === 0 ? t('report.tileWhole') : t('report.tiled', { tile: result.tile, count: result.tiles, asked })],
    [t('report.row.tune'), o.tune === 'gentle' ? t('report.tuneGentle') : t('report.tuneRaw')],
    [t('report.row.alpha'), o.alpha === 'model' ? t('report.alphaModel') : t('report.alphaResize')],
    [t('report.row.device'), result.device],
    [t('report.row.precision'), result.precision],
    [t('report.row.times'), t('report.times', times)],
    [t('report.row.cached'), result.cached ? t('report.cachedYes') : t('report.cachedNo')],
    [t('report.row.signature'), result.signature],
    [t('report.row.job'), job.id],
    [t('report.row.submitted'), date(new Date(job.createdAt))],
    [t('report.row.date'), date(input.date ?? new Date())],
  ];
}

/** Renders the report; resolves to the PDF bytes. */
export async function makeReport(input: ReportInput): Promise<Buffer> {
  const { result } = input;
  const t = translator(input.locale ?? DEFAULT_LOCALE);
  const before = input.before ?? (await decodeBefore(input.input));
  const out = result.output;
  const raw = sharp(before.rgb, { raw: { width: before.width, height: before.height, channels: 3 } });
  // Whole pictures: both at the same size in the page, fitted in a column.
  const boxH = 230;
  const fit = Math.min(COLUMN / out.width, boxH / out.height);
  const pw = Math.max(1, Math.round(out.width * fit * DPI_SCALE));
  const ph = Math.max(1, Math.round(out.height * fit * DPI_SCALE));
  const region = detailRegion(before, out.width, out.height, 256);
  const [beforeWhole, afterWhole, beforeZoom, afterZoom, regular, bold, boldFont] = await Promise.all([
    jpeg(raw.clone().resize(pw, ph, { kernel: 'cubic', fit: 'fill' })),
    jpeg(sharp(result.png, { limitInputPixels: false }).resize(pw, ph, { kernel: 'lanczos3', fit: 'fill' }).flatten({ background: '#ffffff' }).toColourspace('srgb')),
    beforeCrop(before, out.width, region).then((b) => jpeg(sharp(b))),
    afterCrop(result.png, region).then((b) => jpeg(sharp(b))),
    fontBytes('regular'),
    fontBytes('bold'),
    cjkFont('bold'),
  ]);

  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    info: { Title: t('report.documentTitle', { name: input.job.name }), Producer: 'image-enhancer', CreationDate: input.date ?? new Date() },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  doc.registerFont(REGULAR, regular);
  doc.registerFont(BOLD, bold);
  doc.font(BOLD).fontSize(16).text(t('report.title'), MARGIN, MARGIN);
  doc.font(REGULAR).fontSize(10).fillColor('#444').text(t('report.header', { name: input.job.name, id: input.job.id }), { lineBreak: false });
  let y = MARGIN + 44;

  const pair = (title: string, left: Buffer, right: Buffer, w: number, h: number, captions: [string, string]) => {
    doc.font(BOLD).fontSize(11).fillColor('#000').text(title, MARGIN, y);
    y += 16;
    doc.image(left, MARGIN, y, { width: w, height: h });
    doc.image(right, MARGIN + COLUMN + 12, y, { width: w, height: h });
    y += h + 3;
    doc.font(REGULAR).fontSize(8).fillColor('#555');
    doc.text(captions[0], MARGIN, y, { width: COLUMN });
    doc.text(captions[1], MARGIN + COLUMN + 12, y, { width: COLUMN });
    y += 18;
  };
  pair(t('report.pairTitle'), beforeWhole, afterWhole, pw / DPI_SCALE, ph / DPI_SCALE, [
    t('report.beforeCaption', { width: result.input.width, height: result.input.height }),
    t('report.afterCaption', { width: out.width, height: out.height, model: result.options.model }),
  ]);
  const zoomSide = Math.min(COLUMN, 200);
  const zw = (region.width / Math.max(region.width, region.height)) * zoomSide;
  const zh = (region.height / Math.max(region.width, region.height)) * zoomSide;
  const detail = { width: region.width, height: region.height, left: region.left, top: region.top };
  pair(t('report.detailTitle', detail), beforeZoom, afterZoom, zw, zh, [t('report.detailBefore'), t('report.detailAfter')]);

  doc.font(BOLD).fontSize(11).fillColor('#000').text(t('report.details'), MARGIN, y);
  y += 16;
  const labelW = 110;
  const rows = reportRows(input);
  // The checksums are hex: a fixed-width face (a standard PDF font, nothing embedded) keeps them easy to compare.
  const hex = new Set([result.modelSha256, result.signature]);
  // Courier sits lower in its line than Noto Sans SC: set on the label's baseline, not at the same top.
  const baseline = (boldFont.ascent / boldFont.unitsPerEm) * 8.5;
  const valueW = PAGE.width - 2 * MARGIN - labelW;
  for (const [label, value] of rows) {
    doc.font(BOLD).fontSize(8.5).fillColor('#333').text(label, MARGIN, y, { width: labelW });
    const labelHeight = doc.heightOfString(label, { width: labelW });
    doc.font(hex.has(value) ? 'Courier' : REGULAR).fillColor('#000');
    const height = Math.max(labelHeight, doc.heightOfString(value, { width: valueW }));
    if (hex.has(value)) doc.text(value, MARGIN + labelW, y + baseline, { width: valueW, baseline: 'alphabetic' });
    else doc.text(value, MARGIN + labelW, y, { width: valueW });
    y += Math.max(12, height + 3);
  }
  doc.end();
  return done;
}

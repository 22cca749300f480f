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
    [t('report.row.output'), t('report.outputValue', { size: size(result.output), bytes: result.image.length })],
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

/** The most height the whole pictures and the zoomed crops take; less when the table needs the room. */
const WHOLE_MAX_H = 230;
const ZOOM_MAX_SIDE = 200;
/** Height of a section title, and of the captions under a pair of pictures. */
const TITLE_H = 16;
const CAPTION_H = 21;
const HEADER_H = 44;
const LABEL_W = 110;
const ROW_SIZE = 8.5;

/** Renders the report; resolves to the PDF bytes. */
export async function makeReport(input: ReportInput): Promise<Buffer> {
  const { result } = input;
  const t = translator(input.locale ?? DEFAULT_LOCALE);
  const before = input.before ?? (await decodeBefore(input.input));
  const out = result.output;
  const [regular, bold, boldFont] = await Promise.all([fontBytes('regular'), fontBytes('bold'), cjkFont('bold')]);

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

  // The table first: Noto Sans SC's lines are a third taller than Helvetica's, and a page that ran over made pdfkit
  // start a new page for every row left (7 pages for a square photo). The pictures get what the table leaves.
  const rows = reportRows(input);
  // The checksums are hex: a fixed-width face (a standard PDF font, nothing embedded) keeps them easy to compare.
  const hex = new Set([result.modelSha256, result.signature]);
  const valueW = PAGE.width - 2 * MARGIN - LABEL_W;
  const rowHeights = rows.map(([label, value]) => {
    const labelHeight = doc.font(BOLD).fontSize(ROW_SIZE).heightOfString(label, { width: LABEL_W });
    const valueHeight = doc.font(hex.has(value) ? 'Courier' : REGULAR).fontSize(ROW_SIZE).heightOfString(value, { width: valueW });
    return Math.max(12, Math.max(labelHeight, valueHeight) + 2);
  });
  const table = rowHeights.reduce((a, b) => a + b, 0);
  const room = PAGE.height - 2 * MARGIN - HEADER_H - 3 * TITLE_H - 2 * CAPTION_H - table;
  const shrink = Math.min(1, room / (WHOLE_MAX_H + ZOOM_MAX_SIDE));

  // Whole pictures: both at the same size in the page, fitted in a column.
  const fit = Math.min(COLUMN / out.width, (WHOLE_MAX_H * shrink) / out.height);
  const pw = Math.max(1, Math.round(out.width * fit * DPI_SCALE));
  const ph = Math.max(1, Math.round(out.height * fit * DPI_SCALE));
  const region = detailRegion(before, out.width, out.height, 256);
  const raw = sharp(before.rgb, { raw: { width: before.width, height: before.height, channels: 3 } });
  const [beforeWhole, afterWhole, beforeZoom, afterZoom] = await Promise.all([
    jpeg(raw.clone().resize(pw, ph, { kernel: 'cubic', fit: 'fill' })),
    jpeg(sharp(result.image, { limitInputPixels: false }).resize(pw, ph, { kernel: 'lanczos3', fit: 'fill' }).flatten({ background: '#ffffff' }).toColourspace('srgb')),
    beforeCrop(before, out.width, region).then((b) => jpeg(sharp(b))),
    afterCrop(result.image, region).then((b) => jpeg(sharp(b))),
  ]);

  doc.font(BOLD).fontSize(16).text(t('report.title'), MARGIN, MARGIN);
  doc.font(REGULAR).fontSize(10).fillColor('#444').text(t('report.header', { name: input.job.name, id: input.job.id }), { lineBreak: false });
  let y = MARGIN + HEADER_H;

  const pair = (title: string, left: Buffer, right: Buffer, w: number, h: number, captions: [string, string]) => {
    doc.font(BOLD).fontSize(11).fillColor('#000').text(title, MARGIN, y);
    y += TITLE_H;
    doc.image(left, MARGIN, y, { width: w, height: h });
    doc.image(right, MARGIN + COLUMN + 12, y, { width: w, height: h });
    y += h + 3;
    doc.font(REGULAR).fontSize(8).fillColor('#555');
    doc.text(captions[0], MARGIN, y, { width: COLUMN, lineBreak: false });
    doc.text(captions[1], MARGIN + COLUMN + 12, y, { width: COLUMN, lineBreak: false });
    y += CAPTION_H - 3;
  };
  pair(t('report.pairTitle'), beforeWhole, afterWhole, pw / DPI_SCALE, ph / DPI_SCALE, [
    t('report.beforeCaption', { width: result.input.width, height: result.input.height }),
    t('report.afterCaption', { width: out.width, height: out.height, model: result.options.model }),
  ]);
  const zoomSide = Math.min(COLUMN, ZOOM_MAX_SIDE * shrink);
  const zw = (region.width / Math.max(region.width, region.height)) * zoomSide;
  const zh = (region.height / Math.max(region.width, region.height)) * zoomSide;
  const detail = { width: region.width, height: region.height, left: region.left, top: region.top };
  pair(t('report.detailTitle', detail), beforeZoom, afterZoom, zw, zh, [t('report.detailBefore'), t('report.detailAfter')]);

  doc.font(BOLD).fontSize(11).fillColor('#000').text(t('report.details'), MARGIN, y);
  y += TITLE_H;
  // Courier sits lower in its line than Noto Sans SC: set on the label's baseline, not at the same top.
  const baseline = (boldFont.ascent / boldFont.unitsPerEm) * ROW_SIZE;
  rows.forEach(([label, value], i) => {
    doc.font(BOLD).fontSize(ROW_SIZE).fillColor('#333').text(label, MARGIN, y, { width: LABEL_W });
    doc.font(hex.has(value) ? 'Courier' : REGULAR).fillColor('#000');
    if (hex.has(value)) doc.text(value, MARGIN + LABEL_W, y + baseline, { width: valueW, baseline: 'alphabetic' });
    else doc.text(value, MARGIN + LABEL_W, y, { width: valueW });
    y += rowHeights[i];
  });
  doc.end();
  return done;
}

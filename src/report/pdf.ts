/**
 * The PDF summary of one job (pdfkit): before and after, a zoomed pair of crops, and a table of everything
 * needed to reproduce or audit the result. One A4 page.
 */
import PDFDocument from 'pdfkit';
import sharp, { type Sharp } from 'sharp';
import { afterCrop, beforeCrop, decodeBefore, detailRegion, type Before } from '../imaging/compare.js';
import type { EnhancedImage, Job } from '../types.js';

const MARGIN = 40;
const PAGE = { width: 595.28, height: 841.89 };
const COLUMN = (PAGE.width - 2 * MARGIN - 12) / 2;
/** Pixels per point for the embedded pictures: enough for print, small enough for chat uploads. */
const DPI_SCALE = 2;

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
}

const jpeg = (pipeline: Sharp) => pipeline.jpeg({ quality: 85 }).toBuffer();

const ms = (value: number | undefined) => (value === undefined ? '–' : value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`);

/** The table rows: label, value. */
export function reportRows(input: ReportInput): Array<[string, string]> {
  const { result, job } = input;
  const o = result.options;
  const size = (s: { width: number; height: number; channels: number; bits: number }) =>
    `${s.width} x ${s.height} px, ${s.channels} channel${s.channels > 1 ? 's' : ''}, ${s.bits}-bit`;
  return [
    ['Input', `${size(result.input)}, ${result.input.format.toUpperCase()}, ${input.input.length.toLocaleString('en')} bytes`],
    ['Output', `${size(result.output)}, PNG (lossless), ${result.png.length.toLocaleString('en')} bytes`],
    ['Model', `${o.model}, run at 4x, delivered at ${o.scale}x`],
    ['Model SHA-256', result.modelSha256],
    ['Tile', result.tile === 0 ? `whole image (1 run)` : `${result.tile} px (${result.tiles} runs; asked: ${o.tile})`],
    ['Touch-up', o.tune === 'gentle' ? 'gentle (saturation x1.05, contrast x1.04, unsharp 0.35)' : 'raw model output'],
    ['Alpha', o.alpha],
    ['Device', result.device],
    ['Precision', result.precision],
    [
      'Time per stage',
      `wait ${ms(result.ms.wait)} · load ${ms(result.ms.load)} · decode ${ms(result.ms.decode)} · inference ${ms(result.ms.infer)} · encode ${ms(result.ms.encode)}`,
    ],
    ['Cached', result.cached ? 'yes: an earlier job had the same signature' : 'no'],
    ['Parameter signature', result.signature],
    ['Job', job.id],
    ['Submitted', new Date(job.createdAt).toISOString()],
    ['Report date', (input.date ?? new Date()).toISOString()],
  ];
}

/** Renders the report; resolves to the PDF bytes. */
export async function makeReport(input: ReportInput): Promise<Buffer> {
  const { result } = input;
  const before = input.before ?? (await decodeBefore(input.input));
  const out = result.output;
  const raw = sharp(before.rgb, { raw: { width: before.width, height: before.height, channels: 3 } });
  // Whole pictures: both at the same size in the page, fitted in a column.
  const boxH = 230;
  const fit = Math.min(COLUMN / out.width, boxH / out.height);
  const pw = Math.max(1, Math.round(out.width * fit * DPI_SCALE));
  const ph = Math.max(1, Math.round(out.height * fit * DPI_SCALE));
  const region = detailRegion(before, out.width, out.height, 256);
  const [beforeWhole, afterWhole, beforeZoom, afterZoom] = await Promise.all([
    jpeg(raw.clone().resize(pw, ph, { kernel: 'cubic', fit: 'fill' })),
    jpeg(sharp(result.png, { limitInputPixels: false }).resize(pw, ph, { kernel: 'lanczos3', fit: 'fill' }).flatten({ background: '#ffffff' }).toColourspace('srgb')),
    beforeCrop(before, out.width, region).then((b) => jpeg(sharp(b))),
    afterCrop(result.png, region).then((b) => jpeg(sharp(b))),
  ]);

  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    info: { Title: `Enhancement report: ${input.job.name}`, Producer: 'image-enhancer', CreationDate: input.date ?? new Date() },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  doc.font('Helvetica-Bold').fontSize(16).text('Enhancement report', MARGIN, MARGIN);
  doc.font('Helvetica').fontSize(10).fillColor('#444').text(`${input.job.name}  ·  job ${input.job.id}`, { lineBreak: false });
  let y = MARGIN + 44;

  const pair = (title: string, left: Buffer, right: Buffer, w: number, h: number, captions: [string, string]) => {
    doc.font('Helvetica-Bold').fontSize(11).fillColor('#000').text(title, MARGIN, y);
    y += 16;
    doc.image(left, MARGIN, y, { width: w, height: h });
    doc.image(right, MARGIN + COLUMN + 12, y, { width: w, height: h });
    y += h + 3;
    doc.font('Helvetica').fontSize(8).fillColor('#555');
    doc.text(captions[0], MARGIN, y, { width: COLUMN });
    doc.text(captions[1], MARGIN + COLUMN + 12, y, { width: COLUMN });
    y += 18;
  };
  pair('Before and after', beforeWhole, afterWhole, pw / DPI_SCALE, ph / DPI_SCALE, [
    `Before: ${result.input.width} x ${result.input.height}, enlarged (bicubic) for comparison`,
    `After: ${out.width} x ${out.height}, ${result.options.model}`,
  ]);
  const zoomSide = Math.min(COLUMN, 200);
  const zw = (region.width / Math.max(region.width, region.height)) * zoomSide;
  const zh = (region.height / Math.max(region.width, region.height)) * zoomSide;
  pair(`Detail: ${region.width} x ${region.height} px at ${region.left},${region.top} of the output`, beforeZoom, afterZoom, zw, zh, [
    'Before (bicubic)',
    'After',
  ]);

  doc.font('Helvetica-Bold').fontSize(11).fillColor('#000').text('Details', MARGIN, y);
  y += 16;
  const labelW = 110;
  for (const [label, value] of reportRows(input)) {
    doc.font('Helvetica-Bold').fontSize(8.5).fillColor('#333').text(label, MARGIN, y, { width: labelW });
    doc.font(/SHA|signature/i.test(label) ? 'Courier' : 'Helvetica').fillColor('#000');
    const height = doc.heightOfString(value, { width: PAGE.width - 2 * MARGIN - labelW });
    doc.text(value, MARGIN + labelW, y, { width: PAGE.width - 2 * MARGIN - labelW });
    y += Math.max(12, height + 3);
  }
  doc.end();
  return done;
}

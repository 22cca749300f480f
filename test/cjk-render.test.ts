/**
 * The PDF summary and the before/after picture in Chinese, rendered to pixels: where the title and the labels
 * stand there are the glyphs of Noto Sans SC, not empty boxes. Each is held against the same text drawn with the
 * font by another path (pdfkit reading the font's WOFF file itself, rasterised by poppler's pdftoppm), and against
 * that text drawn as the boxes a font without the glyphs draws (the font's `.notdef`, for a character it lacks).
 *
 * Needs poppler-utils (`pdftoppm`, `pdftotext`; Debian: `apt-get install poppler-utils`), as `.ci/run` installs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import PDFDocument from 'pdfkit';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FONT_FILES } from '../src/fonts/cjk.js';
import { say } from '../src/i18n/i18n.js';
import { makeComparison } from '../src/imaging/compare.js';
import { normalizeOptions } from '../src/options.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import type { ProcessContext } from '../src/queue/worker.js';
import { makeReport, reportRows, type ReportInput } from '../src/report/pdf.js';
import type { EnhancedImage, Job, OutputKind } from '../src/types.js';
import { scenePng, tempDir } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';

const DATE = new Date(Date.UTC(2026, 11, 4, 23, 16, 41));
const NAME = '猫的照片.png';
/** A character Noto Sans SC lacks (private use): drawn as its `.notdef`, a crossed box. */
const TOFU = '\uE000';
/** What a font without Chinese shows: every CJK character and full-width sign a box. */
const asTofu = (text: string) => text.replace(/[\u3000-\u9fff\uff00-\uffef]/g, TOFU);

const missing = ['pdftoppm', 'pdftotext', 'pdfinfo'].filter((command) => {
  try {
    execFileSync(command, ['-v'], { stdio: 'ignore' });
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
});

let dir: string;
beforeAll(() => {
  if (missing.length) throw new Error(`${missing.join(' and ')} not found: these tests render PDFs with poppler-utils (apt-get install poppler-utils)`);
  dir = tempDir();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Grey {
  data: Buffer;
  width: number;
  height: number;
}
type Box = { left: number; top: number; width: number; height: number };

const grey = async (image: Buffer): Promise<Grey> => {
  const { data, info } = await sharp(image).flatten({ background: '#ffffff' }).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
};

let files = 0;
/** Page 1 of `pdf` as pdftoppm draws it at `dpi`. */
async function renderPdf(pdf: Buffer, dpi: number): Promise<Grey> {
  const file = path.join(dir, `${++files}.pdf`);
  fs.writeFileSync(file, pdf);
  execFileSync('pdftoppm', ['-r', String(dpi), '-png', '-f', '1', '-l', '1', '-singlefile', file, file]);
  return grey(fs.readFileSync(`${file}.png`));
}

function pdfText(pdf: Buffer): string {
  const file = path.join(dir, `${++files}.pdf`);
  fs.writeFileSync(file, pdf);
  return execFileSync('pdftotext', [file, '-'], { encoding: 'utf8' });
}

/** A PDF drawn by `draw` with the font's WOFF files as registered fonts `regular` and `bold`. */
function pdf(size: [number, number] | 'A4', draw: (doc: PDFKit.PDFDocument) => void): Promise<Buffer> {
  const doc = new PDFDocument({ size, margin: 40 });
  doc.registerFont('regular', FONT_FILES.regular);
  doc.registerFont('bold', FONT_FILES.bold);
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve) => doc.on('end', () => resolve(Buffer.concat(chunks))));
  draw(doc);
  doc.end();
  return done;
}

/** Mean absolute difference of two images' grey levels within `box`. */
function difference(a: Grey, b: Grey, box: Box): number {
  let sum = 0;
  for (let y = box.top; y < box.top + box.height; y++) {
    for (let x = box.left; x < box.left + box.width; x++) sum += Math.abs(a.data[y * a.width + x] - b.data[y * b.width + x]);
  }
  return sum / (box.width * box.height);
}

/** The darkest grey level in `box`: text is there when it is dark. */
function darkest(image: Grey, box: Box): number {
  let min = 255;
  for (let y = box.top; y < box.top + box.height; y++) for (let x = box.left; x < box.left + box.width; x++) min = Math.min(min, image.data[y * image.width + x]);
  return min;
}

/** A 24x20 picture and its 4x "result" (square pixels): enough for the pipeline after the model. */
async function tinyResult(): Promise<{ input: Buffer; result: EnhancedImage }> {
  const input = await scenePng(24, 20, 3);
  const png = await sharp(input).resize(96, 80, { kernel: 'nearest' }).png().toBuffer();
  const options = normalizeOptions({ model: 'x4fast', tile: 'auto' });
  const result: EnhancedImage = {
    input: { width: 24, height: 20, channels: 3, bits: 8, format: 'png' },
    output: { width: 96, height: 80, channels: 3, bits: 8 },
    format: 'png',
    options,
    modelSha256: 'ab'.repeat(32),
    device: 'cpu',
    precision: 'fp32',
    tile: 16,
    tiles: 4,
    signature: 'cd'.repeat(32),
    ms: { load: 120, decode: 3, infer: 2400, encode: 40, total: 2500, wait: 10 },
    image: png,
  };
  return { input, result };
}

/**
 * One label strip of the comparison (32 px high, text at x 10 on baseline 22, 16 px) against the same text drawn
 * by pdfkit from the WOFF at 72 dpi (1 pt = 1 px), and against it drawn as boxes.
 */
async function expectLabel(picture: Grey, left: number, width: number, text: string) {
  const strip = (line: string) =>
    pdf([width, 32], (doc) => {
      doc.rect(0, 0, width, 32).fill('#f4f4f4');
      doc.font('regular').fontSize(16).fillColor('#222').text(line, 10, 22, { baseline: 'alphabetic', lineBreak: false });
    }).then((bytes) => renderPdf(bytes, 72));
  const [glyphs, boxes] = await Promise.all([strip(text), strip(asTofu(text))]);
  const label = { data: Buffer.alloc(width * 32), width, height: 32 };
  for (let y = 0; y < 32; y++) picture.data.copy(label.data, y * width, y * picture.width + left, y * picture.width + left + width);
  const box = { left: 0, top: 0, width, height: 32 };
  const asGlyphs = difference(label, glyphs, box);
  const asBoxes = difference(label, boxes, box);
  const measured = `"${text}": ${asGlyphs.toFixed(2)} from the glyphs, ${asBoxes.toFixed(2)} from boxes`;
  expect(darkest(label, box), `ink in the label "${text}"`).toBeLessThan(100);
  // Measured: 0.8-2 grey levels from the glyphs (JPEG, two rasterisers), 7-17 from the boxes; the SVG <text> in
  // 'DejaVu Sans' this replaced drew 14-15 from the glyphs on a machine without Chinese fonts.
  expect(asGlyphs, measured).toBeLessThan(4);
  if (asTofu(text) !== text) expect(asGlyphs, measured).toBeLessThan(asBoxes / 3);
}

describe('Chinese in the comparison picture', () => {
  it('labels it in the job language with the glyphs of the font, not boxes', async () => {
    const { input, result } = await tinyResult();
    const jpg = await makeComparison(input, result.image, result.output, 'x4fast', { locale: 'zh-Hans' });
    const picture = await grey(jpg);
    // 96 px results are shown 4x: two 384 px panels with 8 px between.
    expect([picture.width, picture.height]).toEqual([384 * 2 + 8, 32 + 320]);
    const before = say('zh-Hans', { key: 'compare.before' });
    const after = say('zh-Hans', { key: 'compare.after', values: { model: 'x4fast' } });
    expect([before, after]).toEqual(['处理前：双三次插值放大', '处理后：x4fast']);
    await expectLabel(picture, 0, 384, before);
    await expectLabel(picture, 384 + 8, 384, after);
  });

  it('keeps the English labels in English', async () => {
    const { input, result } = await tinyResult();
    const picture = await grey(await makeComparison(input, result.image, result.output, 'x4fast'));
    await expectLabel(picture, 0, 384, 'before: bicubic enlargement');
    await expectLabel(picture, 384 + 8, 384, 'after: x4fast');
  });
});

describe('Chinese in the PDF summary', () => {
  let input: Buffer;
  let result: EnhancedImage;
  let report: ReportInput;
  beforeAll(async () => {
    ({ input, result } = await tinyResult());
    report = { job: { id: 'j1', createdAt: DATE.getTime(), name: NAME }, result, input, date: DATE, locale: 'zh-Hans' };
  });

  it('draws the title with the glyphs of the embedded font, not boxes', async () => {
    const bytes = await makeReport(report);
    const title = say('zh-Hans', { key: 'report.title' });
    expect(title).toBe('增强报告');
    // The report sets its title at the margin (40 pt), bold 16 pt: the same, alone on a page, is the reference.
    const alone = (text: string) => pdf('A4', (doc) => doc.font('bold').fontSize(16).text(text, 40, 40)).then((b) => renderPdf(b, 100));
    const [page, glyphs, boxes] = await Promise.all([renderPdf(bytes, 100), alone(title), alone(asTofu(title))]);
    // 100 dpi: 40 pt is 56 px; four 16 pt characters are 89 px wide, the line 33 px high.
    const box = { left: 50, top: 52, width: 100, height: 34 };
    expect(darkest(page, box)).toBeLessThan(60);
    const asGlyphs = difference(page, glyphs, box);
    const asBoxes = difference(page, boxes, box);
    // Measured: 0.00 from the glyphs (one rasteriser, one place), 71 from the boxes.
    expect(asGlyphs, `${asGlyphs.toFixed(2)} from the glyphs, ${asBoxes.toFixed(2)} from boxes`).toBeLessThan(1);
    expect(asBoxes).toBeGreaterThan(10);
  });

  it('stays one page for a square photo in either language (the table takes its room first)', async () => {
    // 200x200 gives the whole pictures their full height; Noto Sans SC's taller lines had pushed the table over
    // the page's end, and pdfkit started a page for each row left: 7 pages.
    const input = await scenePng(200, 200, 3);
    const png = await sharp(input).resize(800, 800, { kernel: 'cubic' }).png().toBuffer();
    const square: EnhancedImage = { ...result, input: { ...result.input, width: 200, height: 200 }, output: { ...result.output, width: 800, height: 800 }, image: png };
    for (const locale of ['en', 'zh-Hans']) {
      const bytes = await makeReport({ ...report, input, result: square, locale });
      const pages = /^Pages:\s+(\d+)$/m.exec(execFileSync('pdfinfo', ['-'], { input: bytes }).toString())?.[1];
      expect([locale, pages]).toEqual([locale, '1']);
      // And the table's last row is on it.
      expect(pdfText(bytes)).toContain(DATE.getUTCFullYear().toString());
    }
  });

  it('embeds a subset of the font and gives its Chinese back as text', async () => {
    const bytes = await makeReport(report);
    const raw = bytes.toString('latin1');
    // Subset fonts carry a six-letter tag before their name; the CFF outlines are in a FontFile3 stream.
    const fonts = [...raw.matchAll(/\/BaseFont \/([\w+-]+)/g)].map((m) => m[1]);
    expect(new Set(fonts.filter((f) => f !== 'Courier')).size).toBe(2);
    for (const font of fonts.filter((f) => f !== 'Courier')) expect(font).toMatch(/^[A-Z]{6}\+NotoSansSC-(Regular|Bold)$/);
    expect(raw.match(/\/FontFile3 \d+ 0 R/g)).toHaveLength(2);
    // A subset: the whole font is 1.8 MB a weight.
    expect(bytes.length).toBeLessThan(200_000);
    // pdftotext writes the two spaces around the dot as one.
    const text = pdfText(bytes).replace(/ +/g, ' ');
    for (const words of ['增强报告', `${NAME} · 任务 j1`, '处理前后对比', '详细信息', '2026年12月4日']) expect(text).toContain(words);
  });

  it('writes a Chinese file name in an English report as itself', async () => {
    const text = pdfText(await makeReport({ ...report, locale: 'en' })).replace(/ +/g, ' ');
    for (const words of ['Enhancement report', `${NAME} · job j1`, 'Before and after', 'December 4, 2026']) expect(text).toContain(words);
  });

  it('says its table in the job language, English as before', () => {
    expect(reportRows({ ...report, locale: 'en' }).slice(0, 7)).toEqual([
      ['Input', `24 x 20 px, 3 channels, 8-bit, PNG, ${input.length.toLocaleString('en')} bytes`],
      ['Output', `96 x 80 px, 3 channels, 8-bit, PNG (lossless), ${result.image.length.toLocaleString('en')} bytes`],
      ['Model', 'x4fast, run at 4x, delivered at 4x'],
      ['Model SHA-256', 'ab'.repeat(32)],
      ['Tile', '16 px (4 runs; asked: auto)'],
      ['Touch-up', 'gentle (saturation x1.05, contrast x1.04, unsharp 0.35)'],
      ['Alpha', 'resize'],
    ]);
    const rows = new Map(reportRows(report));
    expect(rows.get('输入')).toBe(`24 x 20 像素，3 个通道，8 位，PNG，${input.length.toLocaleString('zh-Hans')} 字节`);
    expect(rows.get('分块')).toBe('16 像素（运行 4 次；请求：自动）');
    expect(rows.get('各阶段用时')).toBe('等待 10 毫秒 · 加载 120 毫秒 · 解码 3 毫秒 · 推理 2.40 秒 · 编码 40 毫秒');
    expect(rows.get('缓存')).toBe('否');
    expect(rows.get('报告日期')).toBe('2026年12月4日 UTC 23:16:41');
    expect(rows.get('精度')).toBe('fp32');
  });
});

describe('the job language through the processor', () => {
  it('makes the picture and the PDF of a job in the language stored with its request', async () => {
    const engine = new ScriptedEngine();
    engine.auto = true;
    const input = await scenePng(24, 20, 3);
    const job: Job = {
      id: 'j2',
      request: { name: NAME, options: normalizeOptions({ model: 'x4fast' }), report: true, locale: 'zh-Hans' },
      state: 'active',
      createdAt: DATE.getTime(),
      width: 24,
      height: 20,
      bytes: input.length,
    };
    const outputs = new Map<OutputKind, Buffer>();
    const ctx = {
      signal: new AbortController().signal,
      progress: () => {},
      preview: async () => {},
      writeOutput: async (kind: OutputKind, bytes: Uint8Array) => (outputs.set(kind, Buffer.from(bytes)), bytes.length),
      acceleratorDone: () => {},
      logger: { info: () => {}, warn: () => {} },
    } as unknown as ProcessContext;
    await enhanceProcessor({ engine })(job, input, ctx);
    expect(pdfText(outputs.get('pdf')!)).toContain('增强报告');
    await expectLabel(await grey(outputs.get('compare')!), 0, 384, '处理前：双三次插值放大');
  });
});

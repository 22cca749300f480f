/**
 * What a result is made of (issue 26), as a person gets it from `enhancer enhance`: the format they asked for
 * (told by the file's first bytes, not its name), the size (scale 1-4 or a long side), and the photo's own
 * metadata: EXIF without GPS unless asked, orientation applied, its ICC profile and colours, 16 bits.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { scenePng, tempDir } from './helpers.js';

const BIN = path.join(projectRoot, 'bin', 'enhancer.js');
let dir: string;

function enhancer(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, 'enhance', ...args, '--model', 'x4fast', '--json'], { cwd: dir, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`enhancer ${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout) as { output: { width: number; height: number; format: string; bits: number; path: string } };
}

/** The format a file's first bytes say it is. */
function magic(file: string): string {
  const head = fs.readFileSync(path.join(dir, file)).subarray(0, 12);
  if (head.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) return 'png';
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (head.toString('latin1', 4, 12) === 'ftypavif') return 'avif';
  return 'unknown';
}

const size = (file: string) => fs.statSync(path.join(dir, file)).size;
const meta = (file: string) => sharp(path.join(dir, file)).metadata();

/** Saturated Display P3 colours, beyond sRGB's gamut: stripes 8 px wide, stored as they are with a P3 profile. */
const P3_STRIPES = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 0, 255],
  [250, 20, 120],
  [30, 200, 60],
];

/** A PNG of `raw` RGB samples with `icc` attached as it is (an iCCP chunk), the samples not converted. */
async function pngWithProfile(raw: Buffer, width: number, height: number, icc: Buffer): Promise<Buffer> {
  const { crc32, deflateSync } = await import('node:zlib');
  const png = await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
  const data = Buffer.concat([Buffer.from('P3\0\0', 'latin1'), deflateSync(icc)]);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('iCCP', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  // Right after the signature and IHDR (8 + 25 bytes).
  return Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]);
}

beforeAll(async () => {
  dir = tempDir();
  fs.writeFileSync(path.join(dir, 'photo.png'), await scenePng(40, 30, 11));
  // A camera's JPEG: EXIF with make, model, date and a GPS position, turned (orientation 6), 300 dpi.
  await sharp(await scenePng(48, 32, 5))
    .withExif({ IFD0: { Make: 'Canon', Model: 'EOS 5D', DateTime: '2024:05:01 10:20:30' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1' } })
    .withMetadata({ orientation: 6, density: 300 })
    .jpeg({ quality: 95 })
    .toFile(path.join(dir, 'camera.jpg'));
  const width = P3_STRIPES.length * 8;
  const raw = Buffer.alloc(width * 16 * 3);
  for (let p = 0; p < width * 16; p++) raw.set(P3_STRIPES[Math.floor((p % width) / 8)], p * 3);
  const p3 = (await sharp(await sharp(raw, { raw: { width, height: 16, channels: 3 } }).withIccProfile('p3').png().toBuffer()).metadata()).icc!;
  fs.writeFileSync(path.join(dir, 'p3.png'), await pngWithProfile(raw, width, 16, p3));
  // The same samples with no profile (read as sRGB): what the model makes of these numbers, with no colour management.
  await sharp(raw, { raw: { width, height: 16, channels: 3 } }).png().toFile(path.join(dir, 'plain.png'));
  await sharp(await scenePng(24, 16, 3)).toColourspace('rgb16').png().toFile(path.join(dir, 'deep.png'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('formats', () => {
  it.each([
    ['png', '.png'],
    ['webp', '.webp'],
    ['jpeg', '.jpg'],
    ['avif', '.avif'],
  ])('--format %s writes <stem>.enhanced%s in that format, 4x', async (format, extension) => {
    const report = enhancer('photo.png', '--format', format);
    expect(report.output).toMatchObject({ path: `photo.enhanced${extension}`, width: 160, height: 120, format });
    expect(magic(`photo.enhanced${extension}`)).toBe(format);
    expect(await meta(`photo.enhanced${extension}`)).toMatchObject({ width: 160, height: 120 });
  });

  it('takes the format from -o, and --quality makes lossy files smaller', () => {
    enhancer('photo.png', '-o', 'high.jpg', '--quality', '95');
    enhancer('photo.png', '-o', 'low.jpg', '--quality', '30');
    expect([magic('high.jpg'), magic('low.jpg')]).toEqual(['jpeg', 'jpeg']);
    expect(size('low.jpg')).toBeLessThan(size('high.jpg') * 0.7);
    enhancer('photo.png', '-o', 'lossless.webp');
    enhancer('photo.png', '-o', 'lossy.webp', '--quality', '50');
    expect(size('lossy.webp')).toBeLessThan(size('lossless.webp') * 0.7);
  });

  it('refuses a quality or format out of range, and -o naming another format, each in one line', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'enhance', 'photo.png', ...args], { cwd: dir, encoding: 'utf8' });
    expect(run('--quality', '0', '--format', 'jpeg').stderr).toBe('error: quality must be a whole number from 1 to 100 (got "0")\n');
    expect(run('--format', 'gif').stderr).toBe('error: format must be png, webp, jpeg or avif (got "gif")\n');
    expect(run('--size', '9').stderr).toBe("error: size must be a whole number of pixels from 16 to 16384, the output's long side (got \"9\")\n");
    expect(run('-o', 'x.png', '--format', 'webp').stderr).toBe('error: -o must name a .webp file for format webp (got x.png)\n');
  });
});

describe('sizes', () => {
  it('--size 2048 gives a long side of exactly 2048, aspect kept', async () => {
    const report = enhancer('photo.png', '--size', '2048', '--format', 'jpeg');
    expect(report.output).toMatchObject({ width: 2048, height: 1536 });
    expect(await meta('photo.enhanced.jpg')).toMatchObject({ width: 2048, height: 1536 });
  });

  it('--size on a portrait photo sets its height; --scale 1 restores at the same size', async () => {
    expect(enhancer('camera.jpg', '--size', '100', '-o', 'portrait.png').output).toMatchObject({ width: 67, height: 100 });
    expect(enhancer('photo.png', '--scale', '1', '-o', 'same.png').output).toMatchObject({ width: 40, height: 30 });
    expect(await meta('same.png')).toMatchObject({ width: 40, height: 30 });
  });
});

describe("the photo's metadata", () => {
  const exifText = async (file: string) => (await meta(file)).exif?.toString('latin1') ?? '';

  it('keeps the camera EXIF without GPS, applies the orientation and sets it to 1, in every format', async () => {
    for (const out of ['camera.png', 'camera.jpg.jpg', 'camera.webp', 'camera.avif']) {
      const file = `out-${out}`;
      enhancer('camera.jpg', '-o', file);
      const m = await meta(file);
      // 48x32 turned by orientation 6 is 32x48; at 4x 128x192.
      expect([m.width, m.height, m.orientation ?? 1]).toEqual([128, 192, 1]);
      const exif = await exifText(file);
      for (const said of ['Canon', 'EOS 5D', '2024:05:01 10:20:30']) expect(exif).toContain(said);
      expect(exif).not.toContain('N\0');
    }
  });

  it('keeps GPS when asked (--keep-gps, as metadata.keepGps does for the service)', async () => {
    enhancer('camera.jpg', '-o', 'gps.png', '--keep-gps');
    const exif = await exifText('gps.png');
    expect(exif).toContain('Canon');
    expect(exif).toContain('N\0');
  });

  it('keeps the density as dots per inch times the scale, so the print size stays', async () => {
    expect((await meta('out-camera.png')).density).toBe(1200);
    enhancer('camera.jpg', '-o', 'half.jpg', '--scale', '2');
    expect((await meta('half.jpg')).density).toBe(600);
  });

  it('gives a Display P3 photo back in P3 with its saturated colours, PNG and JPEG', async () => {
    const profile = (await meta('p3.png')).icc!;
    const stored = async (file: string) => sharp(path.join(dir, file)).keepIccProfile().raw().toBuffer({ resolveWithObject: true });
    for (const extension of ['png', 'jpg']) {
      enhancer('p3.png', '-o', `p3-out.${extension}`, '--raw', '--quality', '95');
      enhancer('plain.png', '-o', `plain-out.${extension}`, '--raw', '--quality', '95');
      expect((await meta(`p3-out.${extension}`)).icc?.equals(profile)).toBe(true);
      // The samples as stored are the model's output for the P3 numbers themselves: no conversion on the way in
      // or out (through sRGB, P3 red came back as 234, 51, 34).
      const [p3, plain] = [await stored(`p3-out.${extension}`), await stored(`plain-out.${extension}`)];
      expect(p3.data.equals(plain.data)).toBe(true);
      // And they are the colours that went in, within what x4fast itself moves a flat colour (10 levels seen).
      P3_STRIPES.forEach((colour, i) => {
        const at = (32 * p3.info.width + i * 32 + 16) * 3;
        const got = [...p3.data.subarray(at, at + 3)];
        for (let c = 0; c < 3; c++) expect(Math.abs(got[c] - colour[c]), `stripe ${i}: ${got} for ${colour}`).toBeLessThanOrEqual(14);
      });
    }
  });

  it('keeps a 16-bit PNG 16-bit (and an AVIF of it 12-bit); JPEG and WebP are 8-bit', async () => {
    expect(enhancer('deep.png', '-o', 'deep-out.png').output.bits).toBe(16);
    expect((await meta('deep-out.png')).depth).toBe('ushort');
    expect(enhancer('deep.png', '-o', 'deep-out.avif').output.bits).toBe(12);
    expect(enhancer('deep.png', '-o', 'deep-out.webp').output.bits).toBe(8);
    expect((await meta('deep-out.webp')).depth).toBe('uchar');
  });
});

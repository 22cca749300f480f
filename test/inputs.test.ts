/**
 * Awkward and bad inputs, each through the real engine (x4fast keeps these quick).
 */
import zlib from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { enhance } from '../src/engine/enhance.js';
import { EnhanceError } from '../src/errors.js';
import { say } from '../src/i18n/i18n.js';
import { decodeReason } from '../src/imaging/input.js';
import type { Logger } from '../src/log.js';
import { pixels, psnr, scenePng } from './helpers.js';

const run = (input: Uint8Array, options = {}, context = {}) =>
  enhance({ input, name: 'test', options: { model: 'x4fast', ...options } }, context);

/** Expects `promise` to fail with a one-line EnhanceError matching `pattern`. */
async function refused(promise: Promise<unknown>, pattern: RegExp) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(EnhanceError);
  const message = (error as Error).message;
  expect(message).toMatch(pattern);
  expect(message).not.toContain('\n');
}

/** A PNG whose header says `width` x `height` (the chunk CRC is recomputed, so only the size is a lie). */
function pngClaiming(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(zlib.crc32(out.subarray(12, 29)) >>> 0, 29);
  return out;
}

let scene: Buffer;
beforeAll(async () => {
  scene = await scenePng(48, 32, 5);
});

describe('bad inputs are refused with a clear reason', () => {
  it('zero bytes', () => refused(run(new Uint8Array(0)), /empty/));
  it('text named .png', () => refused(run(Buffer.from('hello, this is not a picture\n')), /not an image/));
  it('a truncated JPEG or PNG: what a person can do, and libvips\' own words only in the log', async () => {
    const jpeg = await sharp(scene).jpeg().toBuffer();
    const png = await sharp(scene).png({ compressionLevel: 0 }).toBuffer();
    for (const [cut, said] of [
      [jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), /premature end of JPEG/],
      [png.subarray(0, Math.floor(png.length * 0.6)), /libpng read error/],
    ] as const) {
      const logged: Array<Record<string, unknown>> = [];
      const logger = { warn: (fields: Record<string, unknown>) => void logged.push(fields) } as unknown as Logger;
      await refused(run(cut, {}, { logger }), /^the file is damaged or incomplete: send it again, or export it anew$/);
      expect(logged).toEqual([{ reason: 'reason.damaged', decoder: expect.stringMatching(said) }]);
    }
  });
  it('each kind of decoder failure gets its own plain line', () => {
    // sharp 0.34's words for: a cut WebP, a cut GIF, a PNG with a broken first chunk, a cut AVIF, a HEIC photo
    // (the HEVC decoder is not in sharp's libvips), and something else.
    const said = (message: string) => say('en', decodeReason(message));
    for (const message of ['Input buffer has corrupt header: webp: unable to parse image', 'gifload_buffer: Unexpected end of GIF source data', 'Input buffer has corrupt header: ', 'source: bad seek to 9722']) {
      expect(said(message), message).toBe('the file is damaged or incomplete: send it again, or export it anew');
    }
    expect(said('Input buffer contains unsupported image format')).toBe('not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF)');
    expect(said('heif: Error while loading plugin: Support for this compression format has not been built in (11.6003)')).toMatch(/^the image is compressed in a way this service cannot read \(iPhone HEIC photos are\): save or share it as JPEG/);
    expect(say('zh-Hans', decodeReason('heif: Unsupported feature: Unsupported codec (4.3000)'))).toMatch(/^这张图片的压缩方式本服务无法读取/);
    expect(said('VipsForeignLoad: out of order read at line 12')).toBe('the image could not be read: open it in an image editor, save it as PNG or JPEG and send that');
    for (const message of ['VipsJpeg: premature end of JPEG image', 'vipspng: libpng read error']) expect(say('zh-Hans', decodeReason(message))).toBe('文件已损坏或不完整：请重新发送，或重新导出一次');
  });
  it('a PNG whose header claims 30000x30000 pixels, before decoding', () =>
    refused(run(pngClaiming(scene, 30000, 30000)), /30000x30000 \(900\.0 MP\), over the limit of 16\.0 MP/));
  it('an image whose 4x result could not be held, whatever the pixel limit, before decoding', async () => {
    // 8-bit RGB: 90 MP is over the 89.5 MP whose 4x result fits one 4 GiB buffer; 89 MP is not.
    await refused(
      run(pngClaiming(scene, 10000, 9000), {}, { maxPixels: Infinity }),
      /^the image is 10000x9000 \(90\.0 MP, 3 channels of 8 bits\): its 4x result would need 4\.3 GB, over the 4\.3 GB one image can hold: send one of at most 89\.5 MP$/,
    );
    const rgba16 = await sharp(scene).ensureAlpha().toColourspace('rgb16').png().toBuffer();
    // 16-bit RGBA: 8 bytes a sample group, so 33.5 MP is the most.
    await refused(run(pngClaiming(rgba16, 6000, 6000), {}, { maxPixels: Infinity }), /\(36\.0 MP, 4 channels of 16 bits\).*at most 33\.6 MP$/);
  });
  it('the pixel limit is configurable', () => refused(run(scene, {}, { maxPixels: 1000 }), /48x32 \(0\.0 MP\), over the limit/));
  it('an animated GIF', async () => {
    const frame = (r: number) => sharp({ create: { width: 16, height: 16, channels: 3, background: { r, g: 0, b: 0 } } }).png().toBuffer();
    const gif = await sharp([await frame(255), await frame(0)], { join: { animated: true } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    await refused(run(gif), /animated.*2 frames/);
  });
  it('an SVG, which could reference other files', () =>
    refused(run(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>')), /SVG input is not accepted/));
  it('an unknown model names the allowed ones', () => refused(run(scene, { model: 'x9' }), /unknown model "x9": allowed models are x4plus, x4fast, anime, anime-fast$/));
  it('a bad option names the option and what is allowed', () => refused(run(scene, { scale: 5 }), /scale must be 1, 2, 3 or 4 \(got 5\)/));
});

describe('awkward inputs come out right', () => {
  it('a CMYK JPEG is converted to sRGB colours', async () => {
    const cmyk = await sharp(scene).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const result = await run(cmyk, { tune: 'raw' });
    expect(result.output).toMatchObject({ width: 192, height: 128, channels: 3 });
    const back = await sharp(result.image).resize(48, 32, { kernel: 'lanczos3' }).raw().toBuffer();
    expect(psnr(back, (await pixels(scene)).samples)).toBeGreaterThan(22);
  });

  it('a palette PNG with transparency keeps its transparent area', async () => {
    const rgba = Buffer.alloc(24 * 16 * 4);
    for (let p = 0; p < 24 * 16; p++) rgba.set([200, 40, 40, p % 24 < 12 ? 255 : 0], p * 4);
    const palette = await sharp(rgba, { raw: { width: 24, height: 16, channels: 4 } }).png({ palette: true }).toBuffer();
    expect((await sharp(palette).metadata()).isPalette).toBe(true);
    const result = await run(palette);
    expect(result.output).toMatchObject({ width: 96, height: 64, channels: 4 });
    const out = await pixels(result.image);
    const alphaAt = (x: number, y: number) => out.samples[(y * 96 + x) * 4 + 3];
    expect(alphaAt(10, 30)).toBe(255);
    expect(alphaAt(85, 30)).toBe(0);
  });

  it('alpha can also go through the model', async () => {
    const rgba = await sharp(scene).ensureAlpha(0.5).png().toBuffer();
    const result = await run(rgba, { alpha: 'model' });
    expect(result.tiles).toBe(2);
    const out = await pixels(result.image);
    expect(out.channels).toBe(4);
    expect(Math.abs(out.samples[3] - 128)).toBeLessThanOrEqual(3);
  });

  it('a 16-bit PNG gives a 16-bit PNG', async () => {
    const wide = new Uint16Array(40 * 24 * 3);
    for (let p = 0; p < 40 * 24; p++) wide.set([(p * 997) % 65536, 30000, 65535 - ((p * 131) % 65536)], p * 3);
    const png16 = await sharp(wide, { raw: { width: 40, height: 24, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const result = await run(png16);
    expect(result.output).toMatchObject({ width: 160, height: 96, bits: 16 });
    const meta = await sharp(result.image).metadata();
    expect(meta.depth).toBe('ushort');
    // Real 16-bit data, not 8-bit values spread out: many samples are not multiples of 257.
    const { samples } = await pixels(result.image, 'ushort');
    expect(samples.filter((v) => v % 257 !== 0).length).toBeGreaterThan(samples.length / 2);
    // The same picture in 8 bits gives the same result to within rounding.
    const png8 = await sharp(png16).toColourspace('srgb').png().toBuffer();
    const eight = (await pixels((await run(png8)).image)).samples;
    expect(psnr(Array.from(samples, (v) => v / 257), eight)).toBeGreaterThan(40);
  });

  it('greyscale stays greyscale', async () => {
    const grey = await sharp(scene).toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const result = await run(grey);
    expect(result.output.channels).toBe(1);
    expect((await sharp(result.image).metadata()).channels).toBe(1);
  });

  it('a 1x1 image gives 4x4', async () => {
    const one = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#3366cc' } }).png().toBuffer();
    const result = await run(one);
    expect(result.output).toMatchObject({ width: 4, height: 4 });
  });

  it('an image smaller than a tile runs as one window', async () => {
    const result = await run(scene, { tile: 64 });
    expect(result.tiles).toBe(1);
    expect(result.output).toMatchObject({ width: 192, height: 128 });
  });

  it('EXIF orientation is applied (and set to 1), the camera kept and the location not (issue 26)', async () => {
    const jpeg = await sharp(scene)
      .jpeg()
      .withMetadata({ orientation: 6, exif: { IFD0: { Make: 'TestCam', Model: 'X1' }, IFD3: { GPSLatitudeRef: 'N' } } })
      .toBuffer();
    const meta = await sharp(jpeg).metadata();
    expect(meta.orientation).toBe(6);
    const result = await run(jpeg);
    // Rotated a quarter turn: 48x32 becomes 32x48, then 4x.
    expect(result.output).toMatchObject({ width: 128, height: 192 });
    const out = await sharp(result.image).metadata();
    const exif = out.exif?.toString('latin1') ?? '';
    expect([exif.includes('TestCam'), exif.includes('N\0'), out.orientation]).toEqual([true, false, 1]);
  });

  it.each([1, 2, 3, 4] as const)('scale %i gives that size', async (scale) => {
    const result = await run(scene, { scale });
    expect(result.output).toMatchObject({ width: 48 * scale, height: 32 * scale });
    expect((await sharp(result.image).metadata()).width).toBe(48 * scale);
  });
});

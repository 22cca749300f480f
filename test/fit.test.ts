/**
 * Fitting a result into an upload limit: the estimate from the header, and the most faithful file that fits.
 */
import { say } from '../src/i18n/i18n.js';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { estimatePngBytes, fitToLimit, largestFittingScale } from '../src/imaging/fit.js';
import { pixels, scenePng } from './helpers.js';

describe('upload limits', () => {
  it('picks the largest scale whose PNG should fit, from the header alone', () => {
    expect(estimatePngBytes(2000, 1500, 4)).toBe(86_400_000);
    expect(largestFittingScale(2000, 1500, 50e6)).toBe(3);
    expect(largestFittingScale(2000, 1500, 25e6)).toBe(2);
    expect(largestFittingScale(2000, 1500, 1e6)).toBeNull();
    // 16-bit samples and alpha take more room.
    expect(largestFittingScale(1000, 1000, 30e6, { channels: 4, bits: 16 })).toBe(2);
  });

  it('sends the PNG when it fits, else lossless WebP with the same pixels, saying so', async () => {
    const png = await sharp(await scenePng(128, 128, 3)).resize(512, 512).png().toBuffer();
    const whole = (await fitToLimit(png, png.length))!;
    expect([whole.format, whole.bytes === png, whole.note]).toEqual(['png', true, undefined]);
    const sent = (await fitToLimit(png, png.length - 1))!;
    expect(sent.format).toBe('webp');
    expect(sent.bytes.length).toBeLessThan(png.length);
    expect(say('en', sent.note!)).toMatch(/^sent as lossless WebP \(\d+ KB, the same pixels\): the PNG is \d+ KB, over the \d+ KB upload limit$/);
    expect(say('zh-Hans', sent.note!)).toMatch(/^以无损 WebP 发送（\d+ KB，像素完全相同）：PNG 文件为 \d+ KB，超过了 \d+ KB 的上传上限$/);
    const [a, b] = await Promise.all([pixels(png), pixels(sent.bytes)]);
    expect(Buffer.from(a.samples).equals(Buffer.from(b.samples))).toBe(true);
  });

  it('sends a smaller scale when not even WebP fits, and nothing when not even a quarter does', async () => {
    // Noise compresses not at all, in PNG or WebP.
    const png = await sharp(randomBytes(400 * 400 * 3), { raw: { width: 400, height: 400, channels: 3 } }).png().toBuffer();
    // 3/4 of the size is 56% of the pixels: over half the bytes; 1/2 is a quarter of them.
    const sent = (await fitToLimit(png, png.length * 0.5))!;
    expect([sent.width, sent.height]).toEqual([200, 200]);
    expect(sent.bytes.length).toBeLessThanOrEqual(png.length * 0.5);
    expect(say('en', sent.note!)).toMatch(/^sent at 200x200 \(50% of 400x400\), (PNG|lossless WebP), .*lossless WebP does not fit either$/);
    expect(await fitToLimit(png, 1000)).toBeNull();
  });
});

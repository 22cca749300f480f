/**
 * Fitting a result into an upload limit: the estimate from the header, and the most faithful file that fits.
 */
import { say } from '../src/i18n/i18n.js';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { estimateJpegBytes, estimatePngBytes, fitToLimit, largestFittingScale } from '../src/imaging/fit.js';
import { pixels, scenePng } from './helpers.js';

describe('upload limits', () => {
  it('picks the largest scale whose PNG should fit, from the header alone', () => {
    expect(estimatePngBytes(2000, 1500, 4)).toBe(86_400_000);
    // A JPEG of quality 70 of the 4x result, at most 0.1 bytes a pixel: 4.8 MB.
    expect(estimateJpegBytes(2000, 1500, 4)).toBe(4_800_000);
    expect(largestFittingScale(2000, 1500, 50e6)).toBe(4);
    expect(largestFittingScale(2000, 1500, 4e6)).toBe(3);
    expect(largestFittingScale(2000, 1500, 1e6)).toBeNull();
    // 16-bit samples and alpha take more room as PNG, and fit as JPEG all the same.
    expect(estimatePngBytes(1000, 1000, 4, 4, 16)).toBe(76_800_000);
    expect(largestFittingScale(1000, 1000, 30e6, { channels: 4, bits: 16 })).toBe(4);
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

  it('sends the full resolution as JPEG at the best quality that fits when lossless WebP does not, saying which', async () => {
    // Noise compresses not at all in PNG or WebP; JPEG at quality 95 takes about a third of the PNG's bytes.
    const png = await sharp(randomBytes(400 * 400 * 3), { raw: { width: 400, height: 400, channels: 3 } }).png().toBuffer();
    const roomy = (await fitToLimit(png, png.length * 0.5))!;
    expect([roomy.format, roomy.width, roomy.height]).toEqual(['jpeg', 400, 400]);
    expect(say('en', roomy.note!)).toMatch(/^sent as JPEG, quality 95, full resolution \(\d+ KB\): the PNG is \d+ KB, over the \d+ KB upload limit$/);
    // Less room: a lower quality, still every pixel, and the best that fits: one step up would not.
    const tight = (await fitToLimit(png, png.length * 0.25))!;
    expect([tight.format, tight.width]).toEqual(['jpeg', 400]);
    const quality = Number(/quality (\d+)/.exec(say('en', tight.note!))![1]);
    expect(quality).toBeGreaterThanOrEqual(70);
    expect(quality).toBeLessThan(95);
    expect(tight.bytes.length).toBeLessThanOrEqual(png.length * 0.25);
    const better = await sharp(png).jpeg({ quality: quality + 2 }).toBuffer();
    expect(better.length).toBeGreaterThan(png.length * 0.25);
  });

  it('sends a smaller size only when not even a JPEG of quality 70 fits, and nothing when not even a quarter does', async () => {
    const png = await sharp(randomBytes(400 * 400 * 3), { raw: { width: 400, height: 400, channels: 3 } }).png().toBuffer();
    const q70 = (await sharp(png).jpeg({ quality: 70 }).toBuffer()).length;
    const sent = (await fitToLimit(png, q70 - 1))!;
    expect([sent.width, sent.height]).toEqual([300, 300]);
    expect(sent.bytes.length).toBeLessThan(q70);
    expect(say('en', sent.note!)).toMatch(/^sent at 300x300 \(75% of 400x400\), JPEG quality \d+, \d+ KB: .*, and not even a JPEG of quality 70 fits$/);
    expect(await fitToLimit(png, 1000)).toBeNull();
  });

  it("says from the header that a 1600x1200 photo's 4x result can go whole under 10 MiB, and a 12 MP one's only at 2x", () => {
    const limit = 10 * 2 ** 20;
    // As PNG neither would: the 6400x4800 PNG is estimated at 55 MB (x4fast's real one: 33 MB).
    expect(estimatePngBytes(1600, 1200, 4)).toBeGreaterThan(limit);
    expect(largestFittingScale(1600, 1200, limit)).toBe(4);
    expect(largestFittingScale(4000, 3000, limit)).toBe(2);
  });
});

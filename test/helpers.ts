import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { scenePng } from '../src/bench/scene.js';

/** A fresh temporary folder, removed by the caller's afterEach/afterAll. */
export function tempDir(prefix = 'enhancer-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Raw interleaved samples of any encoded image. */
export async function pixels(bytes: Uint8Array | string, depth: 'uchar' | 'ushort' = 'uchar') {
  let pipeline = sharp(bytes);
  // sharp reads 16-bit files as 8-bit sRGB unless asked for the 16-bit colour space.
  if (depth === 'ushort') pipeline = pipeline.toColourspace('rgb16');
  const { data, info } = await pipeline.raw({ depth }).toBuffer({ resolveWithObject: true });
  const samples = depth === 'ushort' ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data);
  return { samples, ...info };
}

/** Peak signal-to-noise ratio in dB between two sample arrays of one length. */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, max = 255): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  return se === 0 ? Infinity : 10 * Math.log10((max * max) / (se / a.length));
}

export { scenePng };

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { scenePng } from '../src/bench/scene.js';
import { MALLOC_ENV } from '../src/malloc.js';

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

/** A drawing made with sharp from SVG: flat colours and thin dark lines, as the anime models are made for. */
export function drawingPng(width: number, height: number): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="${width}" height="${height}" fill="#fdf6e3"/>
    <circle cx="${width * 0.45}" cy="${height * 0.5}" r="${Math.min(width, height) * 0.3}" fill="#f4a6c0" stroke="#222" stroke-width="1"/>
    <rect x="${width * 0.6}" y="${height * 0.1}" width="${width * 0.3}" height="${height * 0.25}" fill="#36c" stroke="#111" stroke-width="0.8"/>
    <path d="M1 ${height - 3} L${width - 1} ${height - 6}" stroke="#1a3" stroke-width="0.7"/>
  </svg>`;
  return sharp(Buffer.from(svg)).removeAlpha().png().toBuffer();
}

export { scenePng };

/**
 * The environment an engine child of a test starts in: the launcher (bin/enhancer.js) gives the service's
 * processes glibc's malloc settings (src/malloc.ts), and vitest's process has none of them.
 */
export const ENGINE_ENV: NodeJS.ProcessEnv = { ...process.env, ...MALLOC_ENV };

/**
 * `enhancer bench --formats`: what each format costs and keeps, on the held photos (models/calibration, and
 * test/photos' largest): bytes per output pixel at each format's default quality, PSNR against the PNG of the
 * same result, and the encoding time. docs/doors.md#formats keeps the figures.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { cliSettings } from '../config.js';
import { enhance } from '../engine/enhance.js';
import { projectRoot } from '../paths.js';
import type { OutputFormat } from '../types.js';
import { psnr } from './sizes-bench.js';

const FORMATS: { format: OutputFormat; quality?: number }[] = [{ format: 'png' }, { format: 'webp' }, { format: 'webp', quality: 90 }, { format: 'jpeg' }, { format: 'avif' }];

export interface FormatRow {
  format: string;
  photos: number;
  bytesPerPixel: number;
  psnr: number;
  encodeMs: number;
}

export async function benchFormats(json: boolean, model = 'x4fast'): Promise<FormatRow[]> {
  const settings = cliSettings();
  const dir = path.join(projectRoot, 'models/calibration');
  const photos = fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => path.join(dir, f));
  const sums = FORMATS.map(() => ({ bytes: 0, pixels: 0, psnr: 0, encodeMs: 0 }));
  for (const photo of photos) {
    const input = fs.readFileSync(photo);
    let reference: Buffer | undefined;
    for (const [i, { format, quality }] of FORMATS.entries()) {
      const result = await enhance({ input, name: path.basename(photo), options: { model, format, quality } }, { modelsDir: settings.models, runtime: settings });
      const { data, info } = await sharp(result.image).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      reference ??= data;
      sums[i].bytes += result.image.length;
      sums[i].pixels += info.width * info.height;
      sums[i].psnr += Math.min(99, psnr({ data, width: info.width, height: info.height }, { data: reference, width: info.width, height: info.height }));
      sums[i].encodeMs += result.ms.encode;
    }
  }
  const rows = FORMATS.map(({ format, quality }, i) => ({
    format: quality === undefined ? format : `${format} q${quality}`,
    photos: photos.length,
    bytesPerPixel: Math.round((sums[i].bytes / sums[i].pixels) * 1000) / 1000,
    psnr: Math.round((sums[i].psnr / photos.length) * 100) / 100,
    encodeMs: Math.round(sums[i].encodeMs / photos.length),
  }));
  if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else for (const r of rows) process.stdout.write(`${r.format}: ${r.bytesPerPixel} bytes per output pixel, ${r.psnr} dB against the PNG, encoded in ${r.encodeMs} ms (${r.photos} photos)\n`);
  return rows;
}

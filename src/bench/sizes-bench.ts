/**
 * `enhancer bench --sizes`: the two ways to an output smaller than the model's 4x, side by side on the held
 * photos (test/photos, models/calibration): enhance at full size then reduce, or reduce the input first so the
 * model's 4x lands on the target. Each photo is halved to make the input, so the photo itself (reduced to the
 * target) is the truth both are held against; the two are also compared with each other. Prints a table (or
 * JSON) per model and share of 4x; docs/doors.md#sizes keeps the figures and the rule taken from them.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { cliSettings } from '../config.js';
import { enhance } from '../engine/enhance.js';
import { projectRoot } from '../paths.js';

/** Shares of the model's 4x output measured: scale 1, a `size` of 1.5x, scale 2 and scale 3. */
const SHARES = [0.25, 0.375, 0.5, 0.75];

interface Pixels {
  data: Buffer;
  width: number;
  height: number;
}

const rgbOf = async (bytes: Buffer | string, width?: number, height?: number): Promise<Pixels> => {
  let pipeline = sharp(bytes).removeAlpha().toColourspace('srgb');
  if (width && height) pipeline = pipeline.resize(width, height, { kernel: 'lanczos3', fit: 'fill' });
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
};

/** PSNR in dB over the RGB samples. */
export function psnr(a: Pixels, b: Pixels): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += (a.data[i] - b.data[i]) ** 2;
  const mse = sum / a.data.length;
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

/** Mean SSIM of the luma over 8x8 windows (stride 4), constants as in Wang et al. 2004. */
export function ssim(a: Pixels, b: Pixels): number {
  const luma = (p: Pixels) => {
    const out = new Float64Array(p.width * p.height);
    for (let i = 0; i < out.length; i++) out[i] = 0.299 * p.data[i * 3] + 0.587 * p.data[i * 3 + 1] + 0.114 * p.data[i * 3 + 2];
    return out;
  };
  const [x, y] = [luma(a), luma(b)];
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  let total = 0;
  let count = 0;
  for (let top = 0; top + 8 <= a.height; top += 4) {
    for (let left = 0; left + 8 <= a.width; left += 4) {
      let mx = 0, my = 0, vx = 0, vy = 0, cxy = 0;
      for (let j = 0; j < 8; j++) for (let i = 0; i < 8; i++) {
        const k = (top + j) * a.width + left + i;
        mx += x[k];
        my += y[k];
      }
      mx /= 64;
      my /= 64;
      for (let j = 0; j < 8; j++) for (let i = 0; i < 8; i++) {
        const k = (top + j) * a.width + left + i;
        vx += (x[k] - mx) ** 2;
        vy += (y[k] - my) ** 2;
        cxy += (x[k] - mx) * (y[k] - my);
      }
      vx /= 63;
      vy /= 63;
      cxy /= 63;
      total += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      count++;
    }
  }
  return total / count;
}

export interface SizesRow {
  model: string;
  share: number;
  photos: number;
  /** Mean dB and SSIM of each way against the photo reduced to the target, and of reduce-first against full. */
  full: { psnr: number; ssim: number; inferMs: number; totalMs: number };
  reduced: { psnr: number; ssim: number; inferMs: number; totalMs: number };
  between: { psnr: number; ssim: number };
}

/** Runs the comparison for `models` and prints it. */
export async function benchSizes(json: boolean, models = ['x4fast', 'x4plus']): Promise<SizesRow[]> {
  const settings = cliSettings();
  const root = projectRoot;
  const photos = [path.join(root, 'test/photos'), path.join(root, 'models/calibration')].flatMap((dir) =>
    fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => path.join(dir, f)),
  );
  const rows: SizesRow[] = [];
  for (const model of models) {
    // x4plus is 15x x4fast's work: three photos keep its part to about a minute on two cores.
    const held = model === 'x4plus' ? photos.slice(-3) : photos;
    for (const share of SHARES) {
      const sum = { full: { psnr: 0, ssim: 0, inferMs: 0, totalMs: 0 }, reduced: { psnr: 0, ssim: 0, inferMs: 0, totalMs: 0 }, between: { psnr: 0, ssim: 0 } };
      for (const photo of held) {
        const meta = await sharp(photo).metadata();
        const input = await sharp(photo).resize(Math.round(meta.width! / 2), Math.round(meta.height! / 2), { kernel: 'lanczos3' }).png().toBuffer();
        const size = Math.round((meta.width! / 2) * 4 * share);
        const run = (reduceFirstAt: number) =>
          enhance({ input, name: path.basename(photo), options: { model, size } }, { modelsDir: settings.models, runtime: settings, reduceFirstAt });
        const full = await run(0);
        const reduced = await run(1);
        const [a, b] = [await rgbOf(full.image), await rgbOf(reduced.image)];
        const truth = await rgbOf(photo, a.width, a.height);
        for (const [key, result, pixels] of [['full', full, a], ['reduced', reduced, b]] as const) {
          sum[key].psnr += psnr(pixels, truth);
          sum[key].ssim += ssim(pixels, truth);
          sum[key].inferMs += result.ms.infer;
          sum[key].totalMs += result.ms.total;
        }
        sum.between.psnr += psnr(a, b);
        sum.between.ssim += ssim(a, b);
      }
      const mean = <T extends Record<string, number>>(o: T) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round((v / held.length) * 1000) / 1000])) as T;
      const row = { model, share, photos: held.length, full: mean(sum.full), reduced: mean(sum.reduced), between: mean(sum.between) };
      rows.push(row);
      if (!json) {
        process.stdout.write(
          `${model} ${Math.round(share * 100)}% of 4x (${held.length} photos): full ${row.full.psnr.toFixed(2)} dB ${row.full.ssim.toFixed(4)} ${row.full.totalMs.toFixed(0)} ms · ` +
            `reduce first ${row.reduced.psnr.toFixed(2)} dB ${row.reduced.ssim.toFixed(4)} ${row.reduced.totalMs.toFixed(0)} ms · between ${row.between.psnr.toFixed(2)} dB ${row.between.ssim.toFixed(4)}\n`,
        );
      }
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(rows)}\n`);
  return rows;
}

import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { enhance } from '../src/engine/enhance.js';
import { cpuSessionOptions, cudaSessionOptions } from '../src/engine/session.js';
import { readManifest } from '../src/models/manifest.js';
import { DEFAULT_MODELS_DIR } from '../src/paths.js';
import { pixels, psnr, scenePng } from './helpers.js';

let scene: Buffer;
beforeAll(async () => {
  scene = await scenePng(96, 96, 3);
});

/** The model run plainly on the whole image, as a reference written independently of the engine. */
async function plainRun(model: string, png: Buffer): Promise<Uint8Array> {
  const manifest = await readManifest(DEFAULT_MODELS_DIR);
  const entry = manifest.models.find((m) => m.name === model)!;
  const session = await ort.InferenceSession.create(path.join(DEFAULT_MODELS_DIR, entry.file));
  const { samples, width, height } = await pixels(png);
  const chw = new Float32Array(3 * width * height);
  for (let p = 0; p < width * height; p++) for (let c = 0; c < 3; c++) chw[c * width * height + p] = samples[p * 3 + c] / 255;
  const { output } = await session.run({ input: new ort.Tensor('float32', chw, [1, 3, height, width]) });
  const data = output.data as Float32Array;
  const n = width * height * 16;
  const hwc = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = Math.round(Math.min(1, Math.max(0, data[c * n + p])) * 255);
  await session.release();
  return hwc;
}

describe.each(['x4fast', 'x4plus'])('%s on a natural picture', (model) => {
  let whole: Uint8Array | Uint16Array;
  beforeAll(async () => {
    const result = await enhance({ input: scene, name: 'scene.png', options: { model, tile: 0, tune: 'raw' } });
    expect(result.output).toMatchObject({ width: 384, height: 384, channels: 3 });
    expect(result.tiles).toBe(1);
    whole = (await pixels(result.image)).samples;
  });

  it('--tile 0 --raw equals a plain whole-image run of the model', async () => {
    const reference = await plainRun(model, scene);
    let worst = 0;
    for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(reference[i] - whole[i]));
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('tile 32 blends to the whole-image result without seams', async () => {
    const tiled = await enhance({ input: scene, name: 'scene.png', options: { model, tile: 32, tune: 'raw' } });
    expect(tiled.tiles).toBe(9);
    const db = psnr((await pixels(tiled.image)).samples, whole);
    expect(db).toBeGreaterThanOrEqual(model === 'x4plus' ? 40 : 50);
  });

  it('shrunk back to the input size, the result stays close to the input', async () => {
    const back = await sharp(await sharp(whole, { raw: { width: 384, height: 384, channels: 3 } }).png().toBuffer())
      .resize(96, 96, { kernel: 'lanczos3' })
      .raw()
      .toBuffer();
    const input = (await pixels(scene)).samples;
    expect(psnr(back, input)).toBeGreaterThan(28);
  });
});

/**
 * The gentle touch-up as documented in src/imaging/tune.ts, computed here on the raw 8-bit result: saturation
 * x1.05 around Rec. 709 luma, contrast x1.04 around mid-grey, then out = in + 0.35 * (in - 3x3 binomial blur).
 */
function gentleReference(raw: ArrayLike<number>, width: number, height: number): Float64Array {
  const coloured = new Float64Array(raw.length);
  for (let p = 0; p < width * height; p++) {
    const [r, g, b] = [raw[p * 3], raw[p * 3 + 1], raw[p * 3 + 2]];
    const luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    for (let c = 0; c < 3; c++) {
      const v = 1.04 * (luma + 1.05 * (raw[p * 3 + c] - luma) - 127.5) + 127.5;
      coloured[p * 3 + c] = Math.min(255, Math.max(0, v));
    }
  }
  const out = new Float64Array(raw.length).fill(NaN);
  const blur = [1, 2, 1, 2, 4, 2, 1, 2, 1];
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < 9; k++) sum += blur[k] * coloured[((y + Math.floor(k / 3) - 1) * width + x + (k % 3) - 1) * 3 + c];
        const v = coloured[(y * width + x) * 3 + c];
        out[(y * width + x) * 3 + c] = Math.min(255, Math.max(0, v + 0.35 * (v - sum / 16)));
      }
    }
  }
  return out;
}

describe('the gentle touch-up', () => {
  it.each([0, 32])('is the documented saturation, contrast and sharpening of the raw result (tile %d)', async (tile) => {
    const [raw, gentle] = await Promise.all(
      (['raw', 'gentle'] as const).map(async (tune) => {
        const result = await enhance({ input: scene, name: 'scene.png', options: { model: 'x4fast', tile, tune } });
        return (await pixels(result.image)).samples;
      }),
    );
    const reference = gentleReference(raw, 384, 384);
    let worst = 0;
    let total = 0;
    let bias = 0;
    let count = 0;
    let changed = 0;
    for (let i = 0; i < reference.length; i++) {
      if (Number.isNaN(reference[i])) continue; // the border, where sharp extends the edge
      const d = gentle[i] - reference[i];
      worst = Math.max(worst, Math.abs(d));
      total += Math.abs(d);
      bias += d;
      count++;
      if (gentle[i] !== raw[i]) changed++;
    }
    // This reference starts from the rounded raw result where the engine starts from the model's floats, and
    // the engine rounds between its colour step and the sharpening, which amplifies that rounding: within
    // 3 levels anywhere, under one on average, and no brighter or darker overall.
    expect(worst).toBeLessThanOrEqual(3);
    expect(total / count).toBeLessThan(0.8);
    expect(Math.abs(bias / count)).toBeLessThan(0.1);
    expect(changed / count).toBeGreaterThan(0.5);
  });
});

describe('runtime settings', () => {
  it('reach the session options as parameters: threads for the CPU provider, the GPU index for CUDA', () => {
    expect(cpuSessionOptions({ threads: 1, gpu: 0 })).toMatchObject({ executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
    expect(cpuSessionOptions({ threads: 0, gpu: 0 }).intraOpNumThreads).toBe(os.availableParallelism());
    expect(cudaSessionOptions({ threads: 1, gpu: 2 }).executionProviders).toEqual([{ name: 'cuda', deviceId: 2 }]);
  });
});

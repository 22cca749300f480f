import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enhance } from '../src/engine/enhance.js';
import { readManifest } from '../src/models/manifest.js';
import { modelsDir } from '../src/paths.js';
import { pixels, psnr, scenePng, tempDir } from './helpers.js';

let scene: Buffer;
beforeAll(async () => {
  scene = await scenePng(96, 96, 3);
});

/** The model run plainly on the whole image, as a reference written independently of the engine. */
async function plainRun(model: string, png: Buffer): Promise<Uint8Array> {
  const manifest = await readManifest(modelsDir());
  const entry = manifest.models.find((m) => m.name === model)!;
  const session = await ort.InferenceSession.create(path.join(modelsDir(), entry.file));
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
  let whole: Uint8Array;
  beforeAll(async () => {
    const result = await enhance({ input: scene, name: 'scene.png', options: { model, tile: 0, tune: 'raw' } });
    expect(result.output).toMatchObject({ width: 384, height: 384, channels: 3 });
    expect(result.tiles).toBe(1);
    whole = (await pixels(result.png)).samples;
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
    const db = psnr((await pixels(tiled.png)).samples, whole);
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

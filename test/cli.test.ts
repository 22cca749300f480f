/**
 * The `enhancer` command as a person (or another tool) runs it: bin/enhancer.js in a child process.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { scenePng, tempDir } from './helpers.js';

const BIN = path.join(projectRoot, 'bin', 'enhancer.js');
let dir: string;

function enhancer(...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, LOG_LEVEL: undefined } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  dir = tempDir();
  fs.writeFileSync(path.join(dir, 'photo.png'), await scenePng(40, 30, 11));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('enhancer enhance', () => {
  it('writes <stem>.enhanced.png beside the input and prints one JSON object with --json', async () => {
    const { code, stdout, stderr } = enhancer('enhance', 'photo.png', '--model', 'x4fast', '--json');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(report).toMatchObject({
      input: { width: 40, height: 30, channels: 3 },
      output: { width: 160, height: 120, channels: 3 },
      model: 'x4fast',
      device: 'cpu',
      tile: 0,
      tiles: 1,
    });
    expect(report.signature).toMatch(/^[0-9a-f]{64}$/);
    for (const stage of ['decode', 'infer', 'encode', 'total']) expect(report.ms[stage]).toBeGreaterThan(0);
    expect(report.ms.total).toBeGreaterThanOrEqual(report.ms.infer);
    const meta = await sharp(path.join(dir, 'photo.enhanced.png')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 160, 120]);
  });

  it('takes -o, --scale, --tile and --raw, and prints a one-line summary without --json', async () => {
    const { code, stdout, stderr } = enhancer('enhance', 'photo.png', '-o', 'out/small.png', '--model', 'x4fast', '--scale', '2', '--tile', '16', '--raw');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error: cannot write out\/small.png \(ENOENT\)\n$/);
    fs.mkdirSync(path.join(dir, 'out'));
    const again = enhancer('enhance', 'photo.png', '-o', 'out/small.png', '--model', 'x4fast', '--scale', '2', '--tile', '16', '--raw');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/photo\.png 40x30 -> out\/small\.png 80x60 · x4fast fp32 on cpu · tile 16, 6 tiles/);
    expect((await sharp(path.join(dir, 'out', 'small.png')).metadata()).width).toBe(80);
    expect(stdout).toBe('');
  });

  it.each([
    ['zero bytes', 'empty.png', '', /^error: the file is empty \(0 bytes\)$/],
    ['text named .png', 'note.png', 'not a picture', /^error: not an image in a supported format/],
  ])('refuses %s: non-zero exit, one error line, no output file', (_what, name, content, pattern) => {
    fs.writeFileSync(path.join(dir, name), content);
    const { code, stdout, stderr } = enhancer('enhance', name, '--model', 'x4fast');
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(stderr.trimEnd()).toMatch(pattern);
    expect(fs.existsSync(path.join(dir, name.replace('.png', '.enhanced.png')))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a missing file, a bad option and a bad command with one line each', () => {
    expect(enhancer('enhance', 'nope.png').stderr).toBe('error: no such file: nope.png\n');
    const bad = enhancer('enhance', 'photo.png', '--tile', 'big');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: tile must be auto, 0 or a whole number from 16 to 4096 (got "big")\n');
    const usage = enhancer('frobnicate');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: unknown command "frobnicate"\nusage:/);
    expect(enhancer('enhance', 'photo.png', '--colour', 'red').code).toBe(2);
  });
});

describe('enhancer models', () => {
  it('a second run verifies and does nothing: the defaults, --all, and by name', () => {
    const defaults = enhancer('models');
    expect(defaults.code).toBe(0);
    expect(defaults.stderr).toMatch(/^x4plus: realesrgan-x4plus\.onnx verified \(sha256 [0-9a-f]{12}…\)\nx4fast: realesrgan-x4fast\.onnx verified \(sha256 [0-9a-f]{12}…\)\nmodels: all present and verified, nothing to do\n$/);
    const all = enhancer('models', '--all');
    expect(all.code).toBe(0);
    const verified = [...all.stderr.matchAll(/^([\w-]+): ([\w.-]+\.onnx) verified/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(verified).toEqual([
      'x4plus realesrgan-x4plus.onnx',
      'x4fast realesrgan-x4fast.onnx',
      'anime realesrgan-x4plus-anime.onnx',
      'anime-fast realesr-animevideov3-x4.onnx',
      'x4plus-int8 realesrgan-x4plus-int8.onnx',
      'x4fast-int8 realesrgan-x4fast-int8.onnx',
    ]);
    expect(all.stderr).toMatch(/nothing to do\n$/);
    expect(enhancer('models', 'anime-fast').stderr).toMatch(/^anime-fast: realesr-animevideov3-x4\.onnx verified/);
  });

  it('an unknown name or names with --all: one line and the usage', () => {
    const unknown = enhancer('models', 'anime-int8');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: unknown model "anime-int8": enhancer models prepares x4plus, x4fast, anime, anime-fast, x4plus-int8, x4fast-int8\n');
    const both = enhancer('models', '--all', 'anime');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^error: models takes --all or model names, not both\nusage:/);
  });
});

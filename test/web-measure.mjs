#!/usr/bin/env node
/**
 * Measures the web door on the real service (x4fast): upload-to-first-progress and upload-to-download beside
 * the engine's own time for the same image, and the service's memory (RSS, sampled every 20 ms) during a 50 MB
 * upload and one over the limit. Run after `npm run build`: `node test/web-measure.mjs [width height]`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const [width, height] = [Number(process.argv[2] ?? 640), Number(process.argv[3] ?? 480)];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enhancer-web-measure-'));
const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = s.address();
    s.close(() => resolve(free));
  });
});
const base = `http://127.0.0.1:${port}`;
const env = { ...process.env, ENHANCER_WEB_PORT: String(port), ENHANCER_MODEL: 'x4fast', ENHANCER_DATA: path.join(dir, 'data'), ENHANCER_HOTFOLDER: 'false',
  MALLOC_MMAP_THRESHOLD_: String(512 * 1024 * 1024), MALLOC_TRIM_THRESHOLD_: String(4 * 1024 ** 3), MALLOC_ARENA_MAX: '1', LOG_FORMAT: 'json' };
const child = spawn(process.execPath, [path.join(root, 'bin', 'enhancer.js'), 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
await new Promise((resolve) => child.stderr.on('data', (c) => { log += c; if (log.includes('service started')) resolve(); }));

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) * 1024;
const mb = (b) => `${(b / 1e6).toFixed(0)} MB`;

async function upload(name, bytes) {
  const form = new FormData();
  form.append('model', 'x4fast');
  form.append('file', new Blob([bytes]), name);
  const response = await fetch(`${base}/api/jobs`, { method: 'POST', body: form });
  return (await response.json()).jobs[0];
}

// Speed: one photo-like JPEG, twice (the first run loads the model).
for (const round of [1, 2]) {
  const image = await sharp({ create: { width, height, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).blur(1.2).jpeg({ quality: 90 }).toBuffer();
  const t0 = performance.now();
  const job = await upload(`photo${round}.jpg`, image);
  const [p, q] = job.link.split('?');
  const stream = await fetch(`${base}${p}/events?${q}`);
  let firstProgress;
  let done;
  const reader = stream.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    text += value;
    if (firstProgress === undefined && text.includes('event: progress')) firstProgress = performance.now() - t0;
    const m = /event: done\ndata: (.*)\n/.exec(text);
    if (m) { done = JSON.parse(m[1]); break; }
  }
  const png = Buffer.from(await (await fetch(`${base}${p}/file/png?${q}`)).arrayBuffer());
  const total = performance.now() - t0;
  const ms = done.result.ms;
  console.log(`round ${round}: ${width}x${height} JPEG -> ${done.result.output.width}x${done.result.output.height} PNG (${mb(png.length)}), tile ${done.result.tile}, ${done.result.tiles} tiles: upload-to-first-progress ${(firstProgress / 1000).toFixed(2)} s, upload-to-download ${(total / 1000).toFixed(2)} s; engine: infer ${(ms.infer / 1000).toFixed(2)} s, total ${(ms.total / 1000).toFixed(2)} s, early preview ${((ms.preview ?? 0) / 1000).toFixed(2)} s, render ${((ms.render ?? 0) / 1000).toFixed(2)} s`);
}

// Memory: RSS while a 50 MB file (at the default limit) streams in, and while a 120 MB one (over it) does.
for (const [name, bytes] of [['at-limit.png', 49_900_000], ['over-limit.png', 120_000_000]]) {
  const head = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer();
  const body = Buffer.concat([head, Buffer.alloc(bytes - head.length, 1)]);
  const before = rss();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rss())), 20);
  const answer = await upload(name, body);
  clearInterval(timer);
  console.log(`${name} (${mb(bytes)}): RSS before ${mb(before)}, peak during the upload ${mb(peak)} (+${mb(peak - before)}); answer: ${answer.reason ?? answer.link}`);
}
child.kill('SIGTERM');
await new Promise((resolve) => child.on('exit', resolve));
fs.rmSync(dir, { recursive: true, force: true });

#!/usr/bin/env node
/**
 * Measures the web door under the attacks of its security review, on the real service: how long a held
 * connection lives (silent body, trickling upload, half a body to a link route), and the service's file
 * descriptors, memory and answer times while 5,000 event streams are attempted on one link. Run after
 * `npm run build`: `node test/web-attack.mjs [attempts]`. Prints one table; nothing is asserted.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const attempts = Number(process.argv[2] ?? 5000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enhancer-web-attack-'));
const free = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const [port, healthPort] = [await free(), await free()];
const base = `http://127.0.0.1:${port}`;
const env = {
  ...process.env,
  ENHANCER_WEB_PORT: String(port),
  ENHANCER_HTTP_PORT: String(healthPort),
  ENHANCER_DATA: path.join(dir, 'data'),
  ENHANCER_HOTFOLDER: 'false',
  ENHANCER_MODEL: 'x4plus',
  ENHANCER_TILE: '32',
  ENHANCER_THREADS: '1',
  MALLOC_MMAP_THRESHOLD_: String(512 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(4 * 1024 ** 3),
  MALLOC_ARENA_MAX: '1',
  LOG_FORMAT: 'json',
};
const child = spawn(process.execPath, [path.join(root, 'bin', 'enhancer.js'), 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
await new Promise((resolve) => child.stderr.on('data', (c) => { log += c; if (log.includes('service started')) resolve(); }));

const proc = () => {
  const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return { fds: fs.readdirSync(`/proc/${child.pid}/fd`).length, rssMB: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024 };
};
const timed = async (url) => {
  const t = performance.now();
  const response = await fetch(url).catch((e) => ({ status: e.cause?.code ?? 'error' }));
  return { status: response.status, ms: Math.round(performance.now() - t) };
};
const raw = (head, body = '') =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      const t = Date.now();
      socket.write(head + body);
      socket.on('close', () => resolve({ socket, livedMs: Date.now() - t }));
    });
    socket.on('error', () => {});
    socket.on('data', () => {});
  });

// A job that stays active (x4plus, 32-pixel tiles, one thread) for the streams to follow.
const form = new FormData();
form.append('file', new Blob([await sharp({ create: { width: 320, height: 320, channels: 3, background: '#8a6' } }).png().toBuffer()]), 'slow.png');
const { jobs } = await (await fetch(`${base}/api/jobs`, { method: 'POST', body: form })).json();
const [linkPath, query] = jobs[0].link.split('?');
const before = proc();

// Held connections, all at once.
const silent = raw(`POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 50000000\r\n\r\n`);
const half = raw(`POST /job/000000000000000/cancel HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n`, 'x'.repeat(30000));
let trickleSocket;
const trickle = new Promise((resolve) => {
  const socket = net.connect(port, '127.0.0.1', () => {
    const t = Date.now();
    socket.write(`POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 50000000\r\n\r\n`);
    const drip = setInterval(() => socket.write('-'), 2000);
    socket.on('close', () => {
      clearInterval(drip);
      resolve({ livedMs: Date.now() - t });
    });
  });
  socket.on('error', () => {});
  trickleSocket = socket;
});

// The stream flood: `attempts` connections, 500 at a time, each held until the end.
const outcomes = { 200: 0, 429: 0, closed: 0, error: 0 };
const open = [];
let peak = before;
const answers = [];
for (let done = 0; done < attempts; done += 500) {
  await Promise.all(
    Array.from({ length: Math.min(500, attempts - done) }, () =>
      new Promise((resolve) => {
        const request = http.get({ host: '127.0.0.1', port, path: `${linkPath}/events?${query}`, agent: false }, (response) => {
          outcomes[response.statusCode] = (outcomes[response.statusCode] ?? 0) + 1;
          open.push(request);
          response.on('data', () => {});
          resolve();
        });
        request.on('error', (e) => {
          outcomes[e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'closed' : 'error']++;
          resolve();
        });
      }),
    ),
  );
  const now = proc();
  if (now.fds > peak.fds) peak = now;
  answers.push(await timed(`${base}/`), await timed(`http://127.0.0.1:${healthPort}/healthz`));
}
const during = { page: answers.filter((_, i) => i % 2 === 0), health: answers.filter((_, i) => i % 2 === 1) };
for (const request of open) request.destroy();
const [silentR, halfR, trickleR] = await Promise.all([silent, half, trickle]);
trickleSocket.destroy();
await new Promise((resolve) => setTimeout(resolve, 1000));
const after = proc();
child.kill('SIGTERM');
await new Promise((resolve) => child.on('exit', resolve));
fs.rmSync(dir, { recursive: true, force: true });

const worst = (list) => `${Math.max(...list.map((a) => a.ms))} ms worst, statuses ${[...new Set(list.map((a) => a.status))].join('/')}`;
console.log(`held connections: silent body ${(silentR.livedMs / 1000).toFixed(1)} s, half a body to a link route ${(halfR.livedMs / 1000).toFixed(1)} s, 1 byte / 2 s on a 50 MB upload ${(trickleR.livedMs / 1000).toFixed(1)} s`);
console.log(`${attempts} attempted streams on one link: ${outcomes[200]} opened, ${outcomes[429]} refused (429), ${outcomes.closed} closed unanswered, ${outcomes.error} other errors`);
console.log(`service file descriptors: ${before.fds} before, ${peak.fds} at the peak, ${after.fds} after; RSS ${before.rssMB.toFixed(0)} MB before, ${peak.rssMB.toFixed(0)} MB at the peak, ${after.rssMB.toFixed(0)} MB after`);
console.log(`during the flood: GET / ${worst(during.page)}; /healthz ${worst(during.health)}; (ulimit -n ${fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)[1]})`);

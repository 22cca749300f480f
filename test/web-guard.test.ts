/**
 * The web door against a hostile network, on the real service: half-sent, silent and trickling bodies, floods of
 * event streams, cross-site posts and rebinding Host names, malformed requests. Each attack is refused or cut
 * off while the page goes on answering.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BODY_BASE_MS, IDLE_MS, LINGER_MS } from '../adapters/web/guard.js';
import { STREAMS_PER_ADDRESS, STREAMS_PER_JOB } from '../adapters/web/feed.js';
import { scenePng, tempDir } from './helpers.js';
import { openStream, rawRequest, type OpenStream } from './raw-http.js';
import { splitLink, startWeb, upload, type WebService } from './web-service.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let dir: string;
let running: WebService | undefined;
let cleanup: Array<() => unknown>;

beforeEach(() => {
  dir = tempDir('enhancer-guard-');
  cleanup = [];
});
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  await running?.service.stop();
  running = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The service, its jobs slow on purpose (x4plus in 32-pixel tiles on one thread), so they stay in line. */
async function slowService(config: object = {}): Promise<WebService> {
  running = await startWeb(dir, { tile: 32, threads: 1, shutdownGraceMs: 0, ...config });
  return running;
}

async function pageAnswers(base: string): Promise<void> {
  const page = await fetch(`${base}/`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<h1>image-enhancer</h1>');
}

describe('slow bodies', () => {
  it('a half-sent body to a link route is answered by the link check at once and closed within seconds; a silent body and a trickle are cut at their deadlines; the page answers throughout', async () => {
    const { base, port } = await slowService();
    // The attack of the review, 100 times: half of a 60,000-byte body to a cancel route with a made-up id.
    // 60 at once: one address may hold 64 connections (guard.ts); past that they are closed unanswered.
    const halves = await Promise.all(
      Array.from({ length: 60 }, () =>
        rawRequest(port, `POST /job/000000000000000/cancel HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n`, 'x'.repeat(30_000)),
      ),
    );
    for (const half of halves) {
      expect(await half.answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(await half.closedAfter).toBeLessThan(LINGER_MS + 3_000);
    }
    await pageAnswers(base);

    const form = `POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=xyz\r\n`;
    const silent = await rawRequest(port, `${form}Content-Length: 100000\r\n\r\n`);
    const trickle = await rawRequest(port, `POST /api/key HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{`);
    // One byte a second: never silent for IDLE_MS, yet 5,000 bytes would take over an hour.
    const dripping = setInterval(() => trickle.socket.write(' '), 1_000);
    cleanup.push(() => clearInterval(dripping));
    await pageAnswers(base);
    const [silentMs, trickleMs] = await Promise.all([silent.closedAfter, trickle.closedAfter]);
    clearInterval(dripping);
    expect(silentMs).toBeGreaterThanOrEqual(IDLE_MS - 1_000);
    expect(silentMs).toBeLessThan(IDLE_MS + 10_000);
    expect(trickleMs).toBeGreaterThanOrEqual(BODY_BASE_MS - 1_000);
    expect(trickleMs).toBeLessThan(BODY_BASE_MS + 10_000);
    await pageAnswers(base);
    // The log line may be read a moment after the socket closed: waited for, not read at once.
    await running!.service.count('a request body came too slowly; connection closed', 1);
    expect(running!.service.lines('a request body came too slowly; connection closed')).toHaveLength(1);
  }, 120_000);

  it('a body declared over the limit is refused before a byte of it is read, and one without a length is refused too', async () => {
    const { port } = await slowService({ limits: { maxFileBytes: 1_000_000 } });
    const over = await rawRequest(port, `POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 900000000\r\n\r\n`);
    expect(await over.answer).toMatch(/^HTTP\/1\.1 413 [^]*connection: close[^]*the request is over the limit of 21\.0 MB\n$/i);
    const chunked = await rawRequest(port, `POST /api/key HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n`);
    expect(await chunked.answer).toMatch(/^HTTP\/1\.1 411 [^]*send the body with its length \(a Content-Length header\)\n$/);
  });
});

describe('event streams', () => {
  it(`at most ${STREAMS_PER_JOB} on a job and ${STREAMS_PER_ADDRESS} from an address; more are refused at once with one line while the page answers`, async () => {
    const { base, port } = await slowService();
    const files = await Promise.all([1, 2, 3, 4, 5].map(async (seed) => ({ name: `${seed}.png`, bytes: await scenePng(160, 160, seed) })));
    const { body } = await upload(base, files, { model: 'x4plus' });
    const links = body.jobs!.map((j) => j.link!);
    const events = (link: string) => {
      const { path: p, query } = splitLink(link);
      return `${p}/events?${query}`;
    };
    const streams: OpenStream[] = [];
    cleanup.push(() => streams.forEach((s) => s.close()));
    const fill = async (link: string) => {
      for (let i = 0; i < STREAMS_PER_JOB; i++) streams.push(await openStream(port, events(link)));
    };
    await fill(links[0]);
    const perJob = await openStream(port, events(links[0]));
    expect([perJob.status, perJob.first]).toEqual([429, "this job's page is open in too many places: close some, then reload\n"]);
    for (const link of links.slice(1, 4)) await fill(link);
    expect(streams.map((s) => s.status)).toEqual(Array(STREAMS_PER_ADDRESS).fill(200));
    expect(streams.every((s) => s.first.startsWith('event: state\n'))).toBe(true);
    const perAddress = await openStream(port, events(links[4]));
    expect([perAddress.status, perAddress.first]).toEqual([429, 'too many job pages are open from this address: close some, then reload\n']);
    // Another person behind this machine's reverse proxy has their own share.
    const other = await openStream(port, events(links[4]), { 'x-forwarded-for': '198.51.100.9' });
    streams.push(other);
    expect(other.status).toBe(200);
    await pageAnswers(base);

    // The books are kept: once streams close, new ones open.
    for (const s of streams.splice(0, STREAMS_PER_JOB)) s.close();
    // The server hears the closes a moment later: tried again until it has, within seconds.
    let again: OpenStream | undefined;
    for (let tries = 0; tries < 50 && again?.status !== 200; tries++) {
      again?.close();
      if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      again = await openStream(port, events(links[4]));
    }
    streams.push(again!);
    expect(again!.status).toBe(200);
  }, 120_000);

  it('a stream ends when its link expires, though its job goes on', async () => {
    const { base, port } = await slowService({ web: { keepFor: '4s' } });
    const { body } = await upload(base, [{ name: 'slow.png', bytes: await scenePng(160, 160, 7) }], { model: 'x4plus' });
    const { path: p, query, expires } = splitLink(body.jobs![0].link!);
    const stream = await openStream(port, `${p}/events?${query}`);
    expect(stream.status).toBe(200);
    await stream.ended;
    expect(Date.now()).toBeGreaterThanOrEqual(expires - 50);
    await running!.service.count('event stream ended: its link expired', 1);
    expect(running!.service.lines('job completed')).toHaveLength(0);
  }, 60_000);
});

describe('where a request comes from', () => {
  it('a foreign Origin, a cross-site fetch and a rebinding Host are refused with one line and nothing is queued; the same origin and a script are welcome', async () => {
    running = await startWeb(dir);
    const { base, port, service } = running;
    const form = () => {
      const data = new FormData();
      data.append('file', new Blob([new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, 'photos', 'coins.png')))]), 'coins.png');
      return data;
    };
    const post = (headers: Record<string, string>) => fetch(`${base}/api/jobs`, { method: 'POST', body: form(), headers });
    for (const headers of [{ origin: 'http://evil.example' }, { origin: 'http://127.0.0.1:9' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'null' }] as Array<Record<string, string>>) {
      const refused = await post(headers);
      expect([refused.status, await refused.text()], JSON.stringify(headers)).toEqual([403, "refused: the request came from another site; use this service's own page, or a script\n"]);
    }
    // DNS rebinding: evil.example resolved to 127.0.0.1 sends its own name as Host.
    const rebound = await rawRequest(port, `GET /api/session HTTP/1.1\r\nHost: evil.example:${port}\r\n\r\n`);
    expect(await rebound.answer).toMatch(/^HTTP\/1\.1 421 [^]*this service does not answer to the name evil\.example/);
    expect(service.lines('upload queued')).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'data', 'web', 'keep'))).toEqual([]);

    expect((await post({ origin: base, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await post({})).status).toBe(200);
    const byName = await fetch(`http://localhost:${port}/api/session`);
    expect(byName.status).toBe(200);
  });

  it.skipIf(!fs.existsSync(CHROMIUM))('a page on another site that auto-submits a form to the door queues nothing', async () => {
    running = await startWeb(dir);
    const evil = http.createServer((_request, response) => {
      response.setHeader('content-type', 'text/html');
      response.end(`<form id="f" method="post" enctype="multipart/form-data" action="${running!.base}/api/jobs"><input type="file" name="file" id="i"><input name="model" value="x4plus"></form>
        <script>const d = new DataTransfer(); d.items.add(new File([new Uint8Array([137,80,78,71,13,10,26,10])], 'x.png', { type: 'image/png' }));
        document.getElementById('i').files = d.files; document.getElementById('f').submit();</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => evil.close(resolve)));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    cleanup.push(() => browser.close());
    const page = await browser.newPage();
    const answered = page.waitForResponse((r) => r.url() === `${running!.base}/api/jobs`);
    await page.goto(`http://127.0.0.1:${(evil.address() as { port: number }).port}/`);
    const response = await answered;
    expect(response.status()).toBe(403);
    // The log line may be read a moment after the answer: waited for, not read at once.
    await running.service.count('cross-site request refused', 1);
    expect(running.service.lines('cross-site request refused')).toHaveLength(1);
    expect(running.service.lines('upload queued')).toEqual([]);
  });
});

describe('malformed requests', () => {
  it('get 400 or 404 with one line, the security headers and nothing of the request echoed; nothing is logged as an error', async () => {
    running = await startWeb(dir);
    const { base, port, service } = running;
    const marker = 'zz-echo-marker-zz';
    const noBoundary = await fetch(`${base}/api/jobs`, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: `--${marker}\r\n` });
    expect([noBoundary.status, await noBoundary.json()]).toEqual([400, { error: 'the upload is not a well-formed form: send the files as multipart/form-data' }]);
    const cut = await fetch(`${base}/api/jobs`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=abc' }, body: `--abc\r\nContent-Disposition: form-data; name="file"; filename="${marker}.png"\r\n\r\n\x89PNG` });
    expect(cut.status).toBe(400);
    expect(await cut.text()).not.toContain(marker);
    const json = await fetch(`${base}/api/key`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"key": ${marker}` });
    expect(json.status).toBe(400);
    expect(await json.text()).not.toContain(marker);
    const field = await fetch(`${base}/api/key`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nokey: marker }) });
    expect([field.status, await field.json()]).toEqual([400, { error: "the request's key is not valid" }]);
    for (const head of [`GET /%${marker}% HTTP/1.1`, `PROPFIND /${marker} HTTP/1.1`, `GET /static/${marker}.js HTTP/1.1`, `GET /${marker}<script> HTTP/1.1`]) {
      const answer = await (await rawRequest(port, `${head}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)).answer;
      expect(answer, head).toMatch(/^HTTP\/1\.1 (400|404) /);
      expect(answer, head).toMatch(/content-security-policy: default-src 'self'/i);
      expect(answer, head).not.toContain(marker);
    }
    const garbage = await (await rawRequest(port, `NOT HTTP AT ALL ${marker}\r\n\r\n`)).answer;
    expect(garbage).toMatch(/^HTTP\/1\.1 400 [^]*x-frame-options: DENY[^]*the request could not be read\n$/i);
    expect(garbage).not.toContain(marker);
    expect(service.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});

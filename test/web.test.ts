/**
 * The web door over HTTP, on the real service and the real x4fast: start-up refusals, signed links, the byte limit
 * while an upload streams, and the access key. The pages themselves are driven in a browser in web-browser.test.ts.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scenePng, tempDir } from './helpers.js';
import { freePort } from './http.js';
import { acceptedLanguages, localeOfRequest, renderPage } from '../adapters/web/language.js';
import { LOCALES, say } from '../src/i18n/i18n.js';
import { runningLine, waitingLine } from '../adapters/web/status.js';
import { ServiceProcess, withConfig } from './service.js';
import { splitLink, startWeb, upload, type WebService } from './web-service.js';

let dir: string;
let running: WebService | undefined;

beforeEach(() => {
  dir = tempDir('enhancer-web-');
});

afterEach(async () => {
  await running?.service.stop();
  running = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Reads a job's event stream until it has ended; returns the events by type. */
async function untilEnded(base: string, link: string): Promise<Array<{ type: string; data: any }>> {
  const { path: p, query } = splitLink(link);
  const response = await fetch(`${base}${p}/events?${query}`);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await response.text(); // the server ends the stream once the job has ended
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [type, data] = block.split('\n');
      return { type: type.slice('event: '.length), data: JSON.parse(data.slice('data: '.length)) };
    });
}

describe('start-up', () => {
  it('a non-loopback address without an access key stops start-up with one line', async () => {
    const service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { enabled: false } }), ENHANCER_WEB_PORT: String(await freePort()), ENHANCER_WEB_HOST: '0.0.0.0' });
    expect(await service.exited).toEqual({ code: 1, signal: null });
    await service.closed;
    expect(service.stderr.filter((l) => l !== '')).toEqual([
      'error: web: host 0.0.0.0 is reachable from other machines and no access key is set: set web.accessKeys (ENHANCER_WEB_KEY), or web.open (ENHANCER_WEB_OPEN=true) to let anyone upload on purpose',
    ]);
  });

  it('a port in use stops start-up with one line naming the port and where it was set', async () => {
    const taken = net.createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as net.AddressInfo).port)));
    try {
      const service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { enabled: false } }), ENHANCER_WEB_PORT: String(port) });
      expect(await service.exited).toEqual({ code: 1, signal: null });
      await service.closed;
      expect(service.stderr.filter((l) => l !== '')).toEqual([
        `error: web: port ${port} (from $ENHANCER_WEB_PORT) is already in use on 127.0.0.1; stop what uses it or set another port (0 turns the web page off)`,
      ]);
    } finally {
      taken.close();
    }
  });

  it('a public address that is not http(s) stops start-up with one line naming where it came from', async () => {
    const service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { enabled: false } }), ENHANCER_PUBLIC_URL: 'enhance.example.org' });
    expect(await service.exited).toEqual({ code: 2, signal: null });
    await service.closed;
    expect(service.stderr.filter((l) => l !== '')).toEqual([
      'error: config: web.publicUrl must be the http:// or https:// address people reach the web page at, e.g. https://enhance.example.org (or empty) (got "enhance.example.org" from $ENHANCER_PUBLIC_URL)',
    ]);
  });

  it('logs the address to open', async () => {
    running = await startWeb(dir);
    const line = running.service.lines(`web page: open ${running.base}/ in a browser`);
    expect(line).toHaveLength(1);
    expect(line[0].adapter).toBe('web');
  });
});

describe('links and limits', () => {
  it('a job link shows the job and its 4x PNG; a forged link and an expired one give a plain page and no file', async () => {
    running = await startWeb(dir, { web: { keepFor: '10s' } });
    const { base } = running;
    const input = await scenePng(64, 48);
    const { body } = await upload(base, [{ name: 'scene.png', bytes: input }]);
    const link = body.jobs![0].link!;
    const { path: p, query, expires } = splitLink(link);
    const events = await untilEnded(base, link);
    expect(events.at(-1)).toMatchObject({ type: 'done', data: { state: 'completed', name: 'scene.png' } });

    const page = await fetch(`${base}${link}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const png = Buffer.from(await (await fetch(`${base}${p}/file/result?${query}`)).arrayBuffer());
    expect(await sharp(png).metadata()).toMatchObject({ width: 256, height: 192, format: 'png' });

    // One character of the signature changed; the expiry moved later with the old signature; no query at all.
    const s = new URLSearchParams(query).get('s')!;
    const forged = [
      `${p}/file/result?e=${expires}&s=${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`,
      `${p}/file/result?e=${expires + 86_400_000}&s=${s}`,
      `${p}/file/result`,
      `${p.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}/file/result?${query}`,
    ];
    for (const route of forged) {
      const response = await fetch(`${base}${route}`);
      expect(response.status, route).toBe(403);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await response.text()).toContain('<p id="reason">This link is not valid: it may have been cut short or changed. Use the whole link you were given.</p>');
    }

    // The link's own expiry (upload + keepFor): the only wait is for the clock to pass it.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expires - Date.now() + 100)));
    for (const route of [link, `${p}/file/result?${query}`]) {
      const response = await fetch(`${base}${route}`);
      expect(response.status).toBe(410);
      const text = await response.text();
      expect(text).toContain('This link has expired: results are kept for 10 seconds after upload, and these were removed.');
      expect(text).not.toContain('PNG');
    }
  }, 60_000);

  it('a file over the byte limit is stopped at the limit with its reason; the next file in the same upload is queued', async () => {
    running = await startWeb(dir, { limits: { maxFileBytes: 1_000_000 } });
    const big = Buffer.concat([await scenePng(32, 32), Buffer.alloc(5_000_000, 7)]);
    const { status, body } = await upload(running.base, [
      { name: 'big.png', bytes: big },
      { name: 'small.png', bytes: await scenePng(32, 32) },
    ]);
    expect(status).toBe(200);
    expect(body.jobs).toEqual([
      { name: 'big.png', reason: 'the file is over the limit of 1.0 MB' },
      // The queued one says its model (the service's, x4fast here) and about how long it takes.
      { name: 'small.png', id: expect.stringMatching(/^[0-9a-z]{15}$/), link: expect.stringMatching(/^\/job\/[0-9a-z]{15}\?e=\d+&s=[\w-]{43}$/), model: 'x4fast', etaSeconds: expect.any(Number) },
    ]);
    // Only the small one is kept; nothing of the big one reached the disk.
    expect(fs.readdirSync(path.join(dir, 'data', 'web', 'keep'))).toEqual([splitLink(body.jobs![1].link!).id]);
    await untilEnded(running.base, body.jobs![1].link!);
  }, 60_000);

  it('a non-image and a damaged image are each refused with their one-line reason', async () => {
    running = await startWeb(dir);
    const png = await scenePng(64, 64);
    const { body } = await upload(running.base, [
      { name: 'notes.txt', bytes: Buffer.from('just some text, not an image at all') },
      { name: 'cut.png', bytes: png.subarray(0, Math.floor(png.length / 2)) },
    ]);
    expect(body.jobs![0]).toEqual({ name: 'notes.txt', reason: 'not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF)' });
    // A cut PNG's header is whole, so it is queued; decoding it fails with the reason, shown on its page.
    const cut = body.jobs![1];
    const events = cut.link ? await untilEnded(running.base, cut.link) : [];
    const reason = cut.reason ?? events.at(-1)?.data.reason;
    expect(reason).toBe('the file is damaged or incomplete: send it again, or export it anew');
  }, 60_000);
});

describe('per visitor and per address', () => {
  it('one person may have limits.queuedPerOwner uploads in line, each taken whole; one address web.uploadsPerMinute uploads a minute', async () => {
    running = await startWeb(dir, { limits: { queuedPerOwner: 1 }, web: { uploadsPerMinute: 3 } });
    const { base } = running;
    const first = await upload(base, [
      { name: 'a.png', bytes: await scenePng(48, 48, 1) },
      { name: 'b.png', bytes: await scenePng(48, 48, 2) },
    ]);
    // Both files of the one upload are queued: the limit counts uploads.
    expect(first.body.jobs!.map((j) => Boolean(j.link))).toEqual([true, true]);
    // A second upload while the first waits is refused whole, cookie or no cookie (the address is the person too).
    expect(await upload(base, [{ name: 'c.png', bytes: await scenePng(48, 48, 3) }], {}, 'enhancer_visitor=AAAAAAAAAAAAAAAAAAAAAA')).toEqual({
      status: 429,
      body: { error: 'you already have 1 upload waiting (the limit is 1): wait for it to finish, or cancel it' },
    });
    await untilEnded(base, first.body.jobs![0].link!);
    await untilEnded(base, first.body.jobs![1].link!);
    expect((await upload(base, [{ name: 'c.png', bytes: await scenePng(48, 48, 3) }])).status).toBe(200);
    expect(await upload(base, [{ name: 'd.png', bytes: await scenePng(48, 48, 4) }])).toEqual({
      status: 429,
      body: { error: expect.stringMatching(/^too many uploads from this address: at most 3 a minute; try again in \d+ seconds?$/) },
    });
  }, 60_000);
});

describe('behind a reverse proxy on this machine', () => {
  const via = (address: string) => ({ 'x-forwarded-for': address });
  const session = async (base: string, headers: Record<string, string> = {}) =>
    (await (await fetch(`${base}/api/session`, { headers })).json()) as { keyNeeded: boolean; allowed: boolean };

  it('a request the proxy passed on needs a key even on 127.0.0.1; with none configured the operator is told how to set one', async () => {
    running = await startWeb(dir);
    const { base } = running;
    const input = { name: 'a.png', bytes: await scenePng(32, 32) };
    // Before, anyone reaching the page through a public proxy could upload without a key.
    expect(await upload(base, [input], {}, '', via('203.0.113.7'))).toEqual({
      status: 403,
      body: { error: 'uploads through a proxy need an access key, and this service has none: its operator sets web.accessKeys (ENHANCER_WEB_KEY), or web.open to let anyone upload' },
    });
    expect(await session(base, via('203.0.113.7'))).toMatchObject({ keyNeeded: true, allowed: false });
    // A browser on this machine itself still needs none.
    expect(await session(base)).toMatchObject({ keyNeeded: false, allowed: true });
    expect((await upload(base, [input])).status).toBe(200);
  });

  it('with a key, a proxied browser enters it once; the rate limit counts each forwarded address, not the proxy', async () => {
    const key = 'correct-horse-battery-staple';
    // Two a minute: the refused upload counts as one of them.
    running = await startWeb(dir, { web: { uploadsPerMinute: 2 } }, { ENHANCER_WEB_KEY: key });
    const { base } = running;
    const png = async (seed: number) => ({ name: `${seed}.png`, bytes: await scenePng(32, 32, seed) });
    expect(await upload(base, [await png(1)], {}, '', via('203.0.113.7'))).toEqual({ status: 403, body: { error: 'uploads here need an access key: enter it on the page first' } });
    const entered = await fetch(`${base}/api/key`, { method: 'POST', headers: { ...via('203.0.113.7'), 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ key }) });
    const setCookie = entered.headers.get('set-cookie')!;
    // The proxy said the browser came over https: the key's cookie is only ever sent back over it.
    expect(setCookie).toMatch(/; Secure(;|$)/);
    const cookie = setCookie.split(';')[0];
    expect((await upload(base, [await png(2)], {}, cookie, via('203.0.113.7'))).status).toBe(200);
    expect((await upload(base, [await png(3)], {}, cookie, via('203.0.113.7'))).status).toBe(429);
    // Another person behind the same proxy has their own minute.
    expect((await upload(base, [await png(4)], {}, cookie, via('198.51.100.9'))).status).toBe(200);
  });
});

describe('access keys', () => {
  it('on a non-loopback address uploads need the key, entered once and kept in a cookie; the key is never logged', async () => {
    const key = 'correct-horse-battery-staple';
    running = await startWeb(dir, {}, { ENHANCER_WEB_HOST: '0.0.0.0', ENHANCER_WEB_KEY: key });
    const { base, service } = running;
    const input = { name: 'a.png', bytes: await scenePng(32, 32) };
    expect(await upload(base, [input])).toEqual({ status: 403, body: { error: 'uploads here need an access key: enter it on the page first' } });
    const session = (await (await fetch(`${base}/api/session`)).json()) as { keyNeeded: boolean; allowed: boolean };
    expect(session).toMatchObject({ keyNeeded: true, allowed: false });

    const wrong = await fetch(`${base}/api/key`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'not-the-key-at-all' }) });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({ error: 'that is not an access key of this service' });
    const right = await fetch(`${base}/api/key`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    expect(right.status).toBe(200);
    const cookie = right.headers.get('set-cookie')!.split(';')[0];
    expect(cookie).toMatch(/^enhancer_key=[\w-]{43}$/);
    expect(cookie).not.toContain(key);

    const { status, body } = await upload(base, [input], {}, cookie);
    expect(status).toBe(200);
    const link = body.jobs![0].link!;
    await untilEnded(base, link);

    // "Enhance again" is an upload too: a job link alone is not enough for it, the key is.
    const { path: p, query } = splitLink(link);
    const again = (headers: Record<string, string>, q = query) =>
      fetch(`${base}${p}/again?${q}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ scale: '2' }) });
    const keyless = await again({});
    expect([keyless.status, await keyless.json()]).toEqual([403, { error: 'enhancing again here needs an access key: enter it on the upload page first' }]);
    expect((await again({ cookie }, `${query}x`)).status).toBe(403);
    const allowed = await again({ cookie });
    const { link: second } = (await allowed.json()) as { link: string };
    expect(second).toMatch(/^\/job\/\w+\?e=\d+&s=/);
    const events = await untilEnded(base, second);
    expect(events.at(-1)!.data).toMatchObject({ state: 'completed', name: 'a.png', result: { output: { width: 64, height: 64 }, options: { scale: 2 } } });
    expect(JSON.stringify(service.logs) + service.stderr.join('\n')).not.toContain(key);
  }, 60_000);
});

describe("the visitor's language", () => {
  it('Accept-Language is read by q-value, then by order; a cookie the switch set comes first; else English', () => {
    expect(acceptedLanguages('en;q=0.5, zh-CN, fr;q=0, de;q=0.7')).toEqual(['zh-CN', 'de', 'en']);
    expect(acceptedLanguages('zh-CN,zh;q=0.9,en;q=0.8')).toEqual(['zh-CN', 'zh', 'en']);
    expect(acceptedLanguages('*, en;q=x')).toEqual([]);
    // The first language there is a catalogue for, by q-value: French has none, English is wanted more than Chinese.
    expect(localeOfRequest({ 'accept-language': 'fr, zh-CN;q=0.8, en;q=0.9' })).toBe('en');
    expect(localeOfRequest({ 'accept-language': 'fr, en;q=0.8, zh-TW;q=0.9' })).toBe('zh-Hans');
    expect(localeOfRequest({ 'accept-language': 'zh-CN;q=0, en' })).toBe('en');
    expect(localeOfRequest({ 'accept-language': 'de-DE' })).toBe('en');
    expect(localeOfRequest({})).toBe('en');
    expect(localeOfRequest({ 'accept-language': 'en', cookie: 'enhancer_visitor=x; lang=zh-Hans' })).toBe('zh-Hans');
    expect(localeOfRequest({ 'accept-language': 'zh-CN', cookie: 'lang=en' })).toBe('en');
    // A cookie naming no catalogue is passed over.
    expect(localeOfRequest({ 'accept-language': 'zh-CN', cookie: 'lang=tlh' })).toBe('zh-Hans');
    expect(localeOfRequest({ 'accept-language': 'zh-CN', cookie: 'other=%E0%A4%A; lang=%' })).toBe('zh-Hans');
  });

  it('every line the door and its pages name is in the catalogue', () => {
    const web = path.join(import.meta.dirname, '..', 'adapters', 'web');
    const named = new Set<string>();
    const files = fs.readdirSync(web, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    for (const file of files) {
      const code = fs.readFileSync(path.join(web, file), 'utf8');
      for (const m of code.matchAll(/webSay\([\w.() ]+?, '([\w.]+)'/g)) named.add(`web.${m[1]}`);
      for (const m of code.matchAll(/key: '((?:web|webDoor)\.[\w.]+)'/g)) named.add(m[1]);
    }
    expect(named.size).toBeGreaterThan(30);
    // With a count, so plural lines (`seconds_one`, `seconds_other`) are found too, and ordinal ones (`nth_ordinal_two`).
    const missing = (locale: string, name: string) =>
      [false, true].every((ordinal) => say(locale, { key: name, values: { count: 2, ordinal } }).startsWith('(message '));
    expect([...named].filter((name) => missing('en', name))).toEqual([]);
    for (const page of ['index.html', 'job.html']) {
      const template = fs.readFileSync(path.join(web, 'public', page), 'utf8');
      for (const locale of LOCALES) {
        // Every hole filled (the script's words, in their data block, keep their own `{{value}}` holes).
        const html = renderPage(template, locale).replace(/<script type="application\/json" id="words">.*?<\/script>/s, '');
        expect(html, `${page} in ${locale}`).not.toMatch(/{{|\(message /);
      }
    }
  });

  it('a job page says where the job stands in its viewer’s language', () => {
    expect(waitingLine('en', 2, 12_000)).toBe('Waiting: 2nd in line, done in about 12 s');
    expect(waitingLine('en', 23, 180_000)).toBe('Waiting: 23rd in line, done in about 3 min');
    expect(waitingLine('en', 11, 400)).toBe('Waiting: 11th in line, done in about 1 s');
    expect(waitingLine('zh-Hans', 2, 12_000)).toBe('排队中：第 2 位，约 12 秒后完成');
    expect(waitingLine('zh-Hans', 1, 180_000)).toBe('下一个就轮到你，约 3 分钟后完成');
    expect(runningLine('zh-Hans', { tilesDone: 3, tilesTotal: 20, etaMs: 12_000 })).toBe('处理中：已完成 3/20 块，还需约 12 秒');
    const preparing = { key: 'prepare.line', values: { model: 'anime', time: { key: 'prepare.aboutMinute' } } };
    expect(runningLine('en', { tilesDone: 0, tilesTotal: 0, etaMs: 0, preparing })).toBe('Preparing the anime model, about a minute, once');
    expect(runningLine('zh-Hans', { tilesDone: 0, tilesTotal: 0, etaMs: 0, preparing })).toBe('正在准备 anime 模型，大约一分钟，仅此一次');
  });

  it('refusals, reasons and plain pages come in the language the browser asks for; a cookie beats the header', async () => {
    running = await startWeb(dir, { limits: { maxFileBytes: 1_000_000 } });
    const { base, service } = running;
    const zh = { 'accept-language': 'zh-CN,zh;q=0.9,en;q=0.8' };
    const text = { name: 'notes.txt', bytes: Buffer.from('just some text, not an image at all') };
    const big = { name: 'big.png', bytes: Buffer.concat([await scenePng(32, 32), Buffer.alloc(2_000_000, 7)]) };
    expect((await upload(base, [text, big], {}, '', zh)).body.jobs).toEqual([
      { name: 'notes.txt', reason: '不是受支持格式的图片（PNG、JPEG、WebP、GIF、TIFF、AVIF）' },
      { name: 'big.png', reason: '文件超过了 1.0 MB 的上限' },
    ]);
    // Chinese wanted less than English (q-values), and a cookie that chose English over a Chinese browser.
    const english = { name: 'notes.txt', reason: 'not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF)' };
    expect((await upload(base, [text], {}, '', { 'accept-language': 'zh-CN;q=0.5, en' })).body.jobs).toEqual([english]);
    expect((await upload(base, [text], {}, 'lang=en', zh)).body.jobs).toEqual([english]);
    expect((await upload(base, [text], {}, 'lang=zh-Hans', { 'accept-language': 'en' })).body.jobs![0].reason).toBe('不是受支持格式的图片（PNG、JPEG、WebP、GIF、TIFF、AVIF）');
    // The API's own refusals too.
    expect(await upload(base, [text], {}, '', { ...zh, 'x-forwarded-for': '203.0.113.7' })).toEqual({
      status: 403,
      body: { error: '通过代理上传需要访问密钥，但此服务没有设置密钥：请服务的管理者设置 web.accessKeys（ENHANCER_WEB_KEY），或设置 web.open 允许任何人上传' },
    });
    const key = await fetch(`${base}/api/key`, { method: 'POST', headers: { ...zh, 'content-type': 'application/json' }, body: JSON.stringify({ key: 'guess' }) });
    expect([key.status, await key.json()]).toEqual([403, { error: '这不是此服务的访问密钥' }]);
    const nothing = await fetch(`${base}/static/nothing.js`, { headers: zh });
    expect([nothing.status, await nothing.text()]).toEqual([404, '未找到\n']);
    const session = (await (await fetch(`${base}/api/session`, { headers: zh })).json()) as { limits: string; models: Array<{ name: string; label: string; architecture: string }> };
    expect(session.limits).toMatch(/^支持 PNG、JPEG、WebP、GIF、TIFF 或 AVIF；每张不超过 1\.0 MB、[\d.]+ 百万像素$/);
    expect(session.models.find((m) => m.name === 'x4fast')).toEqual({ name: 'x4fast', label: '照片，快速', architecture: 'RealESRGAN x4 compact（SRVGGNet，32 个卷积层）' });

    // A damaged image uploaded by a Chinese browser fails in the queue: its reason is said to each viewer in theirs.
    const png = await scenePng(64, 64);
    const { body } = await upload(base, [{ name: 'cut.png', bytes: png.subarray(0, Math.floor(png.length / 2)) }], {}, '', zh);
    const link = body.jobs![0].link!;
    // Stored with the job (its PDF and comparison follow it): the log line says so, once the service has written it.
    await service.until((logs) => logs.some((l) => l.msg === 'upload queued' && l.name === 'cut.png'), 'the upload of cut.png');
    expect(service.lines('upload queued').find((l) => l.name === 'cut.png')).toMatchObject({ locale: 'zh-Hans' });
    const { path: p, query } = splitLink(link);
    const events = await untilEnded(base, link);
    expect(events.at(-1)!.data).toMatchObject({ state: 'failed', reason: 'the file is damaged or incomplete: send it again, or export it anew' });
    const seen = async (headers: Record<string, string>) => (await (await fetch(`${base}${p}/state?${query}`, { headers })).json()) as { reason: string; text: string };
    expect(await seen(zh)).toMatchObject({ reason: '文件已损坏或不完整：请重新发送，或重新导出一次', text: '失败：文件已损坏或不完整：请重新发送，或重新导出一次' });
    expect(await seen({ 'accept-language': 'en-GB' })).toMatchObject({ text: 'Failed: the file is damaged or incomplete: send it again, or export it anew' });

    // The pages themselves, and a forged link's plain page.
    const page = await (await fetch(`${base}${link}`, { headers: zh })).text();
    expect(page).toContain('<html lang="zh-Hans">');
    expect(page).toContain('<h2>处理前后对比</h2>');
    expect(page).not.toContain('Before and after');
    expect(await (await fetch(`${base}/`, { headers: { cookie: 'lang=en', ...zh } })).text()).toContain('<h1>image-enhancer</h1>');
    const forged = await fetch(`${base}${p}?e=${splitLink(link).expires}&s=${'A'.repeat(43)}`, { headers: zh });
    expect(forged.status).toBe(403);
    const plain = await forged.text();
    expect(plain).toContain('<html lang="zh-Hans">');
    expect(plain).toContain('<p id="reason">此链接无效：它可能被截断或改动过。请使用你收到的完整链接。</p>');
    expect(plain).not.toMatch(/not valid|whole link/);
  }, 60_000);
});

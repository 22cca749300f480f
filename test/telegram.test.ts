/**
 * The Telegram bot end to end: the real service in a child process with real models, the real grammY client
 * talking to a fake Bot API server on 127.0.0.1. Tests assert what a person sees: the messages the bot sent and
 * edited, and the files it uploaded, decoded.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeBotApi, type ApiCall, type FakeUser } from './fake-bot-api.js';
import { drawingPng, scenePng, tempDir } from './helpers.js';
import { freePort } from './http.js';
import { ServiceProcess } from './service.js';
import { canMount, fillLeaving, mountTmpfs, NO_MOUNT, unmount } from './tmpfs.js';
import { followChatLink, splitLink } from './web-service.js';

const TOKEN = '123456789:AAH-fake_token-for-the-tests-only';
const ALICE: FakeUser = { id: 111, first_name: 'Alice', username: 'alice' };
const BOB: FakeUser = { id: 222, first_name: 'Bob' };
const CAROL: FakeUser = { id: 333, first_name: 'Carol' };
/** Whose Telegram is set to Simplified Chinese, and to English. */
const LI: FakeUser = { id: 444, first_name: '李雷', language_code: 'zh-hans' };
const DANA: FakeUser = { id: 555, first_name: 'Dana', language_code: 'en' };

let dir: string;
let api: FakeBotApi;
let service: ServiceProcess | undefined;

beforeEach(async () => {
  dir = tempDir('enhancer-telegram-');
  api = await new FakeBotApi(TOKEN).listen();
});
afterEach(async () => {
  await service?.stop('SIGKILL');
  service = undefined;
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function start(env: Record<string, string> = {}): ServiceProcess {
  service = new ServiceProcess(dir, {
    ENHANCER_HOTFOLDER: 'false',
    TELEGRAM_BOT_TOKEN: TOKEN,
    TELEGRAM_API_ROOT: api.root,
    TELEGRAM_PROGRESS_EDIT_MS: '300',
    ...env,
  });
  return service;
}

async function started(env: Record<string, string> = {}): Promise<ServiceProcess> {
  const s = start(env);
  await s.started();
  return s;
}

async function jpeg(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(await scenePng(width, height, seed)).jpeg({ quality: 92 }).toBuffer();
}

/** Calls replying to `message`, of the sending methods, in order. */
function answersTo(message: { message_id: number }, methods = ['sendMessage', 'sendPhoto', 'sendDocument']): ApiCall[] {
  return api.calls.filter((c) => c.status === 200 && methods.includes(c.method) && c.params.reply_parameters?.message_id === message.message_id);
}

/** The status message the bot put under `message` (its first text reply). */
async function statusOf(message: { message_id: number }): Promise<number> {
  const reply = await api.waitFor((c) => c.method === 'sendMessage' && c.params.reply_parameters?.message_id === message.message_id, 'the status message');
  return reply.result.message_id as number;
}

/** Edits of one message's text, in order. */
function edits(chat: number, message: number): string[] {
  return api.of('editMessageText').filter((c) => Number(c.params.chat_id) === chat && c.params.message_id === message).map((c) => c.params.text as string);
}

async function decoded(upload: { bytes: Buffer }) {
  return sharp(upload.bytes).metadata();
}

describe('telegram bot', () => {
  it('answers a photo with the early preview, a PNG document four times its size and the comparison, in that order', async () => {
    await started();
    const photo = api.sendPhoto(ALICE, await jpeg(320, 320, 1), { width: 320, height: 320 }, { caption: 'fast' });
    const status = await statusOf(photo);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Done/.test(c.params.text), 'done', 120_000);

    const answers = answersTo(photo);
    expect(answers.map((c) => c.method)).toEqual(['sendMessage', 'sendPhoto', 'sendDocument', 'sendPhoto']);
    const [queued, early, document, compare] = answers;
    expect(queued.params.text).toMatch(/^Received photo-\d+\.jpg, queueing/);
    expect(early.params.caption).toMatch(/^Early preview/);
    expect((await decoded(early.file('photo'))).format).toBe('png');
    const png = await decoded(document.file('document'));
    // The largest size was taken, not the 90x90 thumbnail listed first.
    expect([png.format, png.width, png.height]).toEqual(['png', 1280, 1280]);
    expect(document.file('document').filename).toMatch(/\.png$/);
    expect(document.params.caption).toMatch(/^1280x1280 PNG, 4x of 320x320 \(x4fast\)\./);
    expect((await decoded(compare.file('photo'))).format).toBe('jpeg');
    expect(compare.params.caption).toBe('Before and after.');
    // Without web.publicUrl no answer links anywhere.
    expect(answers.map((c) => c.params.reply_markup)).toEqual([undefined, undefined, undefined, undefined]);

    const texts = edits(ALICE.id, status);
    expect(texts[0]).toMatch(/^Queued: next in line, done in about \d+ (s|min)\./);
    expect(texts.at(-1)).toMatch(/^Done in \d+ s: 1280x1280 \(4x, x4fast\)\.$/);
    const queuedEdit = api.of('editMessageText').find((c) => c.params.message_id === status)!;
    expect(queuedEdit.params.reply_markup.inline_keyboard[0][0]).toMatchObject({ text: 'Cancel' });
    // The final edit takes the Cancel button away.
    expect(api.stored(ALICE.id, status).reply_markup).toBeUndefined();
    expect(api.of('sendMediaGroup')).toEqual([]);
  });

  it('answers an image sent as a file, with the PDF the caption asks for', async () => {
    await started();
    const doc = api.sendDocument(ALICE, await scenePng(24, 20, 2), 'tiny.png', 'image/png', { caption: 'pdf' });
    const status = await statusOf(doc);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Done/.test(c.params.text), 'done');
    const answers = answersTo(doc);
    // Too small for an early preview (under about 300x300).
    expect(answers.map((c) => c.method)).toEqual(['sendMessage', 'sendDocument', 'sendPhoto', 'sendDocument']);
    const png = answers[1].file('document');
    expect(png.filename).toBe('tiny-4x.png');
    expect(await decoded(png)).toMatchObject({ format: 'png', width: 96, height: 80 });
    const pdf = answers[3].file('document');
    expect([pdf.filename, pdf.bytes.subarray(0, 5).toString()]).toEqual(['tiny.pdf', '%PDF-']);
  });

  it('makes each image of an album a job of its own, and says which image each answer is for', async () => {
    await started();
    const album: Array<{ message_id: number }> = [];
    for (let i = 0; i < 3; i++) {
      album.push(api.sendDocument(ALICE, await scenePng(20 + i * 4, 20, 10 + i), `a${i + 1}.png`, 'image/png', { media_group_id: 'g1', ...(i === 0 ? { caption: '2x' } : {}) }));
    }
    for (const [i, message] of album.entries()) {
      const status = await statusOf(message);
      await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /Done/.test(c.params.text), `album image ${i + 1} done`);
      const document = answersTo(message).find((c) => c.method === 'sendDocument')!;
      expect(document.params.caption).toMatch(new RegExp(`^Album image ${i + 1}: `));
      // The album's caption (on its first image) sets the options of every image.
      expect(await decoded(document.file('document'))).toMatchObject({ width: (20 + i * 4) * 2, height: 40 });
      expect(edits(ALICE.id, status).at(-1)).toMatch(new RegExp(`^Album image ${i + 1}: Done`));
    }
    expect(api.of('sendDocument')).toHaveLength(3);

    // Asked again later, an album image is a single image: no album label, not a fourth album image.
    api.sendText(ALICE, '/enhance 3x', { reply_to_message: album[1] });
    await api.waitFor((c) => c.method === 'sendDocument' && c.params.reply_parameters?.message_id === album[1].message_id && /^72x60 PNG, 3x/.test(c.params.caption), 'the album image again');
  });

  it('the anime scene by caption: "anime 2x" and "anime fast 3x" give those models at those sizes', async () => {
    await started();
    const drawing = await drawingPng(24, 20);
    const slow = api.sendDocument(ALICE, drawing, 'lines.png', 'image/png', { caption: 'anime 2x' });
    const fast = api.sendDocument(ALICE, drawing, 'lines fast.png', 'image/png', { caption: 'Anime, fast, 3x please' });
    for (const [message, caption, width, height] of [
      [slow, /^48x40 PNG, 2x of 24x20 \(anime\)\./, 48, 40],
      [fast, /^72x60 PNG, 3x of 24x20 \(anime-fast\)\./, 72, 60],
    ] as const) {
      const document = await api.waitFor((c) => c.method === 'sendDocument' && c.params.reply_parameters?.message_id === message.message_id, `the answer to ${message.message_id}`);
      expect(document.params.caption).toMatch(caption);
      expect(await decoded(document.file('document'))).toMatchObject({ width, height });
    }
  });

  it('enhances an earlier image when /enhance fast 2x replies to it', async () => {
    await started({ ENHANCER_MODEL: 'x4plus' });
    const earlier = api.message(ALICE, { document: { file_id: api.addFile(await scenePng(24, 24, 3), 'png'), file_unique_id: 'x', file_name: 'old.png', mime_type: 'image/png' } });
    const command = api.sendText(ALICE, '/enhance fast 2x', { reply_to_message: earlier });
    const status = await statusOf(earlier);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Done/.test(c.params.text), 'done');
    const document = answersTo(earlier).find((c) => c.method === 'sendDocument')!;
    expect(document.params.caption).toMatch(/^48x48 PNG, 2x of 24x24 \(x4fast\)\./);
    expect(await decoded(document.file('document'))).toMatchObject({ width: 48, height: 48 });
    expect(edits(ALICE.id, status).at(-1)).toMatch(/^Done .*\(2x, x4fast\)/);

    // /enhance with nothing to enhance says how to use it.
    const alone = api.sendText(ALICE, '/enhance');
    const hint = await api.waitFor((c) => c.method === 'sendMessage' && c.params.reply_parameters?.message_id === alone.message_id, 'the hint');
    expect(hint.params.text).toMatch(/^Reply \/enhance to a message with an image/);
    expect(command.message_id).toBeGreaterThan(earlier.message_id);
  });
});

/** The first text the bot sent in reply to `message`, once it has settled (its last edit, if any). */
async function answerText(message: { message_id: number; chat: { id: number } }, settled: RegExp, timeoutMs?: number): Promise<string> {
  const status = await statusOf(message);
  await api.waitFor(
    (c) => (c.method === 'editMessageText' && c.params.message_id === status && settled.test(c.params.text)) || (c.method === 'sendMessage' && c.params.reply_parameters?.message_id === message.message_id && settled.test(c.params.text)),
    `an answer matching ${settled}`,
    timeoutMs,
  );
  return api.stored(message.chat.id, status).text as string;
}

/** A PNG of noise: RealESRGAN's output of it compresses far worse than a photo's. */
async function noisePng(width: number, height: number, seed: number): Promise<Buffer> {
  const samples = Buffer.alloc(width * height * 3);
  let x = seed;
  for (let i = 0; i < samples.length; i++) samples[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return sharp(samples, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

describe('telegram bot: bad input and limits', () => {
  it('answers each bad input with a one-line reason, and keeps going', async () => {
    const { withConfig } = await import('./service.js');
    await started({ ...withConfig(dir, { limits: { maxPixels: 100_000, queuedPerOwner: 1 } }), TELEGRAM_MAX_DOWNLOAD_BYTES: '200000' });
    // Alice's one allowed job; her second photo, handled right after it in her chat, finds it still in the queue.
    const busy = api.sendPhoto(ALICE, await jpeg(300, 300, 4), { width: 300, height: 300 });
    await api.waitFor((c) => c.method === 'editMessageText' && /^Queued/.test(c.params.text), 'the first job queued');

    const text = api.sendDocument(BOB, Buffer.from('hello'), 'notes.txt', 'text/plain');
    const garbage = api.sendDocument(BOB, Buffer.from('not a picture at all'), 'fake.png', 'image/png');
    const cut = await jpeg(64, 64, 5);
    const corrupt = api.sendDocument(CAROL, cut.subarray(0, cut.length >> 1), 'cut.jpg', 'image/jpeg');
    const huge = api.sendDocument(BOB, await scenePng(400, 300, 6), 'huge.png', 'image/png');
    const heavy = api.sendDocument(BOB, await noisePng(300, 300, 7), 'heavy.png', 'image/png');
    const second = api.sendPhoto(ALICE, await jpeg(32, 32, 8), { width: 32, height: 32 });

    expect(await answerText(text, /not an image/)).toBe('That is not an image (text/plain): send a photo or an image file.');
    expect(await answerText(garbage, /Not taken/)).toBe('Not taken: not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF).');
    // Its header is whole, so it is queued and fails when decoded, with what a person can do about it.
    expect(await answerText(corrupt, /^Failed/)).toBe('Failed: the file is damaged or incomplete: send it again, or export it anew.');
    expect(await answerText(huge, /Not taken/)).toBe('Not taken: the image is 400x300 (0.1 MP), over the limit of 0.1 MP.');
    expect(await answerText(heavy, /Not taken/)).toMatch(/^Not taken: the file is \d+ KB, over the 200 KB download limit\.$/);
    expect(await answerText(second, /Not taken/)).toBe('Not taken: you already have 1 image in the queue (the limit is 1): wait for one to finish or cancel one.');
    // Refused from the size Telegram reports, without downloading it.
    const heavyFile = heavy.document.file_id;
    expect(api.of('getFile').some((c) => c.params.file_id === heavyFile)).toBe(false);

    // Nothing crashed: the busy job finishes, and the next one runs.
    await answerText(busy, /^Done/);
    const next = api.sendPhoto(ALICE, await jpeg(32, 32, 9), { width: 32, height: 32 });
    await answerText(next, /^Done/);
    expect(service!.running).toBe(true);
  });

  it('gives up a stalled download with one line to the person, takes no job, and answers the next image', async () => {
    const s = await started({ TELEGRAM_DOWNLOAD_TIMEOUT_S: '1' });
    api.stallDownloads = true;
    const stalled = api.sendPhoto(ALICE, await jpeg(24, 24, 41), { width: 24, height: 24 });
    expect(await answerText(stalled, /Not taken/)).toBe('Not taken: the download from Telegram stalled (nothing arrived for 1 s); please send it again.');
    expect(api.stalled).toBe(1);
    expect(s.lines('job queued')).toEqual([]);
    api.stallDownloads = false;
    const next = api.sendPhoto(ALICE, await jpeg(24, 24, 42), { width: 24, height: 24 });
    await answerText(next, /^Done/);
    expect(s.lines('job queued')).toHaveLength(1);
  });

  it('retries an upload answered 429 after retry_after, and sends it once', async () => {
    await started();
    api.failOnce('sendDocument', 429, 'Too Many Requests: retry after 1', 1);
    const doc = api.sendDocument(ALICE, await scenePng(24, 24, 11), 'x.png', 'image/png');
    await answerText(doc, /^Done/);
    const uploads = api.calls.filter((c) => c.method === 'sendDocument');
    expect(uploads.map((c) => c.status)).toEqual([429, 200]);
    expect(await decoded(uploads[1].file('document'))).toMatchObject({ width: 96, height: 96 });
    // auto-retry waited and tried again inside the same delivery: the queue saw no failure.
    expect(service!.lines('delivery failed; trying again later')).toEqual([]);
  });

  it('offers the largest scale that fits only when not even a JPEG of the 4x result can, and enhances at the scale pressed', async () => {
    // 64x64 estimated from the header: as JPEG of quality 70 (the lowest sent) about 6.6 KB at 4x, 3.7 KB at 3x,
    // 1.6 KB at 2x; as PNG 118, 66 and 29 KB.
    await started({ TELEGRAM_MAX_UPLOAD_BYTES: '3000' });
    const doc = api.sendDocument(ALICE, await scenePng(64, 64, 12), 'big.png', 'image/png', { caption: 'raw' });
    const offer = await api.waitFor((c) => c.method === 'sendMessage' && c.params.reply_parameters?.message_id === doc.message_id, 'the offer');
    expect(offer.params.text).toMatch(/^The 4x result of this 64x64 image would be about [\d.]+ KB even as JPEG, over the 3 KB upload limit\. The largest scale that fits is 2x:$/);
    const buttons = offer.params.reply_markup.inline_keyboard.flat();
    expect(buttons).toEqual([{ text: '2x', callback_data: 'go:2:r' }]);
    expect(api.of('getFile')).toHaveLength(1);
    expect(service!.lines('job queued')).toEqual([]);

    const offerId = await statusOf(doc);
    api.press(ALICE, api.stored(ALICE.id, offerId), 'go:2:r');
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === offerId && /^Done/.test(c.params.text), 'done at 2x');
    const document = api.of('sendDocument')[0];
    // The whole 2x result, as the JPEG that fits.
    expect(await decoded(document.file('document'))).toMatchObject({ format: 'jpeg', width: 128, height: 128 });
    expect(document.file('document').bytes.length).toBeLessThanOrEqual(3000);
    expect(edits(ALICE.id, offerId).at(-1)).toMatch(/\(2x, x4fast, raw\)\. Sent as JPEG, quality \d+, full resolution/);
    expect(api.of('answerCallbackQuery')).toHaveLength(1);
  });

  it('sends the most faithful file that fits when the result is still over the upload limit, and says what and why', async () => {
    // Noise passes the estimate from the header (about 118 KB for 64x64 at 4x) but its PNG is about 155 KB.
    await started({ TELEGRAM_MAX_UPLOAD_BYTES: '130000' });
    const doc = api.sendDocument(ALICE, await noisePng(64, 64, 13), 'noise.png', 'image/png');
    const done = await answerText(doc, /^Done/);
    const document = api.of('sendDocument')[0];
    const file = document.file('document');
    expect(file.bytes.length).toBeLessThanOrEqual(130_000);
    const meta = await decoded(file);
    expect(file.filename).toBe(`noise-4x.${meta.format}`);
    // The whole 256x256: lossless WebP where it fits, else a JPEG of the full resolution; never fewer pixels.
    expect([meta.width, meta.height]).toEqual([256, 256]);
    expect(document.params.caption).toMatch(new RegExp(`^256x256 ${meta.format!.toUpperCase()}, 4x of 64x64 \\(x4fast\\)\\. Sent as (lossless WebP|JPEG, quality \\d+, full resolution)`));
    expect(document.params.caption).toMatch(/over the 130 KB upload limit/);
    expect(done).toMatch(/^Done .*\. Sent as (lossless WebP|JPEG, quality \d+, full resolution).*upload limit/);
  });

  it('answers a caption asking webp with a WebP of the result', async () => {
    await started();
    const doc = api.sendDocument(ALICE, await scenePng(24, 20, 14), 'small.png', 'image/png', { caption: '2x webp' });
    await answerText(doc, /^Done/);
    const file = api.of('sendDocument')[0].file('document');
    expect(file.filename).toBe('small-2x.webp');
    expect(await decoded(file)).toMatchObject({ format: 'webp', width: 48, height: 40 });
  });

  it('answers a 1600x1200 photo with its whole 6400x4800 result under 10 MiB, as JPEG, without a public URL', async () => {
    const limit = 10 * 2 ** 20;
    await started({ TELEGRAM_MAX_UPLOAD_BYTES: String(limit) });
    const photo = api.sendDocument(ALICE, await jpeg(1600, 1200, 51), 'phone.jpg', 'image/jpeg');
    const done = await answerText(photo, /^Done/, 540_000);
    // No offer of a smaller scale: the PNG (tens of MB) cannot go, a JPEG of all its pixels can.
    expect(done).toMatch(/^Done in [^:]+: 6400x4800 \(4x, x4fast\)\. Sent as JPEG, quality \d+, full resolution \([\d.]+ MB\): the PNG is [\d.]+ MB, over the 10\.5 MB upload limit\.$/);
    const document = answersTo(photo).find((c) => c.method === 'sendDocument')!;
    const file = document.file('document');
    expect(file.filename).toBe('phone-4x.jpg');
    expect(file.bytes.length).toBeLessThanOrEqual(limit);
    expect(await decoded(file)).toMatchObject({ format: 'jpeg', width: 6400, height: 4800 });
    // x4fast on 1.9 MP: about 40 s on a quiet 2-core machine, 3 min with other work beside it.
  }, 600_000);
});

describe('telegram bot: links to the web page (web.publicUrl)', () => {
  it('answers a PNG too large to upload with the whole result as JPEG and a link to the PNG, and every answer with a link', async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    await started({ TELEGRAM_MAX_UPLOAD_BYTES: '40000', ENHANCER_WEB_PORT: String(port), ENHANCER_PUBLIC_URL: `${publicUrl}/` });
    // 96x96 at 4x: about 265 KB as PNG by the header estimate, far over 40 KB; a JPEG of it fits.
    const input = await scenePng(96, 96, 41);
    const big = api.sendDocument(ALICE, input, 'big.png', 'image/png');
    const done = await answerText(big, /^Done/);
    expect(done).toMatch(/^Done in \d+ s: 384x384 \(4x, x4fast\)\. Sent as JPEG, quality \d+, full resolution \([\d.]+ KB\): the PNG is [\d.]+ KB, over the 40 KB upload limit\. The PNG is on the page\.$/);
    const answers = answersTo(big);
    expect(answers.map((c) => c.method)).toEqual(['sendMessage', 'sendDocument', 'sendPhoto']);
    const sent = answers[1].file('document');
    expect(sent.bytes.length).toBeLessThanOrEqual(40_000);
    expect(await decoded(sent)).toMatchObject({ format: 'jpeg', width: 384, height: 384 });
    expect(answers[2].params.caption).toBe('Before and after.');
    // The status message's last word carries the link to the page, where the PNG is.
    const status = api.stored(ALICE.id, await statusOf(big));
    const [[button]] = status.reply_markup.inline_keyboard;
    expect(button.text).toBe('Open in the browser');
    expect(button.url.startsWith(`${publicUrl}/job/`)).toBe(true);

    // The link opens the job page, valid for web.keepFor (7 days), and the PNG behind it is the engine's, 4x.
    const { link, signature, png } = await followChatLink(publicUrl, button.url);
    expect(png.length).toBeGreaterThan(40_000);
    expect(png.equals(fs.readFileSync(path.join(dir, 'data', 'cache', signature, 'result')))).toBe(true);
    expect(await decoded({ bytes: png })).toMatchObject({ format: 'png', width: 384, height: 384 });
    const before = Buffer.from(await (await fetch(`${publicUrl}${link.path}/file/input?${link.query}`)).arrayBuffer());
    expect(before.equals(input)).toBe(true);

    // An answer whose PNG fits is the usual one, with the link too.
    const small = api.sendDocument(ALICE, await scenePng(16, 16, 42), 'small.png', 'image/png');
    await answerText(small, /^Done/);
    const document = answersTo(small).find((c) => c.method === 'sendDocument')!;
    expect(await decoded(document.file('document'))).toMatchObject({ format: 'png', width: 64, height: 64 });
    const [[smallButton]] = api.stored(ALICE.id, await statusOf(small)).reply_markup.inline_keyboard;
    expect(smallButton.url).toMatch(new RegExp(`^${publicUrl}/job/\\w+\\?e=\\d+&s=`));
    const smallLink = splitLink(smallButton.url.slice(publicUrl.length));
    const smallPng = Buffer.from(await (await fetch(`${publicUrl}${smallLink.path}/file/result?${smallLink.query}`)).arrayBuffer());
    expect(smallPng.equals(document.file('document').bytes)).toBe(true);

    // /help says where larger results go.
    api.sendText(ALICE, '/help');
    const help = await api.waitFor((c) => c.method === 'sendMessage' && c.params.chat_id === ALICE.id && /^Send me an image/.test(c.params.text), '/help');
    expect(help.params.text).toContain('40 KB per file I send back (a result over the upload limit comes as a JPEG of the full resolution, with the PNG on the web page the answer links to)');
  });
});

describe("telegram bot: the person's language", () => {
  it('answers a sender whose Telegram is in Chinese (zh-hans) in Chinese and one in English in English, side by side', async () => {
    // x4plus in 32-pixel tiles: four model runs per image, long enough for progress edits to be seen.
    await started(SLOW);
    // The command menu: English for everyone, Chinese for Chinese apps.
    await api.waitFor((c) => c.method === 'setMyCommands' && c.params.language_code === 'zh', 'the Chinese command menu');
    const menus = api.of('setMyCommands');
    expect(menus.map((c) => c.params.language_code)).toEqual([undefined, 'zh']);
    expect(menus.map((c) => c.params.commands.map((m: { command: string }) => m.command))).toEqual([['start', 'help', 'enhance', 'status', 'cancel'], ['start', 'help', 'enhance', 'status', 'cancel']]);
    expect(menus[0].params.commands[0].description).toBe('What this bot does');
    expect(menus[1].params.commands[0].description).toBe('这个机器人能做什么');

    // Li writes the options in Chinese: 2倍 is 2x (the zh-Hans catalogue's `telegram.words`).
    const liPhoto = api.sendPhoto(LI, await jpeg(64, 64, 60), { width: 64, height: 64 }, { caption: '我家的猫，2倍' });
    const danaPhoto = api.sendPhoto(DANA, await jpeg(64, 64, 61), { width: 64, height: 64 });
    const liBad = api.sendDocument(LI, Buffer.from('not a picture at all'), 'fake.png', 'image/png');
    const danaBad = api.sendDocument(DANA, Buffer.from('not a picture at all'), 'fake.png', 'image/png');
    const liText = api.sendDocument(LI, Buffer.from('hello'), 'notes.txt', 'text/plain');
    api.sendText(LI, '/help');

    // Refusals at the door, in the sender's language.
    expect(await answerText(liBad, /未接收/)).toBe('未接收：不是受支持格式的图片（PNG、JPEG、WebP、GIF、TIFF、AVIF）。');
    expect(await answerText(danaBad, /Not taken/)).toBe('Not taken: not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF).');
    expect(await answerText(liText, /不是图片/)).toBe('这不是图片（text/plain）：请发送照片或图片文件。');
    const help = await api.waitFor((c) => c.method === 'sendMessage' && c.params.chat_id === LI.id && /^把图片发给我/.test(c.params.text), 'the Chinese /help');
    expect(help.params.text).toContain('限制：收到的每张图片最大 20.0 MB、不超过 16.0 百万像素；我发回的每个文件最大 50.0 MB');

    // The image: acknowledged, queued, progress, done and its files, each in its person's language.
    for (const [photo, person] of [
      [liPhoto, LI],
      [danaPhoto, DANA],
    ] as const) {
      const status = await statusOf(photo);
      await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^(完成|Done)/.test(c.params.text), `${person.first_name}'s answer`, 120_000);
      const first = answersTo(photo)[0];
      const texts = [first.params.text as string, ...edits(person.id, status)];
      const captions = answersTo(photo).slice(1).map((c) => c.params.caption as string);
      const cancel = api.of('editMessageText').find((c) => c.params.message_id === status)!.params.reply_markup.inline_keyboard[0][0].text;
      if (person === LI) {
        expect(texts[0]).toMatch(/^已收到 photo-\d+\.jpg，正在排队……$/);
        expect(texts[1]).toMatch(/^排队中：(下一个就轮到你|第 \d+ 位)，大约 \d+ (秒|分钟)后完成。$/);
        expect(texts.some((t) => /^正在增强 [▓░]{10} \d+\/\d+ 块，还剩大约 \d+ (秒|分钟)。$/.test(t))).toBe(true);
        expect(texts.at(-1)).toMatch(/^完成，用时 \d+ (秒|分钟)：128x128（2 倍，x4plus）。$/);
        expect(captions).toEqual(['128x128 PNG，由 64x64 放大 2 倍（x4plus）。', '处理前后对比。']);
        expect(cancel).toBe('取消');
        // No English word a person reads (the file and model names aside).
        const english = [...texts, ...captions].map((t) => t.replace(/photo-\d+\.jpg|x4plus|PNG/g, '')).filter((t) => /[A-Za-z]{3,}/.test(t));
        expect(english).toEqual([]);
      } else {
        expect(texts[0]).toMatch(/^Received photo-\d+\.jpg, queueing…$/);
        expect(texts[1]).toMatch(/^Queued: (next in line|position \d+), done in about \d+ (s|min)\.$/);
        expect(texts.some((t) => /^Enhancing [▓░]{10} \d+\/\d+ tiles, about \d+ (s|min) left\.$/.test(t))).toBe(true);
        expect(texts.at(-1)).toMatch(/^Done in \d+ (s|min): 256x256 \(4x, x4plus\)\.$/);
        expect(captions).toEqual(['256x256 PNG, 4x of 64x64 (x4plus).', 'Before and after.']);
        expect(cancel).toBe('Cancel');
        expect([...texts, ...captions].filter((t) => /[\u4e00-\u9fff]/.test(t))).toEqual([]);
      }
    }
  });
});

const GROUP = { id: -100777, type: 'supergroup' as const, title: 'Friends' };

/** A job long enough to press buttons on: x4plus on 320x320 in 32-pixel tiles is about a hundred model runs. */
const SLOW = { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' };

describe('telegram bot: commands, buttons and access', () => {
  it('answers /start and /help with how to use it, /status with progress and /cancel by cancelling', async () => {
    await started(SLOW);
    const start = api.sendText(ALICE, '/start');
    const help = await api.waitFor((c) => c.method === 'sendMessage' && c.params.chat_id === ALICE.id, '/start');
    expect(help.params.text).toMatch(/^Send me an image and I send it back enhanced/);
    expect(help.params.text).toContain('send it as a file');
    expect(help.params.text).toContain('Limits: 20.0 MB per image received, 16.0 MP, 50.0 MB per file I send back');
    api.sendText(ALICE, '/help');
    await api.waitFor((c) => c.method === 'sendMessage' && c.params.text === help.params.text && c !== help, '/help');
    api.sendText(ALICE, '/status');
    await api.waitFor((c) => c.method === 'sendMessage' && c.params.text === 'You have no jobs waiting or running.', '/status with nothing');

    const photo = api.sendPhoto(ALICE, await jpeg(320, 320, 20), { width: 320, height: 320 });
    const status = await statusOf(photo);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Enhancing/.test(c.params.text), 'progress');
    api.sendText(ALICE, '/status');
    const line = await api.waitFor((c) => c.method === 'sendMessage' && /^photo-\d+\.jpg: /.test(c.params.text), '/status with a job');
    expect(line.params.text).toMatch(/^photo-\d+\.jpg: Enhancing [▓░]{10} \d+\/\d+ tiles, about \d+ (s|min) left\.$/);
    api.sendText(ALICE, '/cancel');
    await api.waitFor((c) => c.method === 'sendMessage' && c.params.text === 'Cancelled 1 job.', '/cancel');
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && c.params.text === 'Cancelled.', 'the status says cancelled');
    expect(api.of('sendDocument')).toEqual([]);
    expect(start.message_id).toBeLessThan(photo.message_id);
  });

  it("says what auto chose and why when it queues, and the other model's button runs the image again with it", async () => {
    await started({ ENHANCER_MODEL: 'auto', ENHANCER_TILE: '32' });
    // A cat photo (scikit-image's chelsea, models/calibration) at 384x384: auto reads a photo and takes x4plus, in
    // 144 tiles of 32, so that it is still running when the other model is pressed (at 128x128 a quiet machine
    // had finished it).
    const cat = await sharp(path.join(import.meta.dirname, '..', 'models', 'calibration', 'chelsea.png')).resize(384, 384).png().toBuffer();
    const photo = api.sendPhoto(ALICE, cat, { width: 384, height: 384 });
    const status = await statusOf(photo);
    const queued = await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Queued/.test(c.params.text), 'the queued line');
    expect(queued.params.text).toMatch(/^Queued: next in line, done in about [^.]+\. Photo: x4plus model\.$/);
    const [[cancel], [other]] = queued.params.reply_markup.inline_keyboard;
    expect(cancel.text).toBe('Cancel');
    expect(other).toMatchObject({ text: expect.stringMatching(/^Use x4fast instead \(about .+\)$/), callback_data: expect.stringMatching(/^other:\w+:x4fast$/) });
    api.press(ALICE, api.stored(ALICE.id, status), other.callback_data);
    // The x4plus job is cancelled; the image runs again with x4fast, under a status message of its own.
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && c.params.text === 'Cancelled.', 'the first job cancelled');
    const done = await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id !== status && /^Done/.test(c.params.text), 'the image done with x4fast');
    expect(done.params.text).toMatch(/: 1536x1536 \(4x, x4fast\)\.$/);
    const [document] = api.of('sendDocument');
    expect(await decoded(document.file('document'))).toMatchObject({ format: 'png', width: 1536, height: 1536 });
  });

  it('asks before a job over limits.confirmOver, and runs the model pressed: the one asked for or the faster one', async () => {
    // Over 1 s is "long" here: every x4plus job asks first.
    await started({ ENHANCER_CONFIRM_OVER: '1' });
    const cat = fs.readFileSync(path.join(import.meta.dirname, '..', 'models', 'calibration', 'chelsea.png'));
    const doc = api.sendDocument(ALICE, cat, 'cat.png', 'image/png', { caption: 'best' });
    const ask = await api.waitFor((c) => c.method === 'sendMessage' && c.params.reply_parameters?.message_id === doc.message_id, 'the question');
    expect(ask.params.text).toMatch(/^With x4plus this image would take about [^.]+ on this machine\. Run it\?$/);
    const [[run], [faster]] = ask.params.reply_markup.inline_keyboard;
    expect(run).toMatchObject({ text: expect.stringMatching(/^Run x4plus \(about .+\)$/), callback_data: 'ok:4::x4plus' });
    expect(faster).toMatchObject({ text: expect.stringMatching(/^Use x4fast instead \(about .+\)$/), callback_data: 'ok:4::x4fast' });
    // Nothing is queued until a yes.
    expect(service!.lines('job queued')).toEqual([]);
    const question = await statusOf(doc);
    api.press(ALICE, api.stored(ALICE.id, question), faster.callback_data);
    // The question becomes the job's status message, and the job runs the model pressed.
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === question && /^Done/.test(c.params.text), 'done');
    expect(edits(ALICE.id, question).at(-1)).toMatch(/: 512x512 \(4x, x4fast\)\.$/);
    expect(service!.lines('job queued')).toHaveLength(1);
  });

  it('cancels a running job from its Cancel button, only for its owner, with progress edits throttled per chat', async () => {
    await started({ ...SLOW, TELEGRAM_PROGRESS_EDIT_MS: '1000' });
    const photo = api.sendPhoto(ALICE, await jpeg(320, 320, 21), { width: 320, height: 320 });
    const status = await statusOf(photo);
    // Three progress edits, to see their pace.
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && / 3\/\d+ tiles|[4-9]\/\d+ tiles/.test(c.params.text) && api.of('editMessageText').filter((e) => /^Enhancing/.test(e.params.text)).length >= 3, 'three progress edits');
    const message = api.stored(ALICE.id, status);
    expect(message.reply_markup.inline_keyboard[0][0]).toMatchObject({ text: 'Cancel', callback_data: expect.stringMatching(/^cancel:/) });
    api.press(BOB, message, message.reply_markup.inline_keyboard[0][0].callback_data);
    const refused = await api.waitFor((c) => c.method === 'answerCallbackQuery', "Bob's press");
    expect(refused.params.text).toBe('only the person who sent an image can cancel it');
    api.press(ALICE, message, message.reply_markup.inline_keyboard[0][0].callback_data);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && c.params.text === 'Cancelled.', 'cancelled');
    await api.waitFor((c) => c.method === 'answerCallbackQuery' && c.params.text === 'Cancelling…', "Alice's press answered");
    expect(api.of('answerCallbackQuery').map((c) => c.params.text)).toEqual(['only the person who sent an image can cancel it', 'Cancelling…']);
    expect(api.of('sendDocument')).toEqual([]);

    // Progress edits at most one a second in this chat (each counted from the edit before it).
    const times = api.of('editMessageText').filter((c) => /^(Starting|Enhancing)/.test(c.params.text)).map((c) => c.at);
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(950);
  });

  it('refuses people off the allowlist politely, and lets in listed users and chats', async () => {
    await started({ TELEGRAM_ALLOWED_USERS: '111', TELEGRAM_ALLOWED_CHATS: String(GROUP.id) });
    const bobs = api.sendPhoto(BOB, await jpeg(32, 32, 22), { width: 32, height: 32 });
    const refusal = await api.waitFor((c) => c.method === 'sendMessage' && c.params.reply_parameters?.message_id === bobs.message_id, 'the refusal');
    expect(refusal.params.text).toBe('Sorry, this bot is private. Its owner can let you in by adding your user id 222 to the allowlist.');
    const alices = api.sendPhoto(ALICE, await jpeg(32, 32, 23), { width: 32, height: 32 });
    await answerText(alices, /^Done/);
    api.sendText(BOB, '/help', {}, GROUP);
    await api.waitFor((c) => c.method === 'sendMessage' && Number(c.params.chat_id) === GROUP.id && /^Send me an image/.test(c.params.text), 'help in the allowed group');
    expect(api.of('getFile')).toHaveLength(1);
  });

  it('in a group answers only commands, mentions and replies to it', async () => {
    await started();
    const plain = api.sendPhoto(BOB, await jpeg(32, 32, 24), { width: 32, height: 32 }, { caption: 'look at this' }, GROUP);
    api.sendText(BOB, 'hello everyone', {}, GROUP);
    api.sendText(BOB, '/help@other_bot', {}, GROUP);
    const mention = '@enhancer_test_bot';
    const mentioned = api.sendPhoto(BOB, await jpeg(32, 32, 25), { width: 32, height: 32 }, { caption: `${mention} 2x`, caption_entities: [{ type: 'mention', offset: 0, length: mention.length }] }, GROUP);
    const done = await answerText(mentioned, /^Done/);
    expect(done).toMatch(/\(2x, x4fast\)/);
    const botMessage = api.stored(GROUP.id, await statusOf(mentioned));
    const reply = api.sendPhoto(BOB, await jpeg(24, 24, 26), { width: 24, height: 24 }, { reply_to_message: botMessage }, GROUP);
    await answerText(reply, /^Done/);
    const command = api.sendPhoto(BOB, await jpeg(24, 24, 27), { width: 24, height: 24 }, { caption: '/enhance 3x' }, GROUP);
    expect(await answerText(command, /^Done/)).toMatch(/\(3x, x4fast\)/);
    api.sendText(BOB, '/help', {}, GROUP);
    await api.waitFor((c) => c.method === 'sendMessage' && /^Send me an image/.test(c.params.text), '/help');
    // Handled in order in the group's chat: the first three were seen before these and left alone.
    expect(answersTo(plain)).toEqual([]);
    expect(api.of('sendMessage').filter((c) => /^Send me an image/.test(c.params.text))).toHaveLength(1);
    expect(api.of('sendDocument')).toHaveLength(3);
  });
});

describe('telegram bot: reliability', () => {
  it('answers a job accepted before a restart in its chat, on the same status message', async () => {
    let s = await started(SLOW);
    const photo = api.sendPhoto(ALICE, await jpeg(96, 96, 30), { width: 96, height: 96 });
    const status = await statusOf(photo);
    // And one from a person whose Telegram is in Chinese: the job keeps that language across the restart.
    const liPhoto = api.sendPhoto(LI, await jpeg(32, 32, 34), { width: 32, height: 32 });
    const liStatus = await statusOf(liPhoto);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === liStatus && /^排队中/.test(c.params.text), "Li's job stored");
    await s.count('model loaded', 1);
    await s.stop('SIGKILL');
    expect(api.of('sendDocument')).toEqual([]);

    s = await started(SLOW);
    expect(s.lines('service started')[0].recovered).toBe(2);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Done/.test(c.params.text), 'done after the restart', 120_000);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === liStatus && /^完成/.test(c.params.text), "Li's done after the restart", 120_000);
    const liTexts = edits(LI.id, liStatus);
    expect(liTexts.some((t) => /^服务重启后已恢复。排队中：(下一个就轮到你|第 \d+ 位)，大约 \d+ (秒|分钟)后完成。$/.test(t))).toBe(true);
    expect(liTexts.at(-1)).toMatch(/^完成，用时 \d+ (秒|分钟)：128x128（4 倍，x4plus）。$/);
    expect(liTexts.filter((t) => /[A-Za-z]{4,}/.test(t.replace(/x4plus/g, '')))).toEqual([]);
    expect(answersTo(liPhoto).find((c) => c.method === 'sendDocument')!.params.caption).toBe('128x128 PNG，由 32x32 放大 4 倍（x4plus）。');
    const answers = answersTo(photo);
    expect(answers.map((c) => c.method)).toEqual(['sendMessage', 'sendDocument', 'sendPhoto']);
    expect(await decoded(answers[1].file('document'))).toMatchObject({ width: 384, height: 384 });
    expect(edits(ALICE.id, status).some((t) => t.startsWith('Back after a restart. Queued'))).toBe(true);
    // Nothing is left in the adapter's notes once delivered and restarted.
    await s.count('job delivered', 1);
  });

  it('gives up at once on a chat that blocked the bot, retries a dropped connection, and never writes the token anywhere', async () => {
    const s = await started();
    // Network error on the first upload: the queue retries the delivery (grammY's error carries the URL, with the token).
    api.dropOnce('sendDocument');
    api.failOnce('getFile', 400, 'Bad Request: wrong file_id');
    const first = api.sendPhoto(ALICE, await jpeg(24, 24, 31), { width: 24, height: 24 });
    expect(await answerText(first, /download/)).toBe('The image could not be downloaded from Telegram; please send it again.');
    const again = api.sendPhoto(ALICE, await jpeg(24, 24, 32), { width: 24, height: 24 });
    await answerText(again, /^Done/);
    expect(s.lines('delivery failed; trying again later')).toHaveLength(1);
    expect(api.calls.filter((c) => c.method === 'sendDocument').map((c) => c.status)).toEqual([0, 200]);

    // Bob blocked the bot after sending: a permanent failure, logged once, not retried.
    api.failOnce('sendDocument', 403, 'Forbidden: bot was blocked by the user');
    const bobs = api.sendPhoto(BOB, await jpeg(24, 24, 33), { width: 24, height: 24 });
    await statusOf(bobs);
    await s.until((logs) => logs.some((l) => /delivery given up \(permanent failure\)/.test(l.msg)), 'the permanent failure');
    const given = s.logs.filter((l) => /delivery given up/.test(l.msg));
    expect(given).toHaveLength(1);
    expect(given[0].reason).toBe('telegram: sendDocument: 403 Forbidden: bot was blocked by the user');
    await s.stop('SIGTERM');

    // Everything the service logged and wrote: not the token, nor its URL-encoded form.
    const written = [...s.logs.map((l) => JSON.stringify(l)), ...s.stderr];
    const walk = (folder: string): string[] =>
      fs.readdirSync(folder, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(folder, e.name)) : [fs.readFileSync(path.join(folder, e.name)).toString('latin1')]));
    written.push(...walk(dir));
    expect(written.length).toBeGreaterThan(10);
    for (const form of [TOKEN, encodeURIComponent(TOKEN), TOKEN.split(':')[1]]) {
      expect(written.filter((text) => text.includes(form))).toEqual([]);
    }
    // The dropped upload's reason was logged with grammY's URL in it, the token taken out.
    expect(s.lines('delivery failed; trying again later')[0].reason).toMatch(/\/bot\[token\]\/sendDocument failed, reason: socket hang up/);
  });

  it('stops start-up with one line, without the token, when the server refuses it', async () => {
    const s = start({ TELEGRAM_BOT_TOKEN: '987654321:AAwrong-token' });
    expect((await s.exited).code).toBe(1);
    expect(s.stderr.filter(Boolean)).toEqual([
      'error: telegram: the Bot API server refused the bot (getMe: 401 Unauthorized); check TELEGRAM_BOT_TOKEN and TELEGRAM_API_ROOT',
    ]);
    expect(JSON.stringify(s.logs)).not.toContain('wrong-token');
  });

  it('keeps running when polling is refused with 409 (another process polls the token), and polls again', async () => {
    const s = await started();
    api.failOnce('getUpdates', 409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
    // The update ends the long poll under way; the next one is refused.
    const first = api.sendPhoto(ALICE, await jpeg(24, 24, 39), { width: 24, height: 24 });
    await s.count('Telegram polling stopped; starting it again later', 1);
    await answerText(first, /^Done/);
    expect(s.lines('Telegram polling stopped; starting it again later')[0]).toMatchObject({ level: 50, retryInS: 5, err: expect.stringMatching(/^getUpdates: 409 Conflict/) });
    const photo = api.sendPhoto(ALICE, await jpeg(24, 24, 40), { width: 24, height: 24 });
    await answerText(photo, /^Done/);
    expect(s.running).toBe(true);
    expect(s.stderr.filter(Boolean)).toEqual([]);
  });
});

describe.skipIf(!canMount)('telegram bot: a full disk', () => {
  if (!canMount) console.warn(`telegram.test.ts: ${NO_MOUNT}`);
  let data: string | undefined;
  afterEach(() => {
    if (data) unmount(data);
    data = undefined;
  });

  it('tells the person once that their image waits for disk space, and answers it once there is room', async () => {
    data = path.join(dir, 'data');
    mountTmpfs(data, '64m');
    // The disk fills as soon as the job is stored (the status says Queued), seconds before x4plus in 32-pixel tiles
    // can finish, so the finished PNG meets a full disk.
    const s = await started(SLOW);
    const photo = api.sendPhoto(ALICE, await jpeg(96, 96, 50), { width: 96, height: 96 });
    const status = await statusOf(photo);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Queued/.test(c.params.text), 'the job stored');
    const filler = fillLeaving(data, 0);
    const waiting = /^Waiting: the server is out of disk space: your image waits and goes on by itself once there is room\.$/;
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && waiting.test(c.params.text), 'the waiting notice', 120_000);
    expect(api.of('sendDocument')).toEqual([]);
    fs.rmSync(filler);
    await api.waitFor((c) => c.method === 'editMessageText' && c.params.message_id === status && /^Done/.test(c.params.text), 'done once there is room', 120_000);
    expect(edits(ALICE.id, status).filter((t) => waiting.test(t))).toHaveLength(1);
    const document = answersTo(photo).find((c) => c.method === 'sendDocument')!;
    expect(await decoded(document.file('document'))).toMatchObject({ format: 'png', width: 384, height: 384 });
    expect(s.lines('job failed')).toEqual([]);
  });
});

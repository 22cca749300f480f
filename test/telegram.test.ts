/**
 * The Telegram bot end to end: the real service in a child process with real models, the real grammY client
 * talking to a fake Bot API server on 127.0.0.1. Tests assert what a person sees: the messages the bot sent and
 * edited, and the files it uploaded, decoded.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BOT, FakeBotApi, type ApiCall, type FakeUser } from './fake-bot-api.js';
import { scenePng, tempDir } from './helpers.js';
import { ServiceProcess } from './service.js';

const TOKEN = '123456789:AAH-fake_token-for-the-tests-only';
const ALICE: FakeUser = { id: 111, first_name: 'Alice', username: 'alice' };
const BOB: FakeUser = { id: 222, first_name: 'Bob' };

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
async function statusOf(message: { message_id: number; chat: { id: number } }): Promise<number> {
  await api.waitFor((c) => c.method === 'sendMessage' && c.params.reply_parameters?.message_id === message.message_id, 'the status message');
  const index = api.calls.findIndex((c) => c.method === 'sendMessage' && c.status === 200 && c.params.reply_parameters?.message_id === message.message_id);
  // Message ids are handed out in call order by the fake: find the message the bot got back.
  for (let id = 1000; id < 1000 + api.calls.length + 50; id++) {
    const stored = api.stored(message.chat.id, id);
    if (stored?.from?.id === BOT.id && stored.reply_to_message?.message_id === message.message_id && !stored.document && !stored.photo) return id;
  }
  throw new Error(`no status message found (call ${index})`);
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
    const album = [];
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

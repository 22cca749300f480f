/**
 * The Telegram adapter's small parts on their own: caption options, who is addressed and allowed, the throttled
 * status editor, token redaction and the config section.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Api, GrammyError, HttpError, InputFile, InputMediaBuilder } from 'grammy';
import type { Message, UserFromGetMe } from 'grammy/types';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isAddressed, isAllowed } from '../adapters/telegram/access.js';
import { packOptions, parseCaption, unpackOptions } from '../adapters/telegram/caption.js';
import { serverLimits, telegramSection } from '../adapters/telegram/config.js';
import { downloadFile } from '../adapters/telegram/download.js';
import { redact, safeReason } from '../adapters/telegram/secret.js';
import { StatusEditor, type StatusEdit } from '../adapters/telegram/status-editor.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { EnhanceError } from '../src/errors.js';
import { FakeBotApi } from './fake-bot-api.js';
import { tempDir } from './helpers.js';

describe('caption options', () => {
  it('reads fast, 2x/3x/4x, raw and pdf anywhere, and ignores other words', () => {
    expect(parseCaption('/enhance fast 2x')).toEqual({ options: { model: 'x4fast', scale: 2 }, report: false });
    expect(parseCaption('Holiday! 3X, RAW and a PDF please')).toEqual({ options: { scale: 3, tune: 'raw' }, report: true });
    expect(parseCaption('/enhance@enhancer_bot best x4')).toEqual({ options: { model: 'x4plus', scale: 4 }, report: false });
    expect(parseCaption('a 12x zoom, breakfast')).toEqual({ options: {}, report: false });
    // The result's format by its name, in any language; a button carries it.
    expect(parseCaption('2x webp')).toEqual({ options: { scale: 2, format: 'webp' }, report: false });
    expect(parseCaption('快速 JPG')).toEqual({ options: { model: 'x4fast', format: 'jpeg' }, report: false });
    expect(unpackOptions(packOptions({ options: { format: 'avif', tune: 'raw' }, report: true }), 3)).toEqual({ options: { scale: 3, tune: 'raw', format: 'avif' }, report: true });
    expect(parseCaption(undefined)).toEqual({ options: {}, report: false });
    // Chinese, from the zh-Hans catalogue's `telegram.words`, written with or without spaces, mixed with English.
    expect(parseCaption('动漫 快速 2倍')).toEqual({ options: { model: 'anime-fast', scale: 2 }, report: false });
    expect(parseCaption('请帮我放大3 倍，不润色，也要报告')).toEqual({ options: { scale: 3, tune: 'raw' }, report: true });
    expect(parseCaption('快速 4x pdf')).toEqual({ options: { model: 'x4fast', scale: 4 }, report: true });
    expect(parseCaption('我家的猫，2024年拍的')).toEqual({ options: {}, report: false });
  });

  it('packs into a button and back', () => {
    const caption = parseCaption('fast raw pdf');
    expect(packOptions(caption)).toBe('frp');
    expect(unpackOptions('frp', 2)).toEqual({ options: { model: 'x4fast', tune: 'raw', scale: 2 }, report: true });
    expect(unpackOptions('', 3)).toEqual({ options: { scale: 3 }, report: false });
  });

  it('reads the anime scene: anime, anime fast in either order or as anime-fast; packs and unpacks it', () => {
    expect(parseCaption('anime')).toEqual({ options: { model: 'anime' }, report: false });
    expect(parseCaption('/enhance anime fast 2x')).toEqual({ options: { model: 'anime-fast', scale: 2 }, report: false });
    expect(parseCaption('FAST, Anime-style drawing')).toEqual({ options: { model: 'anime-fast' }, report: false });
    expect(parseCaption('anime-fast 3x')).toEqual({ options: { model: 'anime-fast', scale: 3 }, report: false });
    expect(parseCaption('animes fast')).toEqual({ options: { model: 'x4fast' }, report: false });
    for (const text of ['anime raw', 'anime fast pdf']) {
      const caption = parseCaption(text);
      expect(unpackOptions(packOptions(caption), 4)).toEqual({ options: { ...caption.options, scale: 4 }, report: caption.report });
    }
    expect(packOptions(parseCaption('anime fast pdf'))).toBe('afp');
  });
});

describe('who the bot listens to', () => {
  const me = { id: 9, is_bot: true, first_name: 'E', username: 'enh_bot' } as UserFromGetMe;
  const group = { id: -5, type: 'supergroup', title: 'G' };
  const msg = (fields: Partial<Message> & Record<string, unknown>): Message => ({ message_id: 1, date: 0, chat: group, ...fields }) as Message;

  it('in a group: commands (its own or for all), mentions and replies to it; not other talk', () => {
    expect(isAddressed(msg({ text: '/help', entities: [{ type: 'bot_command', offset: 0, length: 5 }] }), me)).toBe(true);
    expect(isAddressed(msg({ text: '/help@enh_bot', entities: [{ type: 'bot_command', offset: 0, length: 13 }] }), me)).toBe(true);
    expect(isAddressed(msg({ text: '/help@other_bot', entities: [{ type: 'bot_command', offset: 0, length: 15 }] }), me)).toBe(false);
    expect(isAddressed(msg({ caption: 'hey @ENH_bot', caption_entities: [{ type: 'mention', offset: 4, length: 8 }] }), me)).toBe(true);
    expect(isAddressed(msg({ caption: '/enhance 2x' }), me)).toBe(true);
    expect(isAddressed(msg({ caption: '/enhance@other_bot' }), me)).toBe(false);
    expect(isAddressed(msg({ reply_to_message: msg({ from: { ...me } }) as Message['reply_to_message'] }), me)).toBe(true);
    expect(isAddressed(msg({ caption: 'nice photo' }), me)).toBe(false);
    expect(isAddressed(msg({ chat: { id: 3, type: 'private', first_name: 'A' }, text: 'anything' }), me)).toBe(true);
  });

  it('lets everyone in without lists, else listed users and anyone in a listed chat', () => {
    expect(isAllowed({ users: [], chats: [] }, 1, 1)).toBe(true);
    expect(isAllowed({ users: [42], chats: [] }, 42, 42)).toBe(true);
    expect(isAllowed({ users: [42], chats: [-100] }, 7, -100)).toBe(true);
    expect(isAllowed({ users: [42], chats: [-100] }, 7, 7)).toBe(false);
  });
});

describe('status editor', () => {
  afterEach(() => vi.useRealTimers());

  it('sends the first edit at once, then at most one per interval per chat with only the latest text', async () => {
    vi.useFakeTimers();
    const sent: Array<StatusEdit & { at: number }> = [];
    const editor = new StatusEditor(async (edit) => void sent.push({ ...edit, at: Date.now() }), 3000, () => {});
    const start = Date.now();
    editor.now({ chat: 1, message: 10, text: 'queued' });
    editor.update({ chat: 1, message: 10, text: 'tile 1' });
    editor.update({ chat: 1, message: 10, text: 'tile 2' });
    editor.update({ chat: 2, message: 20, text: 'other chat' });
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.map((e) => e.text)).toEqual(['queued', 'other chat']);
    await vi.advanceTimersByTimeAsync(2999);
    expect(sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.map((e) => [e.text, e.at - start])).toEqual([['queued', 0], ['other chat', 0], ['tile 2', 3000]]);

    editor.update({ chat: 1, message: 10, text: 'tile 3' });
    await editor.final({ chat: 1, message: 10, text: 'done' });
    await vi.advanceTimersByTimeAsync(10_000);
    // The pending progress was dropped: the last word stays the last.
    expect(sent.map((e) => e.text).slice(3)).toEqual(['done']);
    editor.stop();
  });

  it('forgets a chat once nothing is pending there and its interval has passed (it kept every chat ever answered)', async () => {
    vi.useFakeTimers();
    const sent: string[] = [];
    const editor = new StatusEditor(async (edit) => void sent.push(edit.text), 3000, () => {});
    for (let chat = 1; chat <= 1000; chat++) {
      await editor.final({ chat, message: 1, text: `done ${chat}` });
      await vi.advanceTimersByTimeAsync(10);
    }
    // The chats of the last 3 s are still throttled; the others are gone.
    expect(sent).toHaveLength(1000);
    expect(editor.size).toBeLessThanOrEqual(301);
    editor.update({ chat: 1000, message: 1, text: 'late' });
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(1000);
    editor.stop();
  });

  it('passes a failed final edit to the caller and a failed throttled one to onError', async () => {
    const errors: unknown[] = [];
    const editor = new StatusEditor(async () => Promise.reject(new Error('no')), 0, (error) => errors.push(error));
    await expect(editor.final({ chat: 1, message: 1, text: 'x' })).rejects.toThrow('no');
    editor.update({ chat: 1, message: 1, text: 'y' });
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    editor.stop();
  });
});

describe('token redaction', () => {
  const token = '123:AA-bb_cc';

  it('takes the token out of grammY errors and anything else', () => {
    const network = new HttpError("Network request for 'sendPhoto' failed!", new Error(`request to http://h/bot${token}/sendPhoto failed, reason: socket hang up`));
    expect(safeReason(network, token)).toBe("Network request for 'sendPhoto' failed! (request to http://h/bot[token]/sendPhoto failed, reason: socket hang up)");
    const api = new GrammyError("Call to 'sendMessage' failed!", { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' }, 'sendMessage', {});
    expect(safeReason(api, token)).toBe('sendMessage: 403 Forbidden: bot was blocked by the user');
    expect(redact(`x ${encodeURIComponent(token)} y ${token}`, token)).toBe('x [token] y [token]');
    expect(safeReason('plain', token)).toBe('plain');
  });
});

describe('telegram config', () => {
  const root = tempDir('enhancer-telegram-config-');
  const load = (env: NodeJS.ProcessEnv) => loadConfig({ env, root, sections: [telegramSection] }).sections.telegram;

  it('is off without a token and reads its variables', () => {
    expect(load({}).token).toBe('');
    const config = load({
      TELEGRAM_BOT_TOKEN: '1:x',
      TELEGRAM_API_ROOT: 'http://127.0.0.1:8081/',
      TELEGRAM_ALLOWED_USERS: '12, 34',
      TELEGRAM_ALLOWED_CHATS: '-1001234567890',
      TELEGRAM_MAX_UPLOAD_BYTES: '1000000',
    });
    expect(config).toMatchObject({ token: '1:x', apiRoot: 'http://127.0.0.1:8081', allowedUsers: [12, 34], allowedChats: [-1001234567890] });
    expect(serverLimits(config)).toEqual({ download: 20_000_000, upload: 1_000_000 });
    expect(serverLimits({ ...config, localServer: true, maxUploadBytes: 0 })).toEqual({ download: 2_000_000_000, upload: 2_000_000_000 });
  });

  it('refuses a bad value with one line that names the variable', () => {
    expect(() => load({ TELEGRAM_API_ROOT: 'api.telegram.org' })).toThrow(ConfigError);
    expect(() => load({ TELEGRAM_API_ROOT: 'api.telegram.org' })).toThrow(/telegram\.apiRoot must be an http:\/\/ or https:\/\/ address.*TELEGRAM_API_ROOT/);
    expect(() => load({ TELEGRAM_ALLOWED_USERS: 'alice' })).toThrow(/telegram\.allowedUsers must be a list of Telegram ids/);
  });
});

describe('the fake Bot API server', () => {
  it('takes multipart uploads from the real grammY client, media groups included, and records them', async () => {
    const fake = await new FakeBotApi('1:t').listen();
    try {
      const api = new Api('1:t', { apiRoot: fake.root });
      const sent = await api.sendMediaGroup(5, [
        InputMediaBuilder.document(new InputFile(Buffer.from('first'), 'a.png'), { caption: 'one' }),
        InputMediaBuilder.document(new InputFile(Buffer.from('second'), 'b.pdf')),
      ]);
      expect(sent.map((m) => m.caption)).toEqual(['one', undefined]);
      const [call] = fake.of('sendMediaGroup');
      expect(call.files.map((f) => [f.filename, f.bytes.toString()])).toEqual([['a.png', 'first'], ['b.pdf', 'second']]);
      await api.deleteMessage(5, sent[0].message_id);
      await expect(api.sendMessage(5, 'x', { reply_parameters: { message_id: 1 } })).resolves.toMatchObject({ text: 'x', chat: { id: 5 } });
      await expect(new Api('1:wrong', { apiRoot: fake.root }).getMe()).rejects.toThrow(/401/);
    } finally {
      await fake.close();
    }
  });
});

describe('downloading a file', () => {
  it('fetches it from the file path, from a local server\'s disk, and stops at the limit', async () => {
    const fake = await new FakeBotApi('1:t').listen();
    const folder = tempDir('enhancer-telegram-download-');
    try {
      const api = new Api('1:t', { apiRoot: fake.root });
      const options = { api, token: '1:t', apiRoot: fake.root, maxBytes: 1000, stallMs: 5000, localServer: false };
      const bytes = Buffer.from('a'.repeat(900));
      expect((await downloadFile(fake.addFile(bytes, 'png'), options)).equals(bytes)).toBe(true);
      expect(fake.paths).toContain('/file/bot1:t/files/file1.png');
      await expect(downloadFile(fake.addFile(Buffer.alloc(1001), 'png'), options)).rejects.toThrow(/^the file is 1 KB, over the limit of 1 KB/);

      const local = path.join(folder, 'photo.jpg');
      fs.writeFileSync(local, bytes);
      const local_ = { ...options, localServer: true };
      expect((await downloadFile(fake.addLocalFile(local), local_)).equals(bytes)).toBe(true);
      fs.writeFileSync(local, Buffer.alloc(5000));
      // The server left the size out: the file's own size is checked before it is read.
      await expect(downloadFile(fake.addLocalFile(local), local_)).rejects.toBeInstanceOf(EnhanceError);
    } finally {
      await fake.close();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('never reads a path on this disk unless the server is a local one', async () => {
    const fake = await new FakeBotApi('1:t').listen();
    const folder = tempDir('enhancer-telegram-download-');
    try {
      const secret = path.join(folder, 'secret.txt');
      fs.writeFileSync(secret, 'not for the bot');
      const options = { api: new Api('1:t', { apiRoot: fake.root }), token: '1:t', apiRoot: fake.root, maxBytes: 1000, stallMs: 5000, localServer: false };
      const refused = downloadFile(fake.addLocalFile(secret, 15), options);
      await expect(refused).rejects.toBeInstanceOf(EnhanceError);
      await expect(refused).rejects.toThrow(
        /^the Bot API server gave a path on its own disk for the file, which the bot reads only from a local server \(telegram\.localServer\)$/,
      );
      // Nor over HTTP under another name: getFile was the only call.
      expect(fake.paths.filter((p) => p.startsWith('/file/'))).toEqual([]);
    } finally {
      await fake.close();
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  it('gives up a download from which nothing arrives, with a one-line reason', async () => {
    const fake = await new FakeBotApi('1:t').listen();
    try {
      fake.stallDownloads = true;
      const options = { api: new Api('1:t', { apiRoot: fake.root }), token: '1:t', apiRoot: fake.root, maxBytes: 1000, stallMs: 300, localServer: false };
      const asked = Date.now();
      const stalled = downloadFile(fake.addFile(Buffer.alloc(900), 'png'), options);
      await expect(stalled).rejects.toBeInstanceOf(EnhanceError);
      await expect(stalled).rejects.toThrow(/^the download from Telegram stalled \(nothing arrived for 0\.3 s\); please send it again$/);
      expect(fake.stalled).toBe(1);
      // Given up after the stall, not at once and not much later (a loaded 2-core machine: a wide margin).
      const took = Date.now() - asked;
      expect(took).toBeGreaterThanOrEqual(300);
      expect(took).toBeLessThan(3000);
    } finally {
      await fake.close();
    }
  });
});

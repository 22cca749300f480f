/**
 * A fake Telegram Bot API server on 127.0.0.1 for the real grammY client: long-polled `getUpdates` that hands out
 * updates a test scripts, `getFile` and the file download path, and the sending methods (JSON and multipart
 * uploads). It records every call, with uploaded files as bytes, so tests can assert what a person would see,
 * and can answer one call of a method with an error once (429 with retry_after, 403 blocked, …).
 *
 * Only what the bot uses is here; unknown methods answer 404 as the real server does.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Changes } from './changes.js';

/** An uploaded file, as the server received it. */
export interface Upload {
  filename: string;
  bytes: Buffer;
}

/** One API call: its method and parameters, uploaded files resolved from their `attach://` names. */
export interface ApiCall {
  method: string;
  params: Record<string, any>;
  /** Every file part of a multipart request, in order. */
  files: Upload[];
  /** The file a parameter names (`document`, `photo`): what `attach://<id>` pointed at. */
  file(field: string): Upload;
  /** What the server answered; 0 when it dropped the connection instead. */
  status: number;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** What the server answered with, when it succeeded (a sent message has its `message_id`). */
  result?: any;
}

export interface FakeUser {
  id: number;
  first_name: string;
  username?: string;
  /** The language the person's Telegram app is set to, as Telegram reports it (`en`, `zh-hans`). */
  language_code?: string;
}

type Chat = { id: number; type: 'private' | 'group' | 'supergroup'; title?: string; first_name?: string };

/** An error to answer once to a method. */
interface Failure {
  method: string;
  status: number;
  description: string;
  retryAfter?: number;
}

export const BOT: FakeUser & { is_bot: true } = { id: 9000, is_bot: true, first_name: 'Enhancer', username: 'enhancer_test_bot' };

export class FakeBotApi {
  readonly calls: ApiCall[] = [];
  /** File downloads answer with their first bytes and then nothing, the connection left open. */
  stallDownloads = false;
  /** Downloads stalled so far. */
  stalled = 0;
  /** Every request path the server saw (the tests check the token only ever travels here). */
  readonly paths: string[] = [];
  private readonly server: http.Server;
  private readonly updates: any[] = [];
  private nextUpdate = 1;
  private nextMessage = 1000;
  private readonly files = new Map<string, { path: string; bytes: Buffer; size?: number }>();
  /** Every message in every chat, by `chat:id`, for replies and callback queries. */
  private readonly messages = new Map<string, any>();
  private readonly failures: Failure[] = [];
  private readonly changes = new Changes();
  port = 0;

  constructor(readonly token: string) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  /** Listens on `port` of 127.0.0.1 (a free one when 0). */
  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** What `TELEGRAM_API_ROOT` should be. */
  get root(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The calls of one method, in order. */
  of(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method && c.status === 200);
  }

  /** Resolves with the first call that passes `test` (including those already made); fails after `timeoutMs`. */
  async waitFor(test: (call: ApiCall) => boolean, what: string, timeoutMs = 60_000): Promise<ApiCall> {
    return this.changes.until(() => this.calls.find((c) => c.status === 200 && test(c)), {
      what: () => `${what}; calls: ${this.calls.map((c) => `${c.method}:${c.status}`).join(' ')}`,
      timeoutMs,
    });
  }

  /** Answers the next call of `method` with an error, once. */
  failOnce(method: string, status: number, description: string, retryAfter?: number): void {
    this.failures.push({ method, status, description, retryAfter });
  }

  /** Closes the connection of the next call of `method` without an answer, once (a network error for the client). */
  dropOnce(method: string): void {
    this.failures.push({ method, status: 0, description: '' });
  }

  /** Takes the next call of `method` and never answers it (a server gone silent mid-request), once. */
  holdOnce(method: string): void {
    this.failures.push({ method, status: -1, description: '' });
  }

  /** Stores a file as Telegram would and returns its file_id. */
  addFile(bytes: Buffer, ext = 'jpg'): string {
    const id = `file${this.files.size + 1}`;
    this.files.set(id, { path: `files/${id}.${ext}`, bytes });
    return id;
  }

  /**
   * A file as a self-hosted server run with `--local` gives it: `getFile` answers with `localPath`, an absolute
   * path on its disk, and `file_size` as given (a real server may leave it out).
   */
  addLocalFile(localPath: string, fileSize?: number): string {
    const id = `file${this.files.size + 1}`;
    this.files.set(id, { path: localPath, bytes: Buffer.alloc(0), size: fileSize });
    return id;
  }

  /** Queues an update for getUpdates; returns it. */
  push(update: Record<string, unknown>): any {
    const full = { update_id: this.nextUpdate++, ...update };
    this.updates.push(full);
    this.wake();
    return full;
  }

  /** A message from `from` in `chat` (default their private chat), stored so replies can quote it. */
  message(from: FakeUser, fields: Record<string, unknown>, chat?: Chat): any {
    const message = {
      message_id: this.nextMessage++,
      date: Math.floor(Date.now() / 1000),
      chat: chat ?? { id: from.id, type: 'private', first_name: from.first_name },
      from: { ...from, is_bot: false },
      ...fields,
    };
    this.messages.set(`${message.chat.id}:${message.message_id}`, message);
    return message;
  }

  /** Sends a photo as a person would: Telegram's sizes, a small one first, then `bytes` (the largest). */
  sendPhoto(from: FakeUser, bytes: Buffer, size: { width: number; height: number }, extra: Record<string, unknown> = {}, chat?: Chat): any {
    const small = this.addFile(bytes.subarray(0, 16)); // Never the one to download.
    const large = this.addFile(bytes);
    const photo = [
      { file_id: small, file_unique_id: `u${small}`, width: 90, height: 90, file_size: 16 },
      { file_id: large, file_unique_id: `u${large}`, width: size.width, height: size.height, file_size: bytes.length },
    ];
    const message = this.message(from, { photo, ...extra }, chat);
    this.push({ message });
    return message;
  }

  /** Sends a file as a document. */
  sendDocument(from: FakeUser, bytes: Buffer, fileName: string, mime: string, extra: Record<string, unknown> = {}, chat?: Chat): any {
    const id = this.addFile(bytes, fileName.split('.').pop());
    const message = this.message(from, { document: { file_id: id, file_unique_id: `u${id}`, file_name: fileName, mime_type: mime, file_size: bytes.length }, ...extra }, chat);
    this.push({ message });
    return message;
  }

  /** Sends a text (a command gets its bot_command entity, as clients mark it). */
  sendText(from: FakeUser, text: string, extra: Record<string, unknown> = {}, chat?: Chat): any {
    const command = /^\/\w+(@\w+)?/.exec(text);
    const entities = command ? [{ type: 'bot_command', offset: 0, length: command[0].length }] : undefined;
    const message = this.message(from, { text, ...(entities ? { entities } : {}), ...extra }, chat);
    this.push({ message });
    return message;
  }

  /** Presses an inline button under a message the bot sent. */
  press(from: FakeUser, message: any, data: string): any {
    return this.push({ callback_query: { id: `cb${this.nextUpdate}`, from: { ...from, is_bot: false }, chat_instance: 'ci', message, data } });
  }

  /** The bot's message as it is now (after edits). */
  stored(chat: number, id: number): any {
    return this.messages.get(`${chat}:${id}`);
  }

  private wake(): void {
    this.changes.notify();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.paths.push(url.pathname);
    const body = await readBody(req);
    const send = (status: number, value: unknown) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (file) {
      const found = [...this.files.values()].find((f) => f.path === file[2]);
      if (file[1] !== this.token || !found) return void res.writeHead(404).end('Not Found');
      if (this.stallDownloads) {
        // Headers and the first bytes, then nothing: the connection stays open until the client gives up.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found.bytes.length }).write(found.bytes.subarray(0, 16));
        this.stalled += 1;
        this.wake();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found.bytes.length }).end(found.bytes);
      return;
    }
    const match = /^\/bot([^/]+)\/(\w+)$/.exec(url.pathname);
    if (!match || match[1] !== this.token) return send(401, { ok: false, error_code: 401, description: 'Unauthorized' });
    const method = match[2];
    const { params, files, byId } = parseParams(req.headers['content-type'] ?? '', body);
    const call: ApiCall = {
      method,
      params,
      files,
      status: 200,
      at: Date.now(),
      file: (field) => {
        const found = byId.get(String(params[field]).replace(/^attach:\/\//, ''));
        if (!found) throw new Error(`${method} has no uploaded ${field}`);
        return found;
      },
    };
    const failure = this.failures.findIndex((f) => f.method === method);
    if (failure >= 0) {
      const [f] = this.failures.splice(failure, 1);
      call.status = f.status;
      this.calls.push(call);
      this.wake();
      if (f.status === 0) return void req.socket.destroy();
      if (f.status === -1) return;
      return send(f.status, { ok: false, error_code: f.status, description: f.description, ...(f.retryAfter !== undefined ? { parameters: { retry_after: f.retryAfter } } : {}) });
    }
    if (method === 'getUpdates') return this.getUpdates(params, req, (value) => send(200, { ok: true, result: value }));
    let result: unknown;
    try {
      result = this.answer(method, params, files);
    } catch (error) {
      call.status = 400;
      this.calls.push(call);
      this.wake();
      return send(400, { ok: false, error_code: 400, description: (error as Error).message });
    }
    if (result === undefined) {
      call.status = 404;
      this.calls.push(call);
      this.wake();
      return send(404, { ok: false, error_code: 404, description: 'Not Found' });
    }
    call.result = result;
    this.calls.push(call);
    this.wake();
    send(200, { ok: true, result });
  }

  /** Long polling: answers at once when updates wait, else when one arrives or `timeout` seconds pass. */
  private getUpdates(params: Record<string, any>, req: http.IncomingMessage, reply: (updates: any[]) => void): void {
    const offset = Number(params.offset ?? 0);
    // Confirmed updates are gone, as on the real server.
    while (this.updates.length && this.updates[0].update_id < offset) this.updates.shift();
    const limit = Number(params.limit ?? 100);
    const ready = () => this.updates.filter((u) => u.update_id >= offset).slice(0, limit);
    if (ready().length || !Number(params.timeout)) return reply(ready());
    const done = () => {
      unsubscribe();
      clearTimeout(timer);
    };
    const check = () => {
      if (!ready().length) return;
      done();
      reply(ready());
    };
    const timer = setTimeout(() => {
      done();
      reply([]);
    }, Number(params.timeout) * 1000);
    const unsubscribe = this.changes.subscribe(check);
    req.socket.once('close', done);
  }

  private sent(chatId: unknown, fields: Record<string, unknown>, params: Record<string, any>): any {
    const chat = Number(chatId);
    const message: any = {
      message_id: this.nextMessage++,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chat, type: chat < 0 ? 'supergroup' : 'private' },
      from: BOT,
      ...fields,
    };
    const replyTo = params.reply_parameters?.message_id;
    if (replyTo) {
      const quoted = this.messages.get(`${chat}:${replyTo}`);
      if (quoted) message.reply_to_message = { ...quoted, reply_to_message: undefined };
    }
    if (params.reply_markup) message.reply_markup = params.reply_markup;
    this.messages.set(`${chat}:${message.message_id}`, message);
    return message;
  }

  private answer(method: string, params: Record<string, any>, files: Upload[]): unknown {
    const upload = (field: string) => {
      const value = params[field];
      if (typeof value !== 'string' || !value.startsWith('attach://')) throw new Error(`Bad Request: ${field} must be an uploaded file`);
      return { file_id: `sent-${field}-${this.nextMessage}`, file_unique_id: `s${this.nextMessage}`, file_size: files.find((f) => f.filename)?.bytes.length };
    };
    switch (method) {
      case 'getMe':
        return BOT;
      case 'getFile': {
        const file = this.files.get(params.file_id);
        if (!file) throw new Error('Bad Request: invalid file_id');
        const size = file.path.startsWith('/') ? file.size : file.bytes.length;
        return { file_id: params.file_id, file_unique_id: `u${params.file_id}`, ...(size !== undefined ? { file_size: size } : {}), file_path: file.path };
      }
      case 'sendMessage':
        return this.sent(params.chat_id, { text: params.text }, params);
      case 'editMessageText': {
        const message = this.messages.get(`${Number(params.chat_id)}:${params.message_id}`);
        if (!message) throw new Error('Bad Request: message to edit not found');
        if (message.text === params.text && JSON.stringify(message.reply_markup) === JSON.stringify(params.reply_markup)) {
          throw new Error('Bad Request: message is not modified');
        }
        message.text = params.text;
        message.reply_markup = params.reply_markup;
        return message;
      }
      case 'sendDocument':
        return this.sent(params.chat_id, { document: upload('document'), caption: params.caption }, params);
      case 'sendPhoto':
        return this.sent(params.chat_id, { photo: [upload('photo')], caption: params.caption }, params);
      case 'sendMediaGroup': {
        const media = params.media as Array<{ type: string; media: string; caption?: string }>;
        if (!Array.isArray(media) || media.length < 2 || media.length > 10) throw new Error('Bad Request: a media group has 2 to 10 items');
        return media.map((m) => this.sent(params.chat_id, { [m.type === 'photo' ? 'photo' : 'document']: { file_id: m.media }, caption: m.caption }, params));
      }
      case 'answerCallbackQuery':
      case 'deleteMessage':
      case 'setMyCommands':
        return true;
      default:
        return undefined;
    }
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
  });
}

/** Reads a JSON or multipart/form-data body; multipart fields holding JSON are parsed, `attach://` names resolved to the file names. */
function parseParams(type: string, body: Buffer): { params: Record<string, any>; files: Upload[]; byId: Map<string, Upload> } {
  const byId = new Map<string, Upload>();
  if (body.length === 0) return { params: {}, files: [], byId };
  if (type.startsWith('application/json')) return { params: JSON.parse(body.toString('utf8')) as Record<string, any>, files: [], byId };
  const boundary = /boundary=([^;]+)/.exec(type)?.[1];
  if (!boundary) throw new Error(`unexpected content type ${type}`);
  const params: Record<string, any> = {};
  const files: Upload[] = [];
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The body starts with `--boundary\r\n`; prefixing CRLF makes every delimiter the same.
  const whole = Buffer.concat([Buffer.from('\r\n'), body]);
  let at = whole.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (whole.subarray(start, start + 2).toString() === '--') break;
    const next = whole.indexOf(delimiter, start);
    const part = whole.subarray(start + 2, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString('utf8');
    const content = part.subarray(headerEnd + 4);
    const name = /name="([^"]*)"/i.exec(headers)?.[1] ?? '';
    const filename = /filename="?([^";\r\n]*)"?/i.exec(headers)?.[1];
    if (filename !== undefined) {
      const upload = { filename, bytes: Buffer.from(content) };
      files.push(upload);
      byId.set(name, upload);
    } else {
      const text = content.toString('utf8');
      params[name] = /^[[{]/.test(text) ? JSON.parse(text) : text;
    }
    at = next;
  }
  return { params, files, byId };
}

/**
 * The web door: the service's own pages on fastify. An upload page (several files, options, **Enhance**) makes
 * one job a file; each job has a page reached only through its signed, expiring link (links.ts), where position,
 * ETA, progress and the early preview are pushed by server-sent events, then a before/after slider, the summary
 * and the downloads. Results move into the keep (keep.ts) when the queue delivers them, so a job page works
 * across restarts until its link expires. Everything a visitor reads is in their language (language.ts chooses it
 * and renders the pages, status.ts says a job's lines per viewer), and an upload stores it with its job.
 *
 * fastify because it is well kept, streams multipart uploads through busboy (@fastify/multipart, so a file over
 * the limit is never held) and has a rate limiter (@fastify/rate-limit); @fastify/static is left out: the door
 * serves eight fixed files from a table, and no part of a request ever becomes a path.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { EnhanceError, reasonOf, reasonTextOf } from '../../src/errors.js';
import { DEFAULT_LOCALE, LOCALES, say, type Locale, type Text } from '../../src/i18n/i18n.js';
import { listenProblem } from '../../src/listen-problem.js';
import { probeImage } from '../../src/imaging/input.js';
import type { Logger } from '../../src/log.js';
import { readManifest } from '../../src/models/manifest.js';
import { modelsDir, projectRoot } from '../../src/paths.js';
import type { EnhanceQueue, Outcome } from '../../src/queue/queue.js';
import { newJobId } from '../../src/queue/spool.js';
import type { Adapter } from '../../src/service/adapter.js';
import type { ResultLinks } from '../../src/service/result-links.js';
import type { EnhanceProgress, EnhanceResult, Job } from '../../src/types.js';
import { Access, checkExposure, cookies, isLoopback, KEY_COOKIE, newVisitor, TRUSTED_PROXIES, VISITOR_COOKIE, visitorOf } from './access.js';
import type { WebConfig } from './config.js';
import { Keep, KEPT_KINDS, type KeptJob, type KeptKind } from './keep.js';
import { describeDuration, localeOf, modelChoices, plainPage, renderPage, webSay } from './language.js';
import { LinkSigner } from './links.js';
import { eventFor, snapshotFor, type PageEvent, type Snapshot } from './status.js';
import { readUpload, type UploadedFile } from './upload.js';

export interface WebOptions {
  config: WebConfig;
  /** Where the door keeps its link key and the kept results, e.g. `<data>/web`. */
  stateDir: string;
  maxFileBytes: number;
  maxPixels: number;
  /** The service's default model, preselected on the page. */
  defaultModel: string;
  logger: Logger;
  /** Where the port and host were set, for the one-line error. */
  from?: { port: string; host: string };
}

/** The page files, by the name they are asked for: a table, so no request name ever becomes a path. */
const STATIC: Record<string, string> = {
  'app.css': 'text/css; charset=utf-8',
  'upload.js': 'text/javascript; charset=utf-8',
  'job.js': 'text/javascript; charset=utf-8',
  'common.js': 'text/javascript; charset=utf-8',
  'language.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};
const PAGES = ['index.html', 'job.html'] as const;

const TYPES: Record<KeptKind, string> = {
  input: 'application/octet-stream',
  png: 'image/png',
  preview: 'image/jpeg',
  compare: 'image/jpeg',
  pdf: 'application/pdf',
  early: 'image/png',
};
const INPUT_TYPES: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif', avif: 'image/avif', tiff: 'image/tiff', heif: 'image/heif' };

/**
 * Sent with every answer: the pages load nothing from elsewhere, are never framed, and a job link (a secret in
 * the URL) never leaks through a Referer.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

/** Files taken from one upload request; the rest are listed with a reason, so every file gets an answer. */
const MAX_FILES = 20;
/** A comment line on open event streams this often, so proxies do not close a quiet one (nginx: 60 s). */
const HEARTBEAT_MS = 25_000;
/** Expired and over-size kept results are removed this often (and after each delivery). */
const PRUNE_MS = 10 * 60_000;

export class WebDoor implements Adapter {
  readonly name = 'web';
  private readonly log: Logger;
  private app?: FastifyInstance;
  private queue?: EnhanceQueue;
  private keep!: Keep;
  private links!: LinkSigner;
  private access!: Access;
  private pages = new EventEmitter();
  private readonly progress = new Map<string, EnhanceProgress>();
  private readonly files = new Map<string, Buffer>();
  /** Each page in each language, rendered once at start: `index.html:zh-Hans`. */
  private readonly rendered = new Map<string, string>();
  private models: Array<{ name: string; description: string }> = [];
  private pruner?: NodeJS.Timeout;
  /** The address people open, once listening. */
  url = '';

  constructor(private readonly options: WebOptions) {
    this.log = options.logger.child({ adapter: 'web' });
    this.pages.setMaxListeners(0);
  }

  async start(queue: EnhanceQueue): Promise<void> {
    const { config } = this.options;
    checkExposure(config.host, config.accessKeys, config.open);
    this.queue = queue;
    this.links = await LinkSigner.open(this.options.stateDir);
    this.access = new Access(this.links.derive('access'), config.accessKeys, { loopback: isLoopback(config.host), open: config.open });
    this.keep = new Keep(path.join(this.options.stateDir, 'keep'), config.keepBytes);
    await this.keep.open();
    await this.prune();
    this.models = (await readManifest(modelsDir())).models.map((m) => ({ name: m.name, description: m.description }));
    const dir = path.join(projectRoot, 'adapters', 'web', 'public');
    for (const name of [...Object.keys(STATIC), ...PAGES]) this.files.set(name, fs.readFileSync(path.join(dir, name)));
    for (const name of PAGES) {
      for (const locale of LOCALES) {
        const html = renderPage(this.files.get(name)!.toString('utf8'), locale);
        // A hole the catalogue has no line for is a bug: found at start, not by a visitor.
        const missing = /\(message web\.[\w.]+ is missing/.exec(html);
        if (missing) throw new Error(`adapters/web/public/${name}: ${missing[0]} (add it to the web section of en.json)`);
        this.rendered.set(`${name}:${locale}`, html);
      }
    }
    this.listen(queue);

    const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 64 * 1024, trustProxy: TRUSTED_PROXIES });
    this.app = app;
    await app.register(multipart, {
      // Past fileSize busboy drops a file's bytes and marks it truncated: nothing over the limit is held.
      limits: { fileSize: this.options.maxFileBytes, fields: 16, fieldSize: 200 },
      throwFileSizeLimit: false,
    });
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (request, context) =>
        Object.assign(new Error(webSay(localeOf(request.headers), 'rateLimited', { max: context.max, count: Math.max(1, Math.ceil(context.ttl / 1000)) })), { statusCode: 429 }),
    });
    app.addHook('onSend', async (_request, reply) => {
      reply.headers(SECURITY_HEADERS);
    });
    app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
      if (status >= 500) this.log.error({ err: error, url: request.url.split('?')[0] }, 'the web door could not answer');
      void reply.code(status).type('application/json').send({ error: status >= 500 ? say(localeOf(request.headers), reasonTextOf(error)) : error.message.split('\n')[0] });
    });
    this.routes(app);

    try {
      await app.listen({ port: config.port, host: config.host });
    } catch (error) {
      await app.close();
      throw new EnhanceError(listenProblem(error as NodeJS.ErrnoException, { name: 'web', port: config.port, host: config.host, from: this.options.from ?? { port: 'web.port', host: 'web.host' }, portHint: '0 turns the web page off' }), 'options');
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    this.url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/`;
    this.pruner = setInterval(() => void this.prune(), PRUNE_MS).unref();
    this.log.info({ url: this.url, keyNeeded: this.access.keyNeeded({}) }, `web page: open ${this.url} in a browser`);
  }

  async stop(): Promise<void> {
    clearInterval(this.pruner);
    await this.app?.close();
  }

  async deliver(job: Job, outcome: Outcome): Promise<void> {
    const kept = await this.keep.get(job.id);
    // Removed from the keep meanwhile (expired, or the keep was full): nothing to show it on.
    if (!kept) return;
    if (outcome.state === 'completed') {
      for (const kind of Object.keys(outcome.result.outputs ?? {}) as KeptKind[]) {
        if (KEPT_KINDS.includes(kind)) await this.keep.put(job.id, kind, await this.queue!.readOutput(job.id, kind as Exclude<KeptKind, 'input'>));
      }
    }
    const ended = await this.keep.end(
      job.id,
      outcome.state === 'completed' ? { state: 'completed', result: outcome.result } : { state: outcome.state, reason: outcome.reason, reasonText: outcome.text },
    );
    this.progress.delete(job.id);
    if (ended) this.emit(job.id, { type: 'done', data: await this.snapshot(ended) });
    this.log.info({ job: job.id, state: outcome.state }, 'kept for its page');
    await this.prune();
  }

  /**
   * The chat doors' links to this door's job pages, at `publicUrl` (the address people reach it at, without a
   * trailing slash). Its `keep` must only be called once this door has started: the service starts every door
   * before it delivers anything.
   *
   * @example
   * const links = web.resultLinks('https://enhance.example.org');
   * new TelegramBot({ ..., links });
   */
  resultLinks(publicUrl: string): ResultLinks {
    return { keep: (job, result) => this.keepLinked(job, result, publicUrl) };
  }

  /** A chat job's input and outputs into the keep, ended as completed; its page's address. Idempotent. */
  private async keepLinked(job: Job, result: EnhanceResult, publicUrl: string): Promise<string> {
    let kept = await this.keep.get(job.id);
    if (!kept) {
      const now = Date.now();
      kept = {
        id: job.id,
        name: displayName(job.request.name),
        createdAt: now,
        expires: now + this.options.config.keepFor,
        options: result.options,
        report: job.request.report === true,
        format: result.input.format,
        width: job.width,
        height: job.height,
        bytes: job.bytes,
        state: 'waiting',
      };
      await this.keep.add(kept, await this.queue!.readInput(job.id));
    }
    if (kept.state !== 'completed') {
      for (const kind of Object.keys(result.outputs ?? {}) as KeptKind[]) {
        if (KEPT_KINDS.includes(kind)) await this.keep.put(job.id, kind, await this.queue!.readOutput(job.id, kind as Exclude<KeptKind, 'input'>));
      }
      await this.keep.end(job.id, { state: 'completed', result });
      this.log.info({ job: job.id, adapter: job.request.replyTo?.adapter }, 'kept for its page (linked from chat)');
      await this.prune();
    }
    return `${publicUrl}${this.links.link(job.id, kept.expires)}`;
  }

  private async prune(): Promise<void> {
    try {
      const removed = await this.keep.prune();
      if (removed.length) this.log.info({ jobs: removed }, 'kept results removed (expired, or over web.keepBytes)');
    } catch (error) {
      this.log.error({ err: reasonOf(error) }, 'removing old kept results failed');
    }
  }

  private emit(id: string, event: PageEvent): void {
    this.pages.emit(id, event);
  }

  /** The queue's events, turned into page events for the jobs' open pages. */
  private listen(queue: EnhanceQueue): void {
    const events = queue.events(this.name);
    events.on('queued', (job, info) => this.emit(job.id, { type: 'queued', data: info }));
    events.on('started', (job) => this.emit(job.id, { type: 'started', data: {} }));
    events.on('progress', (job, progress) => {
      this.progress.set(job.id, progress);
      this.emit(job.id, { type: 'progress', data: progress });
    });
    events.on('preview', (job, preview) => {
      void (async () => {
        await this.keep.put(job.id, 'early', await queue.readOutput(job.id, 'early'));
        this.emit(job.id, { type: 'preview', data: { region: preview.region } });
      })().catch((error: unknown) => this.log.warn({ job: job.id, err: reasonOf(error) }, 'keeping the early preview failed'));
    });
    events.on('completed', (job) => this.emit(job.id, { type: 'finishing', data: {} }));
    // Any job that starts moves the waiting ones up: their open pages are told where they stand now.
    queue.events().on('started', () => {
      for (const id of this.pages.eventNames()) {
        void queue.getJob(String(id)).then((status) => {
          if (status?.state === 'waiting') this.emit(String(id), { type: 'queued', data: { position: status.position, etaMs: status.etaMs } });
        });
      }
    });
  }

  /** Where a kept job stands: its end once kept, else as the queue says. */
  private async snapshot(kept: KeptJob): Promise<Snapshot> {
    const base = {
      id: kept.id,
      name: kept.name,
      width: kept.width,
      height: kept.height,
      bytes: kept.bytes,
      format: kept.format,
      expires: kept.expires,
      report: kept.report,
      options: kept.options,
      preview: fs.existsSync(this.keep.file(kept.id, 'early')),
    };
    if (kept.state !== 'waiting' && kept.state !== 'active') return { ...base, state: kept.state, position: 0, etaMs: 0, reason: kept.reason, reasonText: kept.reasonText, result: kept.result };
    const status = await this.queue!.getJob(kept.id);
    const state = !status ? 'waiting' : status.state === 'waiting' || status.state === 'active' ? status.state : 'finishing';
    return { ...base, state, position: status?.position ?? 0, etaMs: status?.etaMs ?? 0, progress: this.progress.get(kept.id) };
  }

  // ---- Routes ----

  private routes(app: FastifyInstance): void {
    app.get('/', (request, reply) => this.page(request, reply, 'index.html'));
    // Where a browser asks for an icon when a page names none (a download, an error answer): the same picture.
    app.get('/favicon.ico', (_request, reply) => reply.type(STATIC['favicon.svg']).header('cache-control', 'max-age=86400').send(this.files.get('favicon.svg')));
    app.get<{ Params: { name: string } }>('/static/:name', (request, reply) => {
      const type = Object.hasOwn(STATIC, request.params.name) ? STATIC[request.params.name] : undefined;
      if (!type) return reply.code(404).type('text/plain; charset=utf-8').send(`${webSay(localeOf(request.headers), 'notFound')}\n`);
      return reply.type(type).header('cache-control', 'no-cache').send(this.files.get(request.params.name));
    });
    app.get('/api/session', (request, reply) => {
      this.visitor(request, reply);
      const locale = localeOf(request.headers);
      return {
        keyNeeded: this.access.keyNeeded(request.headers),
        allowed: this.access.allowed(request.headers),
        models: modelChoices(locale, this.models),
        limits: webSay(locale, 'limits', { bytes: this.options.maxFileBytes, pixels: this.options.maxPixels }),
        defaults: { model: this.options.defaultModel, scale: 4, tune: 'gentle' },
        maxFileBytes: this.options.maxFileBytes,
        maxPixels: this.options.maxPixels,
        keepFor: this.options.config.keepFor,
      };
    });
    app.post<{ Body: { key?: unknown } }>('/api/key', { config: { rateLimit: { max: 10, timeWindow: '1 minute' } } }, (request, reply) => {
      const key = request.body?.key;
      if (typeof key !== 'string' || !this.access.validKey(key)) return reply.code(403).send({ error: webSay(localeOf(request.headers), 'badKey') });
      const secure = request.protocol === 'https' ? '; Secure' : '';
      return reply
        .header('set-cookie', `${KEY_COOKIE}=${this.access.token(key).toString('base64url')}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000${secure}`)
        .send({ ok: true });
    });
    app.post('/api/jobs', { config: { rateLimit: { max: this.options.config.uploadsPerMinute, timeWindow: '1 minute' } } }, (request, reply) => this.upload(request, reply));
    app.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/job/:id', async (request, reply) => {
      const kept = await this.checked(request, reply);
      if (kept) return this.page(request, reply, 'job.html');
    });
    app.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/job/:id/state', async (request, reply) => {
      const kept = await this.checked(request, reply);
      if (kept) return reply.header('cache-control', 'no-store').send(snapshotFor(localeOf(request.headers), await this.snapshot(kept)));
    });
    app.get<{ Params: { id: string }; Querystring: Record<string, string> }>('/job/:id/events', async (request, reply) => {
      const kept = await this.checked(request, reply);
      if (kept) await this.stream(kept, request, reply);
    });
    app.get<{ Params: { id: string; kind: string }; Querystring: Record<string, string> }>('/job/:id/file/:kind', async (request, reply) => {
      const kept = await this.checked(request, reply);
      if (!kept) return;
      const kind = request.params.kind as KeptKind;
      if (!KEPT_KINDS.includes(kind)) return reply.code(404).type('text/plain; charset=utf-8').send(`${webSay(localeOf(request.headers), 'noSuchFile')}\n`);
      const file = this.keep.file(kept.id, kind);
      const stats = await fs.promises.stat(file).catch(() => undefined);
      if (!stats) return reply.code(404).type('text/plain; charset=utf-8').send(`${webSay(localeOf(request.headers), 'notMade')}\n`);
      const type = kind === 'input' ? (INPUT_TYPES[kept.format] ?? TYPES.input) : TYPES[kind];
      return reply.type(type).header('content-length', stats.size).header('cache-control', 'private, max-age=3600').send(fs.createReadStream(file));
    });
    app.post<{ Params: { id: string }; Querystring: Record<string, string>; Body: Record<string, unknown> }>(
      '/job/:id/again',
      { config: { rateLimit: { max: this.options.config.uploadsPerMinute, timeWindow: '1 minute' } } },
      (request, reply) => this.again(request, reply),
    );
    app.post<{ Params: { id: string }; Querystring: Record<string, string> }>('/job/:id/cancel', async (request, reply) => {
      const kept = await this.checked(request, reply);
      if (!kept) return;
      try {
        const job = await this.queue!.getJob(kept.id);
        if (!job || (job.state !== 'waiting' && job.state !== 'active')) return reply.code(409).send({ error: webSay(localeOf(request.headers), 'jobEnded') });
        await this.queue!.cancel(kept.id, job.request.owner ?? 'local');
        return { ok: true };
      } catch (error) {
        return reply.code(409).send({ error: say(localeOf(request.headers), reasonTextOf(error)) });
      }
    });
  }

  /** A page in the visitor's language (it varies with the `lang` cookie and `Accept-Language`). */
  private page(request: FastifyRequest, reply: FastifyReply, name: (typeof PAGES)[number]) {
    const html = this.rendered.get(`${name}:${localeOf(request.headers)}`) ?? this.rendered.get(`${name}:${DEFAULT_LOCALE}`);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('vary', 'accept-language, cookie').send(html);
  }

  /** The visitor's id, set as a cookie the first time. */
  private visitor(request: FastifyRequest, reply: FastifyReply): string {
    const known = visitorOf(cookies(request.headers.cookie));
    if (known) return known;
    const fresh = newVisitor();
    reply.header('set-cookie', `${VISITOR_COOKIE}=${fresh}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000`);
    return fresh;
  }

  /**
   * The kept job a signed link names, or undefined after answering with a plain page: a forged link, an expired
   * one, or one whose job is no longer kept. No file is ever served without this.
   */
  private async checked(request: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string> }>, reply: FastifyReply): Promise<KeptJob | undefined> {
    const check = this.links.check(request.params.id, request.query.e, request.query.s);
    const locale = localeOf(request.headers);
    const keepFor = describeDuration(locale, this.options.config.keepFor);
    const plain = (status: number, name: 'forged' | 'expired' | 'gone') =>
      void reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(plainPage(locale, webSay(locale, `${name}Title`), webSay(locale, name, { keepFor })));
    if (!check.ok && check.why === 'forged') {
      plain(403, 'forged');
      return undefined;
    }
    if (!check.ok) {
      plain(410, 'expired');
      return undefined;
    }
    const kept = await this.keep.get(request.params.id);
    if (!kept) plain(410, 'gone');
    return kept;
  }

  /** Server-sent events: the job as a whole, then each change, until it has ended. */
  private async stream(kept: KeptJob, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    // Each viewer's own language: the person who opens a link may not be the one who uploaded.
    const locale = localeOf(request.headers);
    const send = (type: string, data: unknown) => response.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    // Listening before the snapshot is taken, so nothing between the two is missed; held until it is sent.
    let held: PageEvent[] | null = [];
    const onEvent = (event: PageEvent) => {
      if (held) held.push(event);
      else {
        const said = eventFor(locale, event);
        send(said.type, said.data);
        if (event.type === 'done') response.end();
      }
    };
    this.pages.on(kept.id, onEvent);
    const heartbeat = setInterval(() => response.write(': still here\n\n'), HEARTBEAT_MS);
    const close = () => {
      clearInterval(heartbeat);
      this.pages.off(kept.id, onEvent);
    };
    request.raw.on('close', close);
    response.on('close', close);
    const snapshot = await this.snapshot(kept);
    send('state', snapshotFor(locale, snapshot));
    if (snapshot.state !== 'waiting' && snapshot.state !== 'active' && snapshot.state !== 'finishing') {
      response.end();
      return;
    }
    const pending = held;
    held = null;
    for (const event of pending) onEvent(event);
  }

  /**
   * Why this request may not upload, or undefined when it may: `needsKey` when a key would let it in, and a line
   * for the operator when none is configured (a page behind a reverse proxy on a loopback address).
   */
  private refusal(request: FastifyRequest, needsKey: 'needKey' | 'needKeyAgain'): string | undefined {
    if (this.access.allowed(request.headers)) return undefined;
    return webSay(localeOf(request.headers), this.access.hasKeys ? needsKey : 'noKeys');
  }

  /** An upload: every file becomes a job (or gets its one-line reason); answers with each one's link. */
  private async upload(request: FastifyRequest, reply: FastifyReply) {
    const refused = this.refusal(request, 'needKey');
    if (refused) return reply.code(403).send({ error: refused });
    const locale = localeOf(request.headers);
    if (!request.isMultipart()) return reply.code(415).send({ error: webSay(locale, 'notMultipart') });
    const owner = `web:${this.visitor(request, reply)}`;
    const fields: Record<string, string> = {};
    const results: Array<{ name: string; link?: string; reason?: string }> = [];
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (results.length >= MAX_FILES) {
        part.file.resume();
        results.push({ name: displayName(part.filename || 'upload'), reason: webSay(locale, 'tooManyFiles', { n: MAX_FILES }) });
        continue;
      }
      const file = await readUpload(part, this.options.maxFileBytes, this.options.maxPixels);
      results.push(await this.submit(file, fields, owner, locale));
    }
    if (results.length === 0) return reply.code(400).send({ error: webSay(locale, 'noFile') });
    return { jobs: results };
  }

  /**
   * "Enhance again with other options": the kept upload of a job as a new job, with the options in the body
   * (`model`, `scale`, `tune`, `pdf`, as the upload form sends them). An upload like any other: the access key
   * and the visitor's limits apply. Answers with the new job's link, or its one-line reason.
   */
  private async again(request: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string>; Body: Record<string, unknown> }>, reply: FastifyReply) {
    const kept = await this.checked(request, reply);
    if (!kept) return;
    const refused = this.refusal(request, 'needKeyAgain');
    if (refused) return reply.code(403).send({ error: refused });
    const locale = localeOf(request.headers);
    const input = await fs.promises.readFile(this.keep.file(kept.id, 'input')).catch(() => undefined);
    if (!input) return reply.code(410).send({ error: webSay(locale, 'inputGone') });
    const body = request.body && typeof request.body === 'object' ? request.body : {};
    const fields = Object.fromEntries(['model', 'scale', 'tune', 'pdf'].flatMap((k) => (typeof body[k] === 'string' ? [[k, body[k] as string]] : [])));
    const answer = await this.submit({ name: kept.name, bytes: input }, fields, `web:${this.visitor(request, reply)}`, locale);
    return answer.link ? { link: answer.link } : reply.code(400).send({ error: answer.reason });
  }

  /** One file as a job, `locale` stored with it (its PDF and comparison are made in it); its reason said in it. */
  private async submit(file: UploadedFile, fields: Record<string, string>, owner: string, locale: Locale): Promise<{ name: string; link?: string; reason?: string }> {
    const name = displayName(file.name);
    const refused = (reason: Text) => ({ name, reason: say(locale, reason) });
    if ('reason' in file) {
      this.log.info({ name, reason: say(DEFAULT_LOCALE, file.reason) }, 'upload refused');
      return refused(file.reason);
    }
    const id = newJobId();
    const now = Date.now();
    const expires = now + this.options.config.keepFor;
    const report = fields.pdf === 'on' || fields.pdf === 'true';
    const options = {
      model: fields.model || undefined,
      scale: fields.scale ? (Number(fields.scale) as 2 | 3 | 4) : undefined,
      tune: fields.tune === 'raw' ? ('raw' as const) : undefined,
    };
    try {
      // The header once here too, for the page's record (the queue checks it again): a bad file gets its reason.
      const header = await probeImage(file.bytes, this.options.maxPixels);
      const shown = { model: options.model ?? this.options.defaultModel, scale: options.scale ?? 4, tune: options.tune ?? 'gentle' } as KeptJob['options'];
      // Kept before it is queued: its delivery may come at once (a cached result), and finds it here.
      await this.keep.add(
        { id, name, createdAt: now, expires, options: shown, report, format: header.format, width: header.width, height: header.height, bytes: file.bytes.length, state: 'waiting' },
        file.bytes,
      );
      await this.queue!.submit({ input: file.bytes, name, owner, replyTo: { adapter: this.name }, report, earlyPreview: true, options, locale }, id);
      this.log.info({ job: id, name, bytes: file.bytes.length, locale }, 'upload queued');
      return { name, link: this.links.link(id, expires) };
    } catch (error) {
      await this.keep.remove(id);
      if (!(error instanceof EnhanceError)) this.log.error({ err: error, name }, 'queueing an upload failed');
      else this.log.info({ name, reason: error.message }, 'upload refused');
      return refused(reasonTextOf(error));
    }
  }
}

/** A file name as shown: its last part, without control characters, at most 200 characters. Never a path. */
function displayName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = name.split(/[\\/]/).pop()!.replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return (base || 'upload').slice(0, 200);
}

/**
 * The web door: the service's own pages and API on fastify. An upload page (several files, options, **Enhance**)
 * makes one job a file; each job has a page reached only through its signed, expiring link (links.ts), where
 * position, ETA, progress and the early preview are pushed by server-sent events (feed.ts), then a before/after
 * slider, the summary and the downloads. Scripts use the same routes with an access key (routes/api.ts).
 * Results move into the keep (keep.ts) when the queue delivers them, so a job page works across restarts until
 * its link expires. Everything a visitor reads is in their language (language.ts, status.ts).
 *
 * The parts: server.ts builds the fastify instance (guard.ts against a hostile network, then the route plugins in
 * routes/), intake.ts takes files in, people.ts counts each person's uploads; this class starts and stops it all
 * and turns the queue's events and deliveries into what pages show.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { listenProblem, OperatorError, LOCALES, projectRoot, readManifest, reasonOf, type EnhanceQueue, type EnhanceResult, type Job, type Logger, type Outcome } from '../../src/index.js';
import type { Door } from '../../src/index.js';
import type { ResultLinks } from '../kit/result-links.js';
import { Access, checkExposure, isLoopback } from './access.js';
import type { WebConfig } from './config.js';
import type { WebContext } from './context.js';
import { JobFeed } from './feed.js';
import { shownName, Intake } from './intake.js';
import { Keep, KEPT_KINDS, type KeptJob, type KeptKind } from './keep.js';
import { modelChoices, renderPage } from './language.js';
import { LinkSigner } from './links.js';
import { People, type WebReply } from './people.js';
import { buildServer } from './server.js';
import type { Snapshot } from './status.js';

export interface WebOptions {
  /** The queue this door submits to and hears from. */
  queue: EnhanceQueue;
  config: WebConfig;
  /** Where the door keeps its link key and the kept results, e.g. `<data>/web`. */
  stateDir: string;
  maxFileBytes: number;
  maxPixels: number;
  /** Uploads one person may have in line (`limits.queuedPerOwner`). */
  queuedPerOwner: number;
  /** The service's default model, preselected on the page. */
  defaultModel: string;
  /** The prepared models and their manifest (`config.models`). */
  modelsDir: string;
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

/** Expired and over-size kept results are removed this often (and after each delivery). */
const PRUNE_MS = 10 * 60_000;

export class WebDoor implements Door<WebReply> {
  readonly name = 'web';
  /** The door counts each person's uploads itself (people.ts): the queue's per-job limit would split an upload. */
  readonly ownLimits = true;
  private readonly log: Logger;
  private app?: FastifyInstance;
  private readonly queue: EnhanceQueue;
  private keep!: Keep;
  private links!: LinkSigner;
  private readonly feed: JobFeed;
  private readonly people: People;
  private readonly files = new Map<string, Buffer>();
  /** Each page in each language, rendered once at start: `index.html:zh-Hans`. */
  private readonly rendered = new Map<string, string>();
  private models: Array<{ name: string; description: string }> = [];
  private pruner?: NodeJS.Timeout;
  /** The address people open, once listening. */
  url = '';

  constructor(private readonly options: WebOptions) {
    this.queue = options.queue;
    this.log = options.logger.child({ adapter: 'web' });
    this.feed = new JobFeed(this.log);
    this.people = new People(options.queuedPerOwner);
  }

  async start(): Promise<void> {
    const { config } = this.options;
    const { queue } = this;
    checkExposure(config.host, config.accessKeys, config.open);
    this.links = await LinkSigner.open(this.options.stateDir);
    const access = new Access(this.links.derive('access'), config.accessKeys, { loopback: isLoopback(config.host), open: config.open });
    this.keep = new Keep(path.join(this.options.stateDir, 'keep'), config.keepBytes);
    await this.keep.open();
    await this.prune();
    this.models = (await readManifest(this.options.modelsDir)).models.map((m) => ({ name: m.name, description: m.description }));
    this.loadPages();
    this.people.recover(await queue.getJobs());
    this.listen(queue);

    const ctx: WebContext = {
      config,
      maxFileBytes: this.options.maxFileBytes,
      maxPixels: this.options.maxPixels,
      defaultModel: this.options.defaultModel,
      log: this.log,
      queue,
      keep: this.keep,
      links: this.links,
      access,
      feed: this.feed,
      intake: new Intake({ queue, keep: this.keep, links: this.links, people: this.people, keepFor: config.keepFor, maxPixels: this.options.maxPixels, defaultModel: this.options.defaultModel, logger: this.log }),
      page: (name, locale) => this.rendered.get(`${name}:${locale}`) ?? this.rendered.get(`${name}:en`)!,
      file: (name) => (Object.hasOwn(STATIC, name) ? { type: STATIC[name], bytes: this.files.get(name)! } : undefined),
      snapshot: (kept) => this.snapshot(kept),
      // `auto` first: the service's default, chosen per picture and time (src/pipeline/plan.ts).
      models: (locale) => modelChoices(locale, [{ name: 'auto', description: 'auto' }, ...this.models]),
    };
    const app = await buildServer(ctx);
    this.app = app;
    try {
      await app.listen({ port: config.port, host: config.host });
    } catch (error) {
      await app.close();
      throw new OperatorError(listenProblem(error as NodeJS.ErrnoException, { name: 'web', port: config.port, host: config.host, from: this.options.from ?? { port: 'web.port', host: 'web.host' }, portHint: '0 turns the web page off' }));
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    this.url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/`;
    this.pruner = setInterval(() => void this.prune(), PRUNE_MS).unref();
    this.log.info({ url: this.url, keyNeeded: access.keyNeeded({}) }, `web page: open ${this.url} in a browser`);
  }

  async stop(): Promise<void> {
    clearInterval(this.pruner);
    await this.app?.close();
  }

  async deliver(job: Job, outcome: Outcome): Promise<void> {
    this.people.settle(job.id);
    const kept = await this.keep.get(job.id);
    // Removed from the keep meanwhile (expired, or the keep was full): nothing to show it on.
    if (!kept) return;
    if (outcome.state === 'completed') await this.keepOutputs(job.id, outcome.result);
    const ended = await this.keep.end(
      job.id,
      outcome.state === 'completed' ? { state: 'completed', result: outcome.result } : { state: outcome.state, reason: outcome.reason, reasonText: outcome.text },
    );
    this.feed.forget(job.id);
    if (ended) this.feed.emit(job.id, { type: 'done', data: await this.snapshot(ended) });
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
   * new TelegramDoor({ queue, ..., links });
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
        name: shownName(job.request.name),
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
      await this.keep.add(kept, await this.queue.readInput(job.id));
    }
    if (kept.state !== 'completed') {
      await this.keepOutputs(job.id, result);
      await this.keep.end(job.id, { state: 'completed', result });
      this.log.info({ job: job.id, adapter: job.request.replyTo?.adapter }, 'kept for its page (linked from chat)');
      await this.prune();
    }
    return `${publicUrl}${this.links.link(job.id, kept.expires)}`;
  }

  /** A completed job's outputs from the queue's result store into the keep. */
  private async keepOutputs(id: string, result: EnhanceResult): Promise<void> {
    for (const kind of Object.keys(result.outputs ?? {}) as KeptKind[]) {
      if (KEPT_KINDS.includes(kind) && kind !== 'input') await this.keep.put(id, kind, await this.queue.readOutput(id, kind));
    }
  }

  private async prune(): Promise<void> {
    try {
      const removed = await this.keep.prune();
      if (removed.length) this.log.info({ jobs: removed }, 'kept results removed (expired, or over web.keepBytes)');
    } catch (error) {
      this.log.error({ err: reasonOf(error) }, 'removing old kept results failed');
    }
  }

  /** The page files, and each page rendered in each language. A hole the catalogue has no line for stops start-up. */
  private loadPages(): void {
    const dir = path.join(projectRoot, 'adapters', 'web', 'public');
    for (const name of [...Object.keys(STATIC), ...PAGES]) this.files.set(name, fs.readFileSync(path.join(dir, name)));
    for (const name of PAGES) {
      for (const locale of LOCALES) {
        const html = renderPage(this.files.get(name)!.toString('utf8'), locale);
        const missing = /\(message web\.[\w.]+ is missing/.exec(html);
        if (missing) throw new Error(`adapters/web/public/${name}: ${missing[0]} (add it to the web section of en.json)`);
        this.rendered.set(`${name}:${locale}`, html);
      }
    }
  }


  /** The queue's events, turned into page events for the jobs' open pages. */
  private listen(queue: EnhanceQueue): void {
    const events = queue.events(this.name);
    events.on('queued', (job, info) => this.feed.emit(job.id, { type: 'queued', data: info }));
    events.on('started', (job) => this.feed.emit(job.id, { type: 'started', data: {} }));
    events.on('progress', (job, progress) => this.feed.emit(job.id, { type: 'progress', data: progress }));
    events.on('preview', (job, preview) => {
      void (async () => {
        await this.keep.put(job.id, 'early', await queue.readOutput(job.id, 'early'));
        this.feed.emit(job.id, { type: 'preview', data: { region: preview.region } });
      })().catch((error: unknown) => this.log.warn({ job: job.id, err: reasonOf(error) }, 'keeping the early preview failed'));
    });
    events.on('completed', (job) => {
      this.people.settle(job.id);
      this.feed.emit(job.id, { type: 'finishing', data: {} });
    });
    events.on('failed', (job) => this.people.settle(job.id));
    events.on('cancelled', (job) => this.people.settle(job.id));
    // Any job that starts moves the waiting ones up: their open pages are told where they stand now.
    queue.events().on('started', () => {
      for (const id of this.feed.followed()) {
        void queue.getJob(id).then((status) => {
          if (status?.state === 'waiting') this.feed.emit(id, { type: 'queued', data: { position: status.position, etaMs: status.etaMs } });
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
    const status = await this.queue.getJob(kept.id);
    const state = !status ? 'waiting' : status.state === 'waiting' || status.state === 'active' ? status.state : 'finishing';
    return { ...base, state, position: status?.position ?? 0, etaMs: status?.etaMs ?? 0, progress: this.feed.progressOf(kept.id) };
  }
}

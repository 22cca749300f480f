/**
 * The Telegram front door: a grammY bot on long polling. A photo or image file (or `/enhance` replying to one)
 * becomes a job; its status message is a reply to the image, edited as the job moves (throttled per chat); the
 * early preview follows as a photo, then the enhanced PNG as a document (never a compressed photo), the
 * before/after as a photo, and the PDF when asked.
 *
 * Updates of different chats are handled at once, each chat's in order (grammY runner + sequentialize); 429s and
 * server errors are retried by auto-retry. Everything a job needs to be answered (chat, image message, status
 * message) is in its `replyTo`, stored with it, so a restart loses nothing. The answer itself is answer.ts; what
 * of it was sent is noted (src/service/sent-notes.ts), so a delivery tried again never sends a file twice.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { run, sequentialize, type RunnerHandle } from '@grammyjs/runner';
import { Bot, GrammyError, type Api, InlineKeyboard, InputFile, type Context } from 'grammy';
import type { InlineKeyboardMarkup, Message } from 'grammy/types';
import { EnhanceError, reasonTextOf } from '../../src/errors.js';
import { DEFAULT_LOCALE, LOCALES, say, translator, type Locale, type Text } from '../../src/i18n/i18n.js';
import { estimatePngBytes, largestFittingScale } from '../../src/imaging/fit.js';
import { probeImage } from '../../src/imaging/input.js';
import type { Logger } from '../../src/log.js';
import type { EnhanceQueue, Outcome } from '../../src/queue/queue.js';
import { JOB_ID } from '../../src/queue/spool.js';
import type { Adapter } from '../../src/service/adapter.js';
import type { ResultLinks } from '../../src/service/result-links.js';
import type { EnhanceProgress, Job } from '../../src/types.js';
import { isAddressed, isAllowed } from './access.js';
import { deliverAnswer } from './answer.js';
import { packOptions, parseCaption, unpackOptions, type CaptionOptions } from './caption.js';
import { serverLimits, type TelegramConfig } from './config.js';
import { downloadFile } from './download.js';
import { DoorConnection } from '../../src/service/door-connection.js';
import { SentNotes } from '../../src/service/sent-notes.js';
import { cancelButton, imageOf, replyParams, type TelegramReply } from './reply.js';
import { safeReason } from './secret.js';
import { StatusEditor } from './status-editor.js';
import { helpText, label, localeOf, progressText, queuedText } from './text.js';

export type { TelegramReply } from './reply.js';

export interface TelegramOptions {
  config: TelegramConfig;
  /** Where the adapter notes what it has sent, e.g. `<data>/telegram`. */
  stateDir: string;
  /** The service's limits: pixels, file size (downloads stop at the smaller of this and the server's) and jobs per person. */
  maxPixels: number;
  maxFileBytes: number;
  queuedPerOwner: number;
  logger: Logger;
  /**
   * Links to the web door's job pages (with `web.publicUrl`): every answer carries one, and a PNG over the upload
   * limit is answered with the comparison and the link instead of an offer of smaller scales.
   */
  links?: ResultLinks;
}

/** Album ids seen lately: how many images each had so far and the options its caption set. */
interface AlbumState {
  count: number;
  caption?: CaptionOptions;
  at: number;
}
const ALBUM_MEMORY_MS = 10 * 60_000;

/** Pauses before polling again after the runner stopped on an error it does not retry (401, 409). */
const POLL_PAUSE_MS = 5_000;
const MAX_POLL_PAUSE_MS = 5 * 60_000;

export class TelegramBot implements Adapter {
  readonly name = 'telegram';
  private readonly bot: Bot;
  private readonly log: Logger;
  private readonly token: string;
  private readonly limits: { download: number; upload: number };
  private readonly editor: StatusEditor;
  private queue?: EnhanceQueue;
  private runner?: RunnerHandle;
  private repoll?: NodeJS.Timeout;
  private stopping = false;
  /** Why the last getUpdates failed, until one succeeds. */
  private pollFailing?: string;
  private readonly progress = new Map<string, EnhanceProgress>();
  /** Early previews being sent: deliver() waits for its job's, so the preview always comes first. */
  private readonly previews = new Map<string, Promise<void>>();
  private readonly albums = new Map<string, AlbumState>();
  private readonly notes: SentNotes;
  private readonly connection: DoorConnection;

  constructor(private readonly options: TelegramOptions) {
    const { config } = options;
    this.token = config.token;
    this.log = options.logger.child({ adapter: 'telegram' });
    const server = serverLimits(config);
    this.notes = new SentNotes(options.stateDir);
    this.limits = { download: Math.min(server.download, options.maxFileBytes), upload: server.upload };
    this.bot = new Bot(config.token, { client: { apiRoot: config.apiRoot } });
    // 429 (retry_after) and 5xx are retried here. A wait over a minute fails the call instead, and so does a
    // network error (auto-retry would retry those without end, in memory, up to an hour apart): a delivery is then
    // retried by the queue, which keeps it across restarts, and getUpdates by the runner.
    this.bot.api.config.use(autoRetry({ maxDelaySeconds: 60, maxRetryAttempts: 5, rethrowHttpErrors: true }));
    // grammY's runner retries a failing getUpdates by itself, silently: without this, /healthz said "connected"
    // while no update arrived. The door is down from a failed poll until the next one succeeds.
    this.bot.api.config.use(async (prev, method, payload, signal) => {
      if (method !== 'getUpdates') return prev(method, payload, signal);
      try {
        const answer = await prev(method, payload, signal);
        this.polled(answer.ok ? undefined : `${answer.error_code}: ${answer.description}`);
        return answer;
      } catch (error) {
        if (!this.stopping) this.polled(safeReason(error, this.token));
        throw error;
      }
    });
    this.bot.catch((error) => {
      this.log.error({ update: error.ctx.update.update_id, err: safeReason(error.error, this.token) }, 'handling a Telegram update failed');
    });
    this.editor = new StatusEditor(
      (edit) => this.editStatus(edit.chat, edit.message, edit.text, edit.buttons),
      config.progressEditMs,
      (error) => this.log.warn({ err: safeReason(error, this.token) }, 'editing a status message failed'),
    );
    this.install();
    this.connection = new DoorConnection({
      platform: 'Telegram',
      // One getMe per try: grammY's own bot.init() retries a network error without end, which held start-up.
      connect: async (signal) => {
        // grammY's types take the signal of the abort-controller package; Node's own is the same at run time.
        if (!this.bot.isInited()) this.bot.botInfo = await this.bot.api.getMe(signal as Parameters<Api['getMe']>[0]);
      },
      refused: (error) =>
        error instanceof GrammyError && (error.error_code === 401 || error.error_code === 404)
          ? `telegram: the Bot API server refused the bot (${safeReason(error, this.token)}); check TELEGRAM_BOT_TOKEN and TELEGRAM_API_ROOT`
          : undefined,
      reason: (error) => safeReason(error, this.token),
      logger: this.log,
    });
  }

  /** The credential check before any door starts: getMe, once, within seconds (see `Adapter.check`). */
  check(signal?: AbortSignal): Promise<void> {
    return this.connection.check(signal);
  }

  down(): string | null {
    return this.connection.problem ?? (this.pollFailing ? `cannot poll Telegram for updates (${this.pollFailing}); trying again` : null);
  }

  /** A getUpdates call ended: `why` it failed, or undefined. Logs once when polling starts failing and when it works again. */
  private polled(why: string | undefined): void {
    if (why !== undefined && this.pollFailing === undefined) this.log.warn({ why }, 'Telegram polling fails; grammY tries again');
    if (why === undefined && this.pollFailing !== undefined) this.log.info('Telegram polling works again');
    this.pollFailing = why;
  }

  async start(queue: EnhanceQueue): Promise<void> {
    this.queue = queue;
    await this.notes.open();
    // Deliveries and status edits of recovered jobs need only the token; they are retried while Telegram is away.
    this.listen(queue);
    await this.resume(queue);
    this.connection.start(() => {
      void this.registerCommands();
      this.poll();
      this.log.info({ bot: this.bot.botInfo.username, limits: this.limits }, 'Telegram bot polling');
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.connection.stop();
    clearTimeout(this.repoll);
    if (this.runner?.isRunning()) await this.runner.stop();
    this.editor.stop();
  }

  /**
   * The command menu Telegram shows under `/`: in English for everyone, and in each other catalogue's language for
   * the people whose app is set to it (`language_code` `zh`). A failure only costs the menu, so it is logged.
   */
  private async registerCommands(): Promise<void> {
    const commands = (locale: Locale) => {
      const t = translator(locale);
      return [
        { command: 'start', description: t('telegram.commandStart') },
        { command: 'help', description: t('telegram.commandHelp') },
        { command: 'enhance', description: t('telegram.commandEnhance') },
        { command: 'status', description: t('telegram.commandStatus') },
        { command: 'cancel', description: t('telegram.commandCancel') },
      ];
    };
    try {
      await this.bot.api.setMyCommands(commands(DEFAULT_LOCALE));
      // Telegram names a language by its two-letter code only: zh-Hans is `zh`.
      for (const locale of LOCALES.filter((l) => l !== DEFAULT_LOCALE)) {
        await this.bot.api.setMyCommands(commands(locale), { language_code: new Intl.Locale(locale).language as 'zh' });
      }
    } catch (error) {
      this.log.warn({ err: safeReason(error, this.token) }, 'registering the command menu failed');
    }
  }

  /**
   * Starts long polling. The runner retries failed getUpdates calls itself, but stops for good on 401 (token
   * revoked) and 409 (another process polls this token), rejecting its task: unobserved, that would crash the
   * service with grammY's error printed, URL and token included. Polling starts again after a growing pause
   * (5 s doubling to 5 min), so deliveries go on meanwhile and a second instance that goes away is no harm.
   */
  private poll(pauseMs = POLL_PAUSE_MS): void {
    const runner = run(this.bot, {
      runner: { silent: true, fetch: { timeout: this.options.config.pollTimeoutS, allowed_updates: ['message', 'callback_query'] } },
    });
    this.runner = runner;
    runner.task()?.catch((error: unknown) => {
      if (this.stopping) return;
      this.log.error({ err: safeReason(error, this.token), retryInS: pauseMs / 1000 }, 'Telegram polling stopped; starting it again later');
      this.repoll = setTimeout(() => this.poll(Math.min(pauseMs * 2, MAX_POLL_PAUSE_MS)), pauseMs);
    });
  }

  // ---- Updates ----

  private install(): void {
    const bot = this.bot;
    bot.use(sequentialize((ctx: Context) => ctx.chat?.id.toString()));
    // Groups: only what is meant for the bot. Callback queries come from its own buttons.
    bot.on('message', async (ctx, next) => {
      if (isAddressed(ctx.msg, ctx.me)) await next();
    });
    bot.use(async (ctx, next) => {
      const { allowedUsers: users, allowedChats: chats } = this.options.config;
      if (isAllowed({ users, chats }, ctx.from?.id, ctx.chat?.id)) return next();
      const refusal = translator(localeOf(ctx.from))('telegram.private', { id: ctx.from?.id ?? '?' });
      this.log.info({ user: ctx.from?.id, chat: ctx.chat?.id }, 'refused: not on the allowlist');
      if (ctx.callbackQuery) await ctx.answerCallbackQuery({ text: refusal });
      else if (ctx.msg) await ctx.reply(refusal, { reply_parameters: replyParams(ctx.msg.message_id) });
    });
    bot.command(['start', 'help'], (ctx) =>
      ctx.reply(helpText(localeOf(ctx.from), { ...this.limits, maxPixels: this.options.maxPixels, queuedPerOwner: this.options.queuedPerOwner, linked: this.options.links !== undefined })),
    );
    bot.command('status', (ctx) => this.status(ctx));
    bot.command('cancel', (ctx) => this.cancelAll(ctx));
    bot.command('enhance', async (ctx) => {
      const target = imageOf(ctx.msg) ? ctx.msg : ctx.msg.reply_to_message;
      if (!imageOf(target)) {
        await ctx.reply(translator(localeOf(ctx.from))('telegram.enhanceHint'), {
          reply_parameters: replyParams(ctx.msg.message_id),
        });
        return;
      }
      await this.take(ctx, target!, parseCaption(ctx.match));
    });
    bot.on(['message:photo', 'message:document'], (ctx) => {
      const caption = parseCaption(ctx.msg.caption);
      const album = this.albumPlace(ctx.msg, caption);
      // Images after an album's first take the options of its caption (Telegram puts it on the first).
      return this.take(ctx, ctx.msg, album?.caption ?? caption, undefined, album?.index);
    });
    bot.callbackQuery(/^cancel:(.+)$/, (ctx) => this.cancelOne(ctx, ctx.match[1]));
    bot.callbackQuery(/^go:([234]):([a-z]*)$/, async (ctx) => {
      const offer = ctx.callbackQuery.message;
      const image = offer && 'reply_to_message' in offer ? offer.reply_to_message : undefined;
      if (!offer || !imageOf(image)) {
        await ctx.answerCallbackQuery({ text: translator(localeOf(ctx.from))('telegram.imageGone') });
        return;
      }
      await ctx.answerCallbackQuery();
      const scale = Number(ctx.match[1]) as 2 | 3 | 4;
      await this.take(ctx, image!, unpackOptions(ctx.match[2], scale), offer.message_id);
    });
    bot.on('message', async (ctx) => {
      if (ctx.chat.type === 'private') await ctx.reply(translator(localeOf(ctx.from))('telegram.sendImage'));
    });
  }

  /**
   * Turns the image in `message` into a job: download, check from the header (pixels, upload limit), then the
   * status message and the job. Every refusal is one line in the chat. `status` reuses a message (an offer);
   * `albumIndex` is the image's place in the album it came in.
   */
  private async take(ctx: Context, message: Message, asked: CaptionOptions, status?: number, albumIndex?: number): Promise<void> {
    const source = imageOf(message)!;
    const chat = message.chat.id;
    const owner = `telegram:${ctx.from?.id ?? chat}`;
    // The sender's language (the presser's, for a button), kept with the job for every later answer.
    const locale = localeOf(ctx.from);
    const t = translator(locale);
    const prefix = label(locale, albumIndex);
    const answer = async (text: string, buttons?: InlineKeyboard) => {
      if (status) await this.editStatus(chat, status, text, buttons);
      else status = (await this.bot.api.sendMessage(chat, text, { reply_parameters: replyParams(message.message_id), reply_markup: buttons })).message_id;
    };
    const refuse = (reason: Text) => answer(prefix + t('telegram.notTaken', { reason }));
    if (source.notImage) return answer(prefix + t('telegram.notImage', { type: source.notImage }));
    // The queue checks this too; asking first saves downloading an image that cannot be taken.
    const mine = (await this.queue!.getJobs(owner)).length;
    if (mine >= this.options.queuedPerOwner) return refuse({ key: 'reason.ownerLimit', values: { count: mine, limit: this.options.queuedPerOwner } });
    let input: Buffer;
    let header;
    try {
      if (source.fileSize !== undefined && source.fileSize > this.limits.download) {
        throw new EnhanceError({ key: 'telegram.downloadLimit', values: { bytes: source.fileSize, limit: this.limits.download } }, 'input');
      }
      const { apiRoot, downloadTimeoutS, localServer } = this.options.config;
      input = await downloadFile(source.fileId, { api: this.bot.api, token: this.token, apiRoot, maxBytes: this.limits.download, stallMs: downloadTimeoutS * 1000, localServer });
      header = await probeImage(input, this.options.maxPixels);
    } catch (error) {
      if (!(error instanceof EnhanceError)) {
        this.log.warn({ chat, err: safeReason(error, this.token) }, 'downloading an image failed');
        return answer(prefix + t('telegram.downloadFailed'));
      }
      return refuse(reasonTextOf(error));
    }
    const scale = asked.options.scale ?? 4;
    const samples = { channels: header.meta.channels, bits: header.meta.depth === 'ushort' ? (16 as const) : (8 as const) };
    const fitting = largestFittingScale(header.width, header.height, this.limits.upload, { ...samples, scales: ([4, 3, 2] as const).filter((s) => s <= scale) });
    // With a link to the web page, the PNG at the asked scale is reached there when it cannot be sent here.
    if (fitting !== scale && !this.options.links) {
      const bytes = estimatePngBytes(header.width, header.height, scale, samples.channels, samples.bits);
      const why = prefix + t('telegram.tooLarge', { scale, width: header.width, height: header.height, bytes, limit: this.limits.upload });
      if (fitting === null) return answer(why + t('telegram.evenTwo'));
      const buttons = new InlineKeyboard();
      for (const s of ([4, 3, 2] as const).filter((s) => s <= fitting)) buttons.text(t('telegram.scaleButton', { scale: s }), `go:${s}:${packOptions(asked)}`);
      return answer(why + t('telegram.largestFits', { scale: fitting }), buttons);
    }
    await answer(prefix + t('telegram.received', { name: source.name }));
    const replyTo: TelegramReply = { adapter: 'telegram', chat, message: message.message_id, status: status!, ...(albumIndex ? { album: albumIndex } : {}) };
    try {
      await this.queue!.submit({ input, name: source.name, owner, replyTo, locale, options: asked.options, report: asked.report, earlyPreview: true });
    } catch (error) {
      if (!(error instanceof EnhanceError)) this.log.error({ chat, err: safeReason(error, this.token) }, 'queueing an image failed');
      await this.editStatus(chat, status!, prefix + t('telegram.notTaken', { reason: reasonTextOf(error) }));
    }
  }

  /**
   * A newly arrived album image's place in it (1, 2, … in arrival order: one chat's updates are handled in order)
   * and the album's caption so far; undefined for an image on its own.
   */
  private albumPlace(message: Message, caption: CaptionOptions): { index: number; caption?: CaptionOptions } | undefined {
    const group = message.media_group_id;
    if (!group) return undefined;
    const now = Date.now();
    for (const [id, album] of this.albums) if (now - album.at > ALBUM_MEMORY_MS) this.albums.delete(id);
    const album = this.albums.get(group) ?? { count: 0, at: now };
    album.count += 1;
    if (message.caption) album.caption = caption;
    this.albums.set(group, album);
    return { index: album.count, caption: album.caption };
  }

  private async status(ctx: Context): Promise<void> {
    const jobs = await this.queue!.getJobs(`telegram:${ctx.from?.id}`);
    const locale = localeOf(ctx.from);
    const t = translator(locale);
    if (jobs.length === 0) {
      await ctx.reply(t('telegram.noJobs'));
      return;
    }
    const lines = jobs.map((job) => {
      const progress = this.progress.get(job.id);
      const state = job.state === 'active' ? (progress ? progressText(locale, progress) : t('telegram.starting')) : queuedText(locale, job.position, job.etaMs);
      return t('telegram.statusLine', { name: job.request.name, state });
    });
    await ctx.reply(lines.join('\n'));
  }

  private async cancelAll(ctx: Context): Promise<void> {
    const owner = `telegram:${ctx.from?.id}`;
    const jobs = await this.queue!.getJobs(owner);
    let cancelled = 0;
    for (const job of jobs) {
      try {
        await this.queue!.cancel(job.id, owner);
        cancelled += 1;
      } catch {
        // It ended meanwhile.
      }
    }
    const t = translator(localeOf(ctx.from));
    await ctx.reply(cancelled === 0 ? t('telegram.noJobs') : t('telegram.cancelledJobs', { count: cancelled }));
  }

  private async cancelOne(ctx: Context, id: string): Promise<void> {
    const locale = localeOf(ctx.from);
    const t = translator(locale);
    if (!JOB_ID.test(id) || !(await this.queue!.getJob(id))) {
      await ctx.answerCallbackQuery({ text: t('telegram.alreadyEnded') });
      return;
    }
    try {
      await this.queue!.cancel(id, `telegram:${ctx.from?.id}`);
      await ctx.answerCallbackQuery({ text: t('telegram.cancelling') });
    } catch (error) {
      await ctx.answerCallbackQuery({ text: say(locale, reasonTextOf(error)) });
    }
  }

  // ---- Queue events ----

  private listen(queue: EnhanceQueue): void {
    const events = queue.events(this.name);
    const reply = (job: Job) => job.request.replyTo as unknown as TelegramReply;
    events.on('queued', (job, info) => {
      const r = reply(job);
      const locale = localeOfJob(job);
      this.editor.now({ chat: r.chat, message: r.status, text: queuedText(locale, info.position, info.etaMs, label(locale, r.album)), buttons: cancelButton(locale, job.id) });
    });
    events.on('started', (job) => {
      const r = reply(job);
      const locale = localeOfJob(job);
      this.editor.update({ chat: r.chat, message: r.status, text: label(locale, r.album) + translator(locale)('telegram.starting'), buttons: cancelButton(locale, job.id) });
    });
    events.on('progress', (job, progress) => {
      const r = reply(job);
      const locale = localeOfJob(job);
      this.progress.set(job.id, progress);
      this.editor.update({ chat: r.chat, message: r.status, text: progressText(locale, progress, label(locale, r.album)), buttons: cancelButton(locale, job.id) });
    });
    // Told once, in the status message: the job waits for disk space and goes on by itself.
    events.on('held', (job, info) => {
      const r = reply(job);
      const locale = localeOfJob(job);
      const text = label(locale, r.album) + translator(locale)('telegram.waiting', { reason: info.text });
      this.editor.now({ chat: r.chat, message: r.status, text, buttons: cancelButton(locale, job.id) });
    });
    events.on('preview', (job) => {
      const sending = this.sendEarly(job).catch((error: unknown) =>
        this.log.warn({ job: job.id, err: safeReason(error, this.token) }, 'sending the early preview failed'),
      );
      this.previews.set(job.id, sending);
    });
    // Closed for good: deliver() is not asked again, so its note of what was sent can go.
    const forget = (job: Job) => {
      this.progress.delete(job.id);
      this.previews.delete(job.id);
      void this.notes.forget(job.id);
    };
    events.on('delivered', forget);
    events.on('undelivered', (job, info) => {
      if (info.retryInMs === null) forget(job);
    });
  }

  /** Jobs waiting since before a restart: their status messages say so, and the notes of delivered jobs go. */
  private async resume(queue: EnhanceQueue): Promise<void> {
    await this.notes.prune(async (id) => (await queue.getJob(id)) !== undefined);
    for (const job of await queue.getJobs()) {
      const r = job.request.replyTo as unknown as TelegramReply | undefined;
      if (r?.adapter !== this.name || job.state !== 'waiting') continue;
      // At once, like the first word of a new job: a throttled update was replaced by the job's `Starting…` when
      // the worker took it within the chat's edit interval, and the person never learned of the restart.
      const locale = localeOfJob(job);
      const prefix = label(locale, r.album) + translator(locale)('telegram.restarted');
      this.editor.now({ chat: r.chat, message: r.status, text: queuedText(locale, job.position, job.etaMs, prefix), buttons: cancelButton(locale, job.id) });
    }
  }

  private async sendEarly(job: Job): Promise<void> {
    const r = job.request.replyTo as unknown as TelegramReply;
    const locale = localeOfJob(job);
    await this.notes.once(job.id, 'early', async () => {
      const png = await this.queue!.readOutput(job.id, 'early');
      await this.bot.api.sendPhoto(r.chat, new InputFile(png, 'preview.png'), {
        caption: label(locale, r.album) + translator(locale)('telegram.earlyPreview'),
        reply_parameters: replyParams(r.message),
      });
    });
  }

  // ---- Delivery ----

  async deliver(job: Job, outcome: Outcome): Promise<void> {
    // The early preview comes first, also when the job was quick.
    await this.previews.get(job.id);
    await deliverAnswer({ api: this.bot.api, queue: this.queue!, notes: this.notes, editor: this.editor, uploadLimit: this.limits.upload, links: this.options.links }, job, outcome, this.token);
  }

  /** Edits a status message; "not modified" and "not found" (deleted by the person) are not failures. */
  private async editStatus(chat: number, message: number, text: string, buttons?: InlineKeyboardMarkup): Promise<void> {
    try {
      await this.bot.api.editMessageText(chat, message, text, buttons ? { reply_markup: buttons } : {});
    } catch (error) {
      if (error instanceof GrammyError && error.error_code === 400 && /not modified|message to edit not found/i.test(error.description)) return;
      throw error;
    }
  }
}

/** The language a job's person reads, stored with it when it was sent. */
const localeOfJob = (job: Job): Locale => job.request.locale ?? DEFAULT_LOCALE;

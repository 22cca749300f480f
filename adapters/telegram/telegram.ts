/**
 * The Telegram front door: a grammY bot on long polling. A photo or image file (or `/enhance` replying to one)
 * becomes a job; its status message is a reply to the image, edited as the job moves (throttled per chat); the
 * early preview follows as a photo, then the enhanced PNG as a document (never a compressed photo), the
 * before/after as a photo, and the PDF when asked.
 *
 * This file is the bot's life: the client and its API middleware, the connection, polling, and the composers in
 * order: the sender's language (context.ts), the gate (access.ts), the commands (commands.ts), then intake
 * (intake.ts). The queue's events are jobs.ts and the answer is answer.ts. Updates of different chats are handled
 * at once, each chat's in order (grammY runner + sequentialize); 429s and server errors are retried by
 * auto-retry. Everything a job needs to be answered (chat, image message, status message) is in its `replyTo`,
 * stored with it, so a restart loses nothing; what of an answer was sent is noted (adapters/kit/sent-notes.ts),
 * so a delivery tried again never sends a file twice.
 */
import { autoRetry } from '@grammyjs/auto-retry';
import { run, sequentialize, type RunnerHandle } from '@grammyjs/runner';
import { Bot, GrammyError, type Api } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import type { Door, Logger, Outcome } from '../../src/index.js';
import { DoorConnection } from '../kit/connection.js';
import { SentNotes } from '../kit/sent-notes.js';
import { gate } from './access.js';
import { deliverAnswer } from './answer.js';
import { commands, registerCommands } from './commands.js';
import { serverLimits } from './config.js';
import { withLocale, type TelegramContext, type TelegramOptions, type TelegramParts } from './context.js';
import { intake } from './intake.js';
import { listenToJobs, resumeJobs, type TelegramJob } from './jobs.js';
import type { TelegramReply } from './reply.js';
import { safeReason } from './secret.js';
import { StatusEditor } from './status-editor.js';

export type { TelegramReply } from './reply.js';
export type { TelegramOptions } from './context.js';

/** Pauses before polling again after the runner stopped on an error it does not retry (401, 409). */
const POLL_PAUSE_MS = 5_000;
const MAX_POLL_PAUSE_MS = 5 * 60_000;

export class TelegramDoor implements Door<TelegramReply> {
  readonly name = 'telegram';
  private readonly bot: Bot<TelegramContext>;
  private readonly log: Logger;
  private readonly parts: TelegramParts;
  private runner?: RunnerHandle;
  private repoll?: NodeJS.Timeout;
  private stopping = false;
  /** Why the last getUpdates failed, until one succeeds. */
  private pollFailing?: string;
  private readonly connection: DoorConnection;

  constructor(private readonly options: TelegramOptions) {
    const { config } = options;
    const token = config.token;
    const log = (this.log = options.logger.child({ adapter: 'telegram' }));
    const server = serverLimits(config);
    this.bot = new Bot<TelegramContext>(token, { client: { apiRoot: config.apiRoot } });
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
        if (!this.stopping) this.polled(safeReason(error, token));
        throw error;
      }
    });
    this.bot.catch((error) => {
      log.error({ update: error.ctx.update.update_id, err: safeReason(error.error, token) }, 'handling a Telegram update failed');
    });
    const api = this.bot.api;
    const editStatus = async (chat: number, message: number, text: string, buttons?: InlineKeyboardMarkup) => {
      try {
        await api.editMessageText(chat, message, text, buttons ? { reply_markup: buttons } : {});
      } catch (error) {
        if (error instanceof GrammyError && error.error_code === 400 && /not modified|message to edit not found/i.test(error.description)) return;
        throw error;
      }
    };
    this.parts = {
      api,
      queue: options.queue,
      options,
      limits: { download: Math.min(server.download, options.maxFileBytes), upload: server.upload },
      log,
      token,
      editor: new StatusEditor(
        (edit) => editStatus(edit.chat, edit.message, edit.text, edit.buttons),
        config.progressEditMs,
        (error) => log.warn({ err: safeReason(error, token) }, 'editing a status message failed'),
      ),
      notes: new SentNotes(options.stateDir),
      progress: new Map(),
      previews: new Map(),
      editStatus,
    };
    this.bot.use(sequentialize((ctx: TelegramContext) => ctx.chat?.id.toString()));
    this.bot.use(withLocale, gate(this.parts), commands(this.parts), intake(this.parts));
    this.connection = new DoorConnection({
      platform: 'Telegram',
      // One getMe per try: grammY's own bot.init() retries a network error without end, which held start-up.
      connect: async (signal) => {
        // grammY's types take the signal of the abort-controller package; Node's own is the same at run time.
        if (!this.bot.isInited()) this.bot.botInfo = await api.getMe(signal as Parameters<Api['getMe']>[0]);
      },
      refused: (error) =>
        error instanceof GrammyError && (error.error_code === 401 || error.error_code === 404)
          ? `telegram: the Bot API server refused the bot (${safeReason(error, token)}); check TELEGRAM_BOT_TOKEN and TELEGRAM_API_ROOT`
          : undefined,
      reason: (error) => safeReason(error, token),
      logger: log,
    });
  }

  /** The credential check before any door starts: getMe, once, within seconds (see `Door.check`). */
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

  async start(): Promise<void> {
    await this.parts.notes.open();
    // Deliveries and status edits of recovered jobs need only the token; they are retried while Telegram is away.
    listenToJobs(this.parts);
    await resumeJobs(this.parts);
    this.connection.start(() => {
      void registerCommands(this.parts);
      this.poll();
      this.log.info({ bot: this.bot.botInfo.username, limits: this.parts.limits }, 'Telegram bot polling');
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.connection.stop();
    clearTimeout(this.repoll);
    if (this.runner?.isRunning()) await this.runner.stop();
    this.parts.editor.stop();
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
      this.log.error({ err: safeReason(error, this.parts.token), retryInS: pauseMs / 1000 }, 'Telegram polling stopped; starting it again later');
      this.repoll = setTimeout(() => this.poll(Math.min(pauseMs * 2, MAX_POLL_PAUSE_MS)), pauseMs);
    });
  }

  async deliver(job: TelegramJob, outcome: Outcome): Promise<void> {
    // The early preview comes first, also when the job was quick.
    await this.parts.previews.get(job.id);
    const { api, queue, notes, editor, limits, token } = this.parts;
    await deliverAnswer({ api, queue, notes, editor, uploadLimit: limits.upload, links: this.options.links }, job, outcome, token);
  }
}

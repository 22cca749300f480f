/**
 * The Discord front door: `/enhance`, the "Enhance" message command, images sent in a DM or with a mention,
 * `/queue`, `/cancel` and a Cancel button. It needs no privileged intent: Discord sends a message's content and
 * attachments to a bot without the Message Content intent in DMs and when the bot is mentioned, which are
 * exactly the messages it answers.
 *
 * Every job keeps where its answer goes in `replyTo` (see `DiscordReply`): after a restart, progress and the
 * answer still reach the person, through the interaction while its token lives and by channel message after.
 *
 * Each person is answered in their Discord language: an interaction's `locale` (`zh-CN` → the `zh-Hans`
 * catalogue, one without a catalogue → English); a message, which carries none, in the language of that person's
 * last interaction (`KnownLocales`), else the server's preferred one. The job keeps it as `request.locale`.
 */
import { Client, DiscordAPIError, GatewayIntentBits, Partials, REST, Routes, type Attachment, type ChatInputCommandInteraction, type Interaction, type Message, type MessageContextMenuCommandInteraction, type ButtonInteraction, type RepliableInteraction } from 'discord.js';
import { DEFAULT_LOCALE, EnhanceError, fitToLimit, PermanentDeliveryError, plainText, readManifest, reasonTextOf, resolveLocale, say, translator, type EnhanceOptions, type EnhanceQueue, type EnhanceResult, type Job, type Locale, type Logger, type Outcome } from '../../src/index.js';
import type { Door } from '../../src/index.js';
import { DoorConnection } from '../kit/connection.js';
import type { ResultLinks } from '../kit/result-links.js';
import { SentNotes } from '../kit/sent-notes.js';
import { Answers, type DiscordReply, type Outgoing } from './answers.js';
import { cdnOrigins, Intake, type ImageRequest } from './intake.js';
import { ENHANCE_MESSAGE, registerCommands } from './commands.js';
import type { DiscordConfig } from './config.js';
import { uploadLimit } from './limits.js';
import { KnownLocales } from './locales.js';
import { Secrets } from './secrets.js';
import { StatusEdits } from './status.js';
import { bold, percentBar, relativeTime, safeName, uploadName } from './text.js';

export interface DiscordDoorOptions {
  /** The queue this door submits to and hears from. */
  queue: EnhanceQueue;
  config: DiscordConfig;
  /** Attachments larger than this are refused without being downloaded. */
  maxFileBytes: number;
  /** Images with more pixels are refused from their header. */
  maxPixels: number;
  /** Where the adapter notes what it has sent of each answer, e.g. `<data>/discord`. */
  stateDir: string;
  /** The prepared models and their manifest (`config.models`): the choices of `/enhance`. */
  modelsDir: string;
  logger: Logger;
  /**
   * Links to the web door's job pages (with `web.publicUrl`): every answer carries one, and a PNG over the upload
   * limit is answered with the comparison and the link instead of an offer of smaller scales or a refusal.
   */
  links?: ResultLinks;
}

/** Says catalogue messages in one language: `t('discord.done', { name, made })`. */
type Say = ReturnType<typeof translator>;

const cancelButton = (job: string, t: Say) => ({ type: 1, components: [{ type: 2, style: 4, label: t('discord.cancel'), custom_id: `cancel:${job}` }] });
/** A link button (style 5) to the job's page. */
const pageButton = (url: string, t: Say) => ({ type: 1, components: [{ type: 2, style: 5, label: t('discord.openPage'), url }] });
/** The words for a job, in the language stored with it (so also after a restart). */
const wordsFor = (job: Job): Say => translator(job.request.locale ?? DEFAULT_LOCALE);

/**
 * The Discord door; `adapters/serve.ts` makes one when `DISCORD_TOKEN` is set.
 *
 * @example
 * await startService({ config, logger, doors: (queue) => [new DiscordDoor({ queue, config: config.sections.discord, ... })] });
 * // start(): logs in, registers the commands
 */
export class DiscordDoor implements Door<DiscordReply> {
  readonly name = 'discord';
  private readonly config: DiscordConfig;
  private readonly log: Logger;
  private readonly secrets: Secrets;
  private readonly client: Client;
  /** Answers go through a REST client of their own: it outlives the gateway client, which forgets the token when destroyed. */
  private readonly rest: REST;
  private readonly answers: Answers;
  private readonly intake: Intake;
  private readonly edits: StatusEdits;
  private readonly lifetimes = new Map<string, NodeJS.Timeout>();
  private readonly progress = new Map<string, { done: number; total: number }>();
  /** Deliveries already made, per job and step, so a retried `deliver` does not send a file twice. */
  /** What was sent of each answer, on disk: a delivery tried again, even after a restart, sends each part once. */
  private readonly notes: SentNotes;
  /** Each person's language from their last interaction, for the images they send in messages. */
  private readonly locales: KnownLocales;
  private application = '';
  private models: string[] = [];
  private readonly connection: DoorConnection;
  private readonly queue: EnhanceQueue;
  private stopped = false;
  private readonly links?: ResultLinks;
  private readonly modelsDir: string;

  constructor(options: DiscordDoorOptions) {
    this.queue = options.queue;
    this.modelsDir = options.modelsDir;
    this.links = options.links;
    this.config = options.config;
    this.log = options.logger.child({ adapter: 'discord' });
    this.secrets = new Secrets(this.config.token);
    this.notes = new SentNotes(options.stateDir);
    this.locales = new KnownLocales(options.stateDir, this.log);
    const rest = {
      ...(this.config.apiRoot ? { api: this.config.apiRoot.replace(/\/+$/, '') } : {}),
      ...(this.config.cdnRoot ? { cdn: this.config.cdnRoot.replace(/\/+$/, '') } : {}),
    };
    this.client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.DirectMessages],
      // DM channels are not cached before their first message; without this their messages are dropped.
      partials: [Partials.Channel],
      rest,
    });
    this.rest = new REST(rest).setToken(this.config.token);
    this.answers = new Answers(this.rest, this.secrets, this.log);
    this.intake = new Intake({ maxFileBytes: options.maxFileBytes, maxPixels: options.maxPixels, cdnOrigins: cdnOrigins(this.config), secrets: this.secrets, logger: this.log, queue: () => this.queue, linked: options.links !== undefined });
    this.edits = new StatusEdits(
      this.config.progressEveryMs,
      async (id, out) => {
        const job = await this.queue.getJob(id);
        if (job) await this.answers.edit(id, job.request.replyTo as DiscordReply, out);
      },
      (job, error) => this.log.warn({ job, why: this.secrets.reason(error) }, 'could not update the status message'),
    );
    this.connection = new DoorConnection({
      platform: 'Discord',
      check: async (signal) => void (await this.rest.get(Routes.gatewayBot(), { signal })),
      connect: () => this.connect(),
      // discord.js bounds its own calls (15 s a REST request, tried again on a network error), and a login cut
      // short cannot be taken back: each background try runs until discord.js gives up.
      tryMs: 5 * 60_000,
      refused: (error) => (refusedToken(error) ? `Discord refused the bot token: check DISCORD_TOKEN (${this.secrets.reason(error)})` : undefined),
      reason: (error) => this.secrets.reason(error),
      logger: this.log,
    });
  }

  /**
   * The credential check before any door starts: one REST call (`/gateway/bot`) with the token, within seconds
   * (see `Adapter.check`). A 401 stops start-up; no answer, and the door connects in the background.
   */
  check(signal?: AbortSignal): Promise<void> {
    return this.connection.check(signal);
  }

  down(): string | null {
    return this.connection.problem;
  }

  async start(): Promise<void> {
    const { queue } = this;
    this.models = (await readManifest(this.modelsDir)).models.map((m) => m.name);
    await this.notes.open();
    await this.locales.open();
    // Notes of jobs closed while the service was down.
    await this.notes.prune(async (id) => (await queue.getJob(id)) !== undefined);
    this.client.on('error', (error) => this.log.error({ why: this.secrets.reason(error) }, 'discord client error'));
    this.client.on('interactionCreate', (interaction) => void this.onInteraction(interaction).catch((error) => this.oops('interaction', error)));
    this.client.on('messageCreate', (message) => void this.onMessage(message).catch((error) => this.oops('message', error)));
    // Answers need only REST with the token, not the gateway: recovered jobs are answered even while Discord's
    // gateway cannot be reached.
    this.listen(queue);
    for (const job of await queue.getJobs()) if (job.request.replyTo?.adapter === this.name) this.watchLifetime(job);
    // Logs in now, or in the background once Discord can be reached; 'discord bot ready' says when.
    this.connection.start(() => undefined);
  }

  /**
   * Logs in, waits for the gateway's ready and registers the commands (a bulk overwrite: idempotent). A gateway
   * that closes for good (4004 token refused, 4014 intents not allowed) rejects with its close code.
   */
  private async connect(): Promise<void> {
    // After a failed registration the gateway is already up; logging in twice would not be.
    if (!this.client.isReady()) {
      let closed: (event: { code: number }) => void = () => undefined;
      const ready = new Promise<void>((resolve, reject) => {
        this.client.once('clientReady', () => resolve());
        closed = (event) => reject(new GatewayClosed(event.code));
        this.client.once('shardDisconnect', closed);
      });
      try {
        await this.client.login(this.config.token);
        await ready;
      } finally {
        this.client.off('shardDisconnect', closed);
      }
    }
    this.application = this.config.applicationId || this.client.application?.id || this.client.user!.id;
    await registerCommands(this.rest, this.application, this.config.guildId, this.models, this.log);
    this.log.info({ user: this.client.user!.id, application: this.application, commands: this.config.guildId ? `guild ${this.config.guildId}` : 'global' }, 'discord bot ready');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.connection.stop();
    this.edits.clear();
    for (const timer of this.lifetimes.values()) clearTimeout(timer);
    await this.client.destroy();
    await this.locales.flushed();
  }

  private oops(where: string, error: unknown): void {
    this.log.error({ where, why: this.secrets.reason(error) }, 'discord handler failed');
  }

  /** Status messages from the queue's events about this adapter's jobs. */
  private listen(queue: EnhanceQueue): void {
    const events = queue.events(this.name);
    const name = (job: Job) => bold(job.request.name);
    events.on('queued', (job, { position, etaMs }) => {
      this.watchLifetime(job);
      const t = wordsFor(job);
      const state = position <= 1 ? { key: 'discord.nextInLine' } : { key: 'discord.inQueue', values: { position } };
      this.edits.show(job.id, { content: t('discord.stateEta', { name: name(job), state, eta: relativeTime(etaMs) }), components: [cancelButton(job.id, t)] }, true);
    });
    events.on('started', (job) => {
      const { model, scale } = job.request.options;
      const t = wordsFor(job);
      this.edits.show(job.id, { content: t('discord.enhancing', { name: name(job), model, scale }), components: [cancelButton(job.id, t)] }, true);
    });
    events.on('progress', (job, p) => {
      const t = wordsFor(job);
      // The model's first preparation: said at once, since it is the only news for a minute or more.
      if (p.preparing) return this.edits.show(job.id, { content: t('discord.preparing', { name: name(job), line: p.preparing }), components: [cancelButton(job.id, t)] }, true);
      this.progress.set(job.id, { done: p.tilesDone, total: p.tilesTotal });
      const state = percentBar(p.tilesDone, p.tilesTotal);
      this.edits.show(job.id, { content: t('discord.stateEta', { name: name(job), state, eta: relativeTime(p.etaMs) }), components: [cancelButton(job.id, t)] });
    });
    // Told once, in the status message: the job waits for disk space and goes on by itself.
    events.on('held', (job, info) => {
      const t = wordsFor(job);
      this.edits.show(job.id, { content: t('discord.line', { name: name(job), text: info.text }), components: [cancelButton(job.id, t)] }, true);
    });
    events.on('preview', (job) => {
      void this.sendPreview(job).catch((error) => this.log.warn({ job: job.id, why: this.secrets.reason(error) }, 'could not send the early preview'));
    });
    // Closed for good: deliver() is not asked again, so its note of what was sent can go.
    events.on('delivered', (job) => void this.notes.forget(job.id));
    events.on('undelivered', (job, info) => info.retryInMs === null && void this.notes.forget(job.id));
  }

  private async sendPreview(job: Job): Promise<void> {
    const png = await this.queue.readOutput(job.id, 'early');
    const reply = job.request.replyTo as DiscordReply;
    if (png.length > reply.limitBytes) return;
    const t = wordsFor(job);
    await this.answers.send(reply, {
      content: t('discord.preview', { name: bold(job.request.name) }),
      files: [{ name: uploadName(job.request.name, 'png', '.early'), data: png }],
    });
  }

  /**
   * Before the interaction's token stops being used, the status message moves to an ordinary channel message,
   * so a long job (a large image on a CPU) still shows progress and gets its answer.
   */
  private watchLifetime(job: Job): void {
    const reply = job.request.replyTo as DiscordReply;
    if (!reply.interaction || this.lifetimes.has(job.id)) return;
    const leave = () => void this.leaveInteraction(job.id, reply).catch((error) => this.oops('moving off the interaction', error));
    const timer = setTimeout(leave, Math.max(0, reply.interaction.expiresAt - Date.now()));
    this.lifetimes.set(job.id, timer);
  }

  private async leaveInteraction(id: string, reply: DiscordReply): Promise<void> {
    const job = await this.queue.getJob(id);
    if (!job || job.state === 'completed' || job.state === 'failed' || job.state === 'cancelled' || this.stopped) return;
    const token = this.secrets.open(reply.interaction!.sealed);
    const progress = this.progress.get(id);
    const t = wordsFor(job);
    const name = bold(job.request.name);
    try {
      if (token) {
        await this.rest.patch(Routes.webhookMessage(reply.interaction!.application, token, '@original'), {
          body: { content: t('discord.moved', { name }), components: [] },
          auth: false,
        });
      }
    } catch (error) {
      this.log.info({ job: id, why: this.secrets.reason(error) }, 'could not note the move on the interaction reply');
    }
    const state = progress ? percentBar(progress.done, progress.total) : { key: 'discord.waiting' };
    const content = job.etaMs > 0 ? t('discord.stateEta', { name, state, eta: relativeTime(job.etaMs) }) : t('discord.line', { name, text: state });
    this.edits.show(id, { content, components: [cancelButton(id, t)] }, true);
    this.log.info({ job: id }, 'interaction token lifetime over: answering by channel message');
  }

  private allowed(guild: string | null, channel: string | null, user: string): boolean {
    const { allowedGuilds, allowedChannels, allowedUsers } = this.config;
    if (allowedUsers.length > 0 && !allowedUsers.includes(user)) return false;
    if (allowedGuilds.length > 0 && (!guild || !allowedGuilds.includes(guild))) return false;
    if (allowedChannels.length > 0 && (!channel || !allowedChannels.includes(channel))) return false;
    return true;
  }

  private async onInteraction(interaction: Interaction): Promise<void> {
    if (!interaction.isRepliable()) return;
    // The person's own language setting in Discord (`zh-CN`, `en-US`), sent with every interaction.
    const locale = resolveLocale([interaction.locale]);
    const t = translator(locale);
    if (!this.allowed(interaction.guildId, interaction.channelId, interaction.user.id)) {
      await interaction.reply({ content: t('discord.notHere'), flags: 64 });
      return;
    }
    this.locales.remember(interaction.user.id, locale);
    if (interaction.isChatInputCommand()) {
      if (interaction.commandName === 'enhance') return this.onEnhance(interaction, locale);
      if (interaction.commandName === 'queue') return this.onQueue(interaction, t);
      if (interaction.commandName === 'cancel') return this.onCancelAll(interaction, t);
    } else if (interaction.isMessageContextMenuCommand() && interaction.commandName === ENHANCE_MESSAGE) {
      return this.onEnhanceMessage(interaction, locale);
    } else if (interaction.isButton()) {
      return this.onButton(interaction, locale);
    }
  }

  /** Where an interaction's answers go, with its token sealed. */
  private interactionReply(interaction: RepliableInteraction, original: string | null): DiscordReply {
    return {
      adapter: 'discord',
      user: interaction.user.id,
      channel: interaction.channelId!,
      ...(interaction.guildId ? { guild: interaction.guildId } : {}),
      ...(original ? { original } : {}),
      interaction: { application: interaction.applicationId, sealed: this.secrets.seal(interaction.token), expiresAt: interaction.createdTimestamp + this.config.interactionLifetimeMs },
      limitBytes: uploadLimit({ interaction: interaction.attachmentSizeLimit, premiumTier: interaction.guild?.premiumTier }, this.config.uploadLimitBytes),
    };
  }

  private async onEnhance(interaction: ChatInputCommandInteraction, locale: Locale): Promise<void> {
    const deferred = await interaction.deferReply({ withResponse: true });
    const reply = this.interactionReply(interaction, deferred.interaction.responseMessageId);
    const attachment = interaction.options.getAttachment('image', true);
    const model = interaction.options.getString('model');
    const scale = interaction.options.getInteger('scale');
    const precision = interaction.options.getString('precision');
    const options: Partial<EnhanceOptions> = {
      ...(model ? { model } : {}),
      ...(scale ? { scale: scale as 2 | 3 | 4 } : {}),
      ...(interaction.options.getBoolean('raw') ? { tune: 'raw' as const } : {}),
      ...(precision ? { precision: precision as EnhanceOptions['precision'] } : {}),
    };
    const report = interaction.options.getBoolean('report') ?? false;
    await this.intake.accept({ attachment: attachmentOf(attachment), options, report, reply, locale, say: (out) => this.answers.edit(`pre:${interaction.id}`, reply, out) });
    this.answers.forget(`pre:${interaction.id}`);
  }

  private async onEnhanceMessage(interaction: MessageContextMenuCommandInteraction, locale: Locale): Promise<void> {
    const deferred = await interaction.deferReply({ withResponse: true });
    const reply = this.interactionReply(interaction, deferred.interaction.responseMessageId);
    const say = (out: Outgoing) => this.answers.edit(`pre:${interaction.id}`, reply, out);
    const image = firstImage(interaction.targetMessage.attachments.values());
    if (!image) return say({ content: translator(locale)('discord.noImageInMessage') });
    await this.intake.accept({ attachment: attachmentOf(image), options: {}, report: false, reply, locale, say });
    this.answers.forget(`pre:${interaction.id}`);
  }

  private async onMessage(message: Message): Promise<void> {
    if (message.author.bot || this.stopped) return;
    const dm = message.guildId === null;
    if (!dm && !message.mentions.users.has(this.client.user!.id)) return;
    const base = { adapter: 'discord' as const, user: message.author.id, channel: message.channelId, ...(message.guildId ? { guild: message.guildId } : {}), source: message.id };
    const reply: DiscordReply = { ...base, limitBytes: uploadLimit({ premiumTier: message.guild?.premiumTier }, this.config.uploadLimitBytes) };
    const key = `msg:${message.id}`;
    // A message carries no locale: the person's last interaction's, else the server's language.
    const locale = this.locales.of(message.author.id) ?? resolveLocale([message.guild?.preferredLocale]);
    const t = translator(locale);
    if (!this.allowed(message.guildId, message.channelId, message.author.id)) {
      await this.answers.send(reply, { content: t('discord.notHere') });
      return;
    }
    const image = firstImage(message.attachments.values());
    if (!image) {
      await this.answers.send(reply, { content: t('discord.sendImage') });
      return;
    }
    // The status message first: every later word about this image edits it.
    await this.answers.edit(key, reply, { content: t('discord.downloading', { name: bold(image.name) }) });
    const at = this.answers.where(key);
    const withMessage: DiscordReply = at ? { ...reply, channel: at.channel, message: at.message } : reply;
    if (at && at.channel !== reply.channel) delete withMessage.guild;
    await this.intake.accept({ attachment: attachmentOf(image), options: {}, report: false, reply: withMessage, locale, say: (out) => this.answers.edit(key, withMessage, out) });
    this.answers.forget(key);
  }

  private async onQueue(interaction: ChatInputCommandInteraction, t: Say): Promise<void> {
    const jobs = await this.queue.getJobs(`discord:${interaction.user.id}`);
    const lines = jobs.map((job) => {
      const p = this.progress.get(job.id);
      const state = job.state === 'active' ? (p ? percentBar(p.done, p.total) : { key: 'discord.starting' }) : { key: 'discord.position', values: { position: job.position } };
      return t('discord.stateEta', { name: bold(job.request.name), state, eta: relativeTime(job.etaMs) });
    });
    await interaction.reply({ content: lines.length > 0 ? lines.join('\n') : t('discord.noJobs'), flags: 64, allowedMentions: { parse: [] } });
  }

  private async onCancelAll(interaction: ChatInputCommandInteraction, t: Say): Promise<void> {
    const owner = `discord:${interaction.user.id}`;
    const jobs = await this.queue.getJobs(owner);
    const cancelled: string[] = [];
    for (const job of jobs) {
      try {
        await this.queue.cancel(job.id, owner);
        cancelled.push(safeName(job.request.name));
      } catch (error) {
        if (!(error instanceof EnhanceError)) throw error;
      }
    }
    const content = cancelled.length > 0 ? t('discord.cancelledList', { names: cancelled.join(t('discord.listSeparator')) }) : t('discord.noJobs');
    await interaction.reply({ content, flags: 64, allowedMentions: { parse: [] } });
  }

  private async onButton(interaction: ButtonInteraction, locale: Locale): Promise<void> {
    const [kind, id, extra] = interaction.customId.split(':');
    const t = translator(locale);
    if (kind === 'cancel') {
      await interaction.deferUpdate();
      try {
        await this.queue.cancel(id, `discord:${interaction.user.id}`);
      } catch (error) {
        await interaction.followUp({ content: say(locale, reasonTextOf(error)), flags: 64 });
      }
    } else if (kind === 'scale') {
      const offer = this.intake.takeOffer(id, interaction.user.id);
      if (!offer) {
        await interaction.reply({ content: t('discord.choiceGone'), flags: 64 });
        return;
      }
      await interaction.update({ content: t('discord.scaleQueued', { name: bold(offer.intake.attachment.name), scale: Number(extra) }), components: [] });
      // Answered from now on in the language of the press: the person's setting as it is now.
      await this.intake.accept({ ...offer.intake, locale, options: { ...offer.intake.options, scale: Number(extra) as 2 | 3 | 4 } }, offer.input);
    }
  }

  /**
   * The PNG (or the most faithful file that fits) in the status message. When Discord refuses the file as too
   * large (40005: its limit here is lower than the one it gave or the boost tier said), the file is fitted
   * into 3/4 of the refused size, up to three times, and the answer says so. With a link to the job's page
   * (`url`) the message carries its button, and a PNG over the limit is not sent: the comparison goes in its place.
   */
  private async sendResult(job: Job, result: EnhanceResult, reply: DiscordReply, step: (name: string, run: () => Promise<void>) => Promise<void>, url?: string): Promise<void> {
    const t = wordsFor(job);
    const name = bold(job.request.name);
    const { width, height } = result.output;
    const made = t('discord.made', { width, height, model: result.options.model, scale: result.options.scale, seconds: (result.ms.total / 1000).toFixed(1) });
    const components = url ? [pageButton(url, t)] : [];
    if (url && pngOverLimit(result, reply)) {
      const over = t('discord.overPage', { scale: result.options.scale, bytes: result.outputs!.png!, limit: reply.limitBytes });
      const compare = result.outputs?.compare !== undefined ? await this.queue.readOutput(job.id, 'compare') : undefined;
      const files = compare && compare.length <= reply.limitBytes ? [{ name: uploadName(job.request.name, 'jpg', '.compare'), data: compare }] : [];
      await step('result', () => this.answers.edit(job.id, reply, { content: `${t('discord.done', { name, made })}\n${over}`, components, files }));
      return;
    }
    const png = await this.queue.readOutput(job.id, 'png');
    let limit = reply.limitBytes;
    let refused = '';
    for (let attempt = 0; ; attempt++) {
      const fitted = await fitToLimit(png, limit);
      const notes = [fitted?.note && t('reason.plain', { text: fitted.note }), refused].filter(Boolean).join('\n');
      const content = fitted
        ? `${t('discord.done', { name, made })}${notes ? `\n${notes}` : ''}`
        : `${t('discord.doneNoFile', { name, made, limit })}${refused ? `\n${refused}` : ''}`;
      const files = fitted ? [{ name: uploadName(job.request.name, fitted.format), data: fitted.bytes }] : [];
      try {
        await step('result', () => this.answers.edit(job.id, reply, { content, components, files }));
        return;
      } catch (error) {
        if (!fitted || attempt >= 3 || !(error instanceof DiscordAPIError && Number(error.code) === 40005)) throw error;
        refused = t('discord.refusedFile', { bytes: fitted.bytes.length });
        limit = Math.floor(fitted.bytes.length * 0.75);
        this.log.warn({ job: job.id, refusedBytes: fitted.bytes.length, nextLimit: limit }, 'Discord refused the file as too large; fitting it into less');
      }
    }
  }

  async deliver(job: Job, outcome: Outcome): Promise<void> {
    const reply = job.request.replyTo as DiscordReply;
    await this.edits.close(job.id);
    clearTimeout(this.lifetimes.get(job.id));
    const step = (name: string, run: () => Promise<void>) => this.notes.once(job.id, name, run);
    const t = wordsFor(job);
    const name = bold(job.request.name);
    try {
      if (outcome.state === 'completed') {
        const { result } = outcome;
        // Kept for the job's page before anything is sent: the queue forgets the files once this resolves.
        const url = this.links ? await this.links.keep(job, result) : undefined;
        await this.sendResult(job, result, reply, step, url);
        const extras = [];
        if (result.outputs?.compare && !(url && pngOverLimit(result, reply))) extras.push({ name: uploadName(job.request.name, 'jpg', '.compare'), data: await this.queue.readOutput(job.id, 'compare') });
        if (result.outputs?.pdf) extras.push({ name: uploadName(job.request.name, 'pdf', '.report'), data: await this.queue.readOutput(job.id, 'pdf') });
        const fitting = extras.filter((file) => file.data.length <= reply.limitBytes);
        if (fitting.length > 0) {
          const what = fitting.map((f) => t(f.name.endsWith('.pdf') ? 'discord.pdf' : 'discord.compare')).join(t('discord.listSeparator'));
          await step('extras', () => this.answers.send(reply, { content: t('discord.line', { name, text: what }), files: fitting }));
        }
      } else if (outcome.state === 'failed') {
        const reason = outcome.text ?? plainText(outcome.reason);
        await step('result', () => this.answers.edit(job.id, reply, { content: t('discord.failed', { name, reason }), components: [] }));
      } else {
        const reason = outcome.text ?? plainText(outcome.reason);
        await step('result', () => this.answers.edit(job.id, reply, { content: t('discord.cancelled', { name, reason }), components: [] }));
      }
    } catch (error) {
      if (error instanceof PermanentDeliveryError) throw error;
      // The queue logs this; Discord's errors carry the request's address, which holds the interaction token.
      throw new Error(this.secrets.reason(error));
    }
    this.progress.delete(job.id);
    this.lifetimes.delete(job.id);
    this.edits.drop(job.id);
    this.answers.forget(job.id);
  }
}

/** Whether the PNG is over the upload limit where the job answers (from its recorded size, so a retry decides the same). */
function pngOverLimit(result: EnhanceResult, reply: DiscordReply): boolean {
  return (result.outputs?.png ?? 0) > reply.limitBytes;
}

/** The gateway closed a connection for good, before its ready. */
class GatewayClosed extends Error {
  constructor(readonly closeCode: number) {
    super(`the gateway closed the connection with code ${closeCode}`);
  }
}

/** Close codes after which Discord will not let the bot in as configured: 4004 token refused, 4014 intents not allowed. */
const REFUSING_CLOSE_CODES = [4004, 4014];

/** Discord refused the token (401, or a gateway close that says so): retrying cannot help. */
function refusedToken(error: unknown): boolean {
  if (error instanceof GatewayClosed) return REFUSING_CLOSE_CODES.includes(error.closeCode);
  return (error as { code?: unknown }).code === 'TokenInvalid' || (error instanceof DiscordAPIError && error.status === 401);
}

/** The first attachment that says it is an image (or has no type, which the header check settles). */
function firstImage(attachments: Iterable<Attachment>): Attachment | undefined {
  for (const attachment of attachments) if (!attachment.contentType || attachment.contentType.startsWith('image/')) return attachment;
  return undefined;
}

function attachmentOf(attachment: Attachment): ImageRequest['attachment'] {
  return { url: attachment.url, name: attachment.name, size: attachment.size };
}

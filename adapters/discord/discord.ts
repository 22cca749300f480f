/**
 * The Discord front door: `/enhance`, the "Enhance" message command, images sent in a DM or with a mention,
 * `/queue`, `/cancel` and a Cancel button. It needs no privileged intent (events/messages.ts says why).
 *
 * Every job keeps where its answer goes in `replyTo` (see `DiscordReply`): after a restart, progress and the
 * answer still reach the person, through the interaction while its token lives and by channel message after.
 * Each person is answered in their Discord language, which the job keeps as `request.locale`.
 *
 * The parts, in discord.js's own shapes: interactions/ (`interactionCreate`: the router, each command's handler,
 * the buttons), events/ (`messageCreate`, and the queue's events as status edits), lifetime.ts (the interaction
 * token's time), delivery.ts (the answer); gateway.ts logs in, commands.ts registers the commands, answers.ts
 * knows where a message goes. This class builds the parts, wires them to the client and the queue, and keeps the
 * door's port: check, start, down, deliver, stop.
 */
import { REST, Routes, type Client } from 'discord.js';
import { PermanentDeliveryError, readManifest, type Door, type EnhanceQueue, type Logger, type Outcome } from '../../src/index.js';
import { DoorConnection } from '../kit/connection.js';
import { doorJobs } from '../kit/door-events.js';
import type { ResultLinks } from '../kit/result-links.js';
import { SentNotes } from '../kit/sent-notes.js';
import { Answers, type DiscordJob, type DiscordReply } from './answers.js';
import { registerCommands } from './commands.js';
import type { DiscordConfig } from './config.js';
import { oops, type DiscordContext } from './context.js';
import { Delivery } from './delivery.js';
import { listenToJobs } from './events/jobs.js';
import { onMessage } from './events/messages.js';
import { gatewayClient, login, refusedToken, restOptions } from './gateway.js';
import { cdnOrigins, Intake } from './intake.js';
import { routeInteraction } from './interactions/router.js';
import { InteractionLifetimes } from './lifetime.js';
import { KnownLocales } from './locales.js';
import { Secrets } from './secrets.js';
import { StatusEdits } from './status.js';

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
  /** What every part is given. */
  private readonly ctx: DiscordContext;
  private readonly lifetimes: InteractionLifetimes;
  private readonly delivery: Delivery;
  /** What was sent of each answer, on disk: a delivery tried again, even after a restart, sends each part once. */
  private readonly notes: SentNotes;
  private readonly connection: DoorConnection;
  private readonly modelsDir: string;
  private models: string[] = [];
  private stopped = false;

  constructor(options: DiscordDoorOptions) {
    const { queue, config } = options;
    this.config = config;
    this.modelsDir = options.modelsDir;
    this.log = options.logger.child({ adapter: 'discord' });
    this.secrets = new Secrets(config.token);
    this.notes = new SentNotes(options.stateDir);
    this.client = gatewayClient(config);
    this.rest = new REST(restOptions(config)).setToken(config.token);
    const answers = new Answers(this.rest, this.secrets, this.log);
    const edits = new StatusEdits(
      config.progressEveryMs,
      async (job, out) => {
        // A job the queue has forgotten was delivered: its answer is the last word in its status message.
        if (await queue.getJob(job.id)) await answers.edit(job.id, job.request.replyTo, out);
      },
      (job, error) => this.log.warn({ job, why: this.secrets.reason(error) }, 'could not update the status message'),
    );
    this.ctx = {
      config,
      log: this.log,
      queue,
      secrets: this.secrets,
      answers,
      intake: new Intake({ maxFileBytes: options.maxFileBytes, maxPixels: options.maxPixels, cdnOrigins: cdnOrigins(config), secrets: this.secrets, logger: this.log, queue, linked: options.links !== undefined }),
      edits,
      locales: new KnownLocales(options.stateDir, this.log),
      progress: new Map(),
    };
    this.lifetimes = new InteractionLifetimes(this.ctx, this.rest);
    this.delivery = new Delivery({ queue, answers, notes: this.notes, log: this.log, links: options.links });
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
   * (see `Door.check`). A 401 stops start-up; no answer, and the door connects in the background.
   */
  check(signal?: AbortSignal): Promise<void> {
    return this.connection.check(signal);
  }

  down(): string | null {
    return this.connection.problem;
  }

  async start(): Promise<void> {
    const { queue, locales } = this.ctx;
    this.models = (await readManifest(this.modelsDir)).models.map((m) => m.name);
    await this.notes.open();
    await locales.open();
    // Notes of jobs closed while the service was down.
    await this.notes.prune(async (id) => (await queue.getJob(id)) !== undefined);
    this.client.on('error', (error) => this.log.error({ why: this.secrets.reason(error) }, 'discord client error'));
    this.client.on('interactionCreate', (interaction) => void routeInteraction(this.ctx, interaction).catch((error) => oops(this.ctx, 'interaction', error)));
    this.client.on('messageCreate', (message) => {
      if (!this.stopped) void onMessage(this.ctx, message).catch((error) => oops(this.ctx, 'message', error));
    });
    // Answers need only REST with the token, not the gateway: recovered jobs are answered even while Discord's
    // gateway cannot be reached.
    listenToJobs(this.ctx, this.lifetimes, this.notes);
    for (const job of await doorJobs<DiscordReply>(queue, this.name)) this.lifetimes.watch(job);
    // Logs in now, or in the background once Discord can be reached; 'discord bot ready' says when.
    this.connection.start(() => undefined);
  }

  /** Logs in, waits for the gateway's ready and registers the commands (a bulk overwrite: idempotent). */
  private async connect(): Promise<void> {
    await login(this.client, this.config.token);
    const application = this.config.applicationId || this.client.application?.id || this.client.user!.id;
    await registerCommands(this.rest, application, this.config.guildId, this.models, this.log);
    this.log.info({ user: this.client.user!.id, application, commands: this.config.guildId ? `guild ${this.config.guildId}` : 'global' }, 'discord bot ready');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.connection.stop();
    this.ctx.edits.clear();
    this.lifetimes.stop();
    await this.client.destroy();
    await this.ctx.locales.flushed();
  }

  async deliver(job: DiscordJob, outcome: Outcome): Promise<void> {
    const { edits, progress, answers } = this.ctx;
    // The final answer is the last word: no status edit goes after it, and the message stays where it is.
    await edits.close(job.id);
    this.lifetimes.end(job.id);
    try {
      await this.delivery.answer(job, outcome);
    } catch (error) {
      if (error instanceof PermanentDeliveryError) throw error;
      // The queue logs this; Discord's errors carry the request's address, which holds the interaction token.
      throw new Error(this.secrets.reason(error));
    }
    progress.delete(job.id);
    edits.drop(job.id);
    answers.forget(job.id);
  }
}

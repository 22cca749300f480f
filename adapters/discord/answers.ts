/**
 * Where a job's messages go. An interaction is answered through its webhook (edits of the deferred reply,
 * follow-ups) while its token lives; after that, and for images sent in messages, through an ordinary message in
 * the channel, and where the bot cannot post there, in a DM. Everything needed is in the job's `replyTo` (ids, and
 * the interaction token sealed), so a restart changes nothing. A channel that is gone and a person who closed
 * their DMs end in a `PermanentDeliveryError`.
 */
import { DiscordAPIError, Routes, type REST, type RawFile } from 'discord.js';
import { PermanentDeliveryError, type JobOf, type Logger } from '../../src/index.js';
import type { Secrets } from './secrets.js';

/** What a Discord job carries in `request.replyTo`: plain ids, and the interaction token only sealed. */
export interface DiscordReply {
  [key: string]: unknown;
  adapter: 'discord';
  /** Who asked: cancel and DMs go by this. */
  user: string;
  /** Where they asked (a DM channel for DMs). */
  channel: string;
  guild?: string;
  /** The message they asked in (an image sent in a message): answered as a reply to it. */
  source?: string;
  /** The bot's own status message in the channel, when it has one from the start (message flows). */
  message?: string;
  /** The interaction's own reply (the deferred message): what a moved status message replies to. */
  original?: string;
  /** The interaction that asked, while its token may be used. */
  interaction?: { application: string; sealed: string; expiresAt: number };
  /** The upload limit where it asked, in bytes. */
  limitBytes: number;
}

/** A job of this door: its `request.replyTo` is a `DiscordReply`, read without a cast. */
export type DiscordJob = JobOf<DiscordReply>;

/** A message to write: text, buttons and files. */
export interface Outgoing {
  content: string;
  components?: unknown[];
  files?: RawFile[];
}

/** Discord's error codes for a place the bot cannot write to (any more). */
const CANNOT_POST = new Set([10003, 50001, 50013, 10008]);
/** Codes meaning an interaction's webhook is gone (the token expired or was never valid). */
const WEBHOOK_GONE = new Set([10015, 50027]);
/** DM channels remembered: as many people as the language memory keeps (locales.ts). */
const DM_CHANNELS = 10_000;
/** Cannot send messages to this user (DMs closed, or no shared server). */
const DMS_CLOSED = 50007;

const codeOf = (error: unknown) => (error instanceof DiscordAPIError ? Number(error.code) : undefined);
const statusOf = (error: unknown) => (error instanceof DiscordAPIError ? error.status : undefined);

/** The place a job's status message was moved to. */
interface Moved {
  channel: string;
  message: string;
}

/**
 * @example
 * const answers = new Answers(rest, secrets, log);
 * await answers.edit(job.id, reply, { content: '40%' }); // the deferred reply, or the channel message after it
 * await answers.send(reply, { content: 'preview', files: [{ name: 'a.png', data: png }] });
 */
export class Answers {
  /** Per job: where its status message lives once it left the interaction (or the first one went away). */
  private readonly moved = new Map<string, Moved>();
  /**
   * Each person's DM channel, the most recently used last, at most `DM_CHANNELS`: kept for ever, it held one entry
   * per person ever answered by DM. A person forgotten costs one call (Discord returns the same channel).
   */
  private readonly dms = new Map<string, string>();

  constructor(
    private readonly rest: REST,
    private readonly secrets: Secrets,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The interaction's webhook (its application and token), while the token may still be used. */
  private webhook(reply: DiscordReply): { application: string; token: string } | undefined {
    const { interaction } = reply;
    if (!interaction || this.now() >= interaction.expiresAt) return undefined;
    const token = this.secrets.open(interaction.sealed);
    return token === undefined ? undefined : { application: interaction.application, token };
  }

  /** Edits the job's status message, moving it to the channel (or a DM) once the interaction is over. */
  async edit(job: string, reply: DiscordReply, out: Outgoing): Promise<void> {
    const webhook = this.webhook(reply);
    if (webhook) {
      try {
        await this.rest.patch(Routes.webhookMessage(webhook.application, webhook.token, '@original'), { body: body(out), files: out.files, auth: false });
        return;
      } catch (error) {
        if (!WEBHOOK_GONE.has(codeOf(error) ?? 0)) throw error;
        this.log.info({ job, why: this.secrets.reason(error) }, 'the interaction is over: answering by channel message');
      }
    }
    const at = this.moved.get(job) ?? (reply.message ? { channel: reply.channel, message: reply.message } : undefined);
    if (at) {
      try {
        await this.rest.patch(Routes.channelMessage(at.channel, at.message), { body: body(out), files: out.files });
        return;
      } catch (error) {
        if (!CANNOT_POST.has(codeOf(error) ?? 0)) throw error;
        // The status message or its channel is gone: a new one is written below.
        this.moved.delete(job);
      }
    }
    const posted = await this.post(reply, out, at ? undefined : (reply.source ?? reply.original));
    this.moved.set(job, posted);
  }

  /** Sends a new message: a follow-up of the interaction while it lives, else a message in the channel (or DM). */
  async send(reply: DiscordReply, out: Outgoing): Promise<void> {
    const webhook = this.webhook(reply);
    if (webhook) {
      try {
        await this.rest.post(Routes.webhook(webhook.application, webhook.token), { body: body(out), files: out.files, auth: false });
        return;
      } catch (error) {
        if (!WEBHOOK_GONE.has(codeOf(error) ?? 0)) throw error;
      }
    }
    await this.post(reply, out, reply.source);
  }

  /** Where `key`'s status message was posted, when it is a channel message. */
  where(key: string): Moved | undefined {
    return this.moved.get(key);
  }

  /** Forgets a job's moved status message (it has been answered). */
  forget(job: string): void {
    this.moved.delete(job);
  }

  /** Posts in the job's channel, else in a DM; a DM that cannot be written to is permanent. */
  private async post(reply: DiscordReply, out: Outgoing, replyTo?: string): Promise<Moved> {
    try {
      return await this.postIn(reply.channel, out, replyTo);
    } catch (error) {
      if (!CANNOT_POST.has(codeOf(error) ?? 0) && statusOf(error) !== 403 && statusOf(error) !== 404) throw error;
      if (reply.guild === undefined) throw new PermanentDeliveryError(`cannot write to the DM: ${this.secrets.reason(error)}`);
      this.log.info({ channel: reply.channel, why: this.secrets.reason(error) }, 'cannot post in the channel: answering in a DM');
    }
    try {
      const dm = await this.dmChannel(reply.user);
      return await this.postIn(dm, out);
    } catch (error) {
      const code = codeOf(error);
      if (code === DMS_CLOSED || CANNOT_POST.has(code ?? 0) || statusOf(error) === 403 || statusOf(error) === 404) {
        throw new PermanentDeliveryError(`neither the channel nor a DM can be written to: ${this.secrets.reason(error)}`);
      }
      throw error;
    }
  }

  private async postIn(channel: string, out: Outgoing, replyTo?: string): Promise<Moved> {
    const message = (await this.rest.post(Routes.channelMessages(channel), {
      body: { ...body(out), ...(replyTo ? { message_reference: { message_id: replyTo, fail_if_not_exists: false } } : {}) },
      files: out.files,
    })) as { id: string; channel_id: string };
    return { channel: message.channel_id ?? channel, message: message.id };
  }

  private async dmChannel(user: string): Promise<string> {
    let id = this.dms.get(user);
    if (!id) {
      const channel = (await this.rest.post(Routes.userChannels(), { body: { recipient_id: user } })) as { id: string };
      id = channel.id;
    }
    this.dms.delete(user);
    this.dms.set(user, id);
    for (const oldest of this.dms.keys()) {
      if (this.dms.size <= DM_CHANNELS) break;
      this.dms.delete(oldest);
    }
    return id;
  }
}

/** The JSON part of a message: text, buttons, and the attachments list that names the uploaded files. */
function body(out: Outgoing): Record<string, unknown> {
  return {
    content: out.content,
    components: out.components ?? [],
    // Listing the files replaces the message's earlier attachments (none for a status message) with these.
    attachments: (out.files ?? []).map((file, id) => ({ id, filename: file.name })),
    allowed_mentions: { parse: [] },
  };
}

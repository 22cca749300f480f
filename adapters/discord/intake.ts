/**
 * Taking an image in: the attachment Discord sent is downloaded at once (its address expires) and only from
 * Discord's CDN, its header is checked, and before anything is queued the PNG's size at the asked scale is
 * estimated against the upload limit. When it cannot fit, the person is offered the scales that do (buttons),
 * unless answers link to the web page, where the PNG at the asked scale is reached; any problem is one line to them.
 */
import type { Attachment } from 'discord.js';
import { checkFileSize, EnhanceError, largestFittingScale, probeImage, reasonTextOf, translator, type EnhanceOptions, type EnhanceQueue, type Locale, type Logger } from '../../src/index.js';
import type { DiscordReply, Outgoing } from './answers.js';
import type { DiscordConfig } from './config.js';
import type { Secrets } from './secrets.js';
import { bold } from './text.js';

/** An image someone asked for, before it is downloaded. */
export interface ImageRequest {
  attachment: { url: string; name: string; size: number };
  options: Partial<EnhanceOptions>;
  report: boolean;
  reply: DiscordReply;
  /** The language its person reads (a catalogue tag), stored with the job. */
  locale: Locale;
  /** Writes a message about this request before it is a job (a reason, a choice of scales). */
  say: (out: Outgoing) => Promise<void>;
}

/** A request whose PNG would not fit at the asked scale, waiting for the person to pick a smaller one. */
export interface Offer {
  intake: ImageRequest;
  input: Uint8Array;
  user: string;
  expires: number;
}

const OFFER_MS = 15 * 60_000;

export interface IntakeOptions {
  /** Attachments larger than this are refused without being downloaded. */
  maxFileBytes: number;
  /** Images with more pixels are refused from their header. */
  maxPixels: number;
  /** The only origins attachments are downloaded from. */
  cdnOrigins: readonly string[];
  secrets: Secrets;
  logger: Logger;
  queue: EnhanceQueue;
  /** Answers link to the web page, where a PNG too large for the upload limit is reached: no offer, no refusal. */
  linked?: boolean;
}

/**
 * Where attachments may come from: the configured CDN, else the `apiRoot`'s server (tests), else Discord's.
 *
 * @example
 * cdnOrigins({ cdnRoot: '', apiRoot: '' }); // ['https://cdn.discordapp.com', 'https://media.discordapp.net']
 */
export function cdnOrigins(config: Pick<DiscordConfig, 'cdnRoot' | 'apiRoot'>): string[] {
  if (config.cdnRoot) return [new URL(config.cdnRoot).origin];
  if (config.apiRoot) return [new URL(config.apiRoot).origin];
  return ['https://cdn.discordapp.com', 'https://media.discordapp.net'];
}

/** The first attachment that says it is an image (or has no type, which the header check settles). */
export function firstImage(attachments: Iterable<Attachment>): Attachment | undefined {
  for (const attachment of attachments) if (!attachment.contentType || attachment.contentType.startsWith('image/')) return attachment;
  return undefined;
}

/** The three fields intake reads of an attachment. */
export function attachmentOf(attachment: Attachment): ImageRequest['attachment'] {
  return { url: attachment.url, name: attachment.name, size: attachment.size };
}

/**
 * @example
 * const intake = new Intake({ maxFileBytes, maxPixels, cdnOrigins: cdnOrigins(config), secrets, logger, queue });
 * await intake.accept({ attachment, options: {}, report: false, reply, say }); // queued, or one line said
 */
export class Intake {
  private readonly offers = new Map<string, Offer>();

  constructor(private readonly deps: IntakeOptions) {}

  /** The offer behind a scale button, once, for the person it was made to while it is open. */
  takeOffer(key: string, user: string): Offer | undefined {
    const offer = this.offers.get(key);
    if (!offer || offer.expires < Date.now() || offer.user !== user) return undefined;
    this.offers.delete(key);
    return offer;
  }

  /**
   * Downloads, checks and queues an image; any problem is one line to the person. A job estimated over
   * `limits.confirmOver` is not queued until `confirmed`: the person is asked, with a button for its model and one
   * for the faster model of its kind (`model:<offer>:<model>`).
   */
  async accept(intake: ImageRequest, input?: Uint8Array, confirmed = false): Promise<void> {
    const t = translator(intake.locale);
    try {
      input ??= await this.download(intake.attachment);
      const header = await probeImage(input, this.deps.maxPixels);
      if (!this.deps.linked && !(await this.fits(intake, input, header))) return;
      const request = {
        input,
        name: intake.attachment.name,
        options: intake.options,
        owner: `discord:${intake.reply.user}`,
        report: intake.report,
        locale: intake.locale,
        earlyPreview: true,
      };
      if (!confirmed) {
        const plan = await this.deps.queue.plan(request);
        if (plan.confirm) {
          const key = this.offer(intake, input);
          const choices = [{ model: plan.model, etaMs: plan.etaMs }, ...(plan.other && plan.other.etaMs < plan.etaMs ? [plan.other] : [])];
          await intake.say({
            content: t('discord.confirm', { name: bold(intake.attachment.name), model: plan.model, eta: plan.etaMs }),
            components: [{ type: 1, components: choices.map((c) => ({ type: 2, style: 1, label: t('discord.confirmRun', { model: c.model, eta: c.etaMs }), custom_id: `model:${key}:${c.model}` })) }],
          });
          return;
        }
      }
      await this.deps.queue.submit({ ...request, replyTo: intake.reply });
    } catch (error) {
      if (!(error instanceof EnhanceError)) this.deps.logger.error({ why: this.deps.secrets.reason(error) }, 'could not take an image');
      // Discord's errors carry the request's address, which may hold a token: said without it.
      const reason = error instanceof EnhanceError ? reasonTextOf(error) : reasonTextOf(new Error(this.deps.secrets.reason(error)));
      await intake.say({ content: t('discord.line', { name: bold(intake.attachment.name), text: reason }), components: [] });
    }
  }

  /**
   * Whether the result at the asked scale can be sent whole (as PNG, or at least as a JPEG of the full
   * resolution); when it cannot, says so (with the scales that can as buttons, or a refusal when none can) and
   * answers false.
   */
  private async fits(intake: ImageRequest, input: Uint8Array, header: Awaited<ReturnType<typeof probeImage>>): Promise<boolean> {
    const t = translator(intake.locale);
    const name = bold(intake.attachment.name);
    const asked = intake.options.scale ?? 4;
    const channels = header.meta.channels ?? 3;
    const bits = header.meta.depth === 'ushort' ? 16 : 8;
    const fits = largestFittingScale(header.width, header.height, intake.reply.limitBytes, { channels, bits, scales: ([4, 3, 2] as const).filter((s) => s <= asked) });
    if (fits === null) {
      await intake.say({ content: t('discord.tooLarge', { name, width: header.width, height: header.height, limit: intake.reply.limitBytes }) });
      return false;
    }
    if (fits < asked) {
      const key = this.offer(intake, input);
      const scales = ([4, 3, 2] as const).filter((s) => s <= fits);
      await intake.say({
        content: t('discord.offer', { name, asked, width: header.width, height: header.height, limit: intake.reply.limitBytes, fits }),
        components: [{ type: 1, components: scales.map((s) => ({ type: 2, style: 1, label: t('discord.scale', { scale: s }), custom_id: `scale:${key}:${s}` })) }],
      });
      return false;
    }
    return true;
  }

  /** Keeps an image for the buttons of an offer (scales, or models of a long job) while it is open; its key. */
  private offer(intake: ImageRequest, input: Uint8Array): string {
    for (const [old, offer] of this.offers) if (offer.expires < Date.now()) this.offers.delete(old);
    const key = Math.random().toString(36).slice(2, 10);
    this.offers.set(key, { intake, input, user: intake.reply.user, expires: Date.now() + OFFER_MS });
    return key;
  }

  /** Downloads an attachment Discord sent, at once (its address expires); never any other address. */
  private async download(attachment: ImageRequest['attachment']): Promise<Uint8Array> {
    checkFileSize(attachment.size, this.deps.maxFileBytes);
    const url = new URL(attachment.url);
    if (!this.deps.cdnOrigins.includes(url.origin)) throw new EnhanceError({ key: 'discord.notOnCdn', values: { origin: url.origin } }, 'input');
    const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new EnhanceError({ key: 'discord.downloadFailed', values: { status: response.status } }, 'input');
    const bytes = new Uint8Array(await response.arrayBuffer());
    checkFileSize(bytes.length, this.deps.maxFileBytes);
    return bytes;
  }
}

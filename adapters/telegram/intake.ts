/**
 * How an image becomes a job: a photo or image file sent to the bot (or in an album), `/enhance` on or replying
 * to one, or a scale button of an offer. The image is downloaded, checked from its header (pixels, the upload
 * limit at the asked scale), then answered with its status message and queued. Every refusal is one line in the
 * chat.
 */
import { Composer, InlineKeyboard } from 'grammy';
import type { Message } from 'grammy/types';
import { EnhanceError, estimateJpegBytes, JOB_ID, largestFittingScale, probeImage, reasonTextOf, type Text } from '../../src/index.js';
import { packOptions, parseCaption, unpackOptions, type CaptionOptions } from './caption.js';
import type { TelegramContext, TelegramParts } from './context.js';
import { downloadFile } from './download.js';
import { imageOf, replyParams, type TelegramReply } from './reply.js';
import { safeReason } from './secret.js';
import { label } from './text.js';

export function intake(parts: TelegramParts): Composer<TelegramContext> {
  const albums = new Albums();
  const composer = new Composer<TelegramContext>();
  composer.command('enhance', async (ctx) => {
    const target = imageOf(ctx.msg) ? ctx.msg : ctx.msg.reply_to_message;
    if (!target || !imageOf(target)) {
      return void (await ctx.reply(ctx.t('telegram.enhanceHint'), { reply_parameters: replyParams(ctx.msg.message_id) }));
    }
    await take(parts, ctx, target, parseCaption(ctx.match));
  });
  composer.on(['message:photo', 'message:document'], (ctx) => {
    const caption = parseCaption(ctx.msg.caption);
    const album = albums.place(ctx.msg, caption);
    // Images after an album's first take the options of its caption (Telegram puts it on the first).
    return take(parts, ctx, ctx.msg, album?.caption ?? caption, undefined, album?.index);
  });
  // Yes to a long job (`limits.confirmOver`): its model, or the faster one offered beside it.
  composer.callbackQuery(/^ok:([234]):([a-z]*):([\w.-]+)$/, async (ctx) => {
    const offer = ctx.callbackQuery.message;
    const image = offer && 'reply_to_message' in offer ? offer.reply_to_message : undefined;
    if (!offer || !image || !imageOf(image)) return void (await ctx.answerCallbackQuery({ text: ctx.t('telegram.imageGone') }));
    await ctx.answerCallbackQuery();
    const asked = unpackOptions(ctx.match[2], Number(ctx.match[1]) as 2 | 3 | 4);
    await take(parts, ctx, image, { ...asked, options: { ...asked.options, model: ctx.match[3] } }, offer.message_id, undefined, true);
  });
  composer.callbackQuery(/^go:([234]):([a-z]*)$/, async (ctx) => {
    const offer = ctx.callbackQuery.message;
    const image = offer && 'reply_to_message' in offer ? offer.reply_to_message : undefined;
    if (!offer || !image || !imageOf(image)) return void (await ctx.answerCallbackQuery({ text: ctx.t('telegram.imageGone') }));
    await ctx.answerCallbackQuery();
    const scale = Number(ctx.match[1]) as 2 | 3 | 4;
    await take(parts, ctx, image, unpackOptions(ctx.match[2], scale), offer.message_id);
  });
  // The other model the plan named (`auto` chose for the person): this job is cancelled and its image queued
  // again with that model and the job's other options, under a status message of its own.
  composer.callbackQuery(/^other:([^:]+):([\w.-]+)$/, async (ctx) => {
    const [, id, model] = ctx.match;
    const owner = `telegram:${ctx.from.id}`;
    const status = ctx.callbackQuery.message;
    const image = status && 'reply_to_message' in status ? status.reply_to_message : undefined;
    const job = JOB_ID.test(id) ? await parts.queue.getJob(id) : undefined;
    if (!job || job.request.owner !== owner) return void (await ctx.answerCallbackQuery({ text: ctx.t('telegram.alreadyEnded') }));
    if (!image || !imageOf(image)) return void (await ctx.answerCallbackQuery({ text: ctx.t('telegram.imageGone') }));
    await ctx.answerCallbackQuery();
    await parts.queue.cancel(id, owner).catch(() => undefined); // It may have ended meanwhile: the new one runs all the same.
    const { scale, tune, precision } = job.request.options;
    await take(parts, ctx, image, { options: { model, scale, tune, precision }, report: job.request.report === true });
  });
  composer.on('message', async (ctx) => {
    if (ctx.chat.type === 'private') await ctx.reply(ctx.t('telegram.sendImage'));
  });
  return composer;
}

/**
 * Turns the image in `message` into a job: download, check from the header (pixels, upload limit), then the
 * status message and the job. `status` reuses a message (an offer); `albumIndex` is the image's place in the
 * album it came in.
 */
async function take(parts: TelegramParts, ctx: TelegramContext, message: Message, asked: CaptionOptions, status?: number, albumIndex?: number, confirmed = false): Promise<void> {
  const { api, queue, options, limits, log, token } = parts;
  const source = imageOf(message)!;
  const chat = message.chat.id;
  const owner = `telegram:${ctx.from?.id ?? chat}`;
  // The sender's language (the presser's, for a button), kept with the job for every later answer.
  const { locale, t } = ctx;
  const prefix = label(locale, albumIndex);
  const answer = async (text: string, buttons?: InlineKeyboard) => {
    if (status) await parts.editStatus(chat, status, text, buttons);
    else status = (await api.sendMessage(chat, text, { reply_parameters: replyParams(message.message_id), reply_markup: buttons })).message_id;
  };
  const refuse = (reason: Text) => answer(prefix + t('telegram.notTaken', { reason }));
  if (source.notImage) return answer(prefix + t('telegram.notImage', { type: source.notImage }));
  // The queue checks this too; asking first saves downloading an image that cannot be taken.
  const mine = (await queue.getJobs(owner)).length;
  if (mine >= options.queuedPerOwner) return refuse({ key: 'reason.ownerLimit', values: { count: mine, limit: options.queuedPerOwner } });
  let input: Buffer;
  let header;
  try {
    if (source.fileSize !== undefined && source.fileSize > limits.download) {
      throw new EnhanceError({ key: 'telegram.downloadLimit', values: { bytes: source.fileSize, limit: limits.download } }, 'input');
    }
    const { apiRoot, downloadTimeoutS, localServer } = options.config;
    input = await downloadFile(source.fileId, { api, token, apiRoot, maxBytes: limits.download, stallMs: downloadTimeoutS * 1000, localServer });
    header = await probeImage(input, options.maxPixels);
  } catch (error) {
    if (!(error instanceof EnhanceError)) {
      log.warn({ chat, err: safeReason(error, token) }, 'downloading an image failed');
      return answer(prefix + t('telegram.downloadFailed'));
    }
    return refuse(reasonTextOf(error));
  }
  const scale = asked.options.scale ?? 4;
  const samples = { channels: header.meta.channels, bits: header.meta.depth === 'ushort' ? (16 as const) : (8 as const) };
  const fitting = largestFittingScale(header.width, header.height, limits.upload, { ...samples, scales: ([4, 3, 2] as const).filter((s) => s <= scale) });
  // The result goes whole as JPEG when the PNG is too large; only when not even that fits is a smaller scale
  // offered. With a link to the web page, the PNG at the asked scale is reached there anyway.
  if (fitting !== scale && !options.links) {
    const bytes = estimateJpegBytes(header.width, header.height, scale);
    const why = prefix + t('telegram.tooLarge', { scale, width: header.width, height: header.height, bytes, limit: limits.upload });
    if (fitting === null) return answer(why + t('telegram.evenTwo'));
    const buttons = new InlineKeyboard();
    for (const s of ([4, 3, 2] as const).filter((s) => s <= fitting)) buttons.text(t('telegram.scaleButton', { scale: s }), `go:${s}:${packOptions(asked)}`);
    return answer(why + t('telegram.largestFits', { scale: fitting }), buttons);
  }
  const request = { input, name: source.name, owner, locale, options: asked.options, report: asked.report, earlyPreview: true };
  // A job over `limits.confirmOver` waits for a yes: its time, with a button to run it and one for the faster model.
  if (!confirmed) {
    let plan;
    try {
      plan = await queue.plan(request);
    } catch (error) {
      if (!(error instanceof EnhanceError)) log.error({ chat, err: safeReason(error, token) }, 'planning an image failed');
      return refuse(reasonTextOf(error));
    }
    if (plan.confirm) {
      const packed = packOptions({ options: { ...asked.options, model: undefined }, report: asked.report });
      const buttons = new InlineKeyboard().text(t('telegram.confirmRun', { model: plan.model, eta: plan.etaMs }), `ok:${scale}:${packed}:${plan.model}`);
      if (plan.other && plan.other.etaMs < plan.etaMs) buttons.row().text(t('telegram.otherModel', { model: plan.other.model, eta: plan.other.etaMs }), `ok:${scale}:${packed}:${plan.other.model}`);
      return answer(prefix + t('telegram.confirm', { model: plan.model, eta: plan.etaMs }), buttons);
    }
  }
  await answer(prefix + t('telegram.received', { name: source.name }));
  const replyTo: TelegramReply = { adapter: 'telegram', chat, message: message.message_id, status: status!, ...(albumIndex ? { album: albumIndex } : {}) };
  try {
    await queue.submit({ ...request, replyTo });
  } catch (error) {
    if (!(error instanceof EnhanceError)) log.error({ chat, err: safeReason(error, token) }, 'queueing an image failed');
    await parts.editStatus(chat, status!, prefix + t('telegram.notTaken', { reason: reasonTextOf(error) }));
  }
}

/** Album ids seen lately: how many images each had so far and the options its caption set. */
interface AlbumState {
  count: number;
  caption?: CaptionOptions;
  at: number;
}
/** An album's images arrive within seconds; ten minutes keeps a slow upload's, and forgets the rest. */
const ALBUM_MEMORY_MS = 10 * 60_000;

class Albums {
  private readonly seen = new Map<string, AlbumState>();

  /**
   * A newly arrived album image's place in it (1, 2, … in arrival order: one chat's updates are handled in order)
   * and the album's caption so far; undefined for an image on its own.
   */
  place(message: Message, caption: CaptionOptions): { index: number; caption?: CaptionOptions } | undefined {
    const group = message.media_group_id;
    if (!group) return undefined;
    const now = Date.now();
    for (const [id, album] of this.seen) if (now - album.at > ALBUM_MEMORY_MS) this.seen.delete(id);
    const album = this.seen.get(group) ?? { count: 0, at: now };
    album.count += 1;
    if (message.caption) album.caption = caption;
    this.seen.set(group, album);
    return { index: album.count, caption: album.caption };
  }
}

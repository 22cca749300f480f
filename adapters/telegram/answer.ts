/**
 * Delivering a finished job in its chat: the enhanced PNG as a document (never a compressed photo; over the
 * upload limit, the most faithful file that fits: lossless WebP, else a JPEG of the full resolution, see
 * src/imaging/fit.ts), the before/after as a photo, the PDF when asked, and the status message's last word. Each
 * upload is noted, so a delivery tried again sends each file once. With links to the web page (`web.publicUrl`),
 * the outputs are kept for the job's page first and the last word carries a button to it, where the PNG is.
 */
import path from 'node:path';
import sharp from 'sharp';
import { GrammyError, InlineKeyboard, InputFile, type Api } from 'grammy';
import { DEFAULT_LOCALE, fitToLimit, PermanentDeliveryError, plainText, say, sentence, translator, type EnhanceQueue, type Locale, type Outcome } from '../../src/index.js';
import type { ResultLinks } from '../kit/result-links.js';
import type { SentNotes } from '../kit/sent-notes.js';
import type { TelegramJob } from './jobs.js';
import { replyParams } from './reply.js';
import { safeError, safeReason } from './secret.js';
import type { StatusEditor } from './status-editor.js';
import { doneText, label } from './text.js';

/** Telegram's limits for a photo (sendPhoto): 10 MB, width + height at most 10000. */
const PHOTO_MAX_BYTES = 10_000_000;
const PHOTO_MAX_SIDES = 10_000;

export interface AnswerDeps {
  api: Api;
  queue: EnhanceQueue;
  notes: SentNotes;
  editor: StatusEditor;
  uploadLimit: number;
  links?: ResultLinks;
}

/** The button to a job's page. */
const pageButton = (locale: Locale, url: string) => new InlineKeyboard().url(translator(locale)('telegram.openInBrowser'), url);

/**
 * Sends `job`'s answer. Rejects with a `PermanentDeliveryError` when the chat cannot be reached again, else with
 * an error whose message is free of the token.
 *
 * @example
 * await deliverAnswer({ api: bot.api, queue, notes, editor, uploadLimit: 50e6 }, job, outcome, token);
 */
export async function deliverAnswer(deps: AnswerDeps, job: TelegramJob, outcome: Outcome, token: string): Promise<void> {
  try {
    await answer(deps, job, outcome);
  } catch (error) {
    throw deliveryError(error, token);
  }
}

async function answer({ api, queue, notes, editor, uploadLimit, links }: AnswerDeps, job: TelegramJob, outcome: Outcome): Promise<void> {
  const r = job.request.replyTo;
  // The language its sender's Telegram was in when it was sent, stored with the job (also across a restart).
  const locale = job.request.locale ?? DEFAULT_LOCALE;
  const t = translator(locale);
  const prefix = label(locale, r.album);
  const status = (text: string, url?: string) => editor.final({ chat: r.chat, message: r.status, text, ...(url ? { buttons: pageButton(locale, url) } : {}) });
  if (outcome.state !== 'completed') {
    const reason = outcome.text ?? plainText(outcome.reason);
    await status(prefix + (outcome.state === 'cancelled' ? t('telegram.cancelled') : t('telegram.failed', { reason })));
    return;
  }
  const { result } = outcome;
  const stem = path.parse(job.request.name).name || 'image';
  const reply = { reply_parameters: replyParams(r.message) };
  // Kept before anything is sent: the queue forgets the files once this delivery resolves.
  const url = links ? await links.keep(job, result) : undefined;
  await notes.once(job.id, 'png', async () => {
    const png = await queue.readOutput(job.id, 'result');
    const fitted = await fitToLimit(png, uploadLimit);
    if (!fitted) return t('telegram.noFit', { bytes: png.length, limit: uploadLimit });
    // Not the PNG itself: with a link, the page has it.
    const onPage = url !== undefined && fitted.format !== 'png' ? t('telegram.pngOnPage') : '';
    const remark = fitted.note ? t('telegram.remark', { line: sentence(say(locale, fitted.note), locale) }) + onPage : '';
    const { scale, model } = result.options;
    await api.sendDocument(r.chat, new InputFile(fitted.bytes, `${stem}-${scale}x.${fitted.format === 'jpeg' ? 'jpg' : fitted.format}`), {
      caption:
        prefix +
        t('telegram.resultCaption', { width: fitted.width, height: fitted.height, format: fitted.format.toUpperCase(), scale, inWidth: result.input.width, inHeight: result.input.height, model }) +
        remark,
      // A file sent as a document stays a file, byte for byte: no "photo" conversion by the client or server.
      disable_content_type_detection: true,
      ...reply,
    });
    return remark;
  });
  if (result.outputs?.compare !== undefined) {
    await notes.once(job.id, 'compare', async () => {
      const compare = await queue.readOutput(job.id, 'compare');
      const options = { caption: prefix + t('telegram.compare'), ...reply };
      const file = new InputFile(compare, 'compare.jpg');
      if (await fitsPhoto(compare)) await api.sendPhoto(r.chat, file, options);
      else await api.sendDocument(r.chat, file, options);
    });
  }
  if (result.outputs?.pdf !== undefined) {
    await notes.once(job.id, 'pdf', async () => {
      const pdf = await queue.readOutput(job.id, 'pdf');
      await api.sendDocument(r.chat, new InputFile(pdf, `${stem}.pdf`), { caption: prefix + t('telegram.summary'), ...reply });
    });
  }
  await status(`${doneText(locale, result, prefix)}${(await notes.remark(job.id)) ?? ''}`, url);
}

/** Whether a picture is within Telegram's photo limits; over them sendPhoto fails (PHOTO_INVALID_DIMENSIONS). */
async function fitsPhoto(bytes: Buffer): Promise<boolean> {
  if (bytes.length > PHOTO_MAX_BYTES) return false;
  const meta = await sharp(bytes).metadata();
  return (meta.width ?? 0) + (meta.height ?? 0) <= PHOTO_MAX_SIDES;
}

/**
 * A blocked bot (403) or a chat that is gone (400 chat not found, deactivated, kicked) cannot be helped by trying
 * again; anything else can. Token-free either way.
 */
export function deliveryError(error: unknown, token: string): Error {
  if (error instanceof PermanentDeliveryError) return error;
  if (error instanceof GrammyError) {
    const permanent =
      error.error_code === 403 ||
      (error.error_code === 400 && /chat not found|user not found|deactivated|kicked|not enough rights|have no rights|bot was blocked/i.test(error.description));
    if (permanent) return new PermanentDeliveryError(`telegram: ${safeReason(error, token)}`);
  }
  return safeError(error, token);
}

/**
 * Delivering a finished job in its chat: the enhanced PNG as a document (never a compressed photo; the most
 * faithful file that fits when it is over the upload limit), the before/after as a photo, the PDF when asked,
 * and the status message's last word. Each upload is noted, so a delivery tried again sends each file once.
 */
import path from 'node:path';
import sharp from 'sharp';
import { GrammyError, InputFile, type Api } from 'grammy';
import { fitToLimit } from '../../src/imaging/fit.js';
import { PermanentDeliveryError, type EnhanceQueue, type Outcome } from '../../src/queue/queue.js';
import type { Job } from '../../src/types.js';
import type { SentNotes } from '../../src/service/sent-notes.js';
import { replyParams, type TelegramReply } from './reply.js';
import { safeError, safeReason } from './secret.js';
import type { StatusEditor } from './status-editor.js';
import { doneText, label, megabytes } from './text.js';

/** Telegram's limits for a photo (sendPhoto): 10 MB, width + height at most 10000. */
const PHOTO_MAX_BYTES = 10_000_000;
const PHOTO_MAX_SIDES = 10_000;

export interface AnswerDeps {
  api: Api;
  queue: EnhanceQueue;
  notes: SentNotes;
  editor: StatusEditor;
  uploadLimit: number;
}

/**
 * Sends `job`'s answer. Rejects with a `PermanentDeliveryError` when the chat cannot be reached again, else with
 * an error whose message is free of the token.
 *
 * @example
 * await deliverAnswer({ api: bot.api, queue, notes, editor, uploadLimit: 50e6 }, job, outcome, token);
 */
export async function deliverAnswer(deps: AnswerDeps, job: Job, outcome: Outcome, token: string): Promise<void> {
  try {
    await answer(deps, job, outcome);
  } catch (error) {
    throw deliveryError(error, token);
  }
}

async function answer({ api, queue, notes, editor, uploadLimit }: AnswerDeps, job: Job, outcome: Outcome): Promise<void> {
  const r = job.request.replyTo as unknown as TelegramReply;
  const prefix = label(r.album);
  const status = (text: string) => editor.final({ chat: r.chat, message: r.status, text });
  if (outcome.state !== 'completed') {
    await status(outcome.state === 'cancelled' ? `${prefix}Cancelled.` : `${prefix}Failed: ${outcome.reason}.`);
    return;
  }
  const { result } = outcome;
  const stem = path.parse(job.request.name).name || 'image';
  const reply = { reply_parameters: replyParams(r.message) };
  await notes.once(job.id, 'png', async () => {
    const png = await queue.readOutput(job.id, 'png');
    const fitted = await fitToLimit(png, uploadLimit);
    if (!fitted) return ` The result (${megabytes(png.length)}) does not fit the ${megabytes(uploadLimit)} upload limit, even at a quarter of its size.`;
    const remark = fitted.note ? ` ${fitted.note[0].toUpperCase()}${fitted.note.slice(1)}.` : '';
    const { scale, model } = result.options;
    await api.sendDocument(r.chat, new InputFile(fitted.bytes, `${stem}-${scale}x.${fitted.format}`), {
      caption: `${prefix}${fitted.width}x${fitted.height} ${fitted.format.toUpperCase()}, ${scale}x of ${result.input.width}x${result.input.height} (${model}).${remark}`,
      // A PNG sent as a file stays a file, byte for byte: no "photo" conversion by the client or server.
      disable_content_type_detection: true,
      ...reply,
    });
    return remark;
  });
  if (result.outputs?.compare !== undefined) {
    await notes.once(job.id, 'compare', async () => {
      const compare = await queue.readOutput(job.id, 'compare');
      const options = { caption: `${prefix}Before and after.`, ...reply };
      const file = new InputFile(compare, 'compare.jpg');
      if (await fitsPhoto(compare)) await api.sendPhoto(r.chat, file, options);
      else await api.sendDocument(r.chat, file, options);
    });
  }
  if (result.outputs?.pdf !== undefined) {
    await notes.once(job.id, 'pdf', async () => {
      const pdf = await queue.readOutput(job.id, 'pdf');
      await api.sendDocument(r.chat, new InputFile(pdf, `${stem}.pdf`), { caption: `${prefix}Summary.`, ...reply });
    });
  }
  await status(`${doneText(result, prefix)}${(await notes.remark(job.id)) ?? ''}`);
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

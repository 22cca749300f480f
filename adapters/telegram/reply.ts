/**
 * What a Telegram job carries to find its way back (`request.replyTo`), and the image a message holds.
 */
import { InlineKeyboard } from 'grammy';
import type { Message, ReplyParameters } from 'grammy/types';
import { translator, type Locale } from '../../src/index.js';

/** What a Telegram job carries in `request.replyTo`: plain data, stored with the job across restarts. */
export type TelegramReply = {
  adapter: 'telegram';
  chat: number;
  /** The image message, which every answer replies to. */
  message: number;
  /** The status message: queued, progress, done. */
  status: number;
  /** The image's place in its album, from 1; absent for a single image. */
  album?: number;
};

/** The image in a message: the largest photo size, or a document. */
export interface ImageSource {
  fileId: string;
  /** As Telegram reports it (it may not). */
  fileSize?: number;
  name: string;
  /** A document's declared type, when it says it is not an image. */
  notImage?: string;
}

/**
 * The image `message` holds, or null.
 *
 * @example
 * imageOf(ctx.msg.reply_to_message)?.fileId; // the largest size of a photo replied to
 */
export function imageOf(message: Message | undefined): ImageSource | null {
  if (!message) return null;
  if (message.photo?.length) {
    // Telegram lists the sizes smallest first.
    const largest = message.photo[message.photo.length - 1];
    return { fileId: largest.file_id, fileSize: largest.file_size, name: `photo-${message.message_id}.jpg` };
  }
  const doc = message.document;
  if (doc) {
    const mime = doc.mime_type ?? '';
    const notImage = mime && !mime.startsWith('image/') && mime !== 'application/octet-stream' ? mime : undefined;
    return { fileId: doc.file_id, fileSize: doc.file_size, name: doc.file_name || `file-${message.message_id}`, notImage };
  }
  return null;
}

/** A reply to `message`, sent even if that message was deleted meanwhile. */
export const replyParams = (message: number): ReplyParameters => ({ message_id: message, allow_sending_without_reply: true });

/**
 * The buttons under a job's status message, in its person's language: Cancel, and where the plan chose the model
 * (`auto`), the other model with its time (`other:<job>:<model>`, which cancels this job and queues the image again
 * with that model).
 */
export function cancelButton(locale: Locale, job: string, other?: { model: string; etaMs: number }): InlineKeyboard {
  const t = translator(locale);
  const buttons = new InlineKeyboard().text(t('telegram.cancelButton'), `cancel:${job}`);
  return other ? buttons.row().text(t('telegram.otherModel', { model: other.model, eta: other.etaMs }), `other:${job}:${other.model}`) : buttons;
}

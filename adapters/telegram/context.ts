/**
 * What the Telegram door's parts share: the context every handler gets (grammY's, with the sender's language set
 * by the locale middleware), and the door's parts (its Bot API client, queue, status editor, notes and limits),
 * built once by the door and handed to each composer. The parts are plain data and functions, so a composer is a
 * function of them and reads no class.
 */
import type { Api, Context, MiddlewareFn } from 'grammy';
import type { InlineKeyboardMarkup } from 'grammy/types';
import { translator, type EnhanceProgress, type EnhanceQueue, type Locale, type Logger } from '../../src/index.js';
import type { ResultLinks } from '../kit/result-links.js';
import type { SentNotes } from '../kit/sent-notes.js';
import type { TelegramConfig } from './config.js';
import type { StatusEditor } from './status-editor.js';
import { localeOf } from './text.js';

export interface TelegramOptions {
  /** The queue this door submits to and hears from. */
  queue: EnhanceQueue;
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

/** The sender's language and its words, set on every update by `withLocale`: handlers never look it up again. */
export interface LocaleFlavor {
  locale: Locale;
  t: ReturnType<typeof translator>;
}

/** The context of every handler of this door. */
export type TelegramContext = Context & LocaleFlavor;

/**
 * The locale middleware: the language of the update's sender (the presser's, for a button), from their app's
 * `language_code`.
 */
export const withLocale: MiddlewareFn<TelegramContext> = (ctx, next) => {
  ctx.locale = localeOf(ctx.from);
  ctx.t = translator(ctx.locale);
  return next();
};

/** The door's parts, shared by its composers and its queue listener. */
export interface TelegramParts {
  api: Api;
  queue: EnhanceQueue;
  options: TelegramOptions;
  /** Bytes a download may have (the smaller of the server's and the service's) and an upload may have. */
  limits: { download: number; upload: number };
  log: Logger;
  /** For scrubbing errors only: never logged or sent. */
  token: string;
  editor: StatusEditor;
  notes: SentNotes;
  /** The last progress of each running job, for `/status`. */
  progress: Map<string, EnhanceProgress>;
  /** Early previews being sent: delivery waits for its job's, so the preview always comes first. */
  previews: Map<string, Promise<void>>;
  /** Edits a status message; "not modified" and "not found" (deleted by the person) are not failures. */
  editStatus(chat: number, message: number, text: string, buttons?: InlineKeyboardMarkup): Promise<void>;
}

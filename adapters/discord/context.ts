/**
 * What the Discord door's parts share: the door builds these once and hands them to the interaction handlers
 * (interactions/), the event listeners (events/), the interaction lifetimes and the delivery, so each part is a
 * function of what it is given, as the web door's route plugins are of their context.
 */
import { DEFAULT_LOCALE, translator, type EnhanceQueue, type Locale, type Logger } from '../../src/index.js';
import type { Answers } from './answers.js';
import type { DiscordConfig } from './config.js';
import type { Intake } from './intake.js';
import type { KnownLocales } from './locales.js';
import type { Secrets } from './secrets.js';
import type { StatusEdits } from './status.js';

/** Tiles done of the total, as the last progress event of a running job said. */
export interface TileCount {
  done: number;
  total: number;
}

export interface DiscordContext {
  readonly config: DiscordConfig;
  /** The door's logger (`adapter: 'discord'`). */
  readonly log: Logger;
  /** The queue this door submits to and hears from. */
  readonly queue: EnhanceQueue;
  /** Seals interaction tokens and keeps every token out of what is logged or said. */
  readonly secrets: Secrets;
  /** Where a job's messages go: the interaction's webhook, the channel, a DM. */
  readonly answers: Answers;
  /** Takes an image in: download, header check, the scale offer, submit. */
  readonly intake: Intake;
  /** Each job's status message, edited no more often than Discord allows. */
  readonly edits: StatusEdits;
  /** Each person's language from their last interaction, for the images they send in messages. */
  readonly locales: KnownLocales;
  /** Per running job, its last tile count: `/queue` and a status message moved off the interaction show it. */
  readonly progress: Map<string, TileCount>;
}

/** Says catalogue messages in one language: `t('discord.done', { name, made })`. */
export type Say = ReturnType<typeof translator>;

/** The words for a job, in the language stored with it (so also after a restart). */
export const wordsFor = (job: { request: { locale?: Locale } }): Say => translator(job.request.locale ?? DEFAULT_LOCALE);

/** Logs a handler that failed, without any token Discord's error may carry in its address. */
export function oops(ctx: Pick<DiscordContext, 'log' | 'secrets'>, where: string, error: unknown): void {
  ctx.log.error({ where, why: ctx.secrets.reason(error) }, 'discord handler failed');
}

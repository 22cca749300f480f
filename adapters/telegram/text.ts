/**
 * What the bot says, in one place: the status line of a job as it moves (queued, working, done) and the help,
 * each in its person's language (the `telegram` section of src/i18n/catalogues/). Plain text only (no Markdown),
 * so a file name can never break a message.
 */
import { resolveLocale, say, sentence, translator, type EnhanceProgress, type EnhanceResult, type Locale } from '../../src/index.js';

/**
 * The catalogue for a Telegram user's `language_code` (`zh`, `zh-hans`, `zh-cn` → `zh-Hans`; anything without
 * a catalogue, or none, → `en`).
 *
 * @example
 * localeOf({ language_code: 'zh-hans' }); // 'zh-Hans'
 */
export function localeOf(user: { language_code?: string } | undefined): Locale {
  return resolveLocale([user?.language_code]);
}

/** A bar of ten cells. */
export function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.round((10 * done) / total) : 0;
  return `${'▓'.repeat(filled)}${'░'.repeat(10 - filled)}`;
}

/** How a job's messages name it: the album image it was (`Album image 2: `), or nothing for a single image. */
export function label(locale: Locale, albumIndex: number | undefined): string {
  return albumIndex ? translator(locale)('telegram.albumImage', { n: albumIndex }) : '';
}

/**
 * The status message while a job waits.
 *
 * @example
 * queuedText('en', 2, 40_000); // 'Queued: position 2, done in about 40 s.'
 * queuedText('zh-Hans', 2, 40_000); // '排队中：第 2 位，大约 40 秒后完成。'
 */
export function queuedText(locale: Locale, position: number, etaMs: number, prefix = ''): string {
  const t = translator(locale);
  return prefix + (position <= 1 ? t('telegram.queuedNext', { eta: etaMs }) : t('telegram.queuedAt', { position, eta: etaMs }));
}

/**
 * The status message while a job runs: the bar, tiles and ETA; or, while its model is prepared for the first
 * time, that line (`Preparing the anime model, about a minute, once.`).
 */
export function progressText(locale: Locale, progress: EnhanceProgress, prefix = ''): string {
  const { tilesDone, tilesTotal, etaMs, preparing } = progress;
  const t = translator(locale);
  if (preparing) return prefix + t('telegram.sentence', { line: sentence(say(locale, preparing), locale) });
  return prefix + t('telegram.progress', { bar: bar(tilesDone, tilesTotal), done: tilesDone, total: tilesTotal, eta: etaMs });
}

/** The status message once the answer is sent: `Done in 14 s: 384x384 (4x, x4fast).` */
export function doneText(locale: Locale, result: EnhanceResult, prefix = ''): string {
  const t = translator(locale);
  const { output, options } = result;
  const values = { width: output.width, height: output.height, scale: options.scale, model: options.model, raw: options.tune === 'raw' ? t('telegram.raw') : '' };
  if (result.cached) return prefix + t('telegram.doneCached', values);
  return prefix + t('telegram.doneIn', { ...values, took: result.ms.total + (result.ms.preview ?? 0) + (result.ms.render ?? 0) });
}

/** `/start` and `/help`. */
export function helpText(locale: Locale, limits: { download: number; upload: number; maxPixels: number; queuedPerOwner: number; linked?: boolean }): string {
  const t = translator(locale);
  const larger = limits.linked ? t('telegram.helpLinked') : t('telegram.helpFitted');
  const line = t('telegram.helpLimits', { download: limits.download, pixels: limits.maxPixels, upload: limits.upload, larger, perPerson: limits.queuedPerOwner });
  return `${t('telegram.help')}\n\n${line}`;
}

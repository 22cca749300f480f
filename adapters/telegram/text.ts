/**
 * What the bot says, in one place: the status line of a job as it moves (queued, working, done), the help, and
 * small formatting helpers. Plain text only (no Markdown), so a file name can never break a message.
 */
import { DEFAULT_LOCALE, say, sentence } from '../../src/i18n/i18n.js';
import type { EnhanceProgress, EnhanceResult } from '../../src/types.js';

/** `12 s`, `3 min`, `1 h 5 min`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  const min = Math.round(s / 60);
  return min < 90 ? `${min} min` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** `1.2 MB`, or `840 KB` under a megabyte (a lowered limit would read `0.0 MB`). */
export function megabytes(bytes: number): string {
  return bytes < 1e6 ? `${Math.round(bytes / 1e3)} KB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A bar of ten cells. */
export function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.round((10 * done) / total) : 0;
  return `${'▓'.repeat(filled)}${'░'.repeat(10 - filled)}`;
}

/** How a job's messages name it: the album image it was, or nothing for a single image. */
export function label(albumIndex: number | undefined): string {
  return albumIndex ? `Album image ${albumIndex}: ` : '';
}

/**
 * The status message while a job waits.
 *
 * @example
 * queuedText(2, 40_000); // 'Queued: position 2, done in about 40 s.'
 */
export function queuedText(position: number, etaMs: number, prefix = ''): string {
  const where = position <= 1 ? 'next in line' : `position ${position}`;
  return `${prefix}Queued: ${where}, done in about ${duration(etaMs)}.`;
}

/**
 * The status message while a job runs: the bar, tiles and ETA; or, while its model is prepared for the first
 * time, that line (`Preparing the anime model, about a minute, once.`).
 */
export function progressText(progress: EnhanceProgress, prefix = ''): string {
  const { tilesDone, tilesTotal, etaMs, preparing } = progress;
  if (preparing) return `${prefix}${sentence(say(DEFAULT_LOCALE, preparing))}.`;
  return `${prefix}Enhancing ${bar(tilesDone, tilesTotal)} ${tilesDone}/${tilesTotal} tiles, about ${duration(etaMs)} left.`;
}

/** The status message once the answer is sent. */
export function doneText(result: EnhanceResult, prefix = ''): string {
  const { output, options } = result;
  const took = result.cached ? 'from the cache' : `in ${duration(result.ms.total + (result.ms.preview ?? 0) + (result.ms.render ?? 0))}`;
  return `${prefix}Done ${took}: ${output.width}x${output.height} (${options.scale}x, ${options.model}${options.tune === 'raw' ? ', raw' : ''}).`;
}

/** `/start` and `/help`. */
export function helpText(limits: { download: number; upload: number; maxPixels: number; queuedPerOwner: number; linked?: boolean }): string {
  const larger = limits.linked ? 'larger results are on the web page the answer links to' : 'larger results are sent at the largest scale that fits';
  return [
    'Send me an image and I send it back enhanced (RealESRGAN, 4x the size) as a PNG file, with a before/after picture.',
    '',
    'Best: send it as a file (📎 → File), so Telegram does not compress it first. Photos work too.',
    '',
    'Options, in the caption, or after /enhance when you reply to an earlier image:',
    '  fast – the quicker model (x4fast) instead of the best one (x4plus)',
    '  anime – the model for drawings, anime and illustrations: keeps thin lines and flat colours (anime fast: its quicker one)',
    '  2x, 3x – a smaller result than 4x',
    '  raw – the model output without the gentle touch-up',
    '  pdf – a PDF summary too',
    'Albums work: each image is a job of its own.',
    '',
    '/status – your jobs: position, progress, time left',
    '/cancel – cancel your jobs (or press Cancel under a job)',
    '',
    `Limits: ${megabytes(limits.download)} per image received, ${(limits.maxPixels / 1e6).toFixed(1)} MP, ` +
      `${megabytes(limits.upload)} per file I send back (${larger}), ` +
      `${limits.queuedPerOwner} jobs waiting per person.`,
  ].join('\n');
}

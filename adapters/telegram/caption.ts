/**
 * The options a person writes in a caption or after `/enhance`: `fast` (the quick model), `anime` (the scene for
 * drawings, anime and illustrations; `anime fast` its quick model), `2x` / `3x` / `4x`,
 * `raw` (the model's output without the gentle touch-up), `int8` / `fp32` (the precision: int8 is about twice as fast
 * on a CPU) and `pdf` (the PDF summary too). Other words are left
 * alone, so an ordinary caption does no harm.
 */
import type { EnhanceOptions } from '../../src/types.js';

/** What a caption asks for. */
export interface CaptionOptions {
  options: Partial<EnhanceOptions>;
  report: boolean;
}

/** The model `fast` asks for, and the default's name for `best`. */
export const FAST_MODEL = 'x4fast';
export const BEST_MODEL = 'x4plus';
/** The anime scene: `anime`, and `anime fast` (in either order, or `anime-fast`). */
export const ANIME_MODEL = 'anime';
export const ANIME_FAST_MODEL = 'anime-fast';

/** The model for the scene and speed words of a caption, or undefined when it names none. */
function modelFor(anime: boolean, fast: boolean, best: boolean): string | undefined {
  if (anime) return fast ? ANIME_FAST_MODEL : ANIME_MODEL;
  if (fast) return FAST_MODEL;
  if (best) return BEST_MODEL;
  return undefined;
}

/**
 * Reads the option words in `text` (any case, anywhere; a leading `/enhance` or `/enhance@bot` is skipped).
 *
 * @example
 * parseCaption('/enhance fast 2x'); // { options: { model: 'x4fast', scale: 2 }, report: false }
 * parseCaption('holiday, 3x pdf');  // { options: { scale: 3 }, report: true }
 * parseCaption('anime fast 2x');    // { options: { model: 'anime-fast', scale: 2 }, report: false }
 */
export function parseCaption(text: string | undefined): CaptionOptions {
  const result: CaptionOptions = { options: {}, report: false };
  const words = (text ?? '').toLowerCase().split(/[^a-z0-9@/]+/);
  const model = modelFor(words.includes('anime'), words.includes('fast'), words.includes('best'));
  if (model) result.options.model = model;
  for (const word of words) {
    if (/^[234]x$/.test(word) || /^x[234]$/.test(word)) result.options.scale = Number(word.replace('x', '')) as 2 | 3 | 4;
    else if (word === 'raw') result.options.tune = 'raw';
    else if (word === 'int8' || word === 'fp32') result.options.precision = word;
    else if (word === 'pdf') result.report = true;
  }
  return result;
}

/**
 * The options as short text for a button's data (Telegram allows 64 bytes): `f` fast, `b` best, `a` anime (`af`
 * anime fast), `r` raw, `p` pdf, `i` int8, `s` fp32 (single precision).
 *
 * @example
 * packOptions({ options: { model: 'x4fast', tune: 'raw' }, report: true }); // 'frp'
 */
export function packOptions(caption: CaptionOptions): string {
  const { model, tune, precision } = caption.options;
  const p = precision === 'int8' ? 'i' : precision === 'fp32' ? 's' : '';
  const m = { [FAST_MODEL]: 'f', [BEST_MODEL]: 'b', [ANIME_MODEL]: 'a', [ANIME_FAST_MODEL]: 'af' }[model ?? ''] ?? '';
  return `${m}${tune === 'raw' ? 'r' : ''}${p}${caption.report ? 'p' : ''}`;
}

/** The inverse of `packOptions`, with the scale a button chose. */
export function unpackOptions(packed: string, scale: 2 | 3 | 4): CaptionOptions {
  const options: Partial<EnhanceOptions> = { scale };
  const model = modelFor(packed.includes('a'), packed.includes('f'), packed.includes('b'));
  if (model) options.model = model;
  if (packed.includes('r')) options.tune = 'raw';
  if (packed.includes('i')) options.precision = 'int8';
  if (packed.includes('s')) options.precision = 'fp32';
  return { options, report: packed.includes('p') };
}

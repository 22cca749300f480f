/**
 * The options a person writes in a caption or after `/enhance`: `fast` (the quick model), `anime` (the scene for
 * drawings, anime and illustrations; `anime fast` its quick model), `2x` / `3x` / `4x`,
 * `raw` (the model's output without the gentle touch-up), `int8` / `fp32` (the precision: int8 is about twice as fast
 * on a CPU) and `pdf` (the PDF summary too). Other words are left
 * alone, so an ordinary caption does no harm.
 */
import { catalogue, LOCALES, type EnhanceOptions } from '../../src/index.js';

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

/** The option words that are not a scale, by what they ask for. */
type OptionWord = 'fast' | 'best' | 'anime' | 'raw' | 'pdf';
const OPTION_WORDS: readonly OptionWord[] = ['fast', 'best', 'anime', 'raw', 'pdf'];

/** Letters and digits of a word in a language that puts spaces between words: such a word counts only whole. */
const SPACED = /^[a-z0-9]+$/;
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Each option's words in every catalogue (`telegram.words`, space-separated), so a caption is read in any of
 * the languages, whatever the sender's own: `快速 2倍` asks what `fast 2x` asks. A word of Latin letters counts
 * only as a whole word (`breakfast` is not `fast`); one in Chinese, written without spaces, anywhere.
 */
const WORDS = (() => {
  const words = new Map<OptionWord, string[]>(OPTION_WORDS.map((w) => [w, []]));
  const scales: RegExp[] = [];
  for (const locale of LOCALES) {
    const section = (catalogue(locale).telegram as { words?: Record<string, string> } | undefined)?.words ?? {};
    for (const word of OPTION_WORDS) words.get(word)!.push(...(section[word] ?? '').toLowerCase().split(/\s+/).filter(Boolean));
    // `{{n}}x`: the number and its word, nothing else (a bare `{{n}}` would read any 2 as a scale).
    for (const pattern of (section.scale ?? '').toLowerCase().split(/\s+/).filter((p) => p.includes('{{n}}') && p !== '{{n}}')) {
      const spaced = SPACED.test(pattern.replace('{{n}}', ''));
      // `2x` is one word; Chinese may put a space between the number and 倍 or not: `2倍`, `2 倍`.
      const body = pattern.split('{{n}}').map(escapeRegExp).join(spaced ? '([234])' : '\\s*([234])\\s*');
      scales.push(spaced ? new RegExp(`(?:^|[^a-z0-9@/])${body}(?=$|[^a-z0-9@/])`) : new RegExp(body));
    }
  }
  return { words, scales };
})();

/**
 * Reads the option words in `text` (any case, anywhere, in any language there is a catalogue for; a leading
 * `/enhance` or `/enhance@bot` is skipped).
 *
 * @example
 * parseCaption('/enhance fast 2x'); // { options: { model: 'x4fast', scale: 2 }, report: false }
 * parseCaption('holiday, 3x pdf');  // { options: { scale: 3 }, report: true }
 * parseCaption('anime fast 2x');    // { options: { model: 'anime-fast', scale: 2 }, report: false }
 * parseCaption('动漫 快速 2倍');      // { options: { model: 'anime-fast', scale: 2 }, report: false }
 * parseCaption('2x webp');          // { options: { scale: 2, format: 'webp' }, report: false }
 */
export function parseCaption(text: string | undefined): CaptionOptions {
  const result: CaptionOptions = { options: {}, report: false };
  const lower = (text ?? '').toLowerCase();
  const tokens = new Set(lower.split(/[^a-z0-9@/]+/));
  const asks = (option: OptionWord) => WORDS.words.get(option)!.some((word) => (SPACED.test(word) ? tokens.has(word) : lower.includes(word)));
  const model = modelFor(asks('anime'), asks('fast'), asks('best'));
  if (model) result.options.model = model;
  // The last scale written wins, as before when the words were read in order.
  let scaleAt = -1;
  for (const pattern of WORDS.scales) {
    for (const match of lower.matchAll(new RegExp(pattern.source, 'g'))) {
      if (match.index >= scaleAt) [scaleAt, result.options.scale] = [match.index, Number(match[1]) as 2 | 3 | 4];
    }
  }
  if (asks('raw')) result.options.tune = 'raw';
  for (const word of ['int8', 'fp32'] as const) if (tokens.has(word)) result.options.precision = word;
  // The result's format by its own name, the same in every language (`jpg` is jpeg).
  for (const word of ['png', 'webp', 'jpeg', 'jpg', 'avif'] as const) if (tokens.has(word)) result.options.format = word === 'jpg' ? 'jpeg' : word;
  if (asks('pdf')) result.report = true;
  return result;
}

/**
 * The options as short text for a button's data (Telegram allows 64 bytes): `f` fast, `b` best, `a` anime (`af`
 * anime fast), `r` raw, `p` pdf, `i` int8, `s` fp32 (single precision), `w` webp, `j` jpeg, `v` avif.
 *
 * @example
 * packOptions({ options: { model: 'x4fast', tune: 'raw' }, report: true }); // 'frp'
 */
export function packOptions(caption: CaptionOptions): string {
  const { model, tune, precision } = caption.options;
  const p = precision === 'int8' ? 'i' : precision === 'fp32' ? 's' : '';
  const m = { [FAST_MODEL]: 'f', [BEST_MODEL]: 'b', [ANIME_MODEL]: 'a', [ANIME_FAST_MODEL]: 'af' }[model ?? ''] ?? '';
  const f = ({ webp: 'w', jpeg: 'j', avif: 'v' } as Record<string, string>)[caption.options.format ?? ''] ?? '';
  return `${m}${tune === 'raw' ? 'r' : ''}${p}${f}${caption.report ? 'p' : ''}`;
}

/** The inverse of `packOptions`, with the scale a button chose. */
export function unpackOptions(packed: string, scale: 2 | 3 | 4): CaptionOptions {
  const options: Partial<EnhanceOptions> = { scale };
  const model = modelFor(packed.includes('a'), packed.includes('f'), packed.includes('b'));
  if (model) options.model = model;
  if (packed.includes('r')) options.tune = 'raw';
  if (packed.includes('i')) options.precision = 'int8';
  if (packed.includes('s')) options.precision = 'fp32';
  if (packed.includes('w')) options.format = 'webp';
  if (packed.includes('j')) options.format = 'jpeg';
  if (packed.includes('v')) options.format = 'avif';
  return { options, report: packed.includes('p') };
}

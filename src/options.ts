/**
 * Defaults and validation for `EnhanceOptions`. Errors name the bad option and what is allowed.
 */
import { EnhanceError } from './errors.js';
import type { EnhanceOptions } from './types.js';

/**
 * The model chosen per job (src/pipeline/plan.ts): the scene's best model that finishes within the time target
 * on this machine. It never reaches the engine: admission (or the CLI) puts the concrete model in its place.
 */
export const AUTO_MODEL = 'auto';

export const DEFAULT_OPTIONS: EnhanceOptions = {
  model: AUTO_MODEL,
  scale: 4,
  tile: 'auto',
  tune: 'gentle',
  alpha: 'resize',
  device: 'auto',
  precision: 'fp32',
  format: 'png',
};

/** Output formats, the first the default. */
export const OUTPUT_FORMATS = ['png', 'webp', 'jpeg', 'avif'] as const;
/** Target long sides people are offered (`size`): 2K, 4K UHD and 8K UHD. */
export const SIZE_PRESETS = [2048, 3840, 7680] as const;
export const MIN_SIZE = 16;
export const MAX_SIZE = 16384;

/** Smallest tile other than 0: below this the overlap would outweigh the tile. */
export const MIN_TILE = 16;
export const MAX_TILE = 4096;

function oneOf<T>(key: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new EnhanceError(`${key} must be ${allowed.join(', ').replace(/, ([^,]*)$/, ' or $1')} (got ${JSON.stringify(value)})`, 'options');
  }
  return value as T;
}

/**
 * `options` laid over `defaults`, a field left undefined keeping its default. Before, a door that passed
 * `{ model: undefined }` (a web upload naming no model) overwrote the configured default: with
 * `ENHANCER_MODEL=x4fast` such an upload ran x4plus, 15x heavier.
 *
 * @example
 * withDefaults({ model: 'x4fast', scale: 4 }, { model: undefined, scale: 2 }); // { model: 'x4fast', scale: 2 }
 */
export function withDefaults<T extends object>(defaults: Partial<T> = {}, options: Partial<T> = {}): Partial<T> {
  return { ...defaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Partial<T>;
}

/** Fills in defaults and checks every option; strings as typed on a command line are accepted. */
export function normalizeOptions(input: Partial<Record<keyof EnhanceOptions, unknown>> = {}): EnhanceOptions {
  const o = withDefaults<Record<string, unknown>>(DEFAULT_OPTIONS as unknown as Record<string, unknown>, input) as Record<keyof EnhanceOptions, unknown>;
  if (typeof o.model !== 'string' || !/^[\w.-]+$/.test(o.model)) {
    throw new EnhanceError(`model must be auto or a model name such as x4plus (got ${JSON.stringify(o.model)})`, 'options');
  }
  const scale = oneOf('scale', Number(o.scale), [1, 2, 3, 4] as const);
  let size: number | undefined;
  if (o.size !== undefined && o.size !== null && o.size !== '') {
    size = Number(o.size);
    if (!Number.isInteger(size) || size < MIN_SIZE || size > MAX_SIZE) {
      throw new EnhanceError(`size must be a whole number of pixels from ${MIN_SIZE} to ${MAX_SIZE}, the output's long side (got ${JSON.stringify(o.size)})`, 'options');
    }
  }
  // "jpg" is what a file name says; the option keeps one spelling.
  const format = oneOf('format', o.format === 'jpg' ? 'jpeg' : o.format, OUTPUT_FORMATS);
  let quality: number | undefined;
  if (o.quality !== undefined && o.quality !== null && o.quality !== '') {
    quality = Number(o.quality);
    if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
      throw new EnhanceError(`quality must be a whole number from 1 to 100 (got ${JSON.stringify(o.quality)})`, 'options');
    }
  }
  let tile: EnhanceOptions['tile'] = 'auto';
  if (o.tile !== 'auto') {
    const n = Number(o.tile);
    if (!Number.isInteger(n) || (n !== 0 && (n < MIN_TILE || n > MAX_TILE))) {
      throw new EnhanceError(`tile must be auto, 0 or a whole number from ${MIN_TILE} to ${MAX_TILE} (got ${JSON.stringify(o.tile)})`, 'options');
    }
    tile = n;
  }
  return {
    model: o.model,
    scale,
    tile,
    tune: oneOf('tune', o.tune, ['gentle', 'raw'] as const),
    alpha: oneOf('alpha', o.alpha, ['resize', 'model'] as const),
    device: oneOf('device', o.device, ['auto', 'cpu', 'cuda'] as const),
    precision: oneOf('precision', o.precision, ['fp32', 'int8', 'auto'] as const),
    format,
    // Left out rather than undefined, so a stored job's options and the signature stay as they were.
    ...(size === undefined ? {} : { size }),
    ...(quality === undefined ? {} : { quality }),
  };
}

/**
 * The output's width and height for an input of `width` x `height`: `size` sets the long side exactly (the short
 * side rounded, at least 1), else `scale` times the input, for a model that enlarges `modelScale` times.
 *
 * @example
 * outputSize(4000, 3000, { scale: 4, size: 2048 }); // { width: 2048, height: 1536 }
 */
export function outputSize(width: number, height: number, options: Pick<EnhanceOptions, 'scale' | 'size'>, modelScale = 4): { width: number; height: number } {
  if (options.size !== undefined) {
    const long = Math.max(width, height);
    const side = (n: number) => (n === long ? options.size! : Math.max(1, Math.round((n * options.size!) / long)));
    return { width: side(width), height: side(height) };
  }
  return { width: Math.round((width * options.scale * modelScale) / 4), height: Math.round((height * options.scale * modelScale) / 4) };
}

/** The file name extension of a format: `.jpg` for jpeg, as most people write it. */
export const formatExtension = (format: EnhanceOptions['format']): string => (format === 'jpeg' ? '.jpg' : `.${format}`);

/** The media type of a format. */
export const formatType = (format: EnhanceOptions['format']): string => `image/${format}`;

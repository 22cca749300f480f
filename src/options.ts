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
};

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
  const scale = oneOf('scale', Number(o.scale), [2, 3, 4] as const);
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
  };
}

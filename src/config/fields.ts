/**
 * Zod schemas for the kinds of value a config section holds. Each accepts the value as written in the JSON file
 * and as the string an environment variable holds ("1500", "off"), and carries one phrase saying what is allowed,
 * which the loader puts in its error line after the key: `limits.queuedPerOwner must be a whole number from 1
 * to 10000 (got 0 from config/enhancer.json)`.
 */
import { z } from 'zod';
import { normalizeOptions } from '../options.js';
import type { EnhanceOptions } from '../types.js';

/**
 * A whole number from `min` to `max`; a variable's "1500" counts.
 *
 * @example
 * const schema = z.strictObject({ maxPerMinute: wholeNumber(1, 600) });
 */
export function wholeNumber(min: number, max: number) {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.preprocess(
    (value: number | string) => (typeof value === 'string' && value.trim() !== '' ? Number(value) : value),
    z.number({ error }).int({ error }).min(min, { error }).max(max, { error }),
  );
}

/**
 * true or false; a variable may also say 1/0, on/off or yes/no, in any case.
 *
 * @example
 * const schema = z.strictObject({ enabled: flag() });
 */
export function flag() {
  return z.union([z.boolean(), z.stringbool({ truthy: ['true', '1', 'on', 'yes'], falsy: ['false', '0', 'off', 'no'] })], {
    error: 'must be true or false',
  });
}

/**
 * One of a fixed list of words.
 *
 * @example
 * const schema = z.strictObject({ logLevel: oneOf(['info', 'debug']) });
 */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `must be one of ${values.join(', ')}` });
}

/** The schemas `folder()` made: the loader turns their values into absolute paths (see `isFolder`). */
const folders = new WeakSet<z.ZodType>();

/**
 * A folder path. The loader makes it absolute: a relative path from the file or the defaults is taken from the
 * project folder, one from a variable from the current folder (the user's own, typed where they started it).
 * Use it directly as an object's value (`.optional()` and `.default()` around it are fine).
 *
 * @example
 * const schema = z.strictObject({ downloads: folder() });
 */
export function folder() {
  const error = 'must be a folder path';
  const schema = z.string({ error }).refine((value) => value.trim() !== '', { error });
  folders.add(schema);
  return schema;
}

/** Whether `schema` is one `folder()` made. */
export function isFolder(schema: z.ZodType): boolean {
  return folders.has(schema);
}

/**
 * One request option (`model`, `scale`, `tile`, `tune`, `alpha`, `device`), checked by `normalizeOptions`
 * itself, so the config and a person's request follow the same rules. Its message already shows the value:
 * `device: device must be auto, cpu or cuda (got "gpu") from $ENHANCER_DEVICE`.
 *
 * @example
 * const schema = z.strictObject({ model: requestOption('model').optional() });
 */
export function requestOption<K extends keyof EnhanceOptions>(name: K) {
  return z.preprocess((value: EnhanceOptions[K] | string, ctx) => {
    try {
      return normalizeOptions({ [name]: value })[name];
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message, params: { showsValue: true } });
      return z.NEVER;
    }
  }, z.custom<EnhanceOptions[K]>());
}

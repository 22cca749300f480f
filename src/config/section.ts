/**
 * How a part of the house that the core does not know (an adapter) declares its own config: a top-level key in
 * the file, a zod schema for what lies under it, its defaults and the environment variables that set its keys.
 * `loadConfig({ sections })` lays defaults, file and variables over each other for the core and every section
 * together, and checks them all with the same one-line errors.
 */
import type { z } from 'zod';

/** Dotted paths to the keys of a config object, down through nested objects (not into records). */
export type KeyPath<T> = T extends readonly unknown[]
  ? never
  : T extends object
    ? string extends keyof T
      ? never
      : { [K in keyof T & string]-?: K | (NonNullable<T[K]> extends object ? `${K}.${KeyPath<NonNullable<T[K]>>}` : never) }[keyof T & string]
    : never;

/** One section of the config, under its own top-level key. Declare it with `defineSection`. */
export interface ConfigSection<Key extends string = string, Schema extends z.ZodObject = z.ZodObject> {
  /** The top-level key in the file, e.g. `telegram`; also what `config.sections.<key>` is called. */
  readonly key: Key;
  /**
   * What lies under the key. Values as a file holds them and strings as variables hold them must both pass
   * (see the helpers in src/config/fields.ts); a value's message says what is allowed, after the key: `must be
   * …`. A key named like a secret (token, secret, password, apiKey) never has its value shown in an error.
   */
  readonly schema: Schema;
  /** Every key's default, as it would be written in the file. A record (an object of any keys) in the file replaces it whole. */
  readonly defaults: z.input<Schema>;
  /** Environment variables and the key (inside the section, dotted) each one sets: `{ TELEGRAM_TOKEN: 'token' }`. */
  readonly env?: Readonly<Record<string, KeyPath<z.input<Schema>>>>;
}

/** Any section, whatever its key and schema (`any`: a specific section's variables would not fit a general one's). */
export type AnySection = ConfigSection<string, any>;

/** The checked value of one section: what `config.sections.<key>` holds. */
export type SectionValue<S extends AnySection> = z.output<S['schema']>;

/** `config.sections` for a list of sections: each one's checked value under its key. */
export type SectionValues<Sections extends readonly AnySection[]> = {
  [S in Sections[number] as S['key']]: SectionValue<S>;
};

/**
 * Declares a section; it only checks the types (the key is kept as a literal, defaults and variables are
 * checked against the schema).
 *
 * @example
 * export const telegramSection = defineSection({
 *   key: 'telegram',
 *   schema: z.strictObject({ enabled: flag(), token: z.string(), maxQueued: wholeNumber(1, 100) }),
 *   defaults: { enabled: false, token: '', maxQueued: 3 },
 *   env: { TELEGRAM_TOKEN: 'token' },
 * });
 * const config = loadConfig({ sections: [telegramSection] });
 * config.sections.telegram.token; // string
 */
export function defineSection<const Key extends string, Schema extends z.ZodObject>(section: ConfigSection<Key, Schema>): ConfigSection<Key, Schema> {
  return section;
}

/**
 * Every word a person reads comes from here: one catalogue per language in `src/i18n/catalogues/`, named by its
 * BCP 47 tag (`en.json`, `zh-Hans.json`), read through i18next. Adding a language is adding one file; a key a
 * catalogue lacks is taken from English (`en.json`), which has every key (test/i18n.test.ts checks).
 *
 * i18next rather than a hand-made lookup: it brings CLDR plurals (`_one`/`_other` keys, by `Intl.PluralRules`),
 * nested keys, fallback and `{{value, number}}` formatting; our own formatters add sizes and durations.
 *
 * @example
 * const locale = resolveLocale(['zh-CN']); // 'zh-Hans'
 * say(locale, { key: 'reason.empty' }); // '文件是空的（0 字节）'
 */
import fs from 'node:fs';
import path from 'node:path';
import i18next, { type i18n as I18n } from 'i18next';
import { projectRoot } from '../paths.js';

/** A catalogue's tag, e.g. `en` or `zh-Hans`: what `resolveLocale` returns and a request stores. */
export type Locale = string;

/** The language every catalogue falls back to, and the one the logs are written in. */
export const DEFAULT_LOCALE: Locale = 'en';

/** A value a message is built from: plain data, so it can be stored with a job and said later in any language. */
/** `ordinal: true` with a `count` picks an ordinal form (`_ordinal_one`: `1st`). */
export type TextValue = string | number | boolean | readonly string[] | Text;

/**
 * A message not yet said in a language: a catalogue key and its values. A value that is itself a `Text` is said in
 * the same language first, so a reason can sit inside a sentence.
 *
 * @example
 * const text: Text = { key: 'reason.fileTooLarge', values: { bytes: 30e6, limit: 20e6 } };
 */
export interface Text {
  key: string;
  values?: Record<string, TextValue>;
}

export const CATALOGUE_DIR = path.join(projectRoot, 'src', 'i18n', 'catalogues');

type Catalogue = Record<string, unknown>;

function loadCatalogues(dir: string): Map<Locale, Catalogue> {
  const catalogues = new Map<Locale, Catalogue>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const tag = file.slice(0, -'.json'.length);
    let canonical: string;
    try {
      [canonical] = Intl.getCanonicalLocales(tag);
    } catch {
      throw new Error(`${path.join(dir, file)}: "${tag}" is not a BCP 47 language tag (name a catalogue e.g. en.json or zh-Hans.json)`);
    }
    if (canonical !== tag) throw new Error(`${path.join(dir, file)}: name it ${canonical}.json (the canonical form of ${tag})`);
    try {
      catalogues.set(tag, JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Catalogue);
    } catch (error) {
      throw new Error(`${path.join(dir, file)}: not valid JSON (${(error as Error).message})`);
    }
  }
  if (!catalogues.has(DEFAULT_LOCALE)) throw new Error(`${dir}: ${DEFAULT_LOCALE}.json is missing; every other catalogue falls back to it`);
  return catalogues;
}

/** The languages of one catalogue folder, and how to say things in them. */
export interface Languages {
  /** The languages there are catalogues for, English first. */
  readonly locales: readonly Locale[];
  /** The raw catalogue of `locale`, English for one there is none of. */
  catalogue(locale: Locale): Catalogue;
  say(locale: Locale, text: Text): string;
  /** Whether English (so every catalogue, by fallback) has a line for `key`: for words only some things have. */
  has(key: string): boolean;
  formatSize(locale: Locale, bytes: number): string;
  formatDuration(locale: Locale, ms: number): string;
  matchLocale(tag: string | null | undefined): Locale | undefined;
}

const numberFormat = (locale: Locale, digits: number) =>
  new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits });

const isText = (value: unknown): value is Text =>
  typeof value === 'object' && value !== null && typeof (value as Text).key === 'string';

/**
 * Reads every catalogue in `dir` (the service uses `CATALOGUE_DIR`; a test can point at its own folder).
 *
 * @example
 * const languages = loadLanguages('/tmp/catalogues'); // en.json and fr.json there
 * languages.matchLocale('fr-CA'); // 'fr'
 */
export function loadLanguages(dir: string): Languages {
  const catalogues = loadCatalogues(dir);
  const locales = [DEFAULT_LOCALE, ...[...catalogues.keys()].filter((l) => l !== DEFAULT_LOCALE)];
  const instance: I18n = i18next.createInstance();
  void instance.init({
    resources: Object.fromEntries([...catalogues].map(([tag, resources]) => [tag, { translation: resources }])),
    lng: DEFAULT_LOCALE,
    fallbackLng: DEFAULT_LOCALE,
    supportedLngs: locales,
    // `zh-Hans` is a catalogue of its own, not `zh` plus a region: look it up as written.
    load: 'currentOnly',
    initAsync: false,
    interpolation: { escapeValue: false },
    // i18next caches its built-in formatters (`{{seconds, number}}`) under the language and every value of the
    // call, so each distinct sentence kept an Intl.NumberFormat and two closures for the life of the process
    // (issue 24: 114 more after 200 more hot-folder jobs, in heap snapshots of `enhancer bench --leak`). Made
    // anew, one costs microseconds.
    cacheInBuiltFormats: false,
    returnNull: false,
    returnEmptyString: false,
    showSupportNotice: false,
  } as Parameters<I18n['init']>[0]);
  const lngOf = (locale: Locale) => (catalogues.has(locale) ? locale : DEFAULT_LOCALE);

  const formatSize = (locale: Locale, bytes: number): string => {
    const lng = lngOf(locale);
    if (bytes < 1e6) return instance.t('unit.kilobytes', { lng, n: numberFormat(lng, 0).format(Math.round(bytes / 1e3)) });
    if (bytes < 1e9) return instance.t('unit.megabytes', { lng, n: numberFormat(lng, 1).format(bytes / 1e6) });
    return instance.t('unit.gigabytes', { lng, n: numberFormat(lng, 1).format(bytes / 1e9) });
  };
  const formatMegapixels = (locale: Locale, pixels: number): string =>
    instance.t('unit.megapixels', { lng: lngOf(locale), n: numberFormat(lngOf(locale), 1).format(pixels / 1e6) });
  const formatDuration = (locale: Locale, ms: number): string => {
    const lng = lngOf(locale);
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return instance.t('unit.seconds', { lng, n: s });
    const min = Math.round(s / 60);
    if (min < 90) return instance.t('unit.minutes', { lng, n: min });
    return instance.t('unit.hoursMinutes', { lng, h: Math.floor(min / 60), m: min % 60 });
  };
  // `{{bytes, size}}`, `{{pixels, megapixels}}`, `{{ms, duration}}` in a catalogue.
  instance.services.formatter?.add('size', (value, lng) => formatSize(lng ?? DEFAULT_LOCALE, Number(value)));
  instance.services.formatter?.add('megapixels', (value, lng) => formatMegapixels(lng ?? DEFAULT_LOCALE, Number(value)));
  instance.services.formatter?.add('duration', (value, lng) => formatDuration(lng ?? DEFAULT_LOCALE, Number(value)));

  const say = (locale: Locale, text: Text): string => {
    const values: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(text.values ?? {})) values[name] = isText(value) ? say(locale, value) : value;
    const lng = lngOf(locale);
    // A key no catalogue has is a bug; it is said as the catalogue's line for that, not as the key's bare name.
    if (!instance.exists(text.key, { ...values, lng })) return instance.t('missing', { lng, key: text.key });
    return instance.t(text.key, { ...values, lng });
  };

  const matchLocale = (tag: string | null | undefined): Locale | undefined => {
    if (!tag) return undefined;
    let asked: Intl.Locale;
    try {
      asked = new Intl.Locale(tag.trim().replace(/_/g, '-'));
    } catch {
      return undefined;
    }
    const exact = locales.find((l) => l.toLowerCase() === asked.toString().toLowerCase());
    if (exact) return exact;
    const full = asked.maximize();
    const candidates = locales.map((l) => ({ tag: l, full: new Intl.Locale(l).maximize() })).filter((c) => c.full.language === full.language);
    // `zh-CN` is `zh-Hans-CN`, so `zh-Hans`; `zh-TW` is `zh-Hant-TW`, which takes `zh-Hans` until there is a `zh-Hant`.
    return (candidates.find((c) => c.full.script === full.script) ?? candidates[0])?.tag;
  };

  return {
    locales,
    catalogue: (locale) => catalogues.get(locale) ?? catalogues.get(DEFAULT_LOCALE)!,
    say,
    has: (key) => instance.exists(key, { lng: DEFAULT_LOCALE }),
    formatSize,
    formatDuration,
    matchLocale,
  };
}

const languages = loadLanguages(CATALOGUE_DIR);

/** The languages there are catalogues for, English first. */
export const LOCALES: readonly Locale[] = languages.locales;

/** The raw catalogue of `locale` (for the web page, which says its words in the browser). */
export const catalogue = (locale: Locale): Catalogue => languages.catalogue(locale);

/**
 * A size in bytes as people read it: `840 KB` under a megabyte, `2.4 MB`, `1.2 GB` (decimal units, as every
 * message about a file's size writes them).
 */
export const formatSize = (locale: Locale, bytes: number): string => languages.formatSize(locale, bytes);

/** A span of time: `12 s` under 90 s, `3 min` under 90 min, else `1 h 5 min`. */
export const formatDuration = (locale: Locale, ms: number): string => languages.formatDuration(locale, ms);

/**
 * Says `text` in `locale` (English where its catalogue lacks the key, or for a locale there is no catalogue of).
 *
 * @example
 * say('zh-Hans', { key: 'reason.ownerLimit', values: { count: 3, limit: 2 } });
 */
export const say = (locale: Locale, text: Text): string => languages.say(locale, text);

/**
 * Whether there is a line for `key` (in English, so in every language by fallback): for words only some things
 * have, such as the built-in models' uses.
 *
 * @example
 * hasText('web.models.x4plus.label'); // true
 * hasText('web.models.my-own-model.label'); // false
 */
export const hasText = (key: string): boolean => languages.has(key);

/**
 * `say` bound to one language, for a door that writes many messages to one person.
 *
 * @example
 * const t = translator('zh-Hans');
 * t('reason.ownerLimit', { count: 3, limit: 2 });
 */
export function translator(locale: Locale): (key: string, values?: Record<string, TextValue>) => string {
  return (key, values) => say(locale, { key, values });
}

/** `line` as the start of a sentence: its first letter upper-case where the language has cases (`Not taken: …`). */
export function sentence(line: string, locale: Locale = DEFAULT_LOCALE): string {
  return line.charAt(0).toLocaleUpperCase(locale) + line.slice(1);
}

/** A catalogue for `tag` if there is one: the same tag, else the same language and script, else the same language. */
export const matchLocale = (tag: string | null | undefined): Locale | undefined => languages.matchLocale(tag);

/**
 * The catalogue for the first of `tags` that has one (a person's own setting first, then broader ones), else
 * `fallback`.
 *
 * @example
 * resolveLocale(['zh-hans']); // 'zh-Hans'
 * resolveLocale([undefined, 'en-GB']); // 'en'
 * resolveLocale(['tlh']); // 'en'
 */
export function resolveLocale(tags: ReadonlyArray<string | null | undefined>, fallback: Locale = DEFAULT_LOCALE): Locale {
  for (const tag of tags) {
    const match = matchLocale(tag);
    if (match) return match;
  }
  return fallback;
}

/** A language's own name for itself, for a language switch: `English`, `简体中文`. */
export function languageName(locale: Locale): string {
  return new Intl.DisplayNames([locale], { type: 'language' }).of(locale) ?? locale;
}

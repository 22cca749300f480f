/**
 * The web door's language: the visitor's remembered choice (the `lang` cookie the page's switch sets) first, else
 * the browser's `Accept-Language`, else English. Pages are rendered in it on the server (their `{{name}}` holes
 * filled from the catalogue's `web` section), and the words the page's script needs travel inside the page as a
 * JSON data block, so there is one catalogue and no copy of it in the script.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { fastifyCookie } from '@fastify/cookie';
import { catalogue, DEFAULT_LOCALE, hasText, languageName, LOCALES, matchLocale, resolveLocale, say, type Locale, type TextValue } from '../../src/index.js';

/** A model as the page offers it: by use (`Photos, fast`), its architecture for the summary. */
export interface ModelChoice {
  name: string;
  label: string;
  architecture: string;
}

/** The cookie that remembers the visitor's choice of language (set by the page, read by the server). */
export const LANG_COOKIE = 'lang';

/**
 * The language tags of an `Accept-Language` header, most wanted first (by q-value, then by order); tags with
 * `q=0` (not wanted) and `*` are left out.
 *
 * @example
 * acceptedLanguages('en;q=0.5, zh-CN, fr;q=0'); // ['zh-CN', 'en']
 */
export function acceptedLanguages(header: string | undefined): string[] {
  const entries: Array<{ tag: string; q: number; at: number }> = [];
  for (const [at, part] of (header ?? '').split(',').entries()) {
    const [tag, ...params] = part.trim().split(';');
    if (!tag || tag === '*') continue;
    let q = 1;
    for (const param of params) {
      const [name, value] = param.trim().split('=');
      if (name?.trim().toLowerCase() === 'q') q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(value?.trim() ?? '') ? Number(value) : 0;
    }
    if (q > 0) entries.push({ tag: tag.trim(), q, at });
  }
  return entries.sort((a, b) => b.q - a.q || a.at - b.at).map((e) => e.tag);
}

/**
 * The language to answer a request in: its `lang` cookie when that names a catalogue, else the first language of
 * its `Accept-Language` there is a catalogue for, else English.
 *
 * @example
 * localeOfRequest({ 'accept-language': 'zh-CN,zh;q=0.9,en;q=0.8' }); // 'zh-Hans'
 * localeOfRequest({ cookie: 'lang=en', 'accept-language': 'zh-CN' }); // 'en'
 */
export function localeOfRequest(headers: IncomingHttpHeaders): Locale {
  const chosen = matchLocale(fastifyCookie.parse(headers.cookie ?? '')[LANG_COOKIE]);
  return chosen ?? resolveLocale(acceptedLanguages(headers['accept-language']), DEFAULT_LOCALE);
}

/** `say` for the door's own words: `web.<name>`. */
export function webSay(locale: Locale, name: string, values?: Record<string, TextValue>): string {
  return say(locale, { key: `web.${name}`, values });
}

/**
 * The manifest's models as the page offers them, in `locale`. One the catalogue has no line for (added to the
 * manifest since) goes by its name, and its manifest description is its architecture.
 *
 * @example
 * modelChoices('en', [{ name: 'x4fast', description: '…' }]); // [{ name: 'x4fast', label: 'Photos, fast', architecture: 'RealESRGAN x4 compact (…)' }]
 */
export function modelChoices(locale: Locale, models: ReadonlyArray<{ name: string; description: string }>): ModelChoice[] {
  return models.map((m) =>
    hasText(`web.models.${m.name}.label`)
      ? { name: m.name, label: webSay(locale, `models.${m.name}.label`), architecture: webSay(locale, `models.${m.name}.architecture`) }
      : { name: m.name, label: m.name, architecture: m.description },
  );
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

type Tree = { [key: string]: unknown };
/** `over` laid over `base`, key by key: a catalogue lacking a key keeps English's. */
function merged(base: unknown, over: unknown): unknown {
  if (typeof base !== 'object' || base === null) return typeof over === typeof base ? over : base;
  const out: Tree = { ...(base as Tree) };
  for (const [key, value] of Object.entries((over ?? {}) as Tree)) out[key] = key in out ? merged(out[key], value) : value;
  return out;
}

/**
 * What the page's script says things with: its language and the catalogue sections it names (`web`, the units
 * for sizes, and the one core reason it says itself), English filled in where the language lacks a key.
 */
export function pageWords(locale: Locale): object {
  const pick = (l: Locale) => {
    const c = catalogue(l) as Tree;
    return { web: c.web, unit: c.unit, reason: { fileTooLarge: (c.reason as Tree | undefined)?.fileTooLarge } };
  };
  return { lang: locale, ...(merged(pick(DEFAULT_LOCALE), locale === DEFAULT_LOCALE ? {} : pick(locale)) as object) };
}

/** The language switch: every catalogue by its own name, the page's language chosen. */
function languageSwitch(locale: Locale): string {
  const options = LOCALES.map((l) => `<option value="${escapeHtml(l)}"${l === locale ? ' selected' : ''}>${escapeHtml(languageName(l))}</option>`).join('');
  return `<label class="lang"><span>${escapeHtml(webSay(locale, 'language'))}</span> <select id="lang" name="lang">${options}</select></label><script type="module" src="/static/language.js"></script>`;
}

/**
 * A page template in `locale`: `{{name}}` is `web.<name>` said and HTML-escaped, `{{lang}}` the language tag,
 * `{{switch}}` the language switch and `{{words}}` the script's words as a JSON data block (not run, so the
 * strict CSP allows it; `<` escaped so no text can end the block). `given` fills holes with lines said already.
 *
 * @example
 * renderPage('<html lang="{{lang}}"><h1>{{title}}</h1>', 'zh-Hans'); // '<html lang="zh-Hans"><h1>图片增强</h1>'
 */
export function renderPage(template: string, locale: Locale, given: Record<string, string> = {}): string {
  return template.replace(/{{(\w+)}}/g, (_, name: string) => {
    if (Object.hasOwn(given, name)) return escapeHtml(given[name]);
    if (name === 'lang') return escapeHtml(locale);
    if (name === 'switch') return languageSwitch(locale);
    if (name === 'words') return `<script type="application/json" id="words">${JSON.stringify(pageWords(locale)).replace(/</g, '\\u003c')}</script>`;
    return escapeHtml(webSay(locale, name));
  });
}

/** A plain page that says one thing, and nothing else: no file, no job data. */
export function plainPage(locale: Locale, title: string, text: string): string {
  return renderPage(
    '<!doctype html><html lang="{{lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{plainTitle}}</title><link rel="icon" href="/static/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/static/app.css"></head><body><main class="plain">{{switch}}<h1>{{plainTitle}}</h1><p id="reason">{{plainText}}</p><p><a href="/">{{enhanceImage}}</a></p></main></body></html>',
    locale,
    { plainTitle: title, plainText: text },
  );
}

/** `7d`, `12h`, `30m`, `90s` as words in `locale`: `7 days`, `7 天`. */
export function describeDuration(locale: Locale, ms: number): string {
  for (const [unit, size] of [['days', 86_400_000], ['hours', 3_600_000], ['minutes', 60_000]] as const) {
    if (ms >= size && ms % size === 0) return webSay(locale, unit, { count: ms / size });
  }
  return webSay(locale, 'seconds', { count: Math.round(ms / 1000) });
}

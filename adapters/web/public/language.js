// The page's language: its words (the catalogue's, sent inside the page by the server, see
// adapters/web/language.ts) and the language switch, which remembers the choice in a cookie and reloads.

const block = document.getElementById('words');
/** The catalogue sections this page says things with, in its language (English where that lacks a key). */
const words = block ? JSON.parse(block.textContent) : { lang: document.documentElement.lang || 'en' };
export const lang = words.lang;

/** A size as the server says it (src/i18n/i18n.ts formatSize), with the catalogue's units. */
export function size(bytes) {
  const number = (value, digits) => new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
  if (bytes < 1e6) return fill(words.unit.kilobytes, { n: number(Math.round(bytes / 1e3), 0) });
  if (bytes < 1e9) return fill(words.unit.megabytes, { n: number(bytes / 1e6, 1) });
  return fill(words.unit.gigabytes, { n: number(bytes / 1e9, 1) });
}

function fill(line, values) {
  return line.replace(/{{\s*(\w+)\s*(?:,\s*(\w+)\s*)?}}/g, (_, name, format) => {
    const value = values[name];
    return format === 'size' ? size(Number(value)) : String(value ?? '');
  });
}

const lookup = (key) => {
  const line = key.split('.').reduce((node, part) => node?.[part], words);
  return typeof line === 'string' ? line : undefined;
};

/** Whether the page has a line for `key` (the catalogue names some things only: the built-in devices, say). */
export const has = (key) => lookup(key) !== undefined;

/**
 * `key` (`web.downloadPng`) said with `values`: `{{name}}` and `{{bytes, size}}` holes, as the catalogue has them.
 * With a `count`, the language's plural form of it (`web.device_one`, `web.device_other`), as i18next picks them.
 * @example t('web.downloadSized', { format: 'PNG', width: 256, height: 192, size: '84 KB' })
 */
export function t(key, values = {}) {
  let line = lookup(key);
  if (line === undefined && typeof values.count === 'number') {
    line = lookup(`${key}_${new Intl.PluralRules(lang).select(values.count)}`) ?? lookup(`${key}_other`);
  }
  return line === undefined ? key : fill(line, values);
}

// The switch: the choice is kept a year in a cookie the server reads, and the page comes again in that language.
const choose = document.getElementById('lang');
choose?.addEventListener('change', () => {
  document.cookie = `lang=${encodeURIComponent(choose.value)}; Path=/; Max-Age=31536000; SameSite=Lax`;
  location.reload();
});

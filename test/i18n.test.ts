/**
 * The catalogues: every language has every key English has (and no other), with the same placeholders; a key
 * a catalogue lacks is said in English, never as its name; each key the code names exists; a new language is
 * one file; a person's language tag finds its catalogue.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnhanceError, reasonTextOf } from '../src/errors.js';
import { CATALOGUE_DIR, LOCALES, formatDuration, formatSize, loadLanguages, resolveLocale, say } from '../src/i18n/i18n.js';

type Tree = { [key: string]: string | Tree };
const read = (locale: string) => JSON.parse(fs.readFileSync(path.join(CATALOGUE_DIR, `${locale}.json`), 'utf8')) as Tree;

/** key → its text, plural forms (`_one`, `_other`…) folded into one key, as languages have different forms. */
function flatten(tree: Tree, prefix = '', out = new Map<string, string[]>()): Map<string, string[]> {
  for (const [name, value] of Object.entries(tree)) {
    const key = `${prefix}${name}`;
    if (typeof value === 'string') {
      const base = key.replace(/_(zero|one|two|few|many|other)$/, '');
      out.set(base, [...(out.get(base) ?? []), value]);
    } else flatten(value, `${key}.`, out);
  }
  return out;
}
const placeholders = (texts: string[]) => [...new Set(texts.flatMap((t) => [...t.matchAll(/{{\s*(\w+)/g)].map((m) => m[1])))].sort();

describe('catalogues', () => {
  const english = flatten(read('en'));

  it('has English and Simplified Chinese', () => {
    expect(LOCALES).toEqual(['en', 'zh-Hans']);
  });

  it.each(LOCALES.filter((l) => l !== 'en'))('%s has exactly the keys of en.json, with the same placeholders', (locale) => {
    const other = flatten(read(locale));
    const missing = [...english.keys()].filter((k) => !other.has(k));
    const extra = [...other.keys()].filter((k) => !english.has(k));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    const differing = [...english].filter(([key, texts]) => placeholders(texts).join() !== placeholders(other.get(key)!).join()).map(([key]) => key);
    expect(differing).toEqual([]);
  });

  it('every key the code names is in en.json', () => {
    const sections = read('en');
    const named = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (/\.(ts|js)$/.test(entry.name)) {
          const code = fs.readFileSync(file, 'utf8');
          // `{ key: 'reason.empty' }` and `t('telegram.help')`: a catalogue section, a dot, a name.
          for (const m of code.matchAll(/(?:\bkey: |\bt\()'(\w+)\.([\w.]+)'/g)) if (m[1] in sections) named.add(`${m[1]}.${m[2]}`);
        }
      }
    };
    for (const dir of ['src', 'adapters']) walk(path.join(CATALOGUE_DIR, '..', '..', '..', dir));
    expect(named.size).toBeGreaterThan(20);
    expect([...named].filter((key) => !english.has(key))).toEqual([]);
  });
});

describe('saying things', () => {
  it('uses each language’s plurals and number formats', () => {
    expect(say('en', { key: 'reason.ownerLimit', values: { count: 1, limit: 2 } })).toBe(
      'you already have 1 image in the queue (the limit is 2): wait for one to finish or cancel one',
    );
    expect(say('en', { key: 'reason.ownerLimit', values: { count: 3, limit: 2 } })).toMatch(/^you already have 3 images in/);
    expect(say('zh-Hans', { key: 'reason.ownerLimit', values: { count: 3, limit: 2 } })).toBe('你已有 3 张图片在队列中（上限为 2）：请等待其中一张完成，或取消一张');
    expect(say('zh-Hans', { key: 'reason.fileTooLarge', values: { bytes: 31_450_000, limit: 999_000 } })).toBe('文件大小为 31.5 MB，超过了 999 KB 的上限');
    expect([formatDuration('en', 45_000), formatDuration('en', 5_400_000), formatDuration('zh-Hans', 180_000)]).toEqual(['45 s', '1 h 30 min', '3 分钟']);
    expect([formatSize('en', 840_000), formatSize('en', 2_400_000), formatSize('en', 4_300_000_000)]).toEqual(['840 KB', '2.4 MB', '4.3 GB']);
  });

  it('says a message inside a message in the same language', () => {
    const full = { key: 'reason.queueFull', values: { why: { key: 'redis.OOM' } } };
    expect(say('en', full)).toBe('the queue is full (Redis is out of memory): send it again later');
    expect(say('zh-Hans', full)).toBe('队列已满（Redis 内存不足）：请稍后再发送');
  });

  it('says any thrown value in the person’s language: its own message, an operator’s fault, a bug', () => {
    const missing = new EnhanceError('model x4plus is not prepared (models/x.onnx is missing): run `enhancer models`', 'model');
    expect(say('en', reasonTextOf(missing))).toBe(missing.message);
    expect(say('zh-Hans', reasonTextOf(missing))).toBe(`服务器暂时无法处理这个任务（${missing.message}）`);
    expect(say('zh-Hans', reasonTextOf(new EnhanceError({ key: 'reason.empty' }, 'input')))).toBe('文件是空的（0 字节）');
    expect(say('zh-Hans', reasonTextOf(new TypeError('x is not a function\n    at y')))).toBe('内部错误：x is not a function');
  });

  it('finds the catalogue for a person’s language tag', () => {
    const cases = { zh: 'zh-Hans', 'zh-hans': 'zh-Hans', 'zh-CN': 'zh-Hans', zh_CN: 'zh-Hans', 'zh-SG': 'zh-Hans', 'zh-TW': 'zh-Hans', en: 'en', 'en-GB': 'en', 'pt-BR': 'en', '': 'en', '!!': 'en' };
    expect(Object.fromEntries(Object.keys(cases).map((tag) => [tag, resolveLocale([tag])]))).toEqual(cases);
    expect(resolveLocale([undefined, 'fr', 'zh-CN'])).toBe('zh-Hans');
  });

  it('a new language is one file; what it lacks is said in English, never as a key name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catalogues-'));
    try {
      fs.copyFileSync(path.join(CATALOGUE_DIR, 'en.json'), path.join(dir, 'en.json'));
      const french = read('en');
      (french.reason as Tree).empty = 'le fichier est vide (0 octet)';
      delete (french.reason as Tree).notYours;
      fs.writeFileSync(path.join(dir, 'fr.json'), JSON.stringify(french));
      const languages = loadLanguages(dir);
      expect(languages.locales).toEqual(['en', 'fr']);
      expect(languages.matchLocale('fr-CA')).toBe('fr');
      expect(languages.say('fr', { key: 'reason.empty' })).toBe('le fichier est vide (0 octet)');
      expect(languages.say('fr', { key: 'reason.notYours' })).toBe('only the person who sent an image can cancel it');
      expect(languages.say('fr', { key: 'reason.noSuchKey' })).toBe('(message reason.noSuchKey is missing from the catalogue)');
      fs.writeFileSync(path.join(dir, 'fr_FR.json'), '{}');
      expect(() => loadLanguages(dir)).toThrow(/fr_FR\.json: "fr_FR" is not a BCP 47 language tag/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

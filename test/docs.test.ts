/**
 * The docs as a newcomer meets them: every relative link between the README, the changelog and docs/ reaches a
 * file and, where it names one, a heading of it; the README stays a first screen (at most 200 lines) and gives the
 * test command CI runs; and docs/config.md names every config key and every variable the config loader reads, so
 * a new setting cannot go undocumented.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SECTIONS } from '../adapters/serve.js';
import { CORE_VARIABLES, configDefaults } from '../src/config.js';

const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const pages = ['README.md', 'README.zh-Hans.md', 'CHANGELOG.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** A page's lines outside fenced code blocks, with inline code taken out: what a renderer reads links and headings from. */
function prose(text: string): string[] {
  let fenced = false;
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    else if (!fenced) lines.push(line.replace(/`[^`]*`/g, (code) => code.replace(/[[\]()]/g, ' ')));
  }
  return lines;
}

/**
 * The anchor GitHub gives a heading: lower case, punctuation dropped (letters of any script, digits, `_` and `-`
 * kept), each space a hyphen.
 *
 * @example
 * slug("The engine's process"); // 'the-engines-process'
 */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a page, repeated headings numbered as GitHub numbers them (`-1`, `-2`). */
function anchors(text: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of text.split('\n').filter((l) => /^#{1,6} /.test(l))) {
    const base = slug(line.replace(/^#+ /, '').replace(/`/g, ''));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    found.add(n === 0 ? base : `${base}-${n}`);
  }
  return found;
}

/** Fenced blocks are skipped when headings are found; a `#` comment inside one is no heading. */
function headingsOf(text: string): Set<string> {
  let fenced = false;
  const kept = text.split('\n').filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    return !fenced && !/^\s*(```|~~~)/.test(line);
  });
  return anchors(kept.join('\n'));
}

/** The relative links of a page: `[text](target)`, leaving out web addresses and mail. */
function links(text: string): string[] {
  return prose(text).flatMap((line) => [...line.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t)));
}

describe('the docs', () => {
  it('finds GitHub\'s anchors', () => {
    expect(slug("The engine's process")).toBe('the-engines-process');
    expect(slug('/healthz')).toBe('healthz');
    expect(slug('image-enhancer（中文说明）')).toBe('image-enhancer中文说明');
    expect([...headingsOf('# A\n```sh\n# not a heading\n```\n## A\n')]).toEqual(['a', 'a-1']);
  });

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      for (const target of links(read(page))) {
        const [file, fragment] = target.split('#') as [string, string | undefined];
        const resolved = file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), file));
        if (!fs.existsSync(path.join(root, resolved))) {
          broken.push(`${page}: ${target} (no file ${resolved})`);
        } else if (fragment !== undefined && resolved.endsWith('.md') && !headingsOf(read(resolved)).has(decodeURIComponent(fragment))) {
          broken.push(`${page}: ${target} (no heading #${fragment} in ${resolved})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('keeps the README a first screen, with the test command CI runs', () => {
    const readme = read('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
    const commands = readme.split('```sh\n')[1].split('```')[0].split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    expect(commands).toEqual(['ONNXRUNTIME_NODE_INSTALL=skip npm ci && npm start', 'npm test']);
    expect(read('.ci/run').split('\n')).toContain('npm test');
    for (const command of commands) expect(read('README.zh-Hans.md')).toContain(command);
  });

  it('names every config key and variable in docs/config.md', () => {
    const doc = read('docs/config.md');
    const keys = (o: object, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v && !Array.isArray(v) && k !== 'presets' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
    const variables = [...Object.keys(CORE_VARIABLES), ...SECTIONS.flatMap((s) => Object.keys(s.env ?? {})), 'ENHANCER_CONFIG'];
    const missing = [...keys(configDefaults(SECTIONS)).map((k) => `\`${k}\``), ...variables.map((v) => `\`${v}\``)].filter((name) => !doc.includes(name));
    expect(missing).toEqual([]);
  });
});

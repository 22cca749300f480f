/**
 * File names for the hot folder: which names in the inbox are left alone, and free names for results so that
 * nothing ever overwrites anything.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { cutToBytes } from '../../src/index.js';

/** Names of files still being written by common tools (browsers, editors, rsync, scp, Office). */
const TEMPORARY = [/\.(tmp|temp|part|partial|crdownload|download|swp|swx)$/i, /~$/, /^~\$/, /^\.?#/];

/** Hidden names and temporary names are never taken. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || TEMPORARY.some((re) => re.test(name));
}

/** A name safe to use as a file name stem: no separators, control characters or leading dot, at most 100 chars. */
export function safeStem(name: string): string {
  const stem = path.parse(name).name || 'image';
  const clean = stem.replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, '_').replace(/^\.+/, '_').slice(0, 100);
  return clean || 'image';
}

/** The longest file name (one path part) that common file systems take, in bytes. */
const NAME_MAX = 255;

/**
 * `stem` cut (on a character boundary) so that it, `extra` bytes more and the longest of `suffixes` fit in one
 * file name: a 250-byte name gets its `.error.txt` beside it instead of ENAMETOOLONG.
 *
 * @example
 * fitStem('x'.repeat(250), ['.png', '.png.error.txt']).length; // 241
 */
export function fitStem(stem: string, suffixes: readonly string[], extra = 0): string {
  const room = NAME_MAX - extra - Math.max(0, ...suffixes.map((s) => Buffer.byteLength(s)));
  return Buffer.byteLength(stem) <= room ? stem : cutToBytes(stem, room) || 'image';
}

/** Whether anything (a file, folder or link, even a broken one) has this name. */
export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first of `stem`, `stem-1`, `stem-2`, … for which none of `dir/<candidate><suffix>` exists, for every
 * suffix; a stem too long for a suffix or counter is cut to fit. Links count as taken, so a result is never
 * written through one.
 */
export async function freeStem(dir: string, stem: string, suffixes: readonly string[]): Promise<string> {
  for (let n = 0; ; n++) {
    const counter = n === 0 ? '' : `-${n}`;
    const candidate = fitStem(stem, suffixes, counter.length) + counter;
    const busy = await Promise.all(suffixes.map((s) => exists(path.join(dir, candidate + s))));
    if (!busy.some(Boolean)) return candidate;
  }
}

/** `file` resolved inside `dir`, or an error: nothing is ever written outside the configured folders. */
export function inside(dir: string, file: string): string {
  const resolved = path.resolve(dir, file);
  if (path.relative(dir, resolved).startsWith('..') || path.isAbsolute(path.relative(dir, resolved))) {
    throw new Error(`refusing a path outside ${dir}: ${file}`);
  }
  return resolved;
}

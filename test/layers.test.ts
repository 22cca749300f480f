/**
 * The house's shape, drawn from its imports (docs/architecture.md): each layer imports only downward, the doors
 * reach the core only through its public face (src/index.ts) and never each other, no file imports itself round
 * a circle, no source file is over 450 lines, and only the config loader, bin/ and the benchmarks read
 * `process.env`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

/** Layers, highest first; a file may import its own layer and those below it. */
const LAYERS: Array<[string, RegExp]> = [
  ['composition root', /^adapters\/serve\.ts$/],
  ['doors', /^adapters\/(web|telegram|discord|hotfolder)\//],
  ['door kit', /^adapters\/kit\//],
  ['tools', /^src\/(cli|bench)\//],
  ['public face', /^src\/index\.ts$/],
  ['service', /^src\/service\//],
  ['observe', /^src\/observe\//],
  ['pipeline', /^src\/pipeline\//],
  ['queue', /^src\/queue\//],
  ['engine, pixels, PDF, models', /^src\/(engine|imaging|report|models|fonts)\//],
  ['config, languages, errors, types, files', /^src\/[^/]+\.ts$|^src\/(config|i18n)\//],
];

function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

const files = [...sources('src'), ...sources('adapters')];
const layerOf = (file: string) => LAYERS.findIndex(([, pattern]) => pattern.test(file));

/** The project files a file imports (relative imports, `.js` written for `.ts`). */
function importsOf(file: string): string[] {
  const code = fs.readFileSync(path.join(root, file), 'utf8');
  const found = [...code.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]);
  return found.map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
}

describe('the house', () => {
  it('puts every source file in a layer', () => {
    expect(files.filter((f) => layerOf(f) < 0)).toEqual([]);
  });

  it('imports only downward, and the doors reach the core through src/index.ts, never each other', () => {
    const wrong: string[] = [];
    for (const file of files) {
      for (const target of importsOf(file)) {
        const [from, to] = [layerOf(file), layerOf(target)];
        if (to < from) wrong.push(`${file} (${LAYERS[from][0]}) imports ${target} (${LAYERS[to][0]})`);
        const door = /^adapters\/(web|telegram|discord|hotfolder)\//.exec(file)?.[1];
        if ((door || file.startsWith('adapters/kit/')) && target.startsWith('src/') && target !== 'src/index.ts') wrong.push(`${file} imports ${target}, not src/index.ts`);
        const other = /^adapters\/(web|telegram|discord|hotfolder)\//.exec(target)?.[1];
        if (door && other && other !== door) wrong.push(`${file} imports another door's ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no circle of imports', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => files.includes(t))]));
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file)!) visit(next, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(circles).toEqual([]);
  });

  it('keeps every source file at most 450 lines', () => {
    const long = files.map((f) => [f, fs.readFileSync(path.join(root, f), 'utf8').split('\n').length] as const).filter(([, n]) => n > 450);
    expect(long).toEqual([]);
  });

  it('reads process.env only in the config loader and the benchmarks, and writes it nowhere', () => {
    const readers = files.filter((f) => /process\.env/.test(fs.readFileSync(path.join(root, f), 'utf8')));
    expect(readers.filter((f) => f !== 'src/config.ts' && !f.startsWith('src/bench/'))).toEqual([]);
    const writers = files.filter((f) => /process\.env(\.\w+|\[[^\]]+\])\s*=[^=]/.test(fs.readFileSync(path.join(root, f), 'utf8')));
    expect(writers).toEqual([]);
  });
});

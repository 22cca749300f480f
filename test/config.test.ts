import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_CONFIG, loadConfig } from '../src/config.js';
import { tempDir } from './helpers.js';

let root: string;
beforeEach(() => {
  root = tempDir('enhancer-config-');
  fs.mkdirSync(path.join(root, 'config'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const file = (config: object) => fs.writeFileSync(path.join(root, 'config', 'enhancer.json'), JSON.stringify(config));
const load = (env: NodeJS.ProcessEnv = {}) => loadConfig({ env, root });
const failure = (env: NodeJS.ProcessEnv = {}) => {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no error');
};

describe('config', () => {
  it('runs on the embedded defaults with inbox/, outbox/ and data/ in the project folder', () => {
    const config = load();
    expect(config).toMatchObject({ inbox: path.join(root, 'inbox'), outbox: path.join(root, 'outbox'), data: path.join(root, 'data'), model: 'x4plus' });
    expect(config.hotfolder).toEqual(DEFAULT_CONFIG.hotfolder);
  });

  it('takes the file over the defaults and the environment over the file', () => {
    file({ model: 'x4fast', tile: 128, limits: { queuedPerOwner: 5 }, hotfolder: { pdf: false, presets: { tiny: { model: 'x4fast', scale: 2, report: true } } } });
    const config = load({ ENHANCER_DEVICE: 'cpu', ENHANCER_TILE: '0', ENHANCER_OUTBOX: 'elsewhere', LOG_LEVEL: 'warn' });
    expect(config).toMatchObject({ model: 'x4fast', device: 'cpu', tile: 0, logLevel: 'warn', outbox: path.resolve('elsewhere') });
    expect(config.limits).toEqual({ ...DEFAULT_CONFIG.limits, queuedPerOwner: 5 });
    expect(config.hotfolder).toMatchObject({ pdf: false, presets: { tiny: { model: 'x4fast', scale: 2, report: true } } });
  });

  it('stops with one line naming the key, what is allowed and where the value came from', () => {
    expect(failure({ ENHANCER_DEVICE: 'gpu' })).toBe('config: device: device must be auto, cpu or cuda (got "gpu") from $ENHANCER_DEVICE');
    expect(failure({ LOG_LEVEL: 'loud' })).toBe('config: logLevel must be one of fatal, error, warn, info, debug, trace, silent (got "loud" from $LOG_LEVEL)');
    file({ limits: { queuedPerOwner: 0 } });
    expect(failure()).toMatch(/^config: limits.queuedPerOwner must be a whole number from 1 to 10000 \(got 0 from .*enhancer.json\)$/);
    file({ hotfolder: { watch: true } });
    expect(failure()).toMatch(/^config: unknown key hotfolder.watch \(from .*enhancer.json\); known keys: enabled, pdf, settleMs, presets$/);
    file({ hotfolder: { presets: { done: { model: 'x4fast' } } } });
    expect(failure()).toMatch(/^config: hotfolder.presets.done: a preset name is a folder name/);
    file({ hotfolder: { presets: { big: { scale: 8 } } } });
    expect(failure()).toMatch(/^config: hotfolder.presets.big.scale: scale must be 2, 3 or 4 \(got 8\) from /);
    fs.writeFileSync(path.join(root, 'config', 'enhancer.json'), '{ not json');
    expect(failure()).toMatch(/^config: .*enhancer.json is not valid JSON/);
    expect(failure({ ENHANCER_CONFIG: path.join(root, 'missing.json') })).toMatch(/^config: cannot read .*missing.json \(ENOENT\)$/);
  });
});

describe('config/enhancer.example.json', () => {
  it('lists exactly the defaults', () => {
    const example = path.resolve(import.meta.dirname, '..', 'config', 'enhancer.example.json');
    const keys = (o: object, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v && !Array.isArray(v) && k !== 'presets' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
    expect(keys(JSON.parse(fs.readFileSync(example, 'utf8')))).toEqual(keys(DEFAULT_CONFIG));
    expect(loadConfig({ env: { ENHANCER_CONFIG: example }, root })).toEqual(load());
  });
});

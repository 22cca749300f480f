import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hotfolderSection } from '../adapters/hotfolder/config.js';
import { SECTIONS } from '../adapters/serve.js';
import { cliSettings, ConfigError, configDefaults, DEFAULT_CONFIG, defineSection, flag, folder, loadConfig, wholeNumber, type AnySection } from '../src/config.js';
import { tempDir } from './helpers.js';
import { projectRoot } from '../src/paths.js';

let root: string;
beforeEach(() => {
  root = tempDir('enhancer-config-');
  fs.mkdirSync(path.join(root, 'config'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const file = (config: object) => fs.writeFileSync(path.join(root, 'config', 'enhancer.json'), JSON.stringify(config));
const load = (env: NodeJS.ProcessEnv = {}) => loadConfig({ env, root, sections: [hotfolderSection] });
const failure = (env: NodeJS.ProcessEnv = {}, sections: readonly AnySection[] = [hotfolderSection]) => {
  try {
    loadConfig({ env, root, sections });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no error');
};

/** A front door the core has never heard of, as a chat adapter would declare itself. */
const chatSection = defineSection({
  key: 'chat',
  schema: z.strictObject({
    enabled: flag(),
    token: z.string().regex(/^\d+:[\w-]{30,}$/, { error: 'must be a bot token such as 123456:ABC…' }),
    maxPerMinute: wholeNumber(1, 600),
    downloads: folder(),
  }),
  defaults: { enabled: false, token: '', maxPerMinute: 20, downloads: 'data/chat' },
  env: { CHAT_TOKEN: 'token', CHAT_ENABLED: 'enabled' },
});
const GOOD_TOKEN = '123456:abcdefghijklmnopqrstuvwxyz0123456789';

describe('config', () => {
  it('runs on the embedded defaults with inbox/, outbox/ and data/ in the project folder', () => {
    const config = load();
    expect(config).toMatchObject({ data: path.join(root, 'data'), model: 'auto' });
    expect(config.sections.hotfolder).toEqual({ ...hotfolderSection.defaults, inbox: path.join(root, 'inbox'), outbox: path.join(root, 'outbox') });
    expect(config.delivery).toEqual({ retryForMs: 7 * 24 * 3_600_000, firstRetryMs: 2000, maxRetryMs: 3_600_000 });
  });

  it('takes the file over the defaults and the environment over the file', () => {
    file({ model: 'x4fast', tile: 128, limits: { queuedPerOwner: 5 }, hotfolder: { pdf: false, inbox: 'drop', presets: { tiny: { model: 'x4fast', scale: 2, report: true } } } });
    const config = load({ ENHANCER_DEVICE: 'cpu', ENHANCER_TILE: '0', ENHANCER_OUTBOX: 'elsewhere', ENHANCER_HOTFOLDER: 'off', LOG_LEVEL: 'warn' });
    expect(config).toMatchObject({ model: 'x4fast', device: 'cpu', tile: 0, logLevel: 'warn' });
    expect(config.limits).toEqual({ ...DEFAULT_CONFIG.limits, queuedPerOwner: 5 });
    // The file's object replaces the default presets; relative folders: the file's from the project, a variable's from here.
    expect(config.sections.hotfolder).toEqual({
      enabled: false,
      format: 'png',
      pdf: false,
      settleMs: 1500,
      inbox: path.join(root, 'drop'),
      outbox: path.resolve('elsewhere'),
      presets: { tiny: { model: 'x4fast', scale: 2, report: true } },
      locale: 'en',
    });
    // A language tag finds its catalogue: zh-CN is Simplified Chinese.
    expect(load({ ENHANCER_HOTFOLDER_LOCALE: 'zh-CN' }).sections.hotfolder.locale).toBe('zh-Hans');
  });

  it('stops with one line naming the key, what is allowed and where the value came from', () => {
    expect(failure({ ENHANCER_DEVICE: 'gpu' })).toBe('config: device: device must be auto, cpu or cuda (got "gpu") from $ENHANCER_DEVICE');
    expect(failure({ LOG_LEVEL: 'loud' })).toBe('config: logLevel must be one of fatal, error, warn, info, debug, trace, silent (got "loud" from $LOG_LEVEL)');
    expect(failure({ ENHANCER_HOTFOLDER: 'maybe' })).toBe('config: hotfolder.enabled must be true or false (got "maybe" from $ENHANCER_HOTFOLDER)');
    expect(failure({ ENHANCER_HOTFOLDER_LOCALE: 'fr' })).toBe('config: hotfolder.locale must be a language there is a catalogue for: en, zh-Hans (got "fr" from $ENHANCER_HOTFOLDER_LOCALE)');
    file({ limits: { queuedPerOwner: 0 } });
    expect(failure()).toMatch(/^config: limits.queuedPerOwner must be a whole number from 1 to 10000 \(got 0 from .*enhancer.json\)$/);
    // Past about 89.5 MP an 8-bit RGB input's 4x result cannot be held in one buffer (src/imaging/input.ts).
    file({ limits: { maxPixels: 100_000_000 } });
    expect(failure()).toMatch(/^config: limits.maxPixels must be a whole number from 1 to 89478485 \(got 100000000 from .*enhancer.json\)$/);
    file({ hotfolder: { settleMs: 'soon' } });
    expect(failure()).toMatch(/^config: hotfolder.settleMs must be a whole number from 50 to 600000 \(got "soon" from .*enhancer.json\)$/);
    file({ hotfolder: { watch: true } });
    expect(failure()).toMatch(/^config: unknown key hotfolder.watch \(from .*enhancer.json\); known keys: enabled, inbox, outbox, pdf, settleMs, presets, locale, format$/);
    file({ hotfolder: { outbox: '' } });
    expect(failure()).toMatch(/^config: hotfolder.outbox must be a folder path \(got "" from .*enhancer.json\)$/);
    file({ hotfolder: 'yes' });
    expect(failure()).toMatch(/^config: hotfolder must be an object \(got "yes" from .*enhancer.json\)$/);
    file({ hotfolder: { presets: { done: { model: 'x4fast' } } } });
    expect(failure()).toMatch(/^config: hotfolder.presets.done: a preset name is a folder name/);
    file({ hotfolder: { presets: { big: { scale: 8 } } } });
    expect(failure()).toMatch(/^config: hotfolder.presets.big.scale: scale must be 1, 2, 3 or 4 \(got 8\) from /);
    file({ hotfolder: { presets: { big: { size: 8 } } } });
    expect(failure()).toMatch(/^config: hotfolder.presets.big.size: size must be a whole number of pixels from 16 to 16384, the output's long side \(got 8\) from /);
    file({ hotfolder: { presets: { big: { width: 8 } } } });
    expect(failure()).toMatch(/^config: unknown key hotfolder.presets.big.width \(from .*\); known keys: model, scale, tile, tune, alpha, device, precision, format, quality, size, report$/);
    fs.writeFileSync(path.join(root, 'config', 'enhancer.json'), '{ not json');
    expect(failure()).toMatch(/^config: .*enhancer.json is not valid JSON/);
    expect(failure({ ENHANCER_CONFIG: path.join(root, 'missing.json') })).toMatch(/^config: cannot read .*missing.json \(ENOENT\)$/);
  });

  it('names every known top-level key, the sections\' too, for one it does not know', () => {
    file({ inbox: 'inbox' });
    expect(failure({}, [hotfolderSection, chatSection])).toMatch(
      /^config: unknown key inbox \(from .*enhancer.json\); known keys: data, models, model, device, precision, tile, logLevel, logFormat, threads, gpu, limits, cache, metadata, shutdownGraceMs, delivery, http, redis, hotfolder, chat$/,
    );
  });

  it('takes the plan\'s time target and confirmation threshold in seconds, and refuses one that is not', () => {
    expect(load({}).limits).toMatchObject({ targetTime: 120, confirmOver: 600 });
    expect(load({ ENHANCER_TARGET_TIME: '300', ENHANCER_CONFIRM_OVER: '0' }).limits).toMatchObject({ targetTime: 300, confirmOver: 0 });
    expect(failure({ ENHANCER_TARGET_TIME: '2m' })).toMatch(/^config: limits\.targetTime must be a whole number from 1 to 604800 .*"2m".*\$ENHANCER_TARGET_TIME/);
  });

  it('takes the GPU of a worker from ENHANCER_GPU, and refuses one that is not an index', () => {
    expect(load({ ENHANCER_GPU: '1' }).gpu).toBe(1);
    expect(failure({ ENHANCER_GPU: 'cuda:1' })).toMatch(/^config: gpu .*"cuda:1".*\$ENHANCER_GPU/);
  });

  it('gives the CLI the models and data folders, the engine’s threads and GPU and the log format from the environment alone, checked as the service checks them', () => {
    expect(cliSettings({})).toEqual({ models: path.join(projectRoot, 'models'), data: path.join(projectRoot, 'data'), threads: 0, gpu: 0, logFormat: 'auto', logColour: true });
    expect(cliSettings({ ENHANCER_THREADS: '1', ENHANCER_GPU: '2', ENHANCER_MODELS: 'elsewhere', ENHANCER_DATA: 'state', NO_COLOR: '' })).toEqual({
      models: path.resolve('elsewhere'),
      data: path.resolve('state'),
      threads: 1,
      gpu: 2,
      logFormat: 'auto',
      logColour: false,
    });
    expect(() => cliSettings({ ENHANCER_THREADS: 'two' })).toThrow(/^config: threads must be a whole number from 0 to 1024 .*"two".*\$ENHANCER_THREADS/);
  });

  it('keeps where each value came from, for the lines that name a setting', () => {
    const config = loadConfig({ env: { ENHANCER_HTTP_PORT: '9464' } });
    expect(config.origin('http.port')).toBe('$ENHANCER_HTTP_PORT');
    expect(config.origin('http.host')).toBe('http.host (the default)');
    expect(config.models).toBe(path.join(projectRoot, 'models'));
  });

  it('takes the Redis URL from ENHANCER_REDIS_URL and never shows it in an error: it may hold a password', () => {
    expect(load({ ENHANCER_REDIS_URL: 'redis://:pw@redis:6379/2' }).redis).toEqual({ url: 'redis://:pw@redis:6379/2', lockMs: 30_000 });
    expect(failure({ ENHANCER_REDIS_URL: 'http://:hunter2@redis:6379' })).toBe(
      'config: redis.url must be a redis:// or rediss:// URL, or empty (got a value of 26 characters from $ENHANCER_REDIS_URL)',
    );
  });

  it('checks the delivery retries', () => {
    file({ delivery: { retryForMs: 86_400_000, firstRetryMs: 500, maxRetryMs: 60_000 } });
    expect(load().delivery).toEqual({ retryForMs: 86_400_000, firstRetryMs: 500, maxRetryMs: 60_000 });
    file({ delivery: { retryForMs: -1 } });
    expect(failure()).toMatch(/^config: delivery.retryForMs must be a whole number from 0 to 31536000000 \(got -1 from .*enhancer.json\)$/);
    file({ delivery: { firstRetryMs: 5000, maxRetryMs: 1000 } });
    expect(failure()).toMatch(/^config: delivery.firstRetryMs must be at most delivery.maxRetryMs, 1000 \(got 5000 from .*enhancer.json\)$/);
    file({ delivery: { every: 5 } });
    expect(failure()).toMatch(/^config: unknown key delivery.every \(from .*\); known keys: retryForMs, firstRetryMs, maxRetryMs$/);
  });

  it('gives a section declared by an adapter its own keys, variables and errors, and never shows a secret', () => {
    file({ chat: { maxPerMinute: 5 } });
    const config = loadConfig({ env: { CHAT_TOKEN: GOOD_TOKEN, CHAT_ENABLED: 'yes' }, root, sections: [chatSection] });
    expect(config.sections.chat).toEqual({ enabled: true, token: GOOD_TOKEN, maxPerMinute: 5, downloads: path.join(root, 'data', 'chat') });

    const secret = 'hunter2-not-a-token';
    const fromVariable = failure({ CHAT_TOKEN: secret }, [chatSection]);
    expect(fromVariable).toBe(`config: chat.token must be a bot token such as 123456:ABC… (got a value of ${secret.length} characters from $CHAT_TOKEN)`);
    file({ chat: { token: secret } });
    const fromFile = failure({}, [chatSection]);
    expect(fromFile).toMatch(/^config: chat.token must be a bot token .* \(got a value of 19 characters from .*enhancer.json\)$/);
    file({ chat: { token: 12345 } });
    expect(failure({}, [chatSection])).toMatch(/^config: chat.token must be .* \(got a number from .*enhancer.json\)$/);
    for (const message of [fromVariable, fromFile]) expect(message).not.toContain(secret);

    // Not even inside a file that is not valid JSON (V8 quotes the text around the mistake).
    fs.writeFileSync(path.join(root, 'config', 'enhancer.json'), `{ "chat": { "token": ${secret} } }`);
    expect(failure({}, [chatSection])).not.toContain(secret.slice(0, 6));
  });

  it('refuses a section whose key or variable is taken, as a programming mistake', () => {
    const clash = defineSection({ key: 'limits', schema: z.strictObject({ on: flag() }), defaults: { on: true } });
    expect(() => loadConfig({ env: {}, root, sections: [clash] })).toThrow(/config section limits: the key is taken/);
    const variable = defineSection({ key: 'other', schema: z.strictObject({ on: flag() }), defaults: { on: true }, env: { LOG_LEVEL: 'on' } });
    expect(() => loadConfig({ env: {}, root, sections: [variable] })).toThrow(/\$LOG_LEVEL is already taken/);
  });
});

describe('config/enhancer.example.json', () => {
  it('lists exactly the defaults, the core\'s and every front door\'s', () => {
    const example = path.resolve(import.meta.dirname, '..', 'config', 'enhancer.example.json');
    const keys = (o: object, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v && !Array.isArray(v) && k !== 'presets' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
    expect(keys(JSON.parse(fs.readFileSync(example, 'utf8')))).toEqual(keys(configDefaults(SECTIONS)));
    const values = (env: NodeJS.ProcessEnv) => {
      const { origin: _where, ...config } = loadConfig({ env, root, sections: SECTIONS });
      return config;
    };
    expect(values({ ENHANCER_CONFIG: example })).toEqual(values({}));
  });
});

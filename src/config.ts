/**
 * The service's configuration: embedded defaults, then `config/enhancer.json` (or the file `ENHANCER_CONFIG`
 * names) if present, then environment variables. Every value is checked against the schema below; a bad one
 * stops start-up with a `ConfigError` naming the key, what is allowed and where the value came from.
 */
import fs from 'node:fs';
import path from 'node:path';
import { normalizeOptions } from './options.js';
import { projectRoot } from './paths.js';
import type { DeviceChoice, EnhanceOptions, TileChoice } from './types.js';

/** Options a hot-folder preset sets; the rest come from the defaults. */
export type Preset = Partial<EnhanceOptions> & { report?: boolean };

export interface Config {
  /** Absolute paths. */
  inbox: string;
  outbox: string;
  /** Spool, cache and state. */
  data: string;
  /** Defaults for every request. */
  model: string;
  device: DeviceChoice;
  tile: TileChoice;
  logLevel: string;
  limits: {
    /** Largest input in pixels, checked from the header. */
    maxPixels: number;
    /** Largest input file. */
    maxFileBytes: number;
    /** Jobs one person may have waiting or running (chat doors; the hot folder is not limited). */
    queuedPerOwner: number;
  };
  cache: {
    /** Results kept for repeat requests; the oldest go first past this. 0 turns the cache off. */
    maxBytes: number;
  };
  /** On SIGINT/SIGTERM, how long the running job may take to finish before it is stopped and kept for next start. */
  shutdownGraceMs: number;
  delivery: { retryForMs: number; firstRetryMs: number; maxRetryMs: number };
  hotfolder: {
    enabled: boolean;
    /** Write the PDF summary too. */
    pdf: boolean;
    /** A file is taken once its size and time have not changed for this long. */
    settleMs: number;
    /** `inbox/<name>/` runs with these options. */
    presets: Record<string, Preset>;
  };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(`config: ${message}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const PRESET_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Folders inside the inbox that the hot folder uses itself. */
export const RESERVED_INBOX_NAMES = ['done', 'failed'];

/** The embedded defaults: with these `npm start` is a working hot-folder service in the project folder. */
export const DEFAULT_CONFIG: Config = {
  inbox: 'inbox',
  outbox: 'outbox',
  data: 'data',
  model: 'x4plus',
  device: 'auto',
  tile: 'auto',
  logLevel: 'info',
  limits: { maxPixels: 16_000_000, maxFileBytes: 50_000_000, queuedPerOwner: 3 },
  cache: { maxBytes: 2_000_000_000 },
  shutdownGraceMs: 15_000,
  delivery: { retryForMs: 604_800_000, firstRetryMs: 2000, maxRetryMs: 3_600_000 },
  hotfolder: {
    enabled: true,
    pdf: true,
    settleMs: 1500,
    presets: { fast: { model: 'x4fast' }, raw: { tune: 'raw' } },
  },
};

/** Environment variables and the keys they set. */
export const ENV_KEYS: Record<string, string> = {
  ENHANCER_INBOX: 'inbox',
  ENHANCER_OUTBOX: 'outbox',
  ENHANCER_DATA: 'data',
  ENHANCER_MODEL: 'model',
  ENHANCER_DEVICE: 'device',
  ENHANCER_TILE: 'tile',
  ENHANCER_HOTFOLDER: 'hotfolder.enabled',
  LOG_LEVEL: 'logLevel',
};

type Source = { value: unknown; from: string };

const show = (v: unknown) => JSON.stringify(v);

function wholeNumber(key: string, { value, from }: Source, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${key} must be a whole number from ${min} to ${max} (got ${show(value)} from ${from})`);
  }
  return n;
}

function flag(key: string, { value, from }: Source): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|1|on|yes)$/i.test(value)) return true;
  if (typeof value === 'string' && /^(false|0|off|no)$/i.test(value)) return false;
  throw new ConfigError(`${key} must be true or false (got ${show(value)} from ${from})`);
}

function oneOf<T extends string>(key: string, { value, from }: Source, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new ConfigError(`${key} must be one of ${allowed.join(', ')} (got ${show(value)} from ${from})`);
  return value as T;
}

function folder(key: string, { value, from }: Source, base: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${key} must be a folder path (got ${show(value)} from ${from})`);
  return path.resolve(base, value);
}

/** Checks one request option through the engine's own rules, so config and requests agree. */
function option<K extends keyof EnhanceOptions>(key: string, name: K, { value, from }: Source): EnhanceOptions[K] {
  try {
    return normalizeOptions({ [name]: value })[name];
  } catch (error) {
    throw new ConfigError(`${key}: ${(error as Error).message} from ${from}`);
  }
}

function object(key: string, { value, from }: Source, known: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${key} must be an object (from ${from})`);
  const unknown = Object.keys(value).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new ConfigError(`unknown key ${key ? `${key}.` : ''}${unknown[0]} (from ${from}); known keys: ${known.join(', ')}`);
  return value as Record<string, unknown>;
}

function presets(key: string, source: Source): Record<string, Preset> {
  const raw = object(key, source, Object.keys(source.value ?? {}));
  const out: Record<string, Preset> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!PRESET_NAME.test(name) || RESERVED_INBOX_NAMES.includes(name)) {
      throw new ConfigError(`${key}.${name}: a preset name is a folder name of a-z, 0-9, _ and - (not ${RESERVED_INBOX_NAMES.join(' or ')})`);
    }
    const fields = object(`${key}.${name}`, { value, from: source.from }, ['model', 'scale', 'tile', 'tune', 'alpha', 'device', 'report']);
    const preset: Preset = {};
    for (const [k, v] of Object.entries(fields)) {
      const at = { value: v, from: source.from };
      if (k === 'report') preset.report = flag(`${key}.${name}.report`, at);
      else (preset as Record<string, unknown>)[k] = option(`${key}.${name}.${k}`, k as keyof EnhanceOptions, at);
    }
    out[name] = preset;
  }
  return out;
}

/** Reads the config file, if any. */
function readFile(file: string, required: boolean): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON (${(error as Error).message})`);
  }
}

export interface LoadConfigOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Folder that relative paths in the file and the defaults are taken from (default: the project folder). */
  root?: string;
}

/** Loads and checks the configuration. Throws `ConfigError` with a one-line reason. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const root = options.root ?? projectRoot;
  const file = env.ENHANCER_CONFIG ? path.resolve(env.ENHANCER_CONFIG) : path.join(root, 'config', 'enhancer.json');
  const fromFile = readFile(file, Boolean(env.ENHANCER_CONFIG));
  const fileName = path.relative(process.cwd(), file) || file;

  // Lay the three sources over each other, remembering where each value came from.
  const sources = new Map<string, Source>();
  const lay = (prefix: string, value: unknown, from: string) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && prefix !== 'hotfolder.presets') {
      const known = Object.keys(prefix === '' ? DEFAULT_CONFIG : (getAt(DEFAULT_CONFIG, prefix) as object));
      for (const [k, v] of Object.entries(object(prefix, { value, from }, known))) lay(prefix ? `${prefix}.${k}` : k, v, from);
    } else {
      sources.set(prefix, { value, from });
    }
  };
  lay('', DEFAULT_CONFIG, 'the defaults');
  lay('', fromFile, fileName);
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    if (env[name] !== undefined && env[name] !== '') sources.set(key, { value: env[name], from: `$${name}` });
  }
  const at = (key: string) => sources.get(key)!;
  // Paths from the environment are the user's own, relative to where they started the service.
  const base = (key: string) => (at(key).from.startsWith('$') ? process.cwd() : root);

  return {
    inbox: folder('inbox', at('inbox'), base('inbox')),
    outbox: folder('outbox', at('outbox'), base('outbox')),
    data: folder('data', at('data'), base('data')),
    model: option('model', 'model', at('model')),
    device: option('device', 'device', at('device')),
    tile: option('tile', 'tile', at('tile')),
    logLevel: oneOf('logLevel', at('logLevel'), LOG_LEVELS),
    limits: {
      maxPixels: wholeNumber('limits.maxPixels', at('limits.maxPixels'), 1, 268_000_000),
      maxFileBytes: wholeNumber('limits.maxFileBytes', at('limits.maxFileBytes'), 1, 2 ** 31),
      queuedPerOwner: wholeNumber('limits.queuedPerOwner', at('limits.queuedPerOwner'), 1, 10_000),
    },
    cache: { maxBytes: wholeNumber('cache.maxBytes', at('cache.maxBytes'), 0, Number.MAX_SAFE_INTEGER) },
    shutdownGraceMs: wholeNumber('shutdownGraceMs', at('shutdownGraceMs'), 0, 3_600_000),
    delivery: {
      retryForMs: wholeNumber('delivery.retryForMs', at('delivery.retryForMs'), 0, 365 * 86_400_000),
      firstRetryMs: wholeNumber('delivery.firstRetryMs', at('delivery.firstRetryMs'), 10, 86_400_000),
      maxRetryMs: wholeNumber('delivery.maxRetryMs', at('delivery.maxRetryMs'), 10, 86_400_000),
    },
    hotfolder: {
      enabled: flag('hotfolder.enabled', at('hotfolder.enabled')),
      pdf: flag('hotfolder.pdf', at('hotfolder.pdf')),
      settleMs: wholeNumber('hotfolder.settleMs', at('hotfolder.settleMs'), 50, 600_000),
      presets: presets('hotfolder.presets', at('hotfolder.presets')),
    },
  };
}

function getAt(object: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], object);
}

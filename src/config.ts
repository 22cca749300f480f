/**
 * The service's configuration: embedded defaults, then `config/enhancer.json` (or the file `ENHANCER_CONFIG`
 * names) if present, then environment variables. The core's keys are declared here; every adapter declares its
 * own section beside its code (`defineSection`) and the composition root passes them to `loadConfig`. Every
 * value is checked by zod; a bad one stops start-up with a `ConfigError` naming the key, what is allowed, the
 * value and where it came from.
 */
import path from 'node:path';
import { z } from 'zod';
import { flag, folder, oneOf, requestOption, wholeNumber } from './config/fields.js';
import { checkLayers, readConfigFile, type Origins } from './config/layers.js';
import { MAX_INPUT_PIXELS } from './limits.js';
import type { AnySection, SectionValues } from './config/section.js';
import { projectRoot } from './paths.js';

export { ConfigError } from './config/errors.js';
export { flag, folder, oneOf, requestOption, wholeNumber } from './config/fields.js';
export { defineSection, type AnySection, type ConfigSection, type SectionValue } from './config/section.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

const delivery = z
  .strictObject({
    /** How long a finished job's answer keeps being offered to a failing adapter, across restarts. */
    retryForMs: wholeNumber(0, 365 * 24 * 3_600_000),
    /** The first wait after a failed delivery; each next one doubles, up to `maxRetryMs`. */
    firstRetryMs: wholeNumber(100, 24 * 3_600_000),
    maxRetryMs: wholeNumber(100, 24 * 3_600_000),
  })
  .superRefine((value, ctx) => {
    if (value.firstRetryMs > value.maxRetryMs) {
      ctx.addIssue({ code: 'custom', path: ['firstRetryMs'], message: `must be at most delivery.maxRetryMs, ${value.maxRetryMs}` });
    }
  });

/** The core's keys: what the engine, queue and service need, whatever the front doors. */
const coreSchema = z.strictObject({
  /** Spool, cache and state (an absolute path once loaded). */
  data: folder(),
  /** The prepared models and their manifest (an absolute path once loaded). */
  models: folder(),
  /** Defaults for every request. */
  model: requestOption('model'),
  device: requestOption('device'),
  precision: requestOption('precision'),
  tile: requestOption('tile'),
  logLevel: oneOf(LOG_LEVELS),
  /** `auto`: readable lines on a terminal, JSON lines elsewhere (log collectors, the tests). */
  logFormat: oneOf(LOG_FORMATS),
  /** Threads of the CPU provider; 0 for every core. Several workers on one machine split its cores with it. */
  threads: wholeNumber(0, 1024),
  /** Which GPU the CUDA provider runs on (0 the first), so each worker on a machine with several GPUs takes its own. */
  gpu: wholeNumber(0, 1024),
  limits: z.strictObject({
    /** Largest input in pixels, checked from the header; no more than the largest whose 4x result can be held. */
    maxPixels: wholeNumber(1, MAX_INPUT_PIXELS),
    /** Largest input file. */
    maxFileBytes: wholeNumber(1, 2 ** 31),
    /** Jobs one person may have waiting or running (chat doors; trusted adapters are not limited). */
    queuedPerOwner: wholeNumber(1, 10_000),
    /** Seconds: model `auto` takes the scene's best model whose estimate fits (src/pipeline/plan.ts). */
    targetTime: wholeNumber(1, 7 * 24 * 3600),
    /** Seconds: a job estimated over this is marked `plan.confirm`, for a door to ask its person first; 0 never. */
    confirmOver: wholeNumber(0, 7 * 24 * 3600),
  }),
  cache: z.strictObject({
    /** Results kept for repeat requests; the oldest go first past this. 0 turns the cache off. */
    maxBytes: wholeNumber(0, Number.MAX_SAFE_INTEGER),
  }),
  /** What of a photo's own metadata its result keeps (docs/doors.md#metadata). */
  metadata: z.strictObject({
    /** Keep the EXIF GPS position; off by default, since a result is often shared further than its photo was. */
    keepGps: flag(),
  }),
  /** On SIGINT/SIGTERM, how long the running job may take to finish before it is stopped and kept for next start. */
  shutdownGraceMs: wholeNumber(0, 3_600_000),
  /** Retrying the delivery of a finished job whose adapter failed to take it. */
  delivery,
  /** The health and metrics endpoint (src/observe/): off while `port` is 0. */
  http: z.strictObject({
    port: wholeNumber(0, 65_535),
    /**
     * 127.0.0.1 by default: on a bare machine the metrics (job counts per front door) stay on it unless asked
     * for; the Dockerfile sets 0.0.0.0, since there the container's network is the boundary and Prometheus
     * scrapes from another container.
     */
    host: z.string().trim().min(1),
  }),
  /** The queue on Redis (BullMQ) instead of the in-process one: fronts and workers on any number of machines. */
  redis: z.strictObject({
    /** `redis://[:password@]host[:port][/db]`; empty for the in-process queue. A secret: never logged or shown. */
    url: z.string({ error: 'must be a redis:// or rediss:// URL, or empty' }).refine((v) => v === '' || /^rediss?:\/\/./.test(v), {
      error: 'must be a redis:// or rediss:// URL, or empty',
    }),
    /** A running job's lock: a dead worker's job runs on another after about this long. */
    lockMs: wholeNumber(1000, 3_600_000),
  }),
});

/** The core's checked config. */
export type CoreConfig = z.output<typeof coreSchema>;

/**
 * The checked config: the core's keys, and each declared section's under `sections.<key>`.
 *
 * @example
 * const config: Config<[typeof telegramSection]> = loadConfig({ sections: [telegramSection] });
 * config.sections.telegram.token; // typed by the section's schema
 */
export type Config<Sections extends readonly AnySection[] = readonly []> = CoreConfig & {
  sections: SectionValues<Sections>;
  /** Where a value came from, for a line about it: `origin('web.port')` is `$ENHANCER_WEB_PORT`, or `web.port in config/enhancer.json`. */
  origin: Origins;
  /** Colours in readable log lines: off when `NO_COLOR` is set, whatever its value (no-color.org). */
  logColour: boolean;
};

/** The core's embedded defaults: with these and the front doors' own, `npm start` works in the project folder. */
export const DEFAULT_CONFIG: z.input<typeof coreSchema> = {
  data: 'data',
  models: 'models',
  model: 'auto',
  device: 'auto',
  precision: 'fp32',
  tile: 'auto',
  logLevel: 'info',
  logFormat: 'auto',
  threads: 0,
  gpu: 0,
  limits: { maxPixels: 16_000_000, maxFileBytes: 50_000_000, queuedPerOwner: 3, targetTime: 120, confirmOver: 600 },
  cache: { maxBytes: 2_000_000_000 },
  metadata: { keepGps: false },
  shutdownGraceMs: 15_000,
  delivery: { retryForMs: 7 * 24 * 3_600_000, firstRetryMs: 2000, maxRetryMs: 3_600_000 },
  http: { port: 0, host: '127.0.0.1' },
  redis: { url: '', lockMs: 30_000 },
};

/** Environment variables for the core's keys. */
export const CORE_VARIABLES: Readonly<Record<string, string>> = {
  ENHANCER_DATA: 'data',
  ENHANCER_MODEL: 'model',
  ENHANCER_DEVICE: 'device',
  ENHANCER_PRECISION: 'precision',
  ENHANCER_TILE: 'tile',
  ENHANCER_MODELS: 'models',
  LOG_LEVEL: 'logLevel',
  LOG_FORMAT: 'logFormat',
  ENHANCER_HTTP_PORT: 'http.port',
  ENHANCER_HTTP_HOST: 'http.host',
  ENHANCER_THREADS: 'threads',
  ENHANCER_GPU: 'gpu',
  ENHANCER_REDIS_URL: 'redis.url',
  ENHANCER_REDIS_LOCK_MS: 'redis.lockMs',
  ENHANCER_TARGET_TIME: 'limits.targetTime',
  ENHANCER_CONFIRM_OVER: 'limits.confirmOver',
  ENHANCER_KEEP_GPS: 'metadata.keepGps',
};

export interface LoadConfigOptions<Sections extends readonly AnySection[]> {
  /** The front doors' sections, each under its own top-level key. */
  sections?: Sections;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Folder that relative paths in the file and the defaults are taken from (default: the project folder). */
  root?: string;
}

/**
 * Loads and checks the configuration, the core's and the given sections'. Throws `ConfigError` with a one-line
 * reason for anything a person wrote wrong.
 *
 * @example
 * const config = loadConfig({ sections: [telegramSection] });
 * config.data;                    // core: an absolute path
 * config.sections.telegram.token; // typed by the section's schema (see `defineSection`)
 */
export function loadConfig<const Sections extends readonly AnySection[] = readonly []>(options: LoadConfigOptions<Sections> = {}): Config<Sections> {
  const sections = options.sections ?? ([] as unknown as Sections);
  const env = options.env ?? process.env;
  const root = options.root ?? projectRoot;
  const file = env.ENHANCER_CONFIG ? path.resolve(env.ENHANCER_CONFIG) : path.join(root, 'config', 'enhancer.json');
  const value = readConfigFile(file, Boolean(env.ENHANCER_CONFIG));

  const origins: { of?: Origins } = {};
  const checked = checkLayers(
    wholeSchema(sections),
    { defaults: configDefaults(sections), file: { value, name: path.relative(process.cwd(), file) || file }, variables: variablesOf(sections), env, root },
    origins,
  ) as Record<string, unknown>;
  const config: Record<string, unknown> = {};
  const values: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(checked)) {
    if (sections.some((s) => s.key === key)) values[key] = v;
    else config[key] = v;
  }
  return { ...config, sections: values, origin: origins.of!, logColour: !Object.hasOwn(env, 'NO_COLOR') } as Config<Sections>;
}

/**
 * Every key with its default, as the config file would hold them: what config/enhancer.example.json shows.
 *
 * @example
 * configDefaults([telegramSection]).telegram; // the section's `defaults`
 */
export function configDefaults(sections: readonly AnySection[] = []): Record<string, unknown> {
  return { ...DEFAULT_CONFIG, ...Object.fromEntries(sections.map((s) => [s.key, s.defaults])) };
}

/** The core's schema with each section's under its key. A clash is a programming mistake, not a config one. */
function wholeSchema(sections: readonly AnySection[]): z.ZodObject {
  const shape: Record<string, z.ZodType> = { ...coreSchema.shape };
  for (const section of sections) {
    if (Object.hasOwn(shape, section.key)) throw new Error(`config section ${section.key}: the key is taken by the core or another section`);
    shape[section.key] = section.schema;
  }
  return z.strictObject(shape);
}

/** Every variable, the core's and the sections' (with the section's key in front). */
function variablesOf(sections: readonly AnySection[]): Record<string, string> {
  const variables: Record<string, string> = { ...CORE_VARIABLES };
  for (const section of sections) {
    for (const [name, key] of Object.entries<string>(section.env ?? {})) {
      if (Object.hasOwn(variables, name) || name === 'ENHANCER_CONFIG') throw new Error(`config section ${section.key}: $${name} is already taken`);
      variables[name] = `${section.key}.${key}`;
    }
  }
  return variables;
}

/**
 * How onnxruntime runs on this machine: the service passes its config's `threads` and `gpu`, the CLI the
 * variables the config loader reads (`cliSettings`), so nothing here reads the environment.
 */
export interface RuntimeSettings {
  /** Threads of the CPU provider; 0 for every core. Several workers on one machine split its cores with it. */
  threads: number;
  /** Which GPU the CUDA provider runs on (0 the first). */
  gpu: number;
}

/** What the CLI and the benchmarks take from the environment alone (they read no config file). */
export interface CliSettings extends RuntimeSettings {
  models: string;
  /** The service's data folder, where its learned costs are (`enhancer plan` reads them). */
  data: string;
  logFormat: (typeof LOG_FORMATS)[number];
  logColour: boolean;
}

/**
 * The models and data folders, the engine's threads and GPU, and the log's format from `ENHANCER_MODELS`,
 * `ENHANCER_DATA`, `ENHANCER_THREADS`, `ENHANCER_GPU` and `LOG_FORMAT` alone, checked as the service checks them: for the CLI and
 * the benchmarks, which read no config file. Throws `ConfigError` naming a bad value.
 *
 * @example
 * cliSettings({ ENHANCER_THREADS: '1' }); // { models: '<project>/models', data: '<project>/data', threads: 1, gpu: 0, logFormat: 'auto', logColour: true }
 */
export function cliSettings(env: NodeJS.ProcessEnv = process.env): CliSettings {
  const { shape } = coreSchema;
  const checked = checkLayers(z.strictObject({ models: shape.models, data: shape.data, threads: shape.threads, gpu: shape.gpu, logFormat: shape.logFormat }), {
    defaults: { models: DEFAULT_CONFIG.models, data: DEFAULT_CONFIG.data, threads: DEFAULT_CONFIG.threads, gpu: DEFAULT_CONFIG.gpu, logFormat: DEFAULT_CONFIG.logFormat },
    file: { value: {}, name: 'no config file' },
    variables: { ENHANCER_MODELS: 'models', ENHANCER_DATA: 'data', ENHANCER_THREADS: 'threads', ENHANCER_GPU: 'gpu', LOG_FORMAT: 'logFormat' },
    env,
    root: projectRoot,
  });
  return { ...checked, logColour: !Object.hasOwn(env, 'NO_COLOR') };
}

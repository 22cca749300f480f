/**
 * The running service, one start-up over either backend (backend.ts): the doors' credentials checked, the models
 * checked (the default prepared when missing, the others when first needed), the queue recovered, the health
 * endpoint and the doors started, undelivered answers sent again, then the worker set going. Every part is
 * added to a `Closer` as it starts, so `stop()` and a start that fails part way undo the same steps, the last
 * started first: the doors, the health endpoint, the worker and the queue (the running job's grace), the engine,
 * then on Redis the front's lock and the connection.
 */
import type { Config } from '../config.js';
import { EngineProcess } from '../engine/engine-process.js';
import { OperatorError } from '../errors.js';
import { privateDataFolder } from '../files.js';
import { DEFAULT_LOCALE, say } from '../i18n/i18n.js';
import type { Logger } from '../log.js';
import { findModel, readManifest } from '../models/manifest.js';
import { ModelPreparer } from '../models/on-demand.js';
import { observeRole } from '../observe/start.js';
import { AUTO_MODEL } from '../options.js';
import { ResultCache } from '../pipeline/cache.js';
import { SCENE_MODELS } from '../pipeline/plan.js';
import { enhanceProcessor } from '../pipeline/process.js';
import type { EnhanceQueue } from '../queue/queue.js';
import { Worker } from '../queue/worker.js';
import { localBackend, redisBackend, type Backend, type Role } from './backend.js';
import { Closer } from './closer.js';
import { probeGuesses } from './first-guesses.js';
import { checkDoors, doorHealth, type Door, type DoorFactory } from './door.js';

export { ROLES, type Role } from './backend.js';

/** A stop was asked for while the service was starting; nothing was left running. */
export class StartStopped extends Error {
  constructor() {
    super('stopped while starting');
    this.name = 'StartStopped';
  }
}

export interface Service {
  /** The queue the doors use; none in a worker. */
  queue?: EnhanceQueue;
  /** None in a front. */
  worker?: Worker;
  doors: readonly Door[];
  /** Stops taking work, lets the running job finish (or keeps it for the next start), delivers, closes. */
  stop(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  /** Builds the front doors, each with the queue (not called in a worker). */
  doors: DoorFactory;
  logger: Logger;
  /** What the doors may ask for beyond `config.model` (a hot-folder preset's model), checked before start. */
  models?: readonly string[];
  /** Default `all`; `front` and `worker` need `config.redis.url`. */
  role?: Role;
  /** A stop asked for while starting: it cuts the doors' checks short, and start-up rejects with `StartStopped`. */
  signal?: AbortSignal;
}

/**
 * Why `role` cannot run with this config, or undefined: the one place the rule is said.
 *
 * @example roleProblem('worker', config) // '--role worker needs the queue on Redis: set ENHANCER_REDIS_URL …'
 */
export function roleProblem(role: Role, config: Pick<Config, 'redis'>): string | undefined {
  if (role === 'all' || config.redis.url) return undefined;
  return `--role ${role} needs the queue on Redis: set ENHANCER_REDIS_URL (without it the service is one process, --role all)`;
}

/**
 * Checks that every model named is in the manifest (the config's default first, then those the doors' presets
 * name), and prepares the first, in float32, before start: in a child process (`preparer`), so the service never
 * holds a preparation's memory. The others, int8 variants and the anime scene are prepared when a job first
 * needs them (see `ModelPreparer`).
 */
export async function ensureModels(models: readonly string[], log: Logger, dir: string, preparer = new ModelPreparer({ dir, logger: log })): Promise<void> {
  const manifest = await readManifest(dir);
  for (const name of new Set(models)) {
    if (name === AUTO_MODEL) continue;
    try {
      findModel(manifest, name);
    } catch (error) {
      throw new OperatorError(`config: ${(error as Error).message}`);
    }
  }
  if (models.length > 0) await preparer.ensure({ model: models[0], precision: 'fp32' }, (text) => log.info(`${say(DEFAULT_LOCALE, text)} (\`enhancer models\` does the same)`));
}

/**
 * The model prepared before start for the configured default: `auto` runs x4plus on a photo that fits the time
 * target, the likeliest first job; the others are prepared when a job first needs them.
 */
const startModel = (model: string) => (model === AUTO_MODEL ? SCENE_MODELS.photo[0] : model);

/**
 * Starts the service for `role`. The doors' credential checks come first (see `checkDoors`): a refused token
 * stops start-up before a model is prepared or a file taken. Whatever fails on the way undoes what had started,
 * so the process can end by itself.
 */
export async function startService(options: StartOptions): Promise<Service> {
  const { config, logger: log, role = 'all', signal } = options;
  const problem = roleProblem(role, config);
  if (problem) throw new OperatorError(problem);
  const work = role !== 'front';
  const closer = new Closer(log);
  try {
    const notPrivate = privateDataFolder(config.data);
    if (notPrivate) log.warn({ data: config.data, why: notPrivate }, 'could not make the data folder private (0700): other users of this machine may read uploads and results');
    const byName = new Map<string, Door>();
    const guesses = await probeGuesses(config.models, config.threads, log);
    const backend: Backend = config.redis.url ? await redisBackend(config, role, byName, log, closer, guesses) : localBackend(config, byName, log, guesses);
    const { queue, source } = backend;
    const doors = queue && role !== 'worker' ? options.doors(queue) : [];
    for (const door of doors) byName.set(door.name, door);
    // The doors' credentials before anything is prepared or taken: a refused token stops start-up here.
    await checkDoors(doors, log, signal);
    if (signal?.aborted) throw new StartStopped();
    const preparer = new ModelPreparer({ dir: config.models, logger: log });
    if (work) await ensureModels([startModel(config.model), ...(options.models ?? [])], log, config.models, preparer);

    let worker: Worker | undefined;
    if (work && source) {
      const engine = new EngineProcess({ dataDir: config.data, modelsDir: config.models, threads: config.threads, gpu: config.gpu, logger: log });
      closer.add('engine', () => engine.close());
      // The result cache stays on this machine: a hit saves this worker the model, and its files are written by
      // rename, so two workers sharing a data folder do not see each other's halves.
      const processor = enhanceProcessor({ engine, modelsDir: config.models, cache: new ResultCache(config.data, config.cache.maxBytes), speeds: backend.speeds, maxPixels: config.limits.maxPixels, preparer, keepGps: config.metadata.keepGps });
      worker = new Worker(source, processor, { logger: log, disk: backend.disk });
    }
    closer.add('worker and queue', () =>
      backend.close(async () => {
        await worker?.close(config.shutdownGraceMs);
        preparer.close();
      }),
    );
    // Before the doors and the worker start, so a port in use stops start-up with little to undo; /healthz says
    // 503 until the worker runs. Only the default model is checked there: the others are prepared when needed.
    const observe = await observeRole(config, { queue, queueCheck: backend.queueCheck, worker, models: work ? [startModel(config.model)] : undefined, checks: [...backend.checks, ...doorHealth(doors)] }, log);
    if (observe) closer.add('health endpoint', () => observe.close());

    const recovered = (await queue?.recover()) ?? [];
    for (const door of doors) {
      closer.add(`${door.name} door`, () => door.stop());
      await door.start();
    }
    queue?.startDeliveries();
    worker?.run();
    log.info({ ...backend.describe, adapters: doors.map((a) => a.name), recovered: recovered.length, model: config.model }, 'service started');
    return {
      queue,
      worker,
      doors,
      stop: async () => {
        log.info('stopping: no new work taken');
        await closer.close();
        log.info('stopped');
      },
    };
  } catch (error) {
    // A door that failed to start, a port in use: what already runs (a watcher, a listener, Redis connections)
    // would keep the process alive with nothing working.
    await closer.close();
    throw error;
  }
}

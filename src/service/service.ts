/**
 * The running service: models checked (the default prepared when missing, the others when first needed), the queue recovered from the spool, the
 * adapters started, undelivered answers sent again, then the worker set going. `stop()` undoes it in the order
 * that loses nothing.
 */
import type { Config } from '../config.js';
import { EngineProcess } from '../engine/engine-process.js';
import { EnhanceError } from '../errors.js';
import { privateDataFolder } from '../files.js';
import { DEFAULT_LOCALE, say } from '../i18n/i18n.js';
import type { Logger } from '../log.js';
import { findModel, readManifest } from '../models/manifest.js';
import { ModelPreparer } from '../models/on-demand.js';
import { diskSpace } from '../observe/health.js';
import { observeRole } from '../observe/start.js';
import { modelsDir } from '../paths.js';
import { ResultCache } from '../queue/cache.js';
import { enhanceProcessor } from '../queue/enhance-processor.js';
import { LocalQueue } from '../queue/local-queue.js';
import { Throughput } from '../queue/throughput.js';
import { Worker } from '../queue/worker.js';
import type { EnhanceQueue, Outcome } from '../queue/queue.js';
import type { Job } from '../types.js';
import type { Adapter } from './adapter.js';
import { checkDoors, doorHealth } from './door-connection.js';
import { startOnRedis } from './redis-service.js';

/**
 * What a process runs: `all` the front doors and a worker (the default, and the only role without Redis),
 * `front` the doors and no model, `worker` one worker for one accelerator and no door.
 */
export type Role = 'all' | 'front' | 'worker';
export const ROLES: readonly Role[] = ['all', 'front', 'worker'];

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
  adapters: readonly Adapter[];
  /** Stops taking work, lets the running job finish (or keeps it for the next start), delivers, closes. */
  stop(): Promise<void>;
}

/**
 * Checks that every model named is in the manifest (the config's default first, then those the doors' presets
 * name), and prepares the first, in float32, before start: in a child process (`preparer`), so the service never
 * holds a preparation's memory. The others, int8 variants and the anime scene are prepared when a job first
 * needs them (see `ModelPreparer`).
 */
export async function ensureModels(models: readonly string[], log: Logger, dir = modelsDir(), preparer = new ModelPreparer({ dir, logger: log })): Promise<void> {
  const manifest = await readManifest(dir);
  for (const name of new Set(models)) {
    try {
      findModel(manifest, name);
    } catch (error) {
      throw new EnhanceError(`config: ${(error as Error).message}`, 'options');
    }
  }
  if (models.length > 0) await preparer.ensure({ model: models[0], precision: 'fp32' }, (text) => log.info(`${say(DEFAULT_LOCALE, text)} (\`enhancer models\` does the same)`));
}

/** What a queue of the front needs from the config and the doors: defaults, limits and the way answers go out. */
export function frontOptions(config: Config, adapters: readonly Adapter[], log: Logger) {
  const byName = new Map(adapters.map((a) => [a.name, a]));
  return {
    defaults: { model: config.model, device: config.device, precision: config.precision, tile: config.tile },
    maxPixels: config.limits.maxPixels,
    maxFileBytes: config.limits.maxFileBytes,
    retry: config.delivery,
    limitFor: (request: { replyTo?: { adapter: string } }) => {
      const door = byName.get(request.replyTo?.adapter ?? '');
      return door?.trusted || door?.ownLimits ? Infinity : config.limits.queuedPerOwner;
    },
    deliver: async (job: Job, outcome: Outcome) => {
      const name = job.request.replyTo?.adapter ?? '';
      const adapter = byName.get(name);
      // Kept and tried again: the door may be turned back on.
      if (!adapter) throw new Error(`the ${name || 'unnamed'} front door is not running (turned off in the config?)`);
      await adapter.deliver(job, outcome);
    },
    logger: log,
  };
}

/**
 * `models`: what the adapters may ask for beyond `config.model`, prepared before anything starts. `role` other
 * than `all` needs `config.redis.url`. The doors' credential checks come first (see `checkDoors`): a refused
 * token stops start-up before a model is prepared or a file taken. `signal` is a stop request: it cuts the checks
 * short, and start-up then rejects with a `StartStopped` having left nothing running. Whatever fails on the way
 * undoes what had started, so the process can end.
 */
export async function startService(
  config: Config,
  adapters: Adapter[],
  log: Logger,
  models: readonly string[] = [],
  role: Role = 'all',
  signal?: AbortSignal,
): Promise<Service> {
  if (role !== 'all' && !config.redis.url) {
    throw new EnhanceError(`--role ${role} needs the queue on Redis: set ENHANCER_REDIS_URL (without it the service is one process, --role all)`, 'options');
  }
  await checkDoors(role === 'worker' ? [] : adapters, log, signal);
  if (signal?.aborted) throw new StartStopped();
  if (config.redis.url) return startOnRedis(config, adapters, log, models, role);
  const preparer = new ModelPreparer({ dir: modelsDir(), logger: log });
  await ensureModels([config.model, ...models], log, modelsDir(), preparer);
  const notPrivate = privateDataFolder(config.data);
  if (notPrivate) log.warn({ data: config.data, why: notPrivate }, 'could not make the data folder private (0700): other users of this machine may read uploads and results');
  const speeds = new Throughput(config.data);
  const queue = new LocalQueue({ dataDir: config.data, speeds, ...frontOptions(config, adapters, log) });
  const engine = new EngineProcess({ dataDir: config.data, modelsDir: modelsDir(), threads: config.threads, gpu: config.gpu, logger: log });
  const processor = enhanceProcessor({ engine, cache: new ResultCache(config.data, config.cache.maxBytes), speeds, maxPixels: config.limits.maxPixels, preparer });
  const worker = new Worker(queue, processor, { logger: log, disk: queue.disk });
  // Before anything runs, so a port in use stops start-up with nothing to undo; /healthz says 503 until worker.run().
  // Only the default model: the others are prepared when first needed.
  const observe = await observeRole(config, { queue, worker, models: [config.model], checks: [diskSpace(queue.disk), ...doorHealth(adapters)] }, log);
  const started: Adapter[] = [];

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping: no new work taken');
      for (const adapter of started) await adapter.stop();
      await worker.close(config.shutdownGraceMs);
      preparer.close();
      await queue.close(config.shutdownGraceMs);
      await engine.close();
      await observe?.close();
      log.info('stopped');
    })());
  try {
    const recovered = await queue.recover();
    for (const adapter of adapters) {
      started.push(adapter);
      await adapter.start(queue);
    }
    queue.startDeliveries();
    worker.run();
    log.info({ adapters: adapters.map((a) => a.name), recovered: recovered.length, model: config.model, data: config.data }, 'service started');
  } catch (error) {
    // A hot folder whose outbox is a file, say: what already runs (the watcher, the HTTP endpoint) would keep
    // the process alive with nothing working.
    await stop();
    throw error;
  }
  return { queue, worker, adapters, stop };
}

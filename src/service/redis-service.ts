/**
 * The service on Redis (`ENHANCER_REDIS_URL` set): per role, the front doors with a `RedisQueue` (no model
 * loaded), one worker with a `RedisJobSource` and its own engine (no door), or both in one process (`all`).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { EngineProcess } from '../engine/engine-process.js';
import { privateDataFolder } from '../files.js';
import type { Logger } from '../log.js';
import { ModelPreparer } from '../models/on-demand.js';
import { modelsDir } from '../paths.js';
import { ResultCache } from '../queue/cache.js';
import { enhanceProcessor } from '../queue/enhance-processor.js';
import { connectRedis, safeUrl } from '../queue/redis/connection.js';
import { FrontLock } from '../queue/redis/front-lock.js';
import { observeRole } from '../observe/start.js';
import { redisConnected, takingJobs } from '../queue/redis/health.js';
import { RedisQueue } from '../queue/redis/redis-queue.js';
import { RedisJobSource } from '../queue/redis/redis-source.js';
import { RedisSpeeds } from '../queue/redis/speeds.js';
import { Worker } from '../queue/worker.js';
import type { Adapter } from './adapter.js';
import { doorHealth } from './door-connection.js';
import { ensureModels, frontOptions, type Role, type Service } from './service.js';

/** How much longer than `shutdownGraceMs` stopping waits for Redis before it leaves without it. */
const CLOSE_MARGIN_MS = 5_000;

/** How long the front's lock outlives a front that died (or `redis.lockMs` when shorter). */
const FRONT_LOCK_MS = 10_000;

/** After leaving without Redis, how long the process may take to end by itself before it is ended. */
const ABANDON_EXIT_MS = 2_000;

/** Starts `role` on the queue at `config.redis.url`; an unreachable Redis rejects with one line within seconds. */
export async function startOnRedis(config: Config, adapters: Adapter[], log: Logger, models: readonly string[], role: Role): Promise<Service> {
  const redis = await connectRedis(config.redis.url, log, role);
  let frontLock: FrontLock | undefined;
  try {
    // One front per Redis: a second is refused here, before it reads or watches anything.
    if (role !== 'worker') frontLock = await FrontLock.take(redis, { ttlMs: Math.min(FRONT_LOCK_MS, config.redis.lockMs), logger: log });
    return await startRoles(config, adapters, log, models, role, redis, frontLock);
  } catch (error) {
    // A start that failed (a port in use, say) must not keep the lock: measured, its process stayed up after
    // the error line and renewed the lock, so every later front was refused.
    await frontLock?.release();
    redis.disconnect();
    throw error;
  }
}

async function startRoles(config: Config, adapters: Adapter[], log: Logger, models: readonly string[], role: Role, redis: Redis, frontLock: FrontLock | undefined): Promise<Service> {
  const front = role !== 'worker';
  const work = role !== 'front';
  const preparer = new ModelPreparer({ dir: modelsDir(), logger: log });
  if (work) await ensureModels([config.model, ...models], log, modelsDir(), preparer);
  const notPrivate = privateDataFolder(config.data);
  if (notPrivate) log.warn({ data: config.data, why: notPrivate }, 'could not make the data folder private (0700): other users of this machine may read uploads and results');

  let queue: RedisQueue | undefined;
  if (front) {
    queue = new RedisQueue({ redis, ...frontOptions(config, adapters, log) });
    await queue.recover();
  }
  let worker: Worker | undefined;
  let source: RedisJobSource | undefined;
  let engine: EngineProcess | undefined;
  if (work) {
    engine = new EngineProcess({ dataDir: config.data, modelsDir: modelsDir(), threads: config.threads, gpu: config.gpu, logger: log });
    source = new RedisJobSource({ redis, lockMs: config.redis.lockMs, retry: config.delivery, logger: log });
    // The result cache stays on this machine: a hit saves this worker the model, and its files are written by
    // rename, so two workers sharing a data folder do not see each other's halves.
    const processor = enhanceProcessor({ engine, cache: new ResultCache(config.data, config.cache.maxBytes), speeds: new RedisSpeeds(redis), maxPixels: config.limits.maxPixels, preparer });
    worker = new Worker(source, processor, { logger: log });
  }
  // Before the doors and the worker start, so a port in use stops start-up with nothing to undo.
  const doors = front ? adapters : [];
  const observe = await observeRole(
    config,
    { queue, queueCheck: redisConnected(redis), worker, models: work ? [config.model] : undefined, checks: [...(source ? [takingJobs(source)] : []), ...doorHealth(doors)] },
    log,
  );
  if (queue) {
    for (const adapter of doors) await adapter.start(queue);
    queue.startDeliveries();
  }
  worker?.run();
  log.info({ role, redis: safeUrl(config.redis.url), adapters: doors.map((a) => a.name), worker: source?.name, model: config.model, data: config.data }, 'service started');

  let stopping: Promise<void> | undefined;
  return {
    queue,
    worker,
    adapters: doors,
    stop: () =>
      (stopping ??= (async () => {
        log.info('stopping: no new work taken');
        for (const adapter of doors) await adapter.stop();
        const closed = (async () => {
          await worker?.close(config.shutdownGraceMs);
          preparer.close();
          await source?.close();
          await queue?.close(config.shutdownGraceMs);
        })();
        // BullMQ's close waits for Redis; with Redis down it would wait for ever. Nothing is lost by not
        // waiting: a job not ended stays in Redis and runs again, an answer not delivered is delivered later.
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), config.shutdownGraceMs + CLOSE_MARGIN_MS)));
        if ((await Promise.race([closed, late])) === 'late') {
          log.warn({ redis: redis.status }, 'Redis did not answer while stopping; leaving without it (unfinished work stays in Redis)');
          // Not awaited: BullMQ's disconnect, too, waits for a connection that is not there.
          void Promise.allSettled([source?.abandon(), queue?.abandon()]);
          // BullMQ's connections keep retrying even so (measured: the process stayed up after 'stopped'); once
          // everything else has finished, nothing is left to wait for. Unref'd: it fires only if they hold on.
          setTimeout(() => process.exit(), ABANDON_EXIT_MS).unref();
        }
        clearTimeout(timer);
        await engine?.close();
        await observe?.close();
        await frontLock?.release();
        redis.disconnect();
        log.info('stopped');
      })()),
  };
}

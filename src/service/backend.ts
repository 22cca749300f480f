/**
 * Where the service keeps its jobs, behind one shape: the in-process queue (the embedded default) or the queue on
 * Redis (BullMQ), for a front's doors, a worker, or both. `startService` (service.ts) runs the same steps over
 * either; only what differs lives here.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { requestChecks } from '../pipeline/admission.js';
import { diskSpace, inProcessQueue, redisConnected, takingJobs, type HealthCheck } from '../observe/health.js';
import { LocalQueue } from '../queue/local-queue.js';
import type { EnhanceQueue, Outcome } from '../queue/queue.js';
import { connectRedis, safeUrl } from '../queue/redis/connection.js';
import { FrontLock } from '../queue/redis/front-lock.js';
import { RedisQueue } from '../queue/redis/redis-queue.js';
import { RedisJobSource } from '../queue/redis/redis-source.js';
import { RedisSpeeds } from '../queue/redis/speeds.js';
import { Throughput, type Costs, type FirstGuesses } from '../queue/throughput.js';
import type { JobSource, WorkerOptions } from '../queue/worker.js';
import type { Job, ReplyTo } from '../types.js';
import type { Door, JobOf } from './door.js';
import type { Closer } from './closer.js';

/** What a process runs: the doors and a worker (`all`, the only role without Redis), the doors (`front`), a worker. */
export type Role = 'all' | 'front' | 'worker';
export const ROLES: readonly Role[] = ['all', 'front', 'worker'];

/** A queue as the service drives it: the doors' side, and the steps only the service takes. */
export type ServiceQueue = EnhanceQueue & {
  /** Loads what an earlier run left (or starts hearing the workers); before the doors start. */
  recover(): Promise<Job[]>;
  /** Delivers ended jobs; once the doors have started. */
  startDeliveries(): void;
};

export interface Backend {
  /** The queue the doors use, in a process with doors. */
  queue?: ServiceQueue;
  /** Where this process's worker takes jobs, in a process with a worker. */
  source?: JobSource;
  /** Learned speeds: taught by the worker, read for ETAs. */
  speeds: Throughput | RedisSpeeds;
  /** The disk the worker waits on when it is full (the in-process queue's). */
  disk?: WorkerOptions['disk'];
  /** This backend's own `/healthz` checks: whether its queue is there, then any others. */
  queueCheck: HealthCheck;
  checks: HealthCheck[];
  /** Closes the queue and the source; `work` (the worker's close) runs first, within the same bound. */
  close(work: () => Promise<void>): Promise<void>;
  /** For the start-up log line. */
  describe: Record<string, unknown>;
}

/** How much longer than `shutdownGraceMs` stopping waits for Redis before it leaves without it. */
const CLOSE_MARGIN_MS = 5_000;
/** How long the front's lock outlives a front that died (or `redis.lockMs` when shorter). */
const FRONT_LOCK_MS = 10_000;
/** After leaving without Redis, how long the process may take to end by itself before it is ended. */
const ABANDON_EXIT_MS = 2_000;

/**
 * What a queue of the front needs from the config and the doors: defaults, limits and the way answers go out.
 * `doors` is read when a request or an answer comes, since the doors are built with the queue.
 */
export function frontOptions(config: Config, doors: ReadonlyMap<string, Door>, log: Logger, costs: () => Costs | Promise<Costs>) {
  const byName = doors;
  return {
    checks: requestChecks({
      defaults: { model: config.model, device: config.device, precision: config.precision, tile: config.tile },
      modelsDir: config.models,
      maxPixels: config.limits.maxPixels,
      maxFileBytes: config.limits.maxFileBytes,
      // The plan's estimate is the queue's: the same learned costs, or the start-up probe's first guesses.
      costs,
      targetMs: config.limits.targetTime * 1000,
      confirmOverMs: config.limits.confirmOver * 1000,
    }),
    retry: config.delivery,
    limitFor: (request: { replyTo?: { adapter: string } }) => {
      const door = byName.get(request.replyTo?.adapter ?? '');
      return door?.trusted || door?.ownLimits ? Infinity : config.limits.queuedPerOwner;
    },
    deliver: async (job: Job, outcome: Outcome) => {
      const name = job.request.replyTo?.adapter ?? '';
      const door = byName.get(name);
      // Kept and tried again: the door may be turned back on.
      if (!door) throw new Error(`the ${name || 'unnamed'} front door is not running (turned off in the config?)`);
      // A job goes to the door its reply names, so its reply is that door's own type.
      await door.deliver(job as JobOf<ReplyTo>, outcome);
    },
    logger: log,
  };
}

/**
 * The in-process queue: the doors' queue and the worker's source in one, on the data folder's spool. `guesses`:
 * this machine's first guesses of the models' speeds (the start-up probe's), until jobs teach better.
 */
export function localBackend(config: Config, doors: ReadonlyMap<string, Door>, log: Logger, guesses: FirstGuesses = {}): Backend {
  const speeds = new Throughput(config.data, Date.now, guesses);
  const queue = new LocalQueue({ dataDir: config.data, speeds, ...frontOptions(config, doors, log, () => speeds.costs()) });
  return {
    queue,
    source: queue,
    speeds,
    disk: queue.disk,
    queueCheck: inProcessQueue(),
    checks: [diskSpace(queue.disk)],
    close: async (work) => {
      await work();
      await queue.close(config.shutdownGraceMs);
    },
    describe: { data: config.data },
  };
}

/**
 * The queue on Redis for `role`: connected (an unreachable Redis rejects with one line within seconds), the
 * front's lock taken (a second front is refused here, before it reads or watches anything), both added to
 * `closer` so a start that fails later gives them back.
 */
export async function redisBackend(config: Config, role: Role, doors: ReadonlyMap<string, Door>, log: Logger, closer: Closer, guesses: FirstGuesses = {}): Promise<Backend> {
  const redis = await connectRedis(config.redis.url, log, role);
  closer.add('Redis connection', () => redis.disconnect());
  if (role !== 'worker') {
    // A start that failed (a port in use, say) must not keep the lock: measured, its process stayed up after
    // the error line and renewed the lock, so every later front was refused.
    const lock = await FrontLock.take(redis, { ttlMs: Math.min(FRONT_LOCK_MS, config.redis.lockMs), logger: log });
    closer.add('front lock', () => lock.release());
  }
  const speeds = new RedisSpeeds(redis, guesses);
  const queue = role !== 'worker' ? new RedisQueue({ redis, guesses, ...frontOptions(config, doors, log, () => speeds.costs()) }) : undefined;
  const source = role !== 'front' ? new RedisJobSource({ redis, lockMs: config.redis.lockMs, retry: config.delivery, logger: log }) : undefined;
  return {
    queue,
    source,
    speeds,
    queueCheck: redisConnected(redis),
    checks: source ? [takingJobs(source)] : [],
    close: async (work) => {
      const closed = (async () => {
        await work();
        await source?.close();
        await queue?.close(config.shutdownGraceMs);
      })();
      // BullMQ's close waits for Redis; with Redis down it would wait for ever. Nothing is lost by not waiting:
      // a job not ended stays in Redis and runs again, an answer not delivered is delivered later.
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
    },
    describe: { role, redis: safeUrl(config.redis.url), worker: source?.name, data: config.data },
  };
}

/**
 * Health checks for the queue on Redis, in the shape the service's `/healthz` takes (src/observe): `check()`
 * resolves to null when healthy, else to one line saying what is wrong.
 */
import type { Redis } from 'ioredis';
import type { HealthCheck } from '../../observe/health.js';

/**
 * Redis answers a PING within `timeoutMs`.
 *
 * @example
 * const checks = [redisConnected(redis)];
 * const problems = (await Promise.all(checks.map((c) => c.check()))).filter(Boolean);
 */
export function redisConnected(redis: Redis, timeoutMs = 2_000): HealthCheck {
  return {
    name: 'queue connected',
    async check() {
      if (redis.status !== 'ready') return `not connected to Redis (${redis.status})`;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`Redis did not answer a PING within ${timeoutMs} ms`), timeoutMs)));
      try {
        return await Promise.race([redis.ping().then(() => null), late]);
      } catch (error) {
        return `Redis PING failed: ${(error as Error).message.split('\n')[0]}`;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * This process's worker is taking jobs from Redis (BullMQ's worker runs and its connection is ready); the
 * `Worker` itself is checked by `workerAlive` in src/observe.
 *
 * @example
 * const check = takingJobs(source);
 */
export function takingJobs(source: { isRunning(): boolean }): HealthCheck {
  return { name: 'taking jobs from Redis', check: async () => (source.isRunning() ? null : 'the worker is not taking jobs (stopped, or Redis is unreachable)') };
}

/**
 * Health checks: what `/healthz` asks before it says the service can do its work. Each role (the embedded
 * service, a front, a worker) passes the checks that apply to it; a queue on Redis brings its own "queue
 * connected" check in the same shape.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DiskSpace } from '../disk-space.js';
import { findModel, readManifest, sha256File } from '../models/manifest.js';
import type { Worker } from '../queue/worker.js';

/**
 * One thing the service needs in order to work.
 *
 * @example
 * const redis: HealthCheck = {
 *   name: 'queue connected',
 *   check: async () => (client.status === 'ready' ? null : `redis is ${client.status}`),
 * };
 */
export interface HealthCheck {
  /** Short, lower case, what holds when it passes: `models verified`. */
  name: string;
  /** null when healthy, else the problem in one line. */
  check(): Promise<string | null>;
}

/** A check's answer as `/healthz` shows it. */
export interface CheckResult {
  name: string;
  ok: boolean;
  /** The one-line problem, when not ok. */
  problem?: string;
}

/**
 * A check that does not answer within this long fails: a probe must answer before the prober's own timeout
 * (Docker's HEALTHCHECK below waits 10 s), or the prober learns nothing about which check hangs.
 */
export const CHECK_TIMEOUT_MS = 5_000;

/**
 * Runs every check at once; a check that throws fails with its error's message (for the operator, so the
 * driver's own words, e.g. `connect ECONNREFUSED 10.0.0.5:6379`), one that takes longer than `timeoutMs` says so.
 *
 * @example
 * const results = await runChecks([queueConnected(), workerAlive(worker)]);
 * const healthy = results.every((r) => r.ok);
 */
export async function runChecks(checks: readonly HealthCheck[], timeoutMs = CHECK_TIMEOUT_MS): Promise<CheckResult[]> {
  return Promise.all(
    checks.map(async ({ name, check }): Promise<CheckResult> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`did not answer within ${timeoutMs / 1000} s`), timeoutMs)));
      try {
        const problem = await Promise.race([check().catch((error: unknown) => (error instanceof Error ? error.message : String(error))), late]);
        return problem === null ? { name, ok: true } : { name, ok: false, problem: oneLine(problem) };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

/**
 * The prepared models are there with the checksums in the manifest. Hashing x4plus and x4fast (72 MB) took
 * 122 ms of a core on the CI machine, every probe; so a file's answer is kept while its size, modification time
 * and inode stay the same (a later probe: 0.7 ms), and an altered or replaced file is hashed again.
 *
 * @example
 * modelsVerified(config.models, ['x4plus', 'x4fast']);
 */
export function modelsVerified(dir: string, models: readonly string[]): HealthCheck {
  const known = new Map<string, { stamp: string; sha256: Promise<string> }>();
  const digest = async (file: string): Promise<string | undefined> => {
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat) return undefined;
    const stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
    let entry = known.get(file);
    if (entry?.stamp !== stamp) {
      entry = { stamp, sha256: sha256File(file) };
      known.set(file, entry);
      // A failed read is not kept: the next probe tries again.
      entry.sha256.catch(() => known.delete(file));
    }
    return entry.sha256;
  };
  return {
    name: 'models verified',
    async check() {
      const manifest = await readManifest(dir);
      const problems: string[] = [];
      for (const name of new Set(models)) {
        const entry = findModel(manifest, name);
        const file = path.join(dir, entry.file);
        const sum = await digest(file);
        if (sum === undefined) problems.push(`${name}: ${file} is missing`);
        else if (sum !== entry.sha256) problems.push(`${name}: ${file} does not match its checksum in the manifest (sha256 ${sum.slice(0, 12)}…, expected ${entry.sha256.slice(0, 12)}…)`);
      }
      return problems.length ? problems.join('; ') : null;
    },
  };
}

/**
 * How far past its ETA the running job may go with no sign of life (a tile done) before the worker counts as
 * hung. A tile takes seconds to a minute even for x4plus on 2 CPU cores (a 256x256 window: about 12 s), and the
 * ETA is the engine's own, from the tiles done so far; ten minutes past it is no slow machine but a hung
 * accelerator or runtime, which only a restart mends (the job then runs again).
 */
export const STUCK_AFTER_MS = 10 * 60_000;

/**
 * The worker takes jobs: `run()` was called and `close()` was not, and the running job is not far past its ETA
 * with no progress (`stuckAfterMs` beyond it).
 *
 * @example
 * startObservability({ port: 9464, worker, checks: [workerAlive(worker)] });
 */
export function workerAlive(
  worker: Pick<Worker, 'status' | 'activeJob'>,
  { stuckAfterMs = STUCK_AFTER_MS, now = Date.now }: { stuckAfterMs?: number; now?: () => number } = {},
): HealthCheck {
  return {
    name: 'worker alive',
    async check() {
      switch (worker.status) {
        case 'new':
          return 'the worker has not started taking jobs yet';
        case 'closing':
          return 'the worker is stopping and takes no more jobs';
      }
      const job = worker.activeJob;
      if (!job) return null;
      const late = now() - (job.lastSignAt + (job.etaMs ?? 0));
      if (late <= stuckAfterMs) return null;
      const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;
      return `job ${job.id} has shown no progress for ${minutes(now() - job.lastSignAt)}, ${minutes(late)} past its ETA: the accelerator may be hung (a restart runs the job again)`;
    },
  };
}

/**
 * There is room to store jobs and answers: unhealthy while a full disk holds intake, with why (which folder,
 * since when).
 *
 * @example
 * observeRole(config, { queue, worker, checks: [diskSpace(queue.disk)] }, log);
 */
export function diskSpace(disk: Pick<DiskSpace, 'reason'>): HealthCheck {
  return { name: 'disk space', check: async () => disk.reason ?? null };
}

/**
 * The in-process queue: always connected, since it lives in this process. A queue on Redis passes its own.
 *
 * @example
 * const checks = [queue instanceof LocalQueue ? inProcessQueue() : redisQueue.health()];
 */
export function inProcessQueue(): HealthCheck {
  return { name: 'queue connected', check: async () => null };
}

/** One line, and never a password: a driver's error may carry the URL it connects to (`redis://:secret@host`). */
function oneLine(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/(\/\/[^\s/@:]*:)[^\s/@]*@/g, '$1***@')
    .trim();
}

/**
 * Redis answers a PING within `timeoutMs`.
 *
 * @example
 * const checks = [redisConnected(redis)];
 * const problems = (await Promise.all(checks.map((c) => c.check()))).filter(Boolean);
 */
export function redisConnected(redis: { status: string; ping(): Promise<unknown> }, timeoutMs = 2_000): HealthCheck {
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

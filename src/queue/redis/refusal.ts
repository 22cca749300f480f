import { retryDelay, type RetryPolicy } from '../deliveries.js';

/**
 * Redis refusing a write while it runs (not a bug of ours, and not a lost connection, which ioredis rides out by
 * resending): out of memory under `noeviction`, a failed save (`MISCONF`), still loading its data after a restart,
 * a read-only replica. Such a write succeeds later as it is, so the queue tries it again, or refuses a submit
 * with one line, instead of failing a job or dropping an answer.
 */

export const OUT_OF_MEMORY = 'Redis is out of memory';

/** Redis' error codes (the first word of its reply) that mean "not now", with what to tell a person. */
const REFUSALS: Record<string, string> = {
  OOM: OUT_OF_MEMORY,
  MISCONF: 'Redis cannot save to its disk',
  LOADING: 'Redis is loading its data',
  READONLY: 'Redis is read-only',
  BUSY: 'Redis is busy',
  TRYAGAIN: 'Redis asked to try again',
};

/**
 * Why Redis refused, as a few words, when `error` is such a refusal; else undefined. A transaction refused as a
 * whole (`EXECABORT`) is judged by the errors of its commands, or, when every command was queued and EXEC itself
 * was refused (memory ran out between the two: the queued input's bytes count), by the reason EXEC names.
 *
 * @example
 * redisRefusal(new Error("OOM command not allowed when used memory > 'maxmemory'.")); // 'Redis is out of memory'
 * redisRefusal(new Error('EXECABORT Transaction discarded because of: -OOM command not allowed …')); // the same
 * redisRefusal(new Error('ENOENT')); // undefined
 */
export function redisRefusal(error: unknown): string | undefined {
  const code = redisRefusalCode(error);
  return code && REFUSALS[code];
}

/** The code of Redis' refusal (`OOM`, `MISCONF`, …) when `error` is one; its words for a person are `redis.<code>` in the catalogues. */
export function redisRefusalCode(error: unknown): string | undefined {
  const e = error as { message?: unknown; previousErrors?: unknown[] } | undefined;
  const message = typeof e?.message === 'string' ? e.message : '';
  const code = message.split(' ', 1)[0];
  if (code === 'EXECABORT') {
    for (const inner of e?.previousErrors ?? []) {
      const why = redisRefusalCode(inner);
      if (why) return why;
    }
    const named = /because of: -?([A-Z]+)\b/.exec(message);
    return named && named[1] in REFUSALS ? named[1] : undefined;
  }
  return code in REFUSALS ? code : undefined;
}

/**
 * The error as one line, for logs (Redis' messages name no secret); for a transaction refused as a whole, the
 * first of its commands' errors, which says why.
 */
export function firstLine(error: unknown): string {
  const inner = (error as { previousErrors?: unknown[] } | undefined)?.previousErrors?.[0];
  if (inner) return firstLine(inner);
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}

/** The longest wait between two tries of a refused write: Redis with room again should not wait an hour. */
const MAX_REFUSED_WAIT_MS = 30_000;

export interface UntilTakenOptions {
  /** The waits between tries, as after failed deliveries (`delivery.*`), at most 30 s. */
  policy: RetryPolicy;
  /** Stops the tries (the last error is thrown): the process is stopping. */
  signal: AbortSignal;
  /** Told of each refusal, before the wait. */
  onRefused: (error: unknown, retryInMs: number) => void;
}

/**
 * Runs `write` until Redis takes it: a write Redis refuses (see `redisRefusal`) is tried again, as it is, after
 * growing waits. Any other error, or `signal` aborted, is thrown.
 *
 * @example
 * await untilTaken(() => store.settle(job), { policy, signal, onRefused: (e, ms) => log.warn({ reason: firstLine(e), ms }, 'Redis refused') });
 */
export async function untilTaken(write: () => Promise<unknown>, options: UntilTakenOptions): Promise<void> {
  for (let tries = 1; ; tries++) {
    try {
      await write();
      return;
    } catch (error) {
      if (!redisRefusal(error) || options.signal.aborted) throw error;
      const delay = Math.min(MAX_REFUSED_WAIT_MS, retryDelay(options.policy, tries));
      options.onRefused(error, delay);
      await sleep(delay, options.signal);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

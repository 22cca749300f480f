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
 * whole (`EXECABORT`) is judged by the errors of its commands.
 *
 * @example
 * redisRefusal(new Error("OOM command not allowed when used memory > 'maxmemory'.")); // 'Redis is out of memory'
 * redisRefusal(new Error('ENOENT')); // undefined
 */
export function redisRefusal(error: unknown): string | undefined {
  const e = error as { message?: unknown; previousErrors?: unknown[] } | undefined;
  const message = typeof e?.message === 'string' ? e.message : '';
  const code = message.split(' ', 1)[0];
  if (code === 'EXECABORT') {
    for (const inner of e?.previousErrors ?? []) {
      const why = redisRefusal(inner);
      if (why) return why;
    }
    return undefined;
  }
  return REFUSALS[code];
}

/** The error as one line, for logs (Redis' messages name no secret). */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}

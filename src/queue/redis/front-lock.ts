/**
 * One front per Redis, enforced: a front holds `enhancer:front`, a key with a short TTL that it renews a few times
 * per TTL, so the lock dies with its holder (SIGKILL, power, a lost network) within one TTL. Two fronts would
 * each deliver answers for doors the other may not have, and both answer every cancel; workers take no lock.
 *
 * A front that finds the lock held watches it for a little longer than one renewal: a holder that renews it is
 * alive, and the newcomer is refused with one line; a lock nobody renews runs out, and the newcomer takes it.
 * So a second front is refused within about half a TTL, and a front restarted after a crash starts within one.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { OperatorError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { PREFIX } from './store.js';

export const FRONT_LOCK_KEY = `${PREFIX}:front`;

/** Another front holds the lock and renews it; the message is one line. */
export class FrontRunning extends OperatorError {
  constructor(message: string) {
    super(message);
    this.name = 'FrontRunning';
  }
}

/** Who holds the lock, as stored in it. */
interface Holder {
  host: string;
  pid: number;
  since: string;
  token: string;
}

/**
 * Renews the lock if it is still ours; takes it again if it is gone (a Redis restarted without its data).
 * KEYS: lock; ARGV: our value, TTL ms. Returns 1 renewed, 2 taken again, 0 held by another.
 */
const RENEW = `
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not held then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;

/** Deletes the lock if it is still ours. KEYS: lock; ARGV: our value. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** How many times per TTL the holder renews the lock. */
const RENEWALS_PER_TTL = 4;

/** How long `release` waits for Redis: a front stopping while Redis is down leaves the lock to run out. */
const RELEASE_WAIT_MS = 1_000;

export interface FrontLockOptions {
  /** How long the lock outlives its holder. */
  ttlMs: number;
  logger: Logger;
}

export class FrontLock {
  private timer: NodeJS.Timeout | undefined;
  private lost = false;

  private constructor(
    private readonly redis: Redis,
    private readonly value: string,
    private readonly options: FrontLockOptions,
  ) {}

  /**
   * Takes the lock, waiting at most one TTL for a lock nobody renews to run out; throws `FrontRunning` when a live
   * front holds it.
   *
   * @example
   * const lock = await FrontLock.take(redis, { ttlMs: 10_000, logger });
   * // … run the front …
   * await lock.release();
   */
  static async take(redis: Redis, options: FrontLockOptions): Promise<FrontLock> {
    const holder: Holder = { host: hostname(), pid: process.pid, since: new Date().toISOString(), token: randomUUID() };
    const lock = new FrontLock(redis, JSON.stringify(holder), options);
    await lock.acquire();
    lock.timer = setInterval(() => void lock.renew(), Math.max(1, Math.floor(options.ttlMs / RENEWALS_PER_TTL)));
    // The renewals must not keep a process alive that has nothing else left to do.
    lock.timer.unref();
    return lock;
  }

  /** Stops renewing and deletes the lock if it is still ours (at most about a second, then it runs out). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, RELEASE_WAIT_MS)));
    await Promise.race([this.redis.eval(RELEASE, 1, FRONT_LOCK_KEY, this.value).catch(() => {}), late]);
    clearTimeout(timer);
  }

  /**
   * Tries to take the lock; while it is held, looks at it every `pollMs` until its holder renews it (alive: refused,
   * within a quarter TTL) or it runs out (taken, within one TTL).
   */
  private async acquire(): Promise<void> {
    const { ttlMs, logger } = this.options;
    const began = Date.now();
    const pollMs = Math.max(20, Math.min(250, Math.floor(ttlMs / 20)));
    let seen: { value: string; ttl: number } | undefined;
    for (;;) {
      if ((await this.redis.set(FRONT_LOCK_KEY, this.value, 'PX', ttlMs, 'NX')) === 'OK') {
        if (seen) logger.info({ waitedMs: Date.now() - began }, 'took the front lock: the front that held it stopped renewing it');
        return;
      }
      const [value, ttl] = await Promise.all([this.redis.get(FRONT_LOCK_KEY), this.redis.pttl(FRONT_LOCK_KEY)]);
      if (value === null || ttl === -2) continue; // run out just now: take it
      if (ttl === -1) throw refusal(value); // set by hand without a TTL: it would never run out
      // Renewed (its TTL went up), or taken by yet another front: a live front is there.
      if (seen && (value !== seen.value || ttl > seen.ttl)) throw refusal(value);
      if (!seen) logger.info({ holder: describe(value), ttlMs: ttl }, 'another front holds the front lock; waiting to see whether it is alive');
      seen = { value, ttl };
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  private async renew(): Promise<void> {
    let result: number;
    try {
      result = Number(await this.redis.eval(RENEW, 1, FRONT_LOCK_KEY, this.value, String(this.options.ttlMs)));
    } catch {
      return; // Redis unreachable: the connection's watcher logs it; the next renewal tries again
    }
    if (result === 0 && !this.lost) {
      this.lost = true;
      const held = await this.redis.get(FRONT_LOCK_KEY).catch(() => null);
      this.options.logger.error({ holder: held && describe(held) }, 'another front took the front lock on this Redis: two fronts deliver each other\'s answers; stop one');
    } else if (result !== 0 && this.lost) {
      this.lost = false;
      this.options.logger.info('holding the front lock again');
    }
  }
}

/** The one line a second front stops with. */
function refusal(value: string): FrontRunning {
  return new FrontRunning(
    `another front is running on this Redis (${describe(value)}); run one front per Redis, any number of workers (--role worker)`,
  );
}

/** The holder as a person reads it: `host h, pid 123, since 2026-…`. */
function describe(value: string): string {
  try {
    const h = JSON.parse(value) as Holder;
    return `host ${h.host}, pid ${h.pid}, since ${h.since}`;
  } catch {
    return 'a holder this version cannot read';
  }
}

/**
 * Connecting to Redis: the URL checked and shown without its password, a first connection that fails fast with
 * one line (unreachable, refused, wrong password), then long-lived connections that reconnect on their own.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { OperatorError } from '../../errors.js';
import type { Logger } from '../../log.js';

/** A Redis URL that is wrong or a server that cannot be reached at start-up; the message is one line without secrets. */
export class RedisUnavailable extends OperatorError {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailable';
  }
}

/**
 * The URL as logs and errors may show it: the password (and a user name) replaced by `***`.
 *
 * @example
 * safeUrl('redis://:hunter2@redis:6379/0'); // 'redis://:***@redis:6379/0'
 */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(a URL that cannot be read)';
  }
}

/** Checks the URL's form; throws `RedisUnavailable` naming what is wrong, never the password. */
export function checkRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RedisUnavailable(`ENHANCER_REDIS_URL is not a URL (${url.length} characters); write it as redis://[:password@]host[:port][/db]`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new RedisUnavailable(`ENHANCER_REDIS_URL must start with redis:// or rediss:// (got ${parsed.protocol}//…)`);
  }
  return parsed;
}

/**
 * Options of every long-lived connection. `maxRetriesPerRequest: null` (BullMQ's workers require it) keeps a
 * command waiting through a Redis restart instead of failing it; ioredis reconnects every 50 ms more per try, at
 * most every 2 s.
 */
const LASTING: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true };

/** How long the first connection may take before start-up gives up. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Opens a connection and waits for Redis to answer a PING, failing with one line within about 5 s when it
 * cannot (no retry loop). Later drops are reconnected; the first drop and the reconnection are logged once each.
 *
 * @example
 * const redis = await connectRedis(config.redis.url, logger, 'front');
 */
export async function connectRedis(url: string, log: Logger, name: string): Promise<Redis> {
  checkRedisUrl(url);
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  let lastError: Error | undefined;
  probe.on('error', (error: Error) => (lastError = error));
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const why = oneLine(lastError ?? error);
    throw new RedisUnavailable(`cannot reach Redis at ${safeUrl(url)} (${why}); check ENHANCER_REDIS_URL and that Redis runs`);
  } finally {
    probe.disconnect();
  }
  const redis = new Redis(url, { ...LASTING, connectionName: `enhancer-${name}` });
  watch(redis, log, name);
  return redis;
}

/**
 * Logs an outage once when it starts and once when it ends, not every retry. ioredis says `reconnecting` when a
 * connection it had drops (a Redis restart closes it cleanly, without an error); a manual `disconnect()` does not.
 */
export function watch(redis: Redis, log: Logger, name: string): void {
  let down = false;
  let lastReason = 'the connection closed';
  const lost = () => {
    if (down) return;
    down = true;
    log.warn({ connection: name, reason: lastReason }, 'lost the connection to Redis; reconnecting');
  };
  redis.on('error', (error: Error) => {
    lastReason = oneLine(error);
    lost();
  });
  redis.on('reconnecting', lost);
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    lastReason = 'the connection closed';
    log.info({ connection: name }, 'connected to Redis again');
  });
}

/** An error as one line: ioredis' messages name host and port, never the password. */
function oneLine(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  const text = e?.message ? String(e.message).split('\n')[0] : String(error);
  return text || e?.code || 'no answer';
}

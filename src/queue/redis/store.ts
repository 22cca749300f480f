/**
 * What the queue on Redis keeps besides BullMQ's own keys, shared by the front and the workers, so that a worker
 * on another machine needs only the Redis URL and its models:
 *
 * - `enhancer:job:<id>`: the job as JSON (state, reason), from `queued` until a day after it was delivered;
 * - `enhancer:input:<id>`: the input bytes, until the job is delivered;
 * - `enhancer:out:<id>`: a hash of its outputs (kind → bytes), from the moment they are made until delivered;
 * - `enhancer:outcome:<id>`: how it ended, stored before it is announced; kept a week after delivery, so a job
 *   that runs again (its worker died after the end was stored) is recognised and not delivered twice;
 * - `enhancer:owner:<owner>`: the ids of a person's waiting and running jobs (their limit; see `OWNER_COUNT`);
 * - `enhancer:turns`, `enhancer:turn`: fair turns (see fair.ts), shared by every front and worker;
 * - `enhancer:eta`: what is known of each running job for ETAs, as JSON (`RunningJob` in eta.ts: when it
 *   started, the time left it last reported, when the accelerator was free of it); `enhancer:speeds`: learned
 *   costs (see speeds.ts);
 * - channels `enhancer:events` (what workers tell the fronts) and `enhancer:cancel` (what fronts tell workers).
 *
 * Each value is one Redis string or hash field, so one file is at most Redis' 512 MB per value; inputs are capped
 * by `limits.maxFileBytes` (50 MB) and a 16 MP input's 4x PNG is typically 100-300 MB.
 */
import type { Redis } from 'ioredis';
import type { Job, OutputKind } from '../../types.js';
import type { RunningJob } from '../eta.js';
import type { Outcome } from '../queue.js';

export const PREFIX = 'enhancer';
export const EVENTS_CHANNEL = `${PREFIX}:events`;
export const CANCEL_CHANNEL = `${PREFIX}:cancel`;
/** BullMQ's queues: the jobs the workers run, and the answers the front delivers. */
export const JOBS_QUEUE = 'jobs';
export const DELIVERIES_QUEUE = 'deliveries';

/** The name of the back-off of deliveries that failed on a Redis error (the front's worker computes it). */
export const DELIVERY_BACKOFF = 'delivery';

/**
 * A delivery's BullMQ options: keyed by the job id, so a job that ended twice is delivered once. An attempt that
 * throws (a Redis error: a failed chat API is retried by the attempt itself) is tried again after a back-off,
 * without end, and a delivery is never removed for failing: before, `removeOnFail` dropped the answer.
 */
export function deliveryOptions(id: string) {
  return { jobId: id, removeOnComplete: true, removeOnFail: false, attempts: Number.MAX_SAFE_INTEGER, backoff: { type: DELIVERY_BACKOFF } } as const;
}

const DAY_S = 24 * 3600;
/** A delivered job's record stays this long for status questions. */
const REMEMBER_S = DAY_S;
/** A delivered job's outcome stays this long: a job run again after that long would be delivered again. */
const OUTCOME_S = 7 * DAY_S;
/** BullMQ's priorities run from 1 to 2^21. */
const MAX_PRIORITY = 2 ** 21;

const key = {
  job: (id: string) => `${PREFIX}:job:${id}`,
  input: (id: string) => `${PREFIX}:input:${id}`,
  out: (id: string) => `${PREFIX}:out:${id}`,
  outcome: (id: string) => `${PREFIX}:outcome:${id}`,
  owner: (owner: string) => `${PREFIX}:owner:${owner}`,
  cancel: (id: string) => `${PREFIX}:cancelled:${id}`,
  turns: `${PREFIX}:turns`,
  turn: `${PREFIX}:turn`,
  eta: `${PREFIX}:eta`,
};

/**
 * FairTurns (fair.ts) in one atomic step: the owner's next turn is one after their last, never before the turn
 * now running. KEYS: turns hash, current turn; ARGV: owner.
 */
const NEXT_TURN = `
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local turn = math.max(last + 1, current)
redis.call('HSET', KEYS[1], ARGV[1], turn)
return turn`;

/** A job of this turn started: later newcomers join from here. KEYS: current turn; ARGV: turn. */
const STARTED_TURN = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/**
 * The owner's jobs that are real: an id stays in the owner's set only while its job is in BullMQ's line (waiting
 * or running) and has not ended, or is younger than ARGV[3] ms (a submit under way on the front adds it to the
 * line right after). Others are left by a front that died between storing a job and adding it to the line, and
 * are dropped here, so they never count against the person. SREM is allowed while Redis is out of memory.
 * KEYS: owner set; ARGV: key prefix, BullMQ queue name, stale after (ms), now (ms).
 */
const OWNER_COUNT = `
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local text = redis.call('GET', ARGV[1] .. ':job:' .. id)
  local keep = text and redis.call('EXISTS', ARGV[1] .. ':outcome:' .. id) == 0
  if keep and redis.call('EXISTS', ARGV[1] .. ':' .. ARGV[2] .. ':' .. id) == 0 then
    local ok, job = pcall(cjson.decode, text)
    keep = ok and tonumber(ARGV[4]) - (tonumber(job.createdAt) or 0) < tonumber(ARGV[3])
  end
  if keep then count = count + 1 else redis.call('SREM', KEYS[1], id) end
end
return count`;

/**
 * Adds fields to a running job's record in `enhancer:eta`; a record that is gone (the job ended) is left gone,
 * unless ARGV[3] is 1. A record of the old format (a number) starts afresh. KEYS: eta hash; ARGV: job id, fields
 * as JSON, create.
 */
const PATCH_RUNNING = `
local text = redis.call('HGET', KEYS[1], ARGV[1])
if not text and ARGV[3] ~= '1' then return 0 end
local record = {}
if text then
  local ok, old = pcall(cjson.decode, text)
  if ok and type(old) == 'table' then record = old end
end
for k, v in pairs(cjson.decode(ARGV[2])) do record[k] = v end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1`;

/** `create` undone. KEYS: input, job record, owner set; ARGV: job id. */
const DISCARD = `
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1`;

/** How long a stored job may wait to be added to the line before its owner's count drops it. */
const STALE_SUBMIT_MS = 120_000;

/** A job as BullMQ carries it: only the id; the rest is in the job record. */
export interface QueuedJob {
  id: string;
  turn: number;
}

/** An event a worker publishes for the fronts. */
export interface Announcement {
  event: 'started' | 'preview' | 'progress' | 'completed' | 'failed' | 'cancelled';
  job: Job;
  /** The event's arguments after the job. */
  args: unknown[];
}

export class RedisStore {
  constructor(readonly redis: Redis) {}

  /** Stores a new job and its input, and counts it against its owner; resolves once Redis has them. */
  async create(job: Job, input: Uint8Array): Promise<void> {
    await this.redis
      .multi()
      .set(key.input(job.id), Buffer.from(input.buffer, input.byteOffset, input.byteLength))
      .set(key.job(job.id), JSON.stringify(job))
      .sadd(key.owner(job.request.owner ?? 'local'), job.id)
      .exec();
  }

  /**
   * Takes back what `create` stored, for a submit whose job could not be added to the line. Deletes only, in a
   * script: Redis allows them when it is out of memory (not in a MULTI, which it refuses whole then), and they
   * free the input's room.
   */
  async discard(job: Job): Promise<void> {
    await this.redis.eval(DISCARD, 3, key.input(job.id), key.job(job.id), key.owner(job.request.owner ?? 'local'), job.id);
  }

  async job(id: string): Promise<Job | undefined> {
    const text = await this.redis.get(key.job(id));
    return text ? (JSON.parse(text) as Job) : undefined;
  }

  async jobs(ids: string[]): Promise<Map<string, Job>> {
    const found = new Map<string, Job>();
    if (ids.length === 0) return found;
    const texts = await this.redis.mget(ids.map(key.job));
    texts.forEach((text, i) => text && found.set(ids[i], JSON.parse(text) as Job));
    return found;
  }

  async saveJob(job: Job): Promise<void> {
    await this.redis.set(key.job(job.id), JSON.stringify(job));
  }

  async input(id: string): Promise<Buffer> {
    const bytes = await this.redis.getBuffer(key.input(id));
    if (!bytes) throw new Error(`job ${id} has no stored input in Redis`);
    return bytes;
  }

  async writeOutput(id: string, kind: OutputKind, bytes: Uint8Array): Promise<number> {
    await this.redis.hset(key.out(id), kind, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return bytes.length;
  }

  async readOutput(id: string, kind: OutputKind): Promise<Buffer> {
    const bytes = await this.redis.hgetBuffer(key.out(id), kind);
    if (!bytes) throw new Error(`job ${id} has no stored ${kind} (delivered already, or never made)`);
    return bytes;
  }

  /** Jobs `owner` has waiting or running; ids left by a submit that never reached the line are dropped. */
  async ownerCount(owner: string): Promise<number> {
    return Number(await this.redis.eval(OWNER_COUNT, 1, key.owner(owner), PREFIX, JOBS_QUEUE, String(STALE_SUBMIT_MS), String(Date.now())));
  }

  async nextTurn(owner: string): Promise<number> {
    return Math.min(MAX_PRIORITY, Number(await this.redis.eval(NEXT_TURN, 2, key.turns, key.turn, owner)));
  }

  async started(job: Job, turn: number): Promise<void> {
    const running: RunningJob = { since: Date.now() };
    await this.redis
      .multi()
      .set(key.job(job.id), JSON.stringify(job))
      .eval(STARTED_TURN, 1, key.turn, String(turn))
      .hset(key.eta, job.id, JSON.stringify(running))
      .exec();
  }

  /** The time left a running job reported (its render included). */
  async setEta(id: string, etaMs: number): Promise<void> {
    await this.redis.eval(PATCH_RUNNING, 1, key.eta, id, JSON.stringify({ etaMs: Math.round(etaMs), at: Date.now() }), '1');
  }

  /** The accelerator is free of a running job: it is being finished, and holds up nobody behind it. */
  async acceleratorDone(id: string): Promise<void> {
    await this.redis.eval(PATCH_RUNNING, 1, key.eta, id, JSON.stringify({ doneAt: Date.now() }), '0');
  }

  /** What is known of the running jobs, by id; a record of the old format (the time left) counts from `now`. */
  async running(now = Date.now()): Promise<Map<string, RunningJob>> {
    const all = await this.redis.hgetall(key.eta);
    const found = new Map<string, RunningJob>();
    for (const [id, text] of Object.entries(all)) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        continue;
      }
      if (typeof value === 'number') found.set(id, { since: now, etaMs: value, at: now });
      else if (value && typeof value === 'object') {
        const r = value as Partial<RunningJob>;
        found.set(id, { ...r, since: typeof r.since === 'number' ? r.since : now });
      }
    }
    return found;
  }

  async outcome(id: string): Promise<Outcome | undefined> {
    const text = await this.redis.get(key.outcome(id));
    return text ? (JSON.parse(text) as Outcome) : undefined;
  }

  /** Stores how a job ended, before anyone is told: from now on it is delivered, never run again. */
  async end(job: Job, outcome: Outcome): Promise<void> {
    await this.redis
      .multi()
      .set(key.outcome(job.id), JSON.stringify(outcome))
      .set(key.job(job.id), JSON.stringify(job))
      .srem(key.owner(job.request.owner ?? 'local'), job.id)
      .hdel(key.eta, job.id)
      .exec();
  }

  /** Delivered or closed: input and outputs go; the record and the outcome stay a while (see the top). */
  async settle(job: Job): Promise<void> {
    await this.redis
      .multi()
      .del(key.input(job.id), key.out(job.id), key.cancel(job.id))
      .expire(key.job(job.id), REMEMBER_S)
      .expire(key.outcome(job.id), OUTCOME_S)
      .exec();
  }

  /** Marks a job cancelled, for a worker that takes it just now; the `cancel` channel tells the one running it. */
  async cancel(id: string): Promise<void> {
    await this.redis.multi().set(key.cancel(id), '1', 'EX', DAY_S).publish(CANCEL_CHANNEL, id).exec();
  }

  /** Delivered or closed already: its input is gone. */
  async isSettled(id: string): Promise<boolean> {
    return (await this.redis.exists(key.input(id))) === 0;
  }

  async isCancelled(id: string): Promise<boolean> {
    return (await this.redis.exists(key.cancel(id))) === 1;
  }

  async announce(announcement: Announcement): Promise<void> {
    await this.redis.publish(EVENTS_CHANNEL, JSON.stringify(announcement));
  }
}

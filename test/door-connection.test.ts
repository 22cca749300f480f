/**
 * A door's connection on its own, with a scripted platform: what the check says at start, the tries in the
 * background with growing pauses, the one warning, and what `/healthz` is told at each step. The pauses are
 * shortened; each step waits for an event (a try, the door coming up), never for time.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { checkDoors, doorHealth, DoorConnection, DoorRefused } from '../src/service/door-connection.js';
import { runChecks } from '../src/observe/health.js';

interface Line {
  level: number;
  msg: string;
  why?: string;
  retryInS?: number;
}

/** A logger at debug level whose lines land in `lines`. */
function memoryLogger() {
  const lines: Line[] = [];
  const logger = createLogger({ level: 'debug', isTTY: false, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } });
  return { logger, lines };
}

class Refused extends Error {}

/**
 * A platform answering each try from a script: 'down' (unreachable), 'refused', 'up', or 'silent' (never answers,
 * until the try's signal aborts). Resolves `tried(n)` once n tries were made.
 */
function platform(script: Array<'down' | 'refused' | 'up' | 'silent'>) {
  const starts: number[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const connect = (signal: AbortSignal) => {
    starts.push(Date.now());
    for (const w of waiters.filter((w) => starts.length >= w.n)) w.resolve();
    const step = script.shift() ?? 'up';
    if (step === 'up') return Promise.resolve();
    if (step === 'silent') return new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    return Promise.reject(step === 'refused' ? new Refused('401 Unauthorized') : new Error('connect ECONNREFUSED 127.0.0.1:9'));
  };
  const tried = (n: number) => new Promise<void>((resolve) => (starts.length >= n ? resolve() : waiters.push({ n, resolve })));
  return { connect, starts, tried };
}

function connection(connect: (signal: AbortSignal) => Promise<void>, logger: ReturnType<typeof memoryLogger>['logger'], tryMs = 10_000) {
  return new DoorConnection({
    platform: 'Chat',
    connect,
    refused: (error) => (error instanceof Refused ? `chat: the token was refused (${error.message})` : undefined),
    reason: (error) => (error as Error).message,
    logger,
    firstPauseMs: 20,
    tryMs,
  });
}

describe('a door connection', () => {
  it('warns once when the platform cannot be reached, tries again with doubling pauses, and comes up once', async () => {
    const { logger, lines } = memoryLogger();
    const chat = platform(['down', 'down', 'down', 'up']);
    const door = connection(chat.connect, logger);
    const health = doorHealth([{ name: 'chat', down: () => door.problem }]);

    await door.check();
    expect((await runChecks(health))[0]).toEqual({ name: 'chat door connected', ok: false, problem: 'cannot reach Chat (connect ECONNREFUSED 127.0.0.1:9); trying again' });
    let ups = 0;
    const up = new Promise<void>((resolve) => door.start(() => (ups += 1, resolve())));
    await up;
    expect(ups).toBe(1);
    expect(chat.starts).toHaveLength(4);
    // The pauses between tries: 20, 40, 80 ms (each at least that; timers never fire early).
    const pauses = chat.starts.slice(1).map((at, i) => at - chat.starts[i]);
    pauses.forEach((pause, i) => expect(pause).toBeGreaterThanOrEqual(20 * 2 ** i - 1));
    expect(lines.map((l) => [l.level, l.msg, l.retryInS])).toEqual([
      [40, 'cannot reach Chat; trying again in the background', 0.02],
      [20, 'cannot reach Chat; trying again in the background', 0.04],
      [20, 'cannot reach Chat; trying again in the background', 0.08],
    ]);
    expect(await runChecks(health)).toEqual([{ name: 'chat door connected', ok: true }]);
    door.stop();
  });

  it('stops start-up with the refusal at the check, and stops trying when refused later', async () => {
    const { logger, lines } = memoryLogger();
    const refusedAtStart = connection(platform(['refused']).connect, logger);
    const checking = checkDoors([{ name: 'chat', check: (signal) => refusedAtStart.check(signal) }], logger);
    await expect(checking).rejects.toBeInstanceOf(DoorRefused);
    await expect(checking).rejects.toThrow(/^chat: the token was refused \(401 Unauthorized\)$/);

    const chat = platform(['down', 'refused', 'up']);
    const later = connection(chat.connect, logger);
    await later.check();
    later.start(() => expect.unreachable('the door came up after a refusal'));
    await chat.tried(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(later.problem).toBe('chat: the token was refused (401 Unauthorized)');
    expect(lines.filter((l) => l.level === 50).map((l) => [l.msg, l.why])).toEqual([
      ['Chat refused the credentials; the door stays closed until the service restarts', 'chat: the token was refused (401 Unauthorized)'],
    ]);
    later.stop();
  });

  it('ends a check waiting on a silent platform at once when a stop is asked, saying nothing', async () => {
    const { logger, lines } = memoryLogger();
    const silent = connection(platform(['silent']).connect, logger, 10_000);
    const stop = new AbortController();
    const checking = silent.check(stop.signal);
    stop.abort();
    await checking;
    // Stopping is not a platform problem: nothing logged.
    expect(lines).toEqual([]);
    silent.stop();
  });
});

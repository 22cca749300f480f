/**
 * What a long-lived service keeps per job: nothing, once the job is delivered. Issue 24 saw one abort listener
 * added per job to the worker's shutdown signal (Node warned "MaxListenersExceededWarning" after 11 jobs) and the
 * resident memory grow about 50 KB a job over 900 hot-folder jobs. Here many small jobs run through the real
 * LocalQueue, Worker and processor (the scripted engine stands in for the model, so the count, not the machine's
 * speed, decides what is seen), and what a person running the service would notice stays flat: no leak warning
 * in the log, and the listeners on the signals a job touches the same after the jobs as before.
 */
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestChecks } from '../src/pipeline/admission.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { FairTurns } from '../src/queue/fair.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import { Worker } from '../src/queue/worker.js';
import { scenePng, tempDir } from './helpers.js';
import { next } from './queue-helpers.js';
import { ScriptedEngine } from './scripted-engine.js';

/** Node's default of 10 listeners passed a hundred times over; about 30 s on a busy 2-core machine. */
const JOBS = 1000;

let dir: string;
let warnings: Error[];
const onWarning = (warning: Error) => warnings.push(warning);

beforeEach(() => {
  dir = tempDir('enhancer-leak-');
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a long run of jobs', () => {
  it(`keeps no listener per job: ${JOBS} jobs, no leak warning, the signals' listeners as before`, async () => {
    const engine = new ScriptedEngine();
    engine.auto = true;
    const queue = new LocalQueue({
      dataDir: dir,
      checks: requestChecks({ defaults: { model: 'x4fast' }, maxPixels: 1_000_000, maxFileBytes: 5_000_000 }),
      deliver: async () => {},
    });
    const worker = new Worker(queue, enhanceProcessor({ engine }), { disk: queue.disk });
    // The worker's own stop signal is the one every job waited on; it is private, so it is found through the
    // listeners Node counts on every AbortSignal the worker holds.
    const closed = (worker as unknown as { closed: AbortController }).closed.signal;
    const before = getEventListeners(closed, 'abort').length;
    worker.run();
    // Half the jobs the same picture, as a hot folder sees the same photo dropped again.
    const pictures = [await scenePng(16, 12, 1), await scenePng(16, 12, 2)];
    let delivered = 0;
    const all = new Promise<void>((resolve) =>
      queue.events().on('delivered', () => {
        if (++delivered === JOBS) resolve();
      }),
    );
    for (let i = 0; i < JOBS; i++) {
      // One at a time, as files settle in a folder: never more than a few in line.
      const job = await queue.submit({ input: pictures[i % 2 === 0 ? 0 : 1], name: `${i}.png`, owner: `person-${i}` });
      if (i % 10 === 9) await next(queue, 'delivered', (j) => j.id === job.id);
    }
    await all;
    expect(delivered).toBe(JOBS);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
    expect(getEventListeners(closed, 'abort').length).toBe(before);
    // Nothing kept per person once their jobs are done (a chat door has one "owner" per user).
    const inside = queue as unknown as { submitting: Map<string, number>; turns: FairTurns };
    expect(inside.submitting.size).toBe(0);
    expect(inside.turns.owners).toBeLessThanOrEqual(1);
    await worker.close(0);
    await queue.close(100);
  });
});

describe('FairTurns', () => {
  it('forgets a person whose jobs have all had their turn', () => {
    const turns = new FairTurns();
    // A regular with a job in every round (the hot folder), and a thousand people who each came once.
    for (let i = 0; i < 1000; i++) {
      turns.started(turns.next(`person-${i}`));
      turns.started(turns.next('regular'));
    }
    expect(turns.owners).toBeLessThanOrEqual(2);
    // Forgetting changed no turn: a newcomer still joins the round now running.
    expect(turns.next('person-0')).toBe(1000);
  });

  it('still gives a person with jobs waiting the turn after their last', () => {
    const turns = new FairTurns();
    expect([turns.next('a'), turns.next('a'), turns.next('a')]).toEqual([1, 2, 3]);
    turns.started(1);
    expect(turns.next('b')).toBe(1);
    expect(turns.next('a')).toBe(4);
  });
});

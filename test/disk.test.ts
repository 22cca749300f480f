/**
 * A full disk is a wait, not a failure: the real service in a child process, its data folder or its outbox on a
 * small tmpfs that fills while images arrive, then gets room again. Every image is answered, none lands in
 * failed/, the pause and the resume are one log line each, and /healthz says why while the disk is full.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskFullError } from '../src/disk-space.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import { Worker } from '../src/queue/worker.js';
import type { Job } from '../src/types.js';
import { scenePng, tempDir } from './helpers.js';
import { next, request } from './queue-helpers.js';
import { ScriptedEngine } from './scripted-engine.js';
import { freePort, get } from './http.js';
import { listing, ServiceProcess, withConfig } from './service.js';
import { canMount, fillLeaving, mountTmpfs, NO_MOUNT, resizeTmpfs, unmount } from './tmpfs.js';
import { requestChecks } from '../src/pipeline/admission.js';

const PAUSED = 'out of disk space: intake paused; jobs and answers wait until there is room';
const RESUMED = 'disk space is back: intake resumed';

let dir: string;
let service: ServiceProcess | undefined;
const mounts: string[] = [];
const inbox = (...p: string[]) => path.join(dir, 'inbox', ...p);
const outbox = (...p: string[]) => path.join(dir, 'outbox', ...p);
const data = (...p: string[]) => path.join(dir, 'data', ...p);

beforeEach(() => {
  dir = tempDir('enhancer-disk-');
  fs.mkdirSync(inbox(), { recursive: true });
});
afterEach(async () => {
  await service?.stop('SIGKILL');
  service = undefined;
  for (const m of mounts.splice(0)) unmount(m);
  fs.rmSync(dir, { recursive: true, force: true });
});

function mount(where: string, size: string): void {
  mountTmpfs(where, size);
  mounts.push(where);
}

function start(port: number): ServiceProcess {
  service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { settleMs: 200 } }), ENHANCER_HTTP_PORT: String(port) });
  return service;
}

async function health(port: number): Promise<{ status: number; disk?: { ok: boolean; problem?: string } }> {
  const answer = await get(port, '/healthz');
  const body = JSON.parse(answer.body) as { checks: Array<{ name: string; ok: boolean; problem?: string }> };
  return { status: answer.status, disk: body.checks.find((c) => c.name === 'disk space') };
}

if (!canMount) console.warn(`disk.test.ts: ${NO_MOUNT}`);

describe.skipIf(!canMount)('a full disk', () => {
  it('holds images while the data folder is full, answers all four once it has room, and moves none to failed/', async () => {
    mount(data(), '4m');
    const port = await freePort();
    const s = start(port);
    await s.started();
    expect(await health(port)).toEqual({ status: 200, disk: { name: 'disk space', ok: true } });

    // Room for the four small inputs, not for their results.
    fillLeaving(data(), 40 * 1024);
    const names = ['a.png', 'b.png', 'c.png', 'd.png'];
    for (const [i, name] of names.entries()) fs.writeFileSync(inbox(name), await scenePng(24, 24, 20 + i));
    await s.count(PAUSED, 1);
    const full = await health(port);
    expect(full.status).toBe(503);
    expect(full.disk?.problem).toMatch(new RegExp(`^no space left on device \\(ENOSPC\\) writing ${fs.realpathSync(data())}/\\S+ since \\S+; intake paused`));
    expect(listing(inbox('failed'))).toEqual([]);

    resizeTmpfs(data(), '64m');
    await s.count(RESUMED, 1);
    await s.until(() => listing(inbox('done')).length === 4, 'all four originals in done/');
    expect(listing(outbox()).filter((n) => n.endsWith('.png'))).toEqual(names);
    expect(listing(inbox('failed'))).toEqual([]);
    expect(s.lines('job failed')).toEqual([]);
    expect([s.lines(PAUSED).length, s.lines(RESUMED).length]).toEqual([1, 1]);
    expect(await health(port)).toEqual({ status: 200, disk: { name: 'disk space', ok: true } });
    expect(s.running).toBe(true);
  });

  it('keeps an answer that meets a full outbox, lives on, and writes it once the outbox has room', async () => {
    mount(outbox(), '1m');
    const port = await freePort();
    const s = start(port);
    await s.started();
    const filler = fillLeaving(outbox(), 0);
    const bytes = await scenePng(24, 24, 30);
    fs.writeFileSync(inbox('late.png'), bytes);
    await s.count(PAUSED, 1);
    await s.count('job waits for disk space', 1);
    expect(s.lines('job completed')).toHaveLength(1);
    expect((await health(port)).disk?.problem).toMatch(new RegExp(`^no space left on device \\(ENOSPC\\) writing ${fs.realpathSync(outbox())} since`));
    // Waiting for room is not a failed delivery: no retry schedule, nothing counted.
    expect(s.lines('delivery failed; trying again later')).toEqual([]);

    fs.rmSync(filler);
    await s.count('job delivered', 1);
    expect(listing(outbox())).toEqual(['late.compare.jpg', 'late.pdf', 'late.png', 'late.preview.jpg']);
    expect(fs.readFileSync(inbox('done', 'late.png')).equals(bytes)).toBe(true);
    expect([s.lines(PAUSED).length, s.lines(RESUMED).length]).toEqual([1, 1]);
    expect(s.logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(s.running).toBe(true);
  });

  it('in process: refuses a new image with one line while full, and a job whose output meets it waits, then completes', async () => {
    mount(data(), '1m');
    const engine = new ScriptedEngine();
    const delivered: Job[] = [];
    const queue = new LocalQueue({ dataDir: data(), checks: requestChecks({ defaults: { model: 'x4fast' } }), diskChecks: { firstCheckMs: 10, maxCheckMs: 50 }, deliver: async (job) => void delivered.push(job) });
    const worker = new Worker(queue, enhanceProcessor({ engine }), { disk: queue.disk });
    try {
      const a = await queue.submit(await request('a.png', 1));
      worker.run();
      const call = await engine.next();
      const filler = fillLeaving(data(), 0);
      const held = next(queue, 'held');
      call.finish();
      expect((await held)[1]).toEqual({ reason: 'the server is out of disk space: your image waits and goes on by itself once there is room', text: { key: 'reason.diskWait' } });
      expect(queue.disk.full).toBe(true);
      const refused = await queue.submit(await request('b.png', 2)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(DiskFullError);
      expect((refused as Error).message).toBe('the server is out of disk space, try later');

      const done = next(queue, 'delivered');
      fs.rmSync(filler);
      await done;
      expect(delivered.map((j) => [j.id, j.state])).toEqual([[a.id, 'completed']]);
      expect(queue.disk.full).toBe(false);
      // Room again: the next image is taken.
      await queue.submit(await request('b.png', 2));
    } finally {
      await worker.close(0);
      await queue.close(100);
    }
  });
});

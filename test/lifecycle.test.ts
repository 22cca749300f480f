/**
 * The service's lifecycle with real processes: one service per data folder, stopping that reaches the service
 * however it was started (`npm start`, the launcher), and a launcher's death stopping the service.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scenePng, tempDir } from './helpers.js';
import { killAll, processTree, untilGone, type Proc } from './processes.js';
import { listing, ServiceProcess, withConfig, type LogLine, type Launch } from './service.js';

/** The running job's grace period on shutdown in these tests: room for a job on a slow, shared machine. */
const GRACE_MS = 20_000;
/** After the grace period: stopping a job that overran it, and the processes exiting. */
const AFTER_GRACE_MS = 5_000;

let dir: string;
let services: ServiceProcess[] = [];
let procs: Proc[] = [];

beforeEach(() => {
  dir = tempDir('enhancer-lifecycle-');
  fs.mkdirSync(path.join(dir, 'inbox'), { recursive: true });
});
afterEach(async () => {
  // Whatever a failed test left: every process below each start, then the starts themselves.
  for (const s of services) procs.push(...processTree(s.pid));
  killAll(procs);
  for (const s of services) await s.stop('SIGKILL');
  services = [];
  procs = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

function start(launch: Launch = 'direct'): ServiceProcess {
  const s = new ServiceProcess(dir, withConfig(dir, { shutdownGraceMs: GRACE_MS, hotfolder: { settleMs: 300 } }), launch);
  services.push(s);
  return s;
}

/** `promise`, or a failure naming `what` after `ms` (rather than the test's much later time-out). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Drops a picture into the inbox and resolves, with its bytes, once its job runs on the model (x4fast: seconds on 2 cores). */
async function runningJob(s: ServiceProcess): Promise<Buffer> {
  const bytes = await scenePng(384, 384, 7);
  fs.writeFileSync(path.join(dir, 'inbox', 'photo.png'), bytes);
  await s.count('job started', 1);
  return bytes;
}

/** Files in the hot folder's `.working/` (of the inbox itself) whose bytes are `bytes`: originals kept for the next start. */
function keptOriginals(bytes: Buffer): string[] {
  const working = path.join(dir, 'inbox', '.working', '_');
  const names = fs.existsSync(working) ? fs.readdirSync(working).filter((n) => !n.endsWith('.name')) : [];
  return names.filter((n) => fs.readFileSync(path.join(working, n)).equals(bytes));
}

/** Checks the log of a stop: asked by `reason`, the job then finished or was kept, then the service stopped. */
function expectGracefulStop(logs: LogLine[], reason: string, photo: Buffer): void {
  const shutting = logs.findIndex((l) => l.msg.startsWith('shutting down'));
  const ended = logs.findIndex((l) => l.msg === 'job completed' || l.msg === 'job stopped for shutdown, kept for the next start');
  const stopped = logs.findIndex((l) => l.msg === 'stopped');
  expect(logs[shutting]?.reason).toBe(reason);
  expect(ended).toBeGreaterThan(shutting);
  expect(stopped).toBeGreaterThan(ended);
  // Either way nothing is lost: the result is out (and the original in done/), or the original itself waits in
  // .working/ for the next start. (.working/ alone proves nothing: the hot folder makes it at start.)
  const out = fs.existsSync(path.join(dir, 'outbox', 'photo.png')) && fs.readFileSync(path.join(dir, 'inbox', 'done', 'photo.png')).equals(photo);
  const kept = keptOriginals(photo).length === 1;
  expect([out, kept]).toContainEqual(true);
  expect(out && kept).toBe(false);
}

describe('service lifecycle', () => {
  it('refuses a second service on the same data folder, and a kill -9 leaves no lock behind', async () => {
    const first = start();
    await first.started();

    const second = start();
    expect(await within(second.exited, 60_000, 'the second service exiting')).toEqual({ code: 1, signal: null });
    await second.closed;
    const data = fs.realpathSync(path.join(dir, 'data'));
    expect(second.stderr.filter((l) => l !== '')).toEqual([
      `error: another service (pid ${first.pid}) is already using the data folder ${data}; stop it first or set ENHANCER_DATA to another folder`,
    ]);
    expect(second.logs).toEqual([]);
    expect(first.running).toBe(true);

    expect(await first.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
    const third = start();
    await third.started();
    // On a pipe the log is JSON lines only.
    expect(third.stderr).toEqual([]);
  });

  it('stops every process of npm start on SIGTERM to npm, within the grace period, giving the running job its grace', async () => {
    const s = start('npm');
    await s.started();
    const tree = processTree(s.pid);
    procs.push(...tree);
    // npm, then the launcher it runs (exec: no shell between them), then the service the launcher re-runs.
    expect(tree.filter((p) => /^(\S*\/)?sh -c /.test(p.cmd)).map((p) => p.cmd)).toEqual([]);
    expect(tree.map((p) => p.cmd.includes('bin/enhancer.js serve'))).toEqual([false, true, true]);
    const photo = await runningJob(s);

    const signalledAt = Date.now();
    process.kill(s.pid, 'SIGTERM');
    expect(await within(s.exited, GRACE_MS + AFTER_GRACE_MS, 'npm exiting')).toEqual({ code: 0, signal: null });
    await within(s.closed, GRACE_MS + AFTER_GRACE_MS, 'every process of npm start exiting'); // all held its stderr
    await untilGone(tree);
    expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS + AFTER_GRACE_MS);
    expectGracefulStop(s.logs, 'SIGTERM', photo);
  });

  it('stops the service when its launcher is killed with SIGKILL, giving the running job its grace', async () => {
    const s = start('launcher');
    await s.started();
    const tree = processTree(s.pid);
    procs.push(...tree);
    expect(tree).toHaveLength(2); // the launcher re-ran node with the malloc settings
    const photo = await runningJob(s);

    const killedAt = Date.now();
    process.kill(s.pid, 'SIGKILL');
    expect(await s.exited).toMatchObject({ signal: 'SIGKILL' });
    await within(s.closed, GRACE_MS + AFTER_GRACE_MS, 'the service exiting'); // it held the launcher's stderr
    await untilGone(tree);
    expect(Date.now() - killedAt).toBeLessThan(GRACE_MS + AFTER_GRACE_MS);
    expectGracefulStop(s.logs, 'launcher gone', photo);
    expect(s.stderr).toEqual([]);
  });

  it('on SIGTERM while three jobs finish at once, delivers or keeps each, fails none, and the next start delivers the rest', async () => {
    const photos = await Promise.all([1, 2, 3].map((seed) => scenePng(96, 96, 40 + seed)));
    const names = ['one.png', 'two.png', 'three.png'];
    let s = start();
    await s.started();
    for (const [i, name] of names.entries()) fs.writeFileSync(path.join(dir, 'inbox', name), photos[i]);
    // The first has finished its model run; the others are on the accelerator, finishing, or handed over.
    await s.count('job completed', 1);
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(s.lines('job failed')).toEqual([]);
    const done = (name: string, i: number) => fs.existsSync(path.join(dir, 'outbox', name)) && fs.readFileSync(path.join(dir, 'inbox', 'done', name)).equals(photos[i]);
    const delivered = names.filter((name, i) => done(name, i));
    const kept = names.filter((_, i) => keptOriginals(photos[i]).length === 1);
    expect([...delivered, ...kept].sort()).toEqual([...names].sort());
    expect(listing(path.join(dir, 'inbox', 'failed'))).toEqual([]);

    s = start();
    await s.started();
    await s.until(() => names.every(done), 'all three delivered');
    expect(s.lines('job failed')).toEqual([]);
    expect(listing(path.join(dir, 'inbox', 'failed'))).toEqual([]);
    expect(names.filter((_, i) => keptOriginals(photos[i]).length > 0)).toEqual([]);
  });
});

/**
 * `enhancer bench --leak [--jobs N]`: does the service keep anything per job? The real service (`enhancer
 * serve`, its own process, as in production) starts on a temporary data folder with the hot-folder door and
 * nothing else (embedded defaults, model x4fast, the web page off, /metrics on a free port for the heap). N tiny
 * pictures (24x18) are dropped into the inbox in batches of 50 (after a first batch, for warm-up), half of them one and the same picture, so the result
 * cache answers those. Resident memory and the V8 heap of the service's process, and the resident memory of the
 * engine's child process apart, are taken after every batch and shown at job 0 (the first batch done: everything
 * loaded), N/4, N/2 and N; growth per job is counted from N/4 on (after warm-up), see `growth`. The time per job is the gap between two jobs'
 * "job completed" lines, fresh and cached apart.
 *
 * Issue 24 measured, before the fixes: 126 ms a job, 71 ms cached, and about 50 KB a job of growth
 * (346 → 440 → 457 → 472 MB over 900 jobs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MALLOC_ENV } from '../malloc.js';
import { projectRoot } from '../paths.js';
import { scenePng } from './scene.js';

/** Files dropped at once: enough to keep the engine busy through the hot folder's settling (1.5 s by default). */
const BATCH = 50;

export interface LeakSample {
  jobs: number;
  /** Resident memory of the service's process, MB. */
  rssMB: number;
  /** V8 heap in use in the service's process (from /metrics), MB (2^20 bytes, as the others). */
  heapMB: number;
  /** Resident memory of the engine's child process, MB (0 when none runs). */
  engineMB: number;
  /** Taken after a full collection (the shown marks): only then is `heapMB` what is kept. */
  collected: boolean;
  /** Seconds since the first sample. */
  atS: number;
}

export interface LeakRun {
  jobs: number;
  samples: LeakSample[];
  /** Mean gap between two "job completed" lines, ms: fresh results, results from the cache, all. */
  msPerJob: { fresh: number; cached: number; all: number };
  /** Growth per job from N/4 to N, KB (2^10 bytes): the service's resident memory, its heap, the engine's resident memory. */
  kbPerJob: { rss: number; heap: number; engine: number };
  /** Node's warnings in the service's log (MaxListenersExceededWarning and the like). */
  warnings: string[];
}

/** A port nobody listens on now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resident memory of a process from /proc, MB; 0 once it is gone. */
function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return line ? Number(line[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The child processes of `pid` (the engine's, for the service), from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command may hold spaces and parentheses: the fields after its closing one are plain.
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

async function heapMB(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const used = text.match(/^nodejs_heap_size_used_bytes (\S+)$/m);
  return used ? Number(used[1]) / 2 ** 20 : NaN;
}

/** The service's JSON log lines as they come, and a way to wait for one. */
class ServiceLog {
  readonly completed: Array<{ time: number; cached: boolean }> = [];
  readonly warnings: string[] = [];
  /** Jobs whose answer is in the outbox: a batch is over only then, or clearing the outbox races the last one. */
  written = 0;
  private waiters: Array<{ test: (line: Record<string, unknown>) => boolean; resolve: () => void }> = [];
  private rest = '';
  private fail!: (error: Error) => void;
  /** Rejects at the first job the service failed: the benchmark measures working jobs only. */
  readonly failed = new Promise<never>((_, reject) => (this.fail = reject));

  constructor(child: ChildProcess) {
    this.failed.catch(() => {});
    // The log goes to stderr, as do Node's own warnings ("(node:123) MaxListenersExceededWarning: ...").
    child.stderr!.on('data', (chunk: Buffer) => this.read(chunk));
    child.stdout!.resume();
  }

  private read(chunk: Buffer): void {
    const lines = (this.rest + chunk.toString()).split('\n');
    this.rest = lines.pop()!;
    for (const text of lines) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        if (/Warning/.test(text)) this.warnings.push(text.trim());
        continue;
      }
      if (line.msg === 'job completed') this.completed.push({ time: Number(line.time), cached: Boolean(line.cached) });
      if (line.msg === 'results written') this.written++;
      if (line.level === 50 || line.msg === 'moved to failed/') this.fail(new Error(`the service failed a job: ${text}`));
      this.waiters = this.waiters.filter((w) => !(w.test(line) && (w.resolve(), true)));
    }
  }

  next(test: (line: Record<string, unknown>) => boolean): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
}

export async function benchLeak(jobs: number, json = false): Promise<LeakRun> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'enhancer-leak-'));
  const inbox = path.join(dir, 'inbox');
  const port = await freePort();
  const config = path.join(dir, 'enhancer.json');
  // Embedded defaults: an empty file, so a config/enhancer.json in the project does not count.
  await fs.promises.writeFile(config, '{}');
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'enhancer.js'), 'serve'], {
    env: {
      ...process.env,
      ...MALLOC_ENV,
      ENHANCER_CONFIG: config,
      ENHANCER_DATA: path.join(dir, 'data'),
      ENHANCER_INBOX: inbox,
      ENHANCER_OUTBOX: path.join(dir, 'outbox'),
      ENHANCER_HOTFOLDER: 'true',
      ENHANCER_MODEL: 'x4fast',
      ENHANCER_WEB_PORT: '0',
      ENHANCER_HTTP_PORT: String(port),
      LOG_FORMAT: 'json',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2`.trim(),
    },
    // Where the heap snapshots land (and are removed).
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = new ServiceLog(child);
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the service ended (code ${code}) during the benchmark`))));
  exited.catch(() => {});
  const say = (text: string) => !json && process.stdout.write(`${text}\n`);
  try {
    await Promise.race([log.next((l) => l.msg === 'service started'), exited]);
    const same = await scenePng(24, 18, 1);
    const samples: LeakSample[] = [];
    const t0 = performance.now();
    const sample = async (done: number, shown: boolean) => {
      // Resident memory: the smallest of a few readings a moment apart, once the batch is done.
      const readings: Array<{ rssMB: number; engineMB: number }> = [];
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        readings.push({ rssMB: rssOf(child.pid), engineMB: rssOf(childrenOf(child.pid!)[0]) });
      }
      // The heap swings by 100 MB and more between two collections (55-184 MB over 200 jobs, even after 10 s
      // idle), which would hide any growth: at N/4, N/2 and N a heap snapshot (--heapsnapshot-signal) makes V8
      // collect everything first; /metrics answers once it is written, and the file goes. Not at job 0: the
      // snapshot's own memory stays resident (glibc keeps it, see src/malloc.ts; 289 -> 462 MB measured), so the
      // resident slope is taken only over the batches after the first snapshot.
      const collect = shown && done > 0;
      if (collect) process.kill(child.pid!, 'SIGUSR2');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const heap = await heapMB(port);
      for (const name of await fs.promises.readdir(dir)) if (name.endsWith('.heapsnapshot')) await fs.promises.rm(path.join(dir, name), { force: true });
      const least = (key: 'rssMB' | 'engineMB') => Math.min(...readings.map((r) => r[key]));
      const s = { jobs: done, rssMB: least('rssMB'), heapMB: heap, engineMB: least('engineMB'), atS: (performance.now() - t0) / 1000, collected: collect };
      samples.push(s);
      if (shown) say(`  job ${String(done).padStart(5)}: service ${s.rssMB.toFixed(1)} MB resident, heap ${s.heapMB.toFixed(1)} MB; engine ${s.engineMB.toFixed(1)} MB (${s.atS.toFixed(0)} s)`);
    };
    const marks = new Set([Math.floor(jobs / 4), Math.floor(jobs / 2), jobs]);
    say(`bench --leak: ${jobs} hot-folder jobs of 24x18 pictures, half of them one picture (the cache answers), x4fast`);
    // Job 0 is the first batch done, so the model, sharp and the cache are loaded before anything is counted.
    for (let done = 0, first = true; done < jobs || first; ) {
      // A batch ends at each mark, so each mark is sampled between jobs.
      const count = first ? Math.min(BATCH, jobs) : Math.min(BATCH, Math.min(...[...marks].filter((m) => m > done)) - done);
      const before = log.written;
      const all = log.next(() => log.written >= before + count);
      for (let i = 0; i < count; i++) {
        const n = done + i;
        // Even files are the same picture; odd ones each their own.
        const bytes = n % 2 === 0 ? same : await scenePng(24, 18, 1000 + n);
        await fs.promises.writeFile(path.join(inbox, `leak-${n}.png`), bytes);
      }
      await Promise.race([all, exited, log.failed]);
      if (first) {
        first = false;
        await sample(0, true);
        continue;
      }
      done += count;
      // Every batch sampled: the growth is the slope through all of them, which one noisy pair could not give.
      await sample(done, marks.has(done));
      // Only memory is measured: the answers go (every one written, see above), so the disk holds a batch at a time.
      for (const folder of [path.join(dir, 'outbox'), path.join(inbox, 'done')]) {
        for (const name of await fs.promises.readdir(folder)) await fs.promises.rm(path.join(folder, name), { force: true });
      }
    }
    const run: LeakRun = { jobs, samples, msPerJob: gaps(log.completed), kbPerJob: growth(samples), warnings: log.warnings };
    say(`  ms per job: ${run.msPerJob.all.toFixed(0)} (fresh ${run.msPerJob.fresh.toFixed(0)}, cached ${run.msPerJob.cached.toFixed(0)})`);
    say(`  growth per job from job ${Math.floor(jobs / 4)} on (resident: slope through ${samples.filter((x) => x.jobs > jobs / 4).length} batches; heap: collected, N/4 to N): service ${run.kbPerJob.rss.toFixed(1)} KB resident, heap ${run.kbPerJob.heap.toFixed(1)} KB; engine ${run.kbPerJob.engine.toFixed(1)} KB`);
    say(`  warnings: ${run.warnings.length ? run.warnings.join('; ') : 'none'}`);
    if (json) process.stdout.write(`${JSON.stringify(run)}\n`);
    return run;
  } finally {
    if (child.exitCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    }
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/** Mean gaps between consecutive completions, by whether the later one came from the cache; the first batch left out. */
function gaps(completed: Array<{ time: number; cached: boolean }>): LeakRun['msPerJob'] {
  const fresh: number[] = [];
  const cached: number[] = [];
  for (let i = Math.min(BATCH, completed.length - 1) + 1; i < completed.length; i++) {
    const gap = completed[i].time - completed[i - 1].time;
    // A gap across two batches holds the hot folder's settling, not a job's work.
    if (gap > 1000) continue;
    (completed[i].cached ? cached : fresh).push(gap);
  }
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
  return { fresh: mean(fresh), cached: mean(cached), all: mean([...fresh, ...cached]) };
}

/**
 * KB per job from job N/4 on: resident memory by the least-squares slope through every batch's sample after it
 * (one noisy pair could not tell); the heap between the collected samples at N/4 and N.
 */
function growth(samples: LeakSample[]): LeakRun['kbPerJob'] {
  const last = samples[samples.length - 1];
  const after = samples.filter((s) => s.jobs >= last.jobs / 4);
  const settled = samples.filter((s) => s.jobs > last.jobs / 4);
  const slope = (key: 'rssMB' | 'engineMB') => {
    const mx = settled.reduce((a, s) => a + s.jobs, 0) / settled.length;
    const my = settled.reduce((a, s) => a + s[key], 0) / settled.length;
    const sxx = settled.reduce((a, s) => a + (s.jobs - mx) ** 2, 0);
    const sxy = settled.reduce((a, s) => a + (s.jobs - mx) * (s[key] - my), 0);
    return sxx > 0 ? (sxy / sxx) * 1024 : NaN;
  };
  const first = after.find((s) => s.collected) ?? after[0];
  const heap = last.jobs > first.jobs ? ((last.heapMB - first.heapMB) * 1024) / (last.jobs - first.jobs) : NaN;
  return { rss: slope('rssMB'), heap, engine: slope('engineMB') };
}

/**
 * `enhancer bench --eta`: how far the ETA a person is told at submit is from when the job is done. Twenty x4fast
 * jobs of mixed sizes (32x32 to 320x320, some wide or tall; those of about 300x300 and up get an early preview),
 * each asking for the early preview as the web and chat doors do, are submitted at once to the in-process queue
 * with the real engine. Each one's ETA from its `queued` event is set against the time from that event to its
 * `completed` event. Run twice: first with an empty learned state (the first guesses), then with what the first
 * round taught, on sizes 4 pixels larger each way, so the second round is not helped by sizes it has seen (the
 * runtime plans each input shape on its first run). Prints each job's error and the median of the absolute
 * errors, for each round.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliSettings } from '../config.js';
import { EngineProcess } from '../engine/engine-process.js';
import { requestChecks } from '../pipeline/admission.js';
import { enhanceProcessor } from '../pipeline/process.js';
import { LocalQueue } from '../queue/local-queue.js';
import { Costs, GUESSES, Throughput, type CostState } from '../queue/throughput.js';
import { Worker } from '../queue/worker.js';
import type { Job } from '../types.js';
import { scenePng } from './scene.js';

const MODEL = 'x4fast';
/** Width x height of the twenty jobs, in the order they are submitted: mixed, so no two neighbours are alike. */
export const ETA_SIZES: Array<[number, number]> = [
  [256, 256], [32, 32], [128, 96], [320, 320], [64, 64], [192, 192], [48, 48], [288, 288], [96, 96], [224, 160],
  [32, 48], [256, 192], [160, 160], [320, 240], [80, 80], [128, 128], [64, 256], [224, 224], [40, 40], [300, 300],
];

/** One job measured. */
export interface EtaJob {
  width: number;
  height: number;
  /** It had an early preview (the image is large enough for one). */
  preview: boolean;
  position: number;
  /** The ETA at `queued`, ms. */
  etaMs: number;
  /** From `queued` to `completed`, ms. */
  actualMs: number;
  /** (ETA - actual) / actual: negative when the person was told too little. */
  error: number;
}

export interface EtaRound {
  round: string;
  jobs: EtaJob[];
  /** Median of the absolute errors. */
  medianError: number;
  /** Median of the signed errors: below 0, ETAs tend to be short. */
  medianSigned: number;
  /** First submit to last completed, ms: the machine's speed changes between rounds show here. */
  wallMs: number;
  /** The 1-minute load average when the round started and ended. */
  load: [number, number];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Submits the twenty jobs, each `grow` pixels larger each way, at once and waits for every one to be delivered. */
async function round(name: string, queue: LocalQueue, seed: number, grow: number): Promise<EtaRound> {
  const sizes = ETA_SIZES.map(([w, h]) => [w + grow, h + grow]);
  const inputs = await Promise.all(sizes.map(([w, h], i) => scenePng(w, h, seed + i)));
  const load = os.loadavg()[0];
  const t0 = performance.now();
  const events = queue.events();
  const queuedAt = new Map<string, { at: number; position: number; etaMs: number }>();
  const completedAt = new Map<string, number>();
  const previews = new Set<string>();
  let left = ETA_SIZES.length;
  const over = new Promise<void>((resolve, reject) => {
    events.on('queued', (job, info) => queuedAt.set(job.id, { at: performance.now(), ...info }));
    events.on('preview', (job) => previews.add(job.id));
    events.on('completed', (job) => completedAt.set(job.id, performance.now()));
    events.on('failed', (job, reason) => reject(new Error(`bench job ${job.request.name} failed: ${reason}`)));
    events.on('delivered', () => --left === 0 && resolve());
  });
  const jobs: Job[] = [];
  for (const [i, input] of inputs.entries()) {
    const [w, h] = sizes[i];
    jobs.push(await queue.submit({ input, name: `${name}-${i + 1}-${w}x${h}.png`, options: { model: MODEL }, earlyPreview: true }));
  }
  await over;
  const measured = jobs.map((job): EtaJob => {
    const queued = queuedAt.get(job.id)!;
    const actualMs = completedAt.get(job.id)! - queued.at;
    return { width: job.width, height: job.height, preview: previews.has(job.id), position: queued.position, etaMs: queued.etaMs, actualMs, error: (queued.etaMs - actualMs) / actualMs };
  });
  return {
    round: name,
    jobs: measured,
    medianError: median(measured.map((j) => Math.abs(j.error))),
    medianSigned: median(measured.map((j) => j.error)),
    wallMs: Math.max(...completedAt.values()) - t0,
    load: [load, os.loadavg()[0]],
  };
}

/** The learned lines, as `field: fixed + rate/MP` for the printout. */
function learnedLines(dataDir: string): string[] {
  const state = JSON.parse(fs.readFileSync(path.join(dataDir, 'state', 'throughput.json'), 'utf8')) as CostState;
  const costs = new Costs(state);
  return Object.entries(state).flatMap(([field, sums]) => {
    if (typeof sums !== 'object') return [];
    const { fixedMs, msPerMP } = costs.line(field);
    return [`${field.padEnd(18)} ${fixedMs.toFixed(0).padStart(6)} ms + ${msPerMP.toFixed(0).padStart(7)} ms/MP  (${sums.n.toFixed(1)} jobs' weight)`];
  });
}

/** Runs both rounds; prints a table (or JSON) on stdout. */
export async function benchEta(json: boolean): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enhancer-eta-bench-'));
  const engine = new EngineProcess({ dataDir: dir, ...cliSettings(), modelsDir: cliSettings().models });
  const speeds = new Throughput(dir);
  const queue = new LocalQueue({ dataDir: dir, checks: requestChecks({ modelsDir: cliSettings().models }), speeds, deliver: async () => {} });
  // No result cache: every job runs.
  const worker = new Worker(queue, enhanceProcessor({ engine, speeds }));
  worker.run();
  const rounds: EtaRound[] = [];
  let lines: string[];
  try {
    rounds.push(await round('first guesses', queue, 1, 0));
    rounds.push(await round('learned', queue, 101, 4));
    lines = learnedLines(dir);
  } finally {
    await worker.close(0);
    await queue.close();
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ cpu: os.cpus()[0]?.model, threads: os.availableParallelism(), model: MODEL, rounds })}\n`);
    return;
  }
  const pct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(0)}%`;
  const out = [
    `ETA errors over ${ETA_SIZES.length} jobs: ${MODEL}, early preview asked for, submitted at once to the in-process queue; ETA at queued against queued to completed`,
    `machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} threads`,
  ];
  for (const r of rounds) {
    const [from, to] = r.load.map((l) => l.toFixed(1));
    out.push('', `${r.round}: median error ${(r.medianError * 100).toFixed(0)}% (signed ${pct(r.medianSigned)}); the round took ${(r.wallMs / 1000).toFixed(1)} s, load average ${from} to ${to}`);
    out.push('   #  size      preview  ETA s  took s  error');
    for (const [i, j] of r.jobs.entries()) {
      out.push(
        `  ${String(i + 1).padStart(2)}  ${`${j.width}x${j.height}`.padEnd(9)} ${(j.preview ? 'yes' : '').padEnd(7)} ${(j.etaMs / 1000).toFixed(1).padStart(6)} ${(j.actualMs / 1000).toFixed(1).padStart(7)}  ${pct(j.error).padStart(5)}`,
      );
    }
  }
  out.push('', 'learned (ms = fixed + rate x megapixels):', ...lines.map((l) => `  ${l}`));
  out.push(`first guesses for ${MODEL}: run ${GUESSES.run[MODEL].fixedMs} ms + ${GUESSES.run[MODEL].msPerMP} ms/MP, load ${GUESSES.load[MODEL]} ms`);
  process.stdout.write(`${out.join('\n')}\n`);
}

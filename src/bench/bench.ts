/**
 * `npm run bench` (`enhancer bench`): measures this machine's practical limits, a float32 matrix product and a
 * u8 x s8 integer one through onnxruntime on the engine's threads, then enhances the fixed 256x256 test picture
 * with each model at default settings, in float32 and in int8, and reports throughput against the limit of its
 * precision, peak memory, time per stage, and how much faster int8 ran.
 *
 * Each enhancement runs in a child process of its own so that its peak memory is its own.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { cliSettings } from '../config.js';
import { enhance } from '../engine/enhance.js';
import { matmulLimit } from '../engine/probe.js';
import { readManifest } from '../models/manifest.js';
import { projectRoot } from '../paths.js';
import type { Precision, StageTimes } from '../types.js';
import { scenePng } from './scene.js';
import type { ServiceBenchRun } from './service-bench.js';

/** One enhancement measured. */
export interface BenchRun {
  model: string;
  precision: Precision;
  size: number;
  tile: number;
  tiles: number;
  device: string;
  ms: StageTimes;
  /** Useful work: input pixels x the model's FLOPs per pixel (overlap recomputation not counted). */
  gflop: number;
  peakMB: number;
}

/** Runs one enhancement of the test picture in this process (the child side). */
export async function benchOne(model: string, size: number, precision: Precision = 'fp32'): Promise<BenchRun> {
  const input = await scenePng(size, size);
  const result = await enhance({ input, name: `scene${size}.png`, options: { model, precision } }, { runtime: cliSettings(), modelsDir: cliSettings().models });
  const manifest = await readManifest(cliSettings().models);
  const entry = manifest.models.find((m) => m.name === model)!;
  return {
    model,
    precision: result.precision,
    size,
    tile: result.tile,
    tiles: result.tiles,
    device: result.device,
    ms: result.ms,
    gflop: (size * size * entry.flopsPerPixel) / 1e9,
    peakMB: process.resourceUsage().maxRSS / 1024,
  };
}

const LAUNCHER = path.join(projectRoot, 'bin', 'enhancer.js');

function runChild<T>(flag: '--one' | '--service-one', model: string, size: number, ...extra: string[]): T {
  const child = spawnSync(process.execPath, [LAUNCHER, 'bench', flag, model, '--size', String(size), ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (child.status !== 0) throw new Error(`bench of ${model} failed: ${child.stderr.trim()}`);
  return JSON.parse(child.stdout) as T;
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

/** One model's runs, each a fresh process: what the CLI sees, and the first job after the service starts. */
export interface BenchModel {
  model: string;
  precision: Precision;
  size: number;
  runs: BenchRun[];
  /** The fastest run (by total time), whose stage times are shown. */
  best: BenchRun;
  /** Median total time over the runs, ms. */
  medianMs: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * The whole benchmark; prints a table (or JSON) on stdout. Each model runs `repeat` times, each run in a fresh
 * process, alternating with the limit measurements.
 */
export async function bench(runs: Array<{ model: string; size: number; precision: Precision }>, options: { json: boolean; repeat: number }): Promise<void> {
  const threads = os.availableParallelism();
  const limit = await matmulLimit(threads);
  const single = threads > 1 ? await matmulLimit(1) : limit;
  const withInt8 = runs.some((r) => r.precision === 'int8');
  const seenInt8 = withInt8 ? [await matmulLimit(threads, 'int8')] : [];
  // The machine's speed drifts by a quarter over seconds (shared host), so the limit is measured again before
  // every run (here, not in the child, so its buffers stay out of the run's peak memory) and the best is used.
  // The runs are judged the same way: the best of `repeat` against the best limit, with the median beside it.
  const seen = [limit];
  const byModel = runs.map(({ model, size, precision }) => ({ model, size, precision, runs: [] as BenchRun[] }));
  for (let r = 0; r < options.repeat; r++) {
    for (const entry of byModel) {
      if (entry.precision === 'int8') seenInt8.push(await matmulLimit(threads, 'int8'));
      else seen.push(await matmulLimit(threads));
      entry.runs.push(runChild<BenchRun>('--one', entry.model, entry.size, '--precision', entry.precision));
    }
  }
  const results: BenchModel[] = byModel.map((entry) => ({
    ...entry,
    best: entry.runs.reduce((a, b) => (b.ms.total < a.ms.total ? b : a)),
    medianMs: median(entry.runs.map((run) => run.ms.total)),
  }));
  // The service run, in fresh processes: a plain job; then, at least 512x512 (smaller images are too small for
  // an early preview on a CPU), the same job without and with the preview the chat doors ask for.
  const service = runChild<ServiceBenchRun>('--service-one', runs[0].model, runs[0].size);
  const previewSize = Math.max(512, runs[0].size);
  const plain = previewSize === runs[0].size ? service : runChild<ServiceBenchRun>('--service-one', runs[0].model, previewSize);
  const previewed = runChild<ServiceBenchRun>('--service-one', runs[0].model, previewSize, '--early-preview');
  seen.push(await matmulLimit(threads));
  const best = Math.max(...seen);
  const bestInt8 = withInt8 ? Math.max(...seenInt8) : 0;
  // int8 against float32 for each model: median over median, and the larger peak memory of each.
  const speedups = results
    .filter((r) => r.precision === 'int8')
    .flatMap((q) => {
      const f = results.find((r) => r.precision === 'fp32' && r.model === q.model && r.size === q.size);
      if (!f) return [];
      const peak = (m: BenchModel) => Math.max(...m.runs.map((run) => run.peakMB));
      return [{ model: q.model, size: q.size, speedup: f.medianMs / q.medianMs, fp32PeakMB: peak(f), int8PeakMB: peak(q) }];
    });
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ cpu: os.cpus()[0]?.model, threads, limitGflops: best, limitSeen: seen, int8LimitGops: bestInt8, int8LimitSeen: seenInt8, results, speedups, service, plain, previewed })}\n`,
    );
    return;
  }
  const out: string[] = [];
  out.push(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${threads} threads, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
  out.push(
    `limit: float32 2048x2048 matmul through onnxruntime = ${best.toFixed(0)} GFLOP/s on ${threads} threads, the best of ` +
      `${seen.map((v) => v.toFixed(0)).join(', ')} measured around the runs (${single.toFixed(0)} on 1 thread)`,
  );
  if (withInt8) {
    out.push(
      `limit: u8 x s8 2048x2048 MatMulInteger through onnxruntime = ${bestInt8.toFixed(0)} GOP/s on ${threads} threads, the best of ` +
        `${seenInt8.map((v) => v.toFixed(0)).join(', ')}; int8 runs are held to this one`,
    );
  }
  out.push('');
  out.push(
    `model      prec  input     tile  tiles  device | runs  median ms   s/MP  of limit |  MP/s  GFLOP/s  of limit | infer GFLOP/s | peak MB | load  decode   infer  encode   total (ms)`,
  );
  for (const { model, precision, size, runs: all, best: r, medianMs } of results) {
    const held = precision === 'int8' ? bestInt8 : best;
    const share = (gflop: number, ms: number) => `${((gflop / (ms / 1000) / held) * 100).toFixed(0)}%`;
    const seconds = r.ms.total / 1000;
    const gflops = r.gflop / seconds;
    const inferGflops = r.gflop / (r.ms.infer / 1000);
    const peak = Math.max(...all.map((run) => run.peakMB));
    out.push(
      `${model.padEnd(10)} ${precision.padEnd(5)} ${`${size}x${size}`.padEnd(9)} ${pad(r.tile, 4)} ${pad(r.tiles, 6)}  ${r.device.padEnd(6)} |` +
        ` ${pad(all.length, 4)} ${pad(medianMs.toFixed(0), 10)} ${pad((medianMs / 1000 / ((size * size) / 1e6)).toFixed(2), 6)} ${pad(share(r.gflop, medianMs), 9)} |` +
        ` ${pad(((size * size) / 1e6 / seconds).toFixed(3), 5)} ${pad(gflops.toFixed(0), 8)} ${pad(share(r.gflop, r.ms.total), 9)} |` +
        ` ${pad(inferGflops.toFixed(0), 13)} | ${pad(peak.toFixed(0), 7)} |` +
        ` ${pad(r.ms.load.toFixed(0), 5)} ${pad(r.ms.decode.toFixed(0), 7)} ${pad(r.ms.infer.toFixed(0), 7)} ${pad(r.ms.encode.toFixed(0), 7)} ${pad(r.ms.total.toFixed(0), 7)}`,
    );
  }
  out.push('');
  out.push('Each run is a fresh process, as a CLI call or the first job after the service starts (later jobs reuse');
  out.push('memory the first one had to fault in, and run a few percent faster). The columns after "median" are the');
  out.push('fastest run. GFLOP/s counts useful work (input pixels x FLOPs per pixel) over the total time after the');
  out.push('model is loaded; "of limit" is that against the limit of its precision above. Peak MB is the largest');
  out.push('resident memory of a run.');
  for (const s of speedups) {
    out.push(
      `int8 against float32, ${s.model} ${s.size}x${s.size}: ${s.speedup.toFixed(2)}x as fast (median over median), ` +
        `peak ${s.int8PeakMB.toFixed(0)} MB against ${s.fp32PeakMB.toFixed(0)} MB`,
    );
  }
  out.push('');
  const stages = (m: ServiceBenchRun['ms']) =>
    `  submit ${m.submit.toFixed(0)} · wait ${m.wait.toFixed(0)} · early preview ${m.preview.toFixed(0)} · load ${m.load.toFixed(0)} · ` +
    `decode ${m.decode.toFixed(0)} · infer ${m.infer.toFixed(0)} · encode ${m.encode.toFixed(0)} · render ${m.render.toFixed(0)} · ` +
    `deliver ${m.deliver.toFixed(0)} · wall ${m.wall.toFixed(0)} ms`;
  const m = service.ms;
  const part = (v: number) => `${((v / m.wall) * 100).toFixed(1)}%`;
  out.push(
    `service run: one ${service.model} ${service.size}x${service.size} job through the queue and worker with thumbnail, comparison and PDF, ` +
      `submit to delivered (${service.device}, peak ${service.peakMB.toFixed(0)} MB)`,
  );
  out.push(stages(m));
  out.push(`  inference is ${part(m.infer)} of the job's wall time (model load ${part(m.load)}, everything else ${part(m.wall - m.infer - m.load)})`);
  const p = previewed.ms;
  const q = plain.ms;
  out.push(`a ${previewSize}x${previewSize} job without, then with the early preview (as the chat doors ask for it):`);
  if (plain !== service) out.push(stages(q));
  out.push(stages(p));
  out.push(
    `  the preview came ${(p.wait + p.preview).toFixed(0)} ms after submit and added ${((p.wall / q.wall - 1) * 100).toFixed(1)}% to the wall time ` +
      `(its own run, model load included: ${((p.preview / q.wall) * 100).toFixed(1)}% of the plain job)`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * How fast this machine multiplies matrices through onnxruntime, and what that says of each model before any job
 * ran: `matmulLimit` is the benchmark's careful limit (a 2048 product, best of 24); `probeSpeed` is a quick one
 * the service and `enhancer plan` take at start-up; `firstGuesses` turns it into seconds per input megapixel for
 * each model of the manifest (its `flopsPerPixel`), at the share of the matmul a convolution model reaches.
 * Learned costs (src/queue/throughput.ts) replace these once jobs ran.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { ModelEntry } from '../models/manifest.js';
import { ModelProto } from '../models/onnx-schema.js';
import { projectRoot } from '../paths.js';
import type { Precision } from '../types.js';

/** A matmul of n x n through onnxruntime on `threads` threads, and a way to time one run of it. */
async function matmulSession(threads: number, precision: Precision, n: number) {
  // Imported here, not above: the service imports this file for `probeInChild`, and onnxruntime's library alone
  // added 18 MB to its RSS.
  const { default: ort } = await import('onnxruntime-node');
  const int8 = precision === 'int8';
  const info = (name: string, type: number) => ({
    name,
    type: { tensor_type: { elem_type: type, shape: { dim: [{ dim_value: n }, { dim_value: n }] } } },
  });
  const [a, b, c] = int8 ? [2, 3, 6] : [1, 1, 1];
  const model = ModelProto.encode(
    ModelProto.fromObject({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'matmul',
        node: [{ op_type: int8 ? 'MatMulInteger' : 'MatMul', input: ['a', 'b'], output: ['c'] }],
        input: [info('a', a), info('b', b)],
        output: [info('c', c)],
      },
    }),
  ).finish();
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = int8
    ? { a: new ort.Tensor('uint8', new Uint8Array(n * n).fill(3), [n, n]), b: new ort.Tensor('int8', new Int8Array(n * n).fill(-2), [n, n]) }
    : { a: new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]), b: new ort.Tensor('float32', new Float32Array(n * n).fill(0.25), [n, n]) };
  return {
    /** GFLOP/s (or GOP/s for int8) of one run. */
    async run(): Promise<number> {
      const t = performance.now();
      await session.run(feeds);
      return (2 * n ** 3) / ((performance.now() - t) / 1000) / 1e9;
    },
    release: () => session.release(),
  };
}

/**
 * GFLOP/s of an n x n float32 matrix product through onnxruntime (or, for int8, giga-operations per second of a
 * u8 x s8 MatMulInteger, what the int8 convolutions run on), best of `repeat`.
 *
 * @example await matmulLimit(2, 'int8') // about 1200-1500 on the 2-core Zen 5 machines, against 430-470 float32
 */
export async function matmulLimit(threads: number, precision: Precision = 'fp32', n = 2048, repeat = 24): Promise<number> {
  const matmul = await matmulSession(threads, precision, n);
  let best = 0;
  for (let i = 0; i < repeat; i++) best = Math.max(best, await matmul.run());
  await matmul.release();
  return best;
}

/** What the quick probe measured. */
export interface Probe {
  /** Best float32 GFLOP/s of the probe's matmul. */
  gflops: number;
  /** The probe's own time, session included, ms. */
  ms: number;
  threads: number;
}

/** The probe's matmul side: a 1024 product is 2.1 GFLOP, 5-12 ms on the 2-core machines. */
export const PROBE_N = 1024;

/**
 * A quick look at this machine's float32 speed: a `PROBE_N` matmul, best of `repeat`: 0.5-0.85 s with 8 runs on the 2 cores at a load of 6, hence 6
 * (session made, buffers faulted in). Not the benchmark's limit: a smaller product reaches less of the machine,
 * which `EFFICIENCY` below, measured against this very probe, accounts for.
 *
 * @example const probe = await probeSpeed(2); // { gflops: 180, ms: 140, threads: 2 }
 */
export async function probeSpeed(threads: number, repeat = 6): Promise<Probe> {
  const t = performance.now();
  const matmul = await matmulSession(threads, 'fp32', PROBE_N);
  let best = 0;
  try {
    for (let i = 0; i < repeat; i++) best = Math.max(best, await matmul.run());
  } finally {
    await matmul.release();
  }
  return { gflops: best, ms: performance.now() - t, threads };
}

const CHILD_FILE = path.join(projectRoot, 'dist', 'src', 'engine', 'probe-child.js');

/**
 * `probeSpeed` in a process of its own, for the service: in its own process the probe left it holding 64 MB more
 * (RSS 59 MB after importing onnxruntime, 123 MB after a probe), which a child gives back when it ends. The child
 * adds its start, about 0.2 s.
 *
 * @example const probe = await probeInChild(2);
 */
export function probeInChild(threads: number, timeoutMs = 30_000): Promise<Probe> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CHILD_FILE, String(threads)], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the speed probe's process failed: ${stderr.trim().split('\n').pop() || error.message}`));
      else resolve(JSON.parse(stdout) as Probe);
    });
  });
}

/**
 * The GFLOP/s each model's whole CPU run reaches, as a share of the probe's (useful FLOPs, input pixels x
 * `flopsPerPixel`, over the run's time after the model's load: decode, activations and encode count against it).
 * Measured on this project's 2-core machine at a load of 5-7 (2026-12-06): eight rounds of `probeSpeed(2)` then
 * `enhancer bench --one MODEL --size 192` (whole image, no tiles), twice per model; the probe saw 34-79 GFLOP/s
 * (mean 50.9), the runs x4plus 65 and 81 GFLOP/s, anime 83 and 39, anime-fast 50 and 39, x4fast 42 and 42:
 * each model's mean over the probes' mean. A shared machine makes single pairs noisy (a ratio of 0.8 to 2.4 for
 * the same model), hence the means. The large RRDBNet convolutions (64 channels, 3x3) run at a better rate than a
 * 1024 matmul; the compact models' PReLU and small layers keep them lower. Tiling a large image recomputes the
 * overlap (a few percent more): the learned costs take over after the first job. A model not here takes the
 * lowest share, so its guess errs long.
 */
export const EFFICIENCY: Readonly<Record<string, number>> = {
  x4plus: 1.44,
  anime: 1.2,
  'anime-fast': 0.87,
  x4fast: 0.82,
};
export const DEFAULT_EFFICIENCY = 0.82;

/**
 * First guesses of each model's run on this machine's CPU, ms per input megapixel, from the probe: a megapixel's
 * FLOPs over the GFLOP/s the model reaches. Against `enhancer bench --one` runs right after a probe (12 pairs,
 * 160-256 pixels, loads of 5-16 on the 2 cores): off by -76% to +35%, median -35% (short: the probe's best of 6
 * catches the machine's quieter moments). The constant it replaces, x4fast's 22 s/MP, was off by -58% to -88%
 * against the same runs (53-177 s/MP measured at those loads).
 *
 * @example firstGuesses({ gflops: 180, ms: 140, threads: 2 }, manifest.models).x4fast // about 16 400
 */
export function firstGuesses(probe: Probe, models: readonly Pick<ModelEntry, 'name' | 'flopsPerPixel'>[]): Record<string, number> {
  if (!(probe.gflops > 0)) return {};
  return Object.fromEntries(
    models.map((m) => [m.name, (m.flopsPerPixel * 1e6) / (probe.gflops * 1e9 * (EFFICIENCY[m.name] ?? DEFAULT_EFFICIENCY)) * 1000]),
  );
}

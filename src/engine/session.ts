/**
 * Loading a model into onnxruntime: checksum against the manifest first, then the execution provider the
 * device choice asks for (CUDA where a GPU and onnxruntime's GPU libraries are present, else the CPU).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { EnhanceError } from '../errors.js';
import { findModel, readManifest, sha256File, variantFor, type ModelEntry } from '../models/manifest.js';
import type { Device, DeviceChoice, EnhanceOptions, Precision } from '../types.js';
import type { RuntimeSettings } from '../config.js';
import { resolvePrecision } from './precision.js';

/** A model ready to run. Call `release()` when the job is done: one model in memory at a time. */
export interface LoadedModel {
  /** The variant that runs: its file and checksum are the int8 ones for precision int8. */
  entry: ModelEntry;
  device: Device;
  precision: Precision;
  /** Why CUDA was not used, when `auto` fell back to the CPU. */
  fallback?: string;
  session: ort.InferenceSession;
  release(): Promise<void>;
}

/** Files already verified in this process, keyed by path, size and modification time. */
const verified = new Map<string, string>();

async function verifyFile(dir: string, entry: ModelEntry): Promise<string> {
  const file = path.join(dir, entry.file);
  const stat = await fs.promises.stat(file).catch(() => null);
  if (!stat) {
    throw new EnhanceError(`model ${entry.name} is not prepared (${file} is missing): run \`enhancer models\``, 'model');
  }
  const key = `${file}:${stat.size}:${stat.mtimeMs}`;
  if (verified.get(key) === entry.sha256) return file;
  const digest = await sha256File(file);
  if (digest !== entry.sha256) {
    throw new EnhanceError(
      `${file} does not match its checksum in models/manifest.json: delete it and run \`enhancer models\``,
      'model',
    );
  }
  verified.set(key, digest);
  return file;
}

/** Why the CUDA provider cannot run here, or null when it can. */
export function cudaUnavailableReason(): string | null {
  const require = createRequire(import.meta.url);
  const binDir = path.join(
    path.dirname(require.resolve('onnxruntime-node')),
    '..',
    'bin',
    `napi-v6`,
    process.platform,
    process.arch,
  );
  if (!fs.existsSync('/dev/nvidia0') && !fs.existsSync('/proc/driver/nvidia/version')) return 'no NVIDIA GPU found';
  if (!fs.existsSync(path.join(binDir, 'libonnxruntime_providers_cuda.so'))) {
    return "onnxruntime's CUDA libraries are not installed (see docs/models.md, GPU)";
  }
  return null;
}

export type { RuntimeSettings } from '../config.js';

/** Every core, the first GPU: what the service runs with when the config says nothing. */
export const DEFAULT_RUNTIME: RuntimeSettings = { threads: 0, gpu: 0 };

/**
 * The CPU provider's session options for `runtime`.
 *
 * @example cpuSessionOptions({ threads: 1, gpu: 0 }).intraOpNumThreads; // 1
 */
export function cpuSessionOptions(runtime: RuntimeSettings): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    // Two threads double convolution throughput on the 2-core machines; more cores keep helping. `threads`
    // splits the cores between several workers on one machine (see docs/queue.md, Adding a worker on another machine).
    intraOpNumThreads: runtime.threads >= 1 ? runtime.threads : os.availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // Without the arena, peak memory for a 256x256 x4plus window is ~1.2 GB instead of ~2 GB, at equal speed.
    enableCpuMemArena: false,
    // The memory pattern, from the second window of a shape on, takes all of a run's activations as one block;
    // between windows that block no longer fit the heap's free space and the heap grew: x4plus with 9 windows
    // of 126x126 ended at 0.8 GB instead of 0.4-0.5 GB, at equal speed.
    enableMemPattern: false,
    logSeverityLevel: 3,
  };
}

/**
 * The CUDA provider's session options for `runtime`.
 *
 * @example cudaSessionOptions({ threads: 0, gpu: 1 }).executionProviders; // [{ name: 'cuda', deviceId: 1 }]
 */
export function cudaSessionOptions(runtime: RuntimeSettings): ort.InferenceSession.SessionOptions {
  return { executionProviders: [{ name: 'cuda', deviceId: runtime.gpu }], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
}

/** What a job will run: the manifest entry of the variant, its precision, and the device to ask for. */
export interface RunPlan {
  entry: ModelEntry;
  precision: Precision;
  device: DeviceChoice;
  /** Why `auto` runs float32 where the CPU would take int8: its variant is not prepared (one line, for the log). */
  precisionFallback?: string;
}

/**
 * Resolves the model, precision and device of `options` against the manifest in `dir`: the entry's checksum
 * is the one the result's signature holds, so int8 and fp32 results of one input are different cache entries.
 *
 * @example const plan = await planRun('models', { model: 'x4fast', device: 'cpu', precision: 'auto' });
 */
export async function planRun(dir: string, options: Pick<EnhanceOptions, 'model' | 'device' | 'precision'>, flags?: Set<string>): Promise<RunPlan> {
  const entry = findModel(await readManifest(dir), options.model);
  const gpu = options.device === 'cuda' || (options.device === 'auto' && cudaUnavailableReason() === null);
  let precision = resolvePrecision(options.precision, gpu ? 'cuda' : 'cpu', flags);
  // `auto` is a wish, not an order: where the int8 variant could not be prepared (a CPU whose calibration lands on
  // other bytes than the manifest's, or preparation not run) it runs float32 rather than failing every job.
  // A stat, not a checksum: loading verifies the file anyway, and this runs twice per job.
  let precisionFallback: string | undefined;
  if (options.precision === 'auto' && precision === 'int8' && !(entry.int8 && fs.existsSync(path.join(dir, entry.int8.file)))) {
    precision = 'fp32';
    precisionFallback = entry.int8
      ? `the int8 variant of ${entry.name} is not prepared (${entry.int8.file} is missing; \`enhancer models\` prepares it)`
      : `${entry.name} has no int8 variant in the manifest`;
  }
  // The int8 variants are for the CPU provider: never offered to CUDA.
  return { entry: variantFor(entry, precision), precision, device: precision === 'int8' ? 'cpu' : options.device, precisionFallback };
}

/** Loads `name` from `dir` for `device` with `runtime`'s threads or GPU, verifying the file against the manifest first. */
export async function loadModel(
  dir: string,
  name: string,
  device: DeviceChoice,
  precision: Precision = 'fp32',
  runtime: RuntimeSettings = DEFAULT_RUNTIME,
): Promise<LoadedModel> {
  return loadEntry(dir, variantFor(findModel(await readManifest(dir), name), precision), device, precision, runtime);
}

async function loadEntry(dir: string, entry: ModelEntry, device: DeviceChoice, precision: Precision, runtime: RuntimeSettings): Promise<LoadedModel> {
  const file = await verifyFile(dir, entry);
  let fallback: string | undefined;
  if (device !== 'cpu') {
    const reason = cudaUnavailableReason();
    if (reason === null) {
      try {
        const session = await ort.InferenceSession.create(file, cudaSessionOptions(runtime));
        return wrap(entry, 'cuda', precision, session);
      } catch (error) {
        fallback = `CUDA provider failed to start: ${(error as Error).message.split('\n')[0]}`;
      }
    } else {
      fallback = reason;
    }
    if (device === 'cuda') throw new EnhanceError(`device cuda is not available: ${fallback}`, 'device');
  }
  const session = await ort.InferenceSession.create(file, cpuSessionOptions(runtime));
  return wrap(entry, 'cpu', precision, session, fallback);
}

function wrap(entry: ModelEntry, device: Device, precision: Precision, session: ort.InferenceSession, fallback?: string): LoadedModel {
  return { entry, device, precision, fallback, session, release: () => session.release() };
}

/**
 * Keeps the last model loaded between jobs, so a run of jobs on one model loads it once (x4plus: 0.4-0.6 s a
 * job). One model at a time, as with `loadModel`; an idle model is released after `idleMs`. Every model it
 * loads runs with `runtime`'s threads or GPU.
 */
export class ModelPool {
  private held: { key: string; model: LoadedModel } | null = null;
  private idle?: NodeJS.Timeout;

  constructor(
    private readonly runtime: RuntimeSettings = DEFAULT_RUNTIME,
    private readonly idleMs = 60_000,
  ) {}

  /** Like `loadModel`; the model's `release()` hands it back to the pool instead of freeing it. */
  async acquire(dir: string, name: string, device: DeviceChoice, precision: Precision = 'fp32'): Promise<LoadedModel> {
    clearTimeout(this.idle);
    const entry = variantFor(findModel(await readManifest(dir), name), precision);
    // The manifest's checksum is in the key: a re-prepared model is loaded (and verified) afresh.
    const key = JSON.stringify([path.resolve(dir), name, entry.sha256, device]);
    if (this.held?.key !== key) {
      await this.drop();
      this.held = { key, model: await loadEntry(dir, entry, device, precision, this.runtime) };
    }
    return {
      ...this.held.model,
      release: async () => {
        this.idle = setTimeout(() => void this.drop(), this.idleMs).unref();
      },
    };
  }

  /** Frees the held model now. */
  async drop(): Promise<void> {
    clearTimeout(this.idle);
    const held = this.held;
    this.held = null;
    await held?.model.release();
  }
}

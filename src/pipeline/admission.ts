/**
 * The checks a request passes before any queue stores it (the in-process one and the one on Redis, handed these
 * as their `checks`), so both refuse the same things with the same one-line reasons: the file's size, the options
 * (normalized here, once), the model, the image's header. Then the job's plan (plan.ts): model `auto` is
 * resolved here, once, so the stored job names the model that runs and nothing after admission changes. And the
 * job's shape, for the queue's ETAs.
 */
import { checkFileSize, probeImage } from '../imaging/input.js';
import { findModel, readManifest } from '../models/manifest.js';
import { AUTO_MODEL, normalizeOptions, withDefaults } from '../options.js';
import { DEFAULT_MODELS_DIR } from '../paths.js';
import type { QueueChecks } from '../queue/queue.js';
import { newJobId } from '../queue/spool.js';
import { Costs } from '../queue/throughput.js';
import type { EnhanceOptions, EnhanceRequest, Job } from '../types.js';
import { planJob } from './plan.js';
import { readScene, type SceneReading } from './scene.js';
import { shapeOf } from './shape.js';

/** `limits.targetTime`'s default, for a caller that names none. */
export const DEFAULT_TARGET_MS = 120_000;

export interface AdmissionOptions {
  /** The prepared models and their manifest; default the project's models/. */
  modelsDir?: string;
  /** Options every request starts from (the service's configured model, device, tile). */
  defaults?: Partial<EnhanceOptions>;
  maxPixels?: number;
  maxFileBytes?: number;
  /** The costs the queue's ETAs use (learned, or the probe's first guesses), for the plan's estimate. */
  costs?: () => Costs | Promise<Costs>;
  /** `limits.targetTime` in ms (default 120 s). */
  targetMs?: number;
  /** `limits.confirmOver` in ms; absent or 0: no job is marked for confirmation. */
  confirmOverMs?: number;
  /** Default the pipeline's own (scene.ts). */
  readScene?: (input: Uint8Array) => Promise<SceneReading>;
}

/**
 * Checks a request and makes its waiting `Job` (without the input bytes). Throws an `EnhanceError` with the reason.
 *
 * @example
 * const job = await admit(request, 'telegram:42', { modelsDir: 'models', maxPixels: 16e6 });
 */
export async function admit(request: EnhanceRequest, owner: string, options: AdmissionOptions = {}, id?: string): Promise<Job> {
  checkFileSize(request.input.length, options.maxFileBytes ?? Infinity);
  const resolved = normalizeOptions(withDefaults(options.defaults, request.options));
  const manifest = await readManifest(options.modelsDir ?? DEFAULT_MODELS_DIR);
  // A model the manifest does not know is refused before the image is read, as it always was.
  if (resolved.model !== AUTO_MODEL) findModel(manifest, resolved.model);
  const header = await probeImage(request.input, options.maxPixels ?? Infinity);
  const plan = await planJob({
    input: request.input,
    header,
    options: resolved,
    earlyPreview: request.earlyPreview,
    report: request.report,
    readScene: options.readScene ?? readScene,
    costs: (await options.costs?.()) ?? new Costs({}),
    targetMs: options.targetMs ?? DEFAULT_TARGET_MS,
    confirmOverMs: options.confirmOverMs || undefined,
    manifest,
  });
  const { input: _bytes, ...rest } = request;
  return {
    id: id ?? newJobId(),
    request: { ...rest, owner, options: { ...resolved, model: plan.model } },
    plan,
    state: 'waiting',
    createdAt: Date.now(),
    width: header.width,
    height: header.height,
    bytes: request.input.length,
  };
}

/**
 * The pipeline's checks for a queue: admission with these options, and a job's shape.
 *
 * @example
 * new LocalQueue({ dataDir, checks: requestChecks({ defaults: { model: 'x4fast' }, maxPixels: 16e6 }), deliver });
 */
export function requestChecks(options: AdmissionOptions = {}): QueueChecks {
  return { admit: (request, owner, id) => admit(request, owner, options, id), shapeOf };
}

/**
 * The checks a request passes before any queue stores it (the in-process one and the one on Redis, handed these
 * as their `checks`), so both refuse the same things with the same one-line reasons: the file's size, the options
 * (normalized here, once), the model, the image's header. And the job's shape, for the queue's ETAs.
 */
import { checkFileSize, probeImage } from '../imaging/input.js';
import { findModel, readManifest } from '../models/manifest.js';
import { normalizeOptions, withDefaults } from '../options.js';
import { DEFAULT_MODELS_DIR } from '../paths.js';
import type { QueueChecks } from '../queue/queue.js';
import { newJobId } from '../queue/spool.js';
import type { EnhanceOptions, EnhanceRequest, Job } from '../types.js';
import { shapeOf } from './shape.js';

export interface AdmissionOptions {
  /** The prepared models and their manifest; default the project's models/. */
  modelsDir?: string;
  /** Options every request starts from (the service's configured model, device, tile). */
  defaults?: Partial<EnhanceOptions>;
  maxPixels?: number;
  maxFileBytes?: number;
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
  findModel(await readManifest(options.modelsDir ?? DEFAULT_MODELS_DIR), resolved.model);
  const header = await probeImage(request.input, options.maxPixels ?? Infinity);
  const { input: _bytes, ...rest } = request;
  return {
    id: id ?? newJobId(),
    request: { ...rest, owner, options: resolved },
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

/**
 * The checks every queue makes before it stores a request (the in-process one and the one on Redis), so both
 * refuse the same things with the same one-line reasons: the file's size, the options, the model, the image header.
 */
import { checkFileSize, probeImage } from '../imaging/input.js';
import { findModel, readManifest } from '../models/manifest.js';
import { normalizeOptions, withDefaults } from '../options.js';
import type { EnhanceOptions, EnhanceRequest, Job } from '../types.js';
import { newJobId } from './spool.js';

export interface AdmitOptions {
  modelsDir: string;
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
export async function admit(request: EnhanceRequest, owner: string, options: AdmitOptions, id?: string): Promise<Job> {
  checkFileSize(request.input.length, options.maxFileBytes ?? Infinity);
  const resolved = normalizeOptions(withDefaults(options.defaults, request.options));
  findModel(await readManifest(options.modelsDir), resolved.model);
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

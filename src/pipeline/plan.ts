/**
 * The plan of a job before it runs: which model (`auto` reads the scene and takes the best model of it that fits
 * the time target on this machine), how large the result, and how long it will take, with the reason a person
 * reads and the alternative the doors may offer. The estimate is the queue's own (`lineEtas` over the job's
 * shape, from the learned costs or their first guesses), for the job alone: load, early preview, run, render.
 *
 * On the 2-core CPU machines x4plus takes about 182 s per input megapixel: a 12 MP phone photo would run for
 * about 36-51 minutes, where x4fast takes 3-4; `auto` says so and runs x4fast, naming x4plus's time.
 */
import type { Text } from '../i18n/i18n.js';
import { findModel, type Manifest } from '../models/manifest.js';
import { AUTO_MODEL, outputSize } from '../options.js';
import { lineEtas } from '../queue/eta.js';
import type { Costs } from '../queue/throughput.js';
import type { EnhanceOptions, JobPlan } from '../types.js';
import type { Scene, SceneReading } from './scene.js';
import { shapeFor } from './shape.js';

/** A scene's models, the best first (by quality: the large RRDBNet before the compact SRVGGNet). */
export const SCENE_MODELS: Readonly<Record<Scene, readonly string[]>> = {
  photo: ['x4plus', 'x4fast'],
  drawing: ['anime', 'anime-fast'],
};

/** The plan (see `JobPlan` in src/types.ts, where a job carries it). */
export type Plan = JobPlan & { scene?: Scene };

export interface PlanRequest {
  /** The image's bytes, for the scene: read only when the model is `auto`. */
  input: Uint8Array;
  /** Its size from the header (EXIF orientation applied). */
  header: { width: number; height: number };
  /** The request's options, normalized; `model` may be `auto`. */
  options: EnhanceOptions;
  earlyPreview?: boolean;
  report?: boolean;
  readScene: (input: Uint8Array) => Promise<SceneReading>;
  costs: Costs;
  /** `limits.targetTime` in ms: `auto` takes the best model of the scene that fits. */
  targetMs: number;
  /** `limits.confirmOver` in ms; never when absent. */
  confirmOverMs?: number;
  manifest: Manifest;
}

/**
 * Plans one job without running anything. A model the person named always wins; `auto` picks by scene and time.
 * Throws an `EnhanceError` for a model the manifest does not know.
 *
 * @example
 * const plan = await planJob({ input, header, options: normalizeOptions({}), readScene, costs, targetMs: 120_000, manifest });
 * say('en', plan.reason); // 'photo: x4plus would take about 36 min, used x4fast'
 */
export async function planJob(request: PlanRequest): Promise<Plan> {
  const { header, options } = request;
  // What the result will be: its size (`scale` or `size`) and the format asked for.
  const out = outputSize(header.width, header.height, options);
  const estimate = (model: string) =>
    lineEtas([{ shape: shapeFor({ model, width: header.width, height: header.height, scale: out.width / header.width, earlyPreview: request.earlyPreview, report: request.report }) }], request.costs, 0)[0];
  const size = { ...out, format: options.format };
  const confirm = (etaMs: number) => request.confirmOverMs !== undefined && etaMs > request.confirmOverMs;

  if (options.model !== AUTO_MODEL) {
    const model = findModel(request.manifest, options.model).name;
    const etaMs = estimate(model);
    // The faster model of its kind, for a door that asks before a long job to offer beside it.
    const known = new Set(request.manifest.models.map((m) => m.name));
    const kind = Object.values(SCENE_MODELS).find((list) => list.includes(model)) ?? [];
    const faster = kind
      .filter((m) => m !== model && known.has(m))
      .map((m) => ({ model: m, etaMs: estimate(m) }))
      .filter((t) => t.etaMs < etaMs)
      .sort((a, b) => a.etaMs - b.etaMs)[0];
    return { model, etaMs, reason: { key: 'plan.asked', values: { model } }, ...(faster ? { other: faster } : {}), ...size, confirm: confirm(etaMs) };
  }

  const { scene } = await request.readScene(request.input);
  const known = new Set(request.manifest.models.map((m) => m.name));
  // Only models the manifest knows count (they are prepared when first used); a manifest without the scene's
  // models falls back to the photo ones, then to whatever it has.
  const candidates = [SCENE_MODELS[scene], SCENE_MODELS.photo, request.manifest.models.map((m) => m.name)]
    .map((list) => list.filter((m) => known.has(m)))
    .find((list) => list.length > 0);
  if (!candidates) throw new Error('models/manifest.json lists no model');
  const times = candidates.map((model) => ({ model, etaMs: estimate(model) }));
  const sceneText: Text = { key: `plan.scene.${scene}` };
  const fits = times.find((t) => t.etaMs <= request.targetMs);
  if (fits) {
    const faster = times.slice(times.indexOf(fits) + 1).find((t) => t.etaMs < fits.etaMs);
    const better = times[0] !== fits ? times[0] : undefined;
    const reason: Text = better
      ? { key: 'plan.tooSlow', values: { scene: sceneText, better: better.model, betterMs: better.etaMs, model: fits.model } }
      : { key: 'plan.best', values: { scene: sceneText, model: fits.model } };
    return { scene, model: fits.model, etaMs: fits.etaMs, reason, other: better ?? faster, ...size, confirm: confirm(fits.etaMs) };
  }
  // None fits: the fastest of the scene, and the best named with its time.
  const fastest = times.reduce((a, b) => (b.etaMs < a.etaMs ? b : a));
  const best = times[0];
  const reason: Text =
    fastest === best
      ? { key: 'plan.best', values: { scene: sceneText, model: best.model } }
      : { key: 'plan.tooSlow', values: { scene: sceneText, better: best.model, betterMs: best.etaMs, model: fastest.model } };
  return { scene, model: fastest.model, etaMs: fastest.etaMs, reason, other: fastest === best ? undefined : best, ...size, confirm: confirm(fastest.etaMs) };
}

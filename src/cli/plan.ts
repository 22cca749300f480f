/**
 * `enhancer plan [--json] FILE...`: what the service would do with each file, without running anything: the
 * scene, the model (`auto` unless `--model` names one), the result's size and format, the estimated time and why.
 * The estimate comes from this machine's learned costs where its data folder has them (`ENHANCER_DATA`, the
 * service's `<data>/state/throughput.json`), else from the start-up probe's first guesses.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { cliSettings, type CliSettings } from '../config.js';
import { firstGuesses, probeSpeed } from '../engine/probe.js';
import { reasonOf } from '../errors.js';
import { DEFAULT_LOCALE, formatDuration, say } from '../i18n/i18n.js';
import { probeImage } from '../imaging/input.js';
import { MAX_INPUT_PIXELS } from '../limits.js';
import { readManifest } from '../models/manifest.js';
import { normalizeOptions } from '../options.js';
import { DEFAULT_TARGET_MS } from '../pipeline/admission.js';
import { planJob, type Plan } from '../pipeline/plan.js';
import { readScene } from '../pipeline/scene.js';
import { Throughput, type Costs } from '../queue/throughput.js';
import type { EnhanceOptions } from '../types.js';
import { UsageError } from './usage.js';

/** What planning needs once for any number of files: the manifest and this machine's costs. */
export interface Planner {
  plan(input: Uint8Array, options: EnhanceOptions): Promise<Plan>;
}

/**
 * This machine's planner: learned costs from the data folder over the probe's first guesses.
 *
 * @example const plan = await (await planner(cliSettings())).plan(bytes, normalizeOptions({}));
 */
export async function planner(settings: Pick<CliSettings, 'models' | 'data' | 'threads'>, targetMs = DEFAULT_TARGET_MS): Promise<Planner> {
  const manifest = await readManifest(settings.models);
  const probe = await probeSpeed(settings.threads || os.availableParallelism());
  const costs: Costs = new Throughput(settings.data, Date.now, firstGuesses(probe, manifest.models)).costs();
  return {
    plan: async (input, options) =>
      planJob({ input, header: await probeImage(input, MAX_INPUT_PIXELS), options, readScene, costs, targetMs, manifest }),
  };
}

/** The `--json` row of one file; its keys are a contract with other tools. */
export function planRow(file: string, plan: Plan) {
  return {
    file,
    scene: plan.scene ?? null,
    model: plan.model,
    width: plan.width,
    height: plan.height,
    format: plan.format,
    etaSeconds: Math.round(plan.etaMs / 100) / 10,
    reason: say(DEFAULT_LOCALE, plan.reason),
  };
}

/** Runs `enhancer plan` with its arguments; returns the exit code (1 when any file could not be planned). */
export async function planCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: 'boolean' }, model: { type: 'string' }, scale: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError('plan takes one or more image files');
  const options = normalizeOptions({ model: values.model, scale: values.scale });
  const planning = await planner(cliSettings());
  let failed = 0;
  for (const file of positionals) {
    let plan: Plan;
    try {
      plan = await planning.plan(await fs.readFile(file), options);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code?.startsWith('E') ? `cannot read it (${code})` : reasonOf(error);
      process.stderr.write(`error: ${file}: ${why}\n`);
      failed++;
      continue;
    }
    const row = planRow(file, plan);
    process.stdout.write(
      values.json
        ? `${JSON.stringify(row)}\n`
        : `${file}: ${row.scene ?? '-'} · ${row.model} · ${row.width}x${row.height} ${row.format} · about ${formatDuration(DEFAULT_LOCALE, plan.etaMs)} (${row.etaSeconds} s) · ${row.reason}${plan.other ? ` · or --model ${plan.other.model}, about ${formatDuration(DEFAULT_LOCALE, plan.other.etaMs)}` : ''}\n`,
    );
  }
  return failed > 0 ? 1 : 0;
}

/**
 * The start-up probe (src/engine/probe.ts) turned into first guesses of each model's speed on this machine, for
 * the plan's estimate and the ETAs until jobs teach the learned costs: a quick matmul in a child process (so the
 * service never holds onnxruntime's buffers), 1.0-1.2 s on the 2 cores at a load of 10, the process's start (0.4 s) included.
 */
import os from 'node:os';
import { firstGuesses, probeInChild } from '../engine/probe.js';
import type { Logger } from '../log.js';
import { readManifest } from '../models/manifest.js';
import type { FirstGuesses } from '../queue/throughput.js';

/**
 * Probes this machine and guesses each manifest model's CPU rate (ms per input megapixel); an empty set, with a
 * warning, when the probe fails (the constants of throughput.ts stand in).
 *
 * @example const guesses = await probeGuesses('models', 0, log); // { x4plus: 310000, x4fast: 21000, … }
 */
export async function probeGuesses(modelsDir: string, threads: number, log: Logger): Promise<FirstGuesses> {
  try {
    const probe = await probeInChild(threads || os.availableParallelism());
    const guesses = firstGuesses(probe, (await readManifest(modelsDir)).models);
    const sPerMP = Object.fromEntries(Object.entries(guesses).map(([m, ms]) => [m, Math.round(ms / 100) / 10]));
    log.info({ gflops: Math.round(probe.gflops), ms: Math.round(probe.ms), sPerMP }, 'probed this machine: first guesses of the models\' speeds');
    return guesses;
  } catch (error) {
    log.warn({ err: error }, 'the speed probe failed: ETAs start from the built-in guesses');
    return {};
  }
}

/**
 * The service run of the benchmark: one job through the real queue and worker (spool, early preview, engine
 * process, thumbnail, comparison, PDF, result store, delivery to files), timed from `submit` to `delivered`, to
 * show how much of a job's wall time is inference, what the early preview adds, and where the rest goes.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cliSettings } from '../config.js';
import { EngineProcess } from '../engine/engine-process.js';
import { requestChecks } from '../pipeline/admission.js';
import { enhanceProcessor } from '../pipeline/process.js';
import { LocalQueue } from '../queue/local-queue.js';
import { Worker } from '../queue/worker.js';
import type { EnhanceResult, OutputKind } from '../types.js';
import { scenePng } from './scene.js';

export interface ServiceBenchRun {
  model: string;
  size: number;
  device: string;
  /**
   * Milliseconds: submit (header check and spool write), then the job's own stages, the early preview (0 when
   * the image is too small for one), deliver (reading the outputs back and writing them), and the wall.
   */
  ms: { submit: number; wait: number; preview: number; load: number; decode: number; infer: number; encode: number; render: number; deliver: number; wall: number };
  peakMB: number;
}

export async function benchServiceOne(model: string, size: number, earlyPreview = true): Promise<ServiceBenchRun> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'enhancer-bench-'));
  const engine = new EngineProcess({ dataDir: path.join(dir, 'data'), ...cliSettings(), modelsDir: cliSettings().models });
  try {
    let deliverMs = 0;
    const queue: LocalQueue = new LocalQueue({
      dataDir: path.join(dir, 'data'),
      checks: requestChecks({ modelsDir: cliSettings().models }),
      deliver: async (job, outcome) => {
        if (outcome.state !== 'completed') throw new Error(`bench job ${outcome.state}: ${outcome.reason}`);
        const t = performance.now();
        const kinds = Object.keys(outcome.result.outputs ?? {}) as OutputKind[];
        for (const kind of kinds) await fs.writeFile(path.join(dir, `${job.id}.${kind}`), await queue.readOutput(job.id, kind));
        deliverMs = performance.now() - t;
      },
    });
    const worker = new Worker(queue, enhanceProcessor({ engine }));
    const events = queue.events();
    let result: EnhanceResult | undefined;
    const done = new Promise<void>((resolve, reject) => {
      events.once('completed', (_job, r) => (result = r));
      events.once('delivered', () => resolve());
      events.once('failed', (_job, reason) => reject(new Error(reason)));
    });
    worker.run();
    const input = await scenePng(size, size);
    const t0 = performance.now();
    await queue.submit({ input, name: `scene${size}.png`, options: { model }, report: true, earlyPreview });
    const submitMs = performance.now() - t0;
    await done;
    const wall = performance.now() - t0;
    await worker.close(0);
    await queue.close();
    const { wait = 0, preview = 0, load, decode, infer, encode, render = 0 } = result!.ms;
    return {
      model,
      size,
      device: result!.device,
      ms: { submit: submitMs, wait, preview, load, decode, infer, encode, render, deliver: deliverMs, wall },
      peakMB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The service run of the benchmark: one job through the real queue (spool, worker, preview, comparison, PDF,
 * delivery to files), timed from `submit` to the `completed` event, to show how much of a job's wall time is
 * inference and where the rest goes.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JobQueue } from '../queue/job-queue.js';
import type { EnhanceResult } from '../types.js';
import { scenePng } from './scene.js';

export interface ServiceBenchRun {
  model: string;
  size: number;
  device: string;
  /** Milliseconds: submit (header check and spool write), then the job's own stages, deliver, and the wall. */
  ms: { submit: number; wait: number; load: number; decode: number; infer: number; encode: number; render: number; deliver: number; wall: number };
  peakMB: number;
}

export async function benchServiceOne(model: string, size: number): Promise<ServiceBenchRun> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'enhancer-bench-'));
  try {
    let deliverMs = 0;
    const queue = new JobQueue({
      dataDir: path.join(dir, 'data'),
      cacheMaxBytes: 0,
      deliver: async (job, outcome) => {
        if (outcome.state !== 'completed') throw new Error(`bench job ${outcome.state}: ${outcome.reason}`);
        const t = performance.now();
        const r = outcome.result;
        await Promise.all(
          (['png', 'preview', 'compare', 'pdf'] as const).map((key) => r[key] && fs.writeFile(path.join(dir, `${job.id}.${key}`), r[key])),
        );
        deliverMs = performance.now() - t;
      },
    });
    const input = await scenePng(size, size);
    const done = new Promise<EnhanceResult>((resolve, reject) => {
      queue.once('completed', (_job, result) => resolve(result));
      queue.once('failed', (_job, reason) => reject(new Error(reason)));
    });
    queue.run();
    const t0 = performance.now();
    await queue.submit({ input, name: `scene${size}.png`, options: { model }, report: true });
    const submitMs = performance.now() - t0;
    const result = await done;
    const wall = performance.now() - t0;
    await queue.close(0);
    const { wait = 0, load, decode, infer, encode, render = 0 } = result.ms;
    return {
      model,
      size,
      device: result.device,
      ms: { submit: submitMs, wait, load, decode, infer, encode, render, deliver: deliverMs, wall },
      peakMB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The service's Prometheus metrics, on a registry of its own (never prom-client's global one, so two services in
 * one process, as in tests, do not share counts). Counters and histograms are fed by the queue's events as jobs
 * go; the line (jobs by state, depth) is read from the queue at scrape time, so it is right even for jobs this
 * process never saw submitted (recovered from the spool, or sent by another front on Redis).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EnhanceQueue, QueueEvents } from '../queue/queue.js';
import type { Worker } from '../queue/worker.js';
import type { EnhanceResult, Job, StageTimes } from '../types.js';

export interface MetricsOptions {
  /** The queue whose events and line are measured; a worker-only role has none. */
  queue?: EnhanceQueue;
  /** The worker in this process, if any: `enhancer_worker_busy`. */
  worker?: Pick<Worker, 'status'>;
  /** Node's process metrics (CPU, memory, event loop lag). Default on; tests turn them off for exact output. */
  processMetrics?: boolean;
}

export interface Metrics {
  readonly registry: Registry;
  /** Stops listening to the queue. */
  close(): void;
}

/**
 * Job durations in seconds. Measured on the 2-core CI machine (docs/benchmarks.md): x4fast runs a 256x256 image in
 * about 1 s, x4plus in 12 s, x4plus 1024x1024 takes 287 s; a GPU is some 50x faster. The buckets span 0.25 s to
 * 30 min so each of those lands in a bucket of its own.
 */
const JOB_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800];
/** Stage durations in seconds: encode 56-75 ms, rendering 0.2-0.3 s, model load 0.4-0.55 s, inference as jobs. */
const STAGE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
/** Stages of `StageTimes` as the `stage` label; `total` is left out, it is the job's own histogram. */
const STAGES = ['wait', 'load', 'preview', 'decode', 'infer', 'encode', 'render'] as const satisfies ReadonlyArray<keyof StageTimes>;
/** Stages that ran no model when the result came from the cache: their zeros would drag the histograms down. */
const ENGINE_STAGES = new Set<string>(['load', 'preview', 'decode', 'infer', 'encode']);

/**
 * Creates the registry and starts listening to the queue.
 *
 * @example
 * const metrics = createMetrics({ queue, worker });
 * response.setHeader('content-type', metrics.registry.contentType);
 * response.end(await metrics.registry.metrics());
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const { queue, worker } = options;
  const registers = [registry];

  const submitted = new Counter({
    name: 'enhancer_jobs_submitted_total',
    help: 'Jobs accepted into the queue, by front door.',
    labelNames: ['adapter'] as const,
    registers,
  });
  const ended = new Counter({
    name: 'enhancer_jobs_ended_total',
    help: 'Jobs that ended, by how (completed, failed, cancelled), model and front door.',
    labelNames: ['state', 'model', 'adapter'] as const,
    registers,
  });
  const jobSeconds = new Histogram({
    name: 'enhancer_job_duration_seconds',
    help: 'Time a completed job took from start to its outputs stored (model load, preview, inference, rendering), by model and device.',
    labelNames: ['model', 'device'] as const,
    buckets: JOB_BUCKETS,
    registers,
  });
  const stageSeconds = new Histogram({
    name: 'enhancer_stage_duration_seconds',
    help: 'Time of each stage of completed jobs (wait is time in line before starting), by stage, model and device.',
    labelNames: ['stage', 'model', 'device'] as const,
    buckets: STAGE_BUCKETS,
    registers,
  });
  const deliveryFailures = new Counter({
    name: 'enhancer_delivery_failures_total',
    help: 'Failed attempts to deliver an answer, by front door; permanent="true" when the answer was given up.',
    labelNames: ['adapter', 'permanent'] as const,
    registers,
  });

  /** Ended jobs this process saw end, not yet delivered, and whether their last delivery attempt failed. */
  const undelivered = new Map<string, { adapter: string; failing: boolean }>();
  /** Every door that had a job end here: its gauges show 0, not nothing, once all is delivered. */
  const doors = new Set<string>();
  const countDeliveries = (gauge: Gauge<'adapter'>, failing: boolean) => {
    for (const adapter of doors) gauge.set({ adapter }, 0);
    for (const d of undelivered.values()) if (!failing || d.failing) gauge.inc({ adapter: d.adapter });
  };
  new Gauge({
    name: 'enhancer_deliveries_pending',
    help: 'Ended jobs whose answer is not yet delivered, by front door (those that ended since this process started).',
    labelNames: ['adapter'] as const,
    registers,
    collect() {
      countDeliveries(this, false);
    },
  });
  new Gauge({
    name: 'enhancer_deliveries_failing',
    help: 'Undelivered answers whose last delivery attempt failed and that wait for a retry, by front door.',
    labelNames: ['adapter'] as const,
    registers,
    collect() {
      countDeliveries(this, true);
    },
  });

  if (queue) {
    new Gauge({
      name: 'enhancer_jobs',
      help: 'Jobs in the line now, by state (waiting, active).',
      labelNames: ['state'] as const,
      registers,
      async collect() {
        const jobs = await queue.getJobs();
        this.set({ state: 'waiting' }, jobs.filter((j) => j.state === 'waiting').length);
        this.set({ state: 'active' }, jobs.filter((j) => j.state === 'active').length);
      },
    });
    new Gauge({
      name: 'enhancer_queue_depth',
      help: 'Jobs waiting for a worker (not yet started).',
      registers,
      async collect() {
        this.set((await queue.getJobs()).filter((j) => j.state === 'waiting').length);
      },
    });
  }
  if (worker) {
    new Gauge({
      name: 'enhancer_worker_busy',
      help: '1 while a job is on this process\'s accelerator, else 0.',
      registers,
      collect() {
        this.set(worker.status === 'busy' ? 1 : 0);
      },
    });
  }

  const adapterOf = (job: Job) => job.request.replyTo?.adapter ?? 'none';
  const onEnd = (state: 'completed' | 'failed' | 'cancelled') => (job: Job) => {
    ended.inc({ state, model: job.request.options.model, adapter: adapterOf(job) });
    undelivered.set(job.id, { adapter: adapterOf(job), failing: false });
    doors.add(adapterOf(job));
  };
  const listeners: { [E in keyof QueueEvents]?: (...args: QueueEvents[E]) => void } = {
    queued: (job) => submitted.inc({ adapter: adapterOf(job) }),
    completed: (job, result) => {
      onEnd('completed')(job);
      observeTimes(result);
    },
    failed: onEnd('failed'),
    cancelled: onEnd('cancelled'),
    delivered: (job) => undelivered.delete(job.id),
    undelivered: (job, { retryInMs }) => {
      deliveryFailures.inc({ adapter: adapterOf(job), permanent: String(retryInMs === null) });
      if (retryInMs === null) undelivered.delete(job.id);
      else undelivered.set(job.id, { adapter: adapterOf(job), failing: true });
    },
  };
  const observeTimes = (result: EnhanceResult) => {
    const labels = { model: result.options.model, device: result.device };
    const ms = result.ms;
    jobSeconds.observe(labels, (ms.load + ms.total + (ms.preview ?? 0) + (ms.render ?? 0)) / 1000);
    for (const stage of STAGES) {
      const value = ms[stage];
      if (value === undefined || (result.cached && ENGINE_STAGES.has(stage))) continue;
      stageSeconds.observe({ ...labels, stage }, value / 1000);
    }
  };

  const events = queue?.events();
  for (const [name, listener] of Object.entries(listeners)) events?.on(name as keyof QueueEvents, listener as never);
  return {
    registry,
    close() {
      for (const [name, listener] of Object.entries(listeners)) events?.off(name as keyof QueueEvents, listener as never);
    },
  };
}

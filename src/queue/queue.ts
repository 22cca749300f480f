/**
 * What front doors see of the queue. `JobQueue` is the in-process implementation (the embedded default); a
 * Redis-backed one (BullMQ, one worker per GPU on many machines) implements the same interface, so adapters do
 * not change.
 */
import type { EventEmitter } from 'node:events';
import type { EnhanceProgress, EnhanceRequest, EnhanceResult, Job } from '../types.js';

/** How a job ended, as handed to the adapter that delivers it. */
export type Outcome =
  | { state: 'completed'; result: EnhanceResult }
  | { state: 'failed'; reason: string }
  | { state: 'cancelled'; reason: string };

/** Events, each with the job as it is now. */
export interface QueueEvents {
  /** Accepted and on disk; `position` 1 means next in line (or running), `etaMs` is until it is done. */
  queued: [job: Job, info: { position: number; etaMs: number }];
  started: [job: Job];
  /** After every tile: tiles done of total and the ETA from the speed measured so far. */
  progress: [job: Job, progress: EnhanceProgress];
  completed: [job: Job, result: EnhanceResult];
  failed: [job: Job, reason: string];
  cancelled: [job: Job, reason: string];
}

export interface EnhanceQueue extends EventEmitter<QueueEvents> {
  /**
   * Checks and queues a request; resolves once it is stored, after the `queued` event. Rejects with an
   * `EnhanceError` whose message is the one-line reason to show (bad image, too large, unknown model, the
   * person's limit). Submitting with the `id` of a known job returns that job.
   */
  submit(request: EnhanceRequest, id?: string): Promise<Job>;
  /** Cancels a waiting or running job; only its owner (`request.owner`) may. */
  cancel(id: string, owner: string): Promise<Job>;
  /** The job with `id` while it is known (waiting, active, or recently finished). */
  get(id: string): Job | undefined;
  /** Jobs waiting or active in the order they run; only `owner`'s when given. */
  pending(owner?: string): Job[];
  /** 1 for the running job or the next in line, and so on; 0 when not pending. */
  positionOf(id: string): number;
  /** Estimated milliseconds until `id` is done. */
  etaOf(id: string): number;
}

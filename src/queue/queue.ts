/**
 * The queue side, as front doors see it (learned from BullMQ: the queue and the worker are separate types).
 * `LocalQueue` is the in-process implementation, the embedded default; `RedisQueue` (redis/) implements the same
 * interface, so adapters do not change. Every read is async, since a queue on Redis cannot answer otherwise.
 */
import type { DiskSpace } from '../disk-space.js';
import type { Text } from '../i18n/i18n.js';
import type { EarlyPreview, EnhanceProgress, EnhanceRequest, EnhanceResult, Job, JobPlan, OutputKind } from '../types.js';
import type { JobShape } from './throughput.js';

/** How a job ended, as handed to the adapter that delivers it. Results travel by reference, never as bytes. */
export type Outcome =
  | { state: 'completed'; result: EnhanceResult }
  | { state: 'failed'; reason: string; text?: Text }
  | { state: 'cancelled'; reason: string; text?: Text };

/**
 * What a queue asks of the pipeline (src/pipeline/admission.ts): the checks a request passes before it is stored,
 * and what a job will cost (its shape), for ETAs. The queue itself knows no images, models or options.
 */
export interface QueueChecks {
  /** Checks a request and makes its waiting job; throws an `EnhanceError` with the one-line reason. */
  admit(request: EnhanceRequest, owner: string, id?: string): Promise<Job>;
  shapeOf(job: Job): JobShape;
}

/** Events, each with the job as it is now. */
export interface QueueEvents {
  /** Accepted and stored; `position` 1 means next in line (or running), `etaMs` is until it is done. */
  queued: [job: Job, info: { position: number; etaMs: number }];
  started: [job: Job];
  /** The early preview is ready (when the request asked for one): read it with `readOutput(id, 'early')`. */
  preview: [job: Job, preview: EarlyPreview];
  /** After every tile: tiles done of total and the ETA. Adapters throttle these for their platform. */
  progress: [job: Job, progress: EnhanceProgress];
  /** Finished; its outputs wait in the result store until its adapter has delivered them. */
  completed: [job: Job, result: EnhanceResult];
  failed: [job: Job, reason: string];
  cancelled: [job: Job, reason: string];
  /** Its adapter's `deliver` resolved: the job and its stored outputs are gone from the queue. */
  delivered: [job: Job];
  /**
   * The job (or its answer) waits for disk space: told once per job; it goes on by itself once there is room.
   * `reason` is the English line, `text` the same to say in the person's language.
   */
  held: [job: Job, info: { reason: string; text: Text }];
  /**
   * A delivery failed. `retryInMs` says when it is tried again; null means never: the failure was permanent or
   * the job ran out of retry time, and it was closed with `reason` in the log.
   */
  undelivered: [job: Job, info: { reason: string; attempt: number; retryInMs: number | null }];
}

/** The listening half of an event emitter: adapters hear events, they never emit them. */
export interface QueueListener {
  on<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): this;
  once<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): this;
  off<E extends keyof QueueEvents>(event: E, listener: (...args: QueueEvents[E]) => void): this;
}

/** A job as a status question sees it: where it stands in the line and when it should be done. */
export interface JobStatus extends Job {
  /** 1 for the running job or the next in line, and so on; 0 once it has ended. */
  position: number;
  /** Estimated milliseconds until it is done; 0 once it has ended. */
  etaMs: number;
}

/**
 * The queue as a front door uses it.
 *
 * @example
 * const events = queue.events('telegram');
 * events.on('progress', (job, p) => editMessage(job, `${p.tilesDone}/${p.tilesTotal}`));
 * const job = await queue.submit({ input, name: 'cat.jpg', owner: 'telegram:42', replyTo: { adapter: 'telegram', chat: 42 } });
 * const png = await queue.readOutput(job.id, 'png'); // in the adapter's deliver(), once completed
 */
export interface EnhanceQueue {
  /**
   * Checks and queues a request; resolves once it is stored, after the `queued` event. Rejects with an
   * `EnhanceError` whose message is the one-line reason to show (bad image, too large, unknown model, the
   * person's limit). Submitting with the `id` of a known job returns that job.
   */
  submit(request: EnhanceRequest, id?: string): Promise<Job>;
  /**
   * What `submit` would make of `request`, without storing anything: the same checks (and their reasons), and the
   * job's plan (the model, the time, why, and whether to ask its person first). A door that asks before a long job
   * calls this, and submits once its person said yes.
   */
  plan(request: EnhanceRequest): Promise<JobPlan>;
  /** Cancels a waiting or running job; only its owner (`request.owner`) may. A running job stops between tiles. */
  cancel(id: string, owner: string): Promise<Job>;
  /** The job with `id` while it is known (waiting, active, or not yet delivered, or recently finished). */
  getJob(id: string): Promise<JobStatus | undefined>;
  /** Jobs waiting or active, in the order they run; only `owner`'s when given. */
  getJobs(owner?: string): Promise<JobStatus[]>;
  /** One stored output of a job, until the job is delivered. */
  readOutput(id: string, kind: OutputKind): Promise<Buffer>;
  /** The job's input as submitted, byte for byte, until the job is delivered (a linked chat result keeps it for its page). */
  readInput(id: string): Promise<Buffer>;
  /** Events of the jobs whose `replyTo.adapter` is `adapter`; of every job when left out. */
  events(adapter?: string): QueueListener;
  /**
   * The disk the queue stores on, where it has one (the in-process queue): while `full`, `submit` refuses with a
   * `DiskFullError` and a door should take no new files; `whenSpace()` resolves once there is room again.
   */
  readonly disk?: DiskView;
}

/** What a front door may know of the disk: whether it is full, and the wait for room. */
export type DiskView = Pick<DiskSpace, 'full' | 'reason' | 'report' | 'whenSpace'>;

/**
 * Thrown by an adapter's `deliver` when trying again cannot help (the chat is gone, the bot was blocked): the job
 * is closed at once, with this reason in the log, instead of being retried for days.
 */
export class PermanentDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentDeliveryError';
  }
}

/**
 * A door's view of its queue, typed by its own replies: the events of its jobs and the jobs it has in line, each
 * with `request.replyTo` of the door's type, so no door casts what it stored with a job. The queue sends a door
 * only the events of jobs whose reply names it (src/queue/emitter.ts): that is what makes the one cast here true.
 *
 * @example
 * const events = doorEvents<TelegramReply>(queue, 'telegram');
 * events.on('queued', (job, info) => edit(job.request.replyTo.chat, info.position));
 */
import type { EnhanceQueue, Job, JobOf, JobStatus, QueueEvents, ReplyTo } from '../../src/index.js';

/** An event's arguments with its job typed by the door's replies. */
type Typed<Args, R extends ReplyTo> = Args extends [Job, ...infer Rest] ? [JobOf<R>, ...Rest] : Args;

/** The listening half of a door's events. */
export interface DoorEvents<R extends ReplyTo> {
  on<E extends keyof QueueEvents>(event: E, listener: (...args: Typed<QueueEvents[E], R>) => void): this;
  off<E extends keyof QueueEvents>(event: E, listener: (...args: Typed<QueueEvents[E], R>) => void): this;
}

/** The events of the jobs answered through `door`. */
export function doorEvents<R extends ReplyTo>(queue: EnhanceQueue, door: R['adapter']): DoorEvents<R> {
  return queue.events(door) as unknown as DoorEvents<R>;
}

/** The door's jobs waiting or running now, in the order they run (after a restart, those it had before). */
export async function doorJobs<R extends ReplyTo>(queue: EnhanceQueue, door: R['adapter']): Promise<Array<JobOf<R> & Omit<JobStatus, 'request'>>> {
  const jobs = await queue.getJobs();
  return jobs.filter((job) => job.request.replyTo?.adapter === door) as unknown as Array<JobOf<R> & Omit<JobStatus, 'request'>>;
}

/**
 * The events of a queue, as both queues (in process and on Redis) emit them: every job's events to the listeners
 * of all, and each to the listeners of its own front door (`job.request.replyTo.adapter`), so an adapter hears
 * only its own jobs.
 */
import { EventEmitter } from 'node:events';
import type { Job } from '../types.js';
import type { QueueEvents, QueueListener } from './queue.js';

/** Listeners per emitter before Node warns of a leak: each door and the service add a few per event. */
const LISTENERS = 50;

export class QueueEmitter {
  private readonly all = new EventEmitter().setMaxListeners(LISTENERS);
  private readonly byAdapter = new Map<string, EventEmitter>();

  /**
   * The listening half for the jobs of `adapter`, or of every job when left out: front doors hear events, they
   * never make them.
   *
   * @example
   * emitter.listener('telegram').on('completed', (job, result) => send(job, result));
   */
  listener(adapter?: string): QueueListener {
    let emitter = this.all;
    if (adapter !== undefined) {
      if (!this.byAdapter.has(adapter)) this.byAdapter.set(adapter, new EventEmitter().setMaxListeners(LISTENERS));
      emitter = this.byAdapter.get(adapter)!;
    }
    const listener: QueueListener = {
      on: (event, fn) => (emitter.on(event, fn as never), listener),
      once: (event, fn) => (emitter.once(event, fn as never), listener),
      off: (event, fn) => (emitter.off(event, fn as never), listener),
    };
    return listener;
  }

  /** Tells the listeners of all jobs and those of `job`'s front door. */
  emit<E extends keyof QueueEvents>(job: Job, event: E, ...args: QueueEvents[E]): void {
    this.all.emit(event, ...args);
    this.byAdapter.get(job.request.replyTo?.adapter ?? '')?.emit(event, ...args);
  }
}

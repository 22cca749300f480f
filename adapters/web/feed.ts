/**
 * The live feed of job pages: the queue's events as page events, and the server-sent event streams that carry
 * them to open pages, each said in its own viewer's language.
 *
 * Streams are capped: `STREAMS_PER_ADDRESS` per address and `STREAMS_PER_JOB` per job, and each ends when its
 * link expires. Before, about 20,000 streams on one link used every file descriptor of the process; uploads then
 * failed with EMFILE and `/healthz` went 503, and a stream outlived its link.
 */
import { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Locale } from '../../src/i18n/i18n.js';
import type { Logger } from '../../src/log.js';
import type { EnhanceProgress } from '../../src/types.js';
import { eventFor, snapshotFor, type PageEvent, type Snapshot } from './status.js';

/** A comment line on open event streams this often, so proxies do not close a quiet one (nginx: 60 s). */
export const HEARTBEAT_MS = 25_000;
/** Open streams one address may hold: a person with a few tabs of a batch of jobs, not a flood. */
export const STREAMS_PER_ADDRESS = 32;
/** Open streams on one job: its page in a few tabs and on a few devices. */
export const STREAMS_PER_JOB = 8;
/** The longest a timer may wait (setTimeout's limit, about 24.8 days); a later expiry is checked again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type StreamRefusal = 'address' | 'job';

export class JobFeed {
  private readonly pages = new EventEmitter().setMaxListeners(0);
  private readonly progress = new Map<string, EnhanceProgress>();
  private readonly byAddress = new Map<string, number>();
  private readonly byJob = new Map<string, number>();

  constructor(private readonly log: Logger) {}

  /** Tells a job's open pages what happened. */
  emit(id: string, event: PageEvent): void {
    if (event.type === 'progress') this.progress.set(id, event.data);
    if (event.type === 'done') this.progress.delete(id);
    this.pages.emit(id, event);
  }

  /** The job's last progress while it runs. */
  progressOf(id: string): EnhanceProgress | undefined {
    return this.progress.get(id);
  }

  /** Forgets a job's progress (it ended, or left the queue without an end here). */
  forget(id: string): void {
    this.progress.delete(id);
  }

  /** Ids of the jobs some page is following. */
  followed(): string[] {
    return this.pages.eventNames().map(String);
  }

  /** Open streams in all, for a test and the log. */
  get open(): number {
    let n = 0;
    for (const count of this.byJob.values()) n += count;
    return n;
  }

  /**
   * Why a new stream from `address` on `id` is refused, or undefined when it may open. Checked before the
   * stream's snapshot is read, so a flood costs nothing but the check.
   */
  refusal(address: string, id: string): StreamRefusal | undefined {
    if ((this.byAddress.get(address) ?? 0) >= STREAMS_PER_ADDRESS) return 'address';
    if ((this.byJob.get(id) ?? 0) >= STREAMS_PER_JOB) return 'job';
    return undefined;
  }

  /**
   * Streams a job to one viewer: the whole (`state`), then each change, until it has ended, the viewer leaves,
   * or its link expires at `expires`. `snapshot` reads where the job stands now.
   */
  async stream(request: FastifyRequest, reply: FastifyReply, job: { id: string; expires: number }, locale: Locale, snapshot: () => Promise<Snapshot>): Promise<void> {
    const address = request.ip;
    const { id } = job;
    count(this.byAddress, address, 1);
    count(this.byJob, id, 1);
    reply.hijack();
    const response = reply.raw;
    const headers = reply.getHeaders() as Record<string, string>;
    response.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const send = (type: string, data: unknown) => response.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    // Listening before the snapshot is taken, so nothing between the two is missed; held until it is sent.
    let held: PageEvent[] | null = [];
    const onEvent = (event: PageEvent) => {
      if (held) held.push(event);
      else {
        const said = eventFor(locale, event);
        send(said.type, said.data);
        if (event.type === 'done') response.end();
      }
    };
    this.pages.on(id, onEvent);
    const heartbeat = setInterval(() => response.write(': still here\n\n'), HEARTBEAT_MS);
    let expiry: NodeJS.Timeout | undefined;
    const expire = () => {
      const left = job.expires - Date.now();
      if (left > 0) expiry = setTimeout(expire, Math.min(left, MAX_TIMER_MS));
      else {
        this.log.info({ job: id }, 'event stream ended: its link expired');
        response.end();
      }
    };
    expire();
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      clearTimeout(expiry);
      this.pages.off(id, onEvent);
      count(this.byAddress, address, -1);
      count(this.byJob, id, -1);
    };
    request.raw.on('close', close);
    response.on('close', close);
    const now = await snapshot();
    if (closed) return;
    send('state', snapshotFor(locale, now));
    if (now.state !== 'waiting' && now.state !== 'active' && now.state !== 'finishing') {
      response.end();
      return;
    }
    const pending = held;
    held = null;
    for (const event of pending) onEvent(event);
  }
}

function count(map: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (map.get(key) ?? 0) + by;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

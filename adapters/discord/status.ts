/**
 * Status messages edited no more often than Discord allows. Each job has one status message; progress arrives
 * after every tile (many a second on a GPU), so edits are spaced `everyMs` apart, the latest state wins, and
 * edits of one job never overlap or arrive out of order. Each edit carries its job, whose `replyTo` says where
 * the message is.
 */
import type { DiscordJob, Outgoing } from './answers.js';

interface Slot {
  last: number;
  timer?: NodeJS.Timeout;
  next?: { job: DiscordJob; out: Outgoing };
  chain: Promise<void>;
  closed: boolean;
}

export class StatusEdits {
  private readonly slots = new Map<string, Slot>();

  /**
   * @param everyMs the least time between two edits of one message
   * @param write writes one edit; its failures go to `onError`, the next edit is still tried
   *
   * @example
   * const edits = new StatusEdits(3000, (job, out) => answers.edit(job.id, job.request.replyTo, out), onError);
   * edits.show(job, { content: '40%' });
   */
  constructor(
    private readonly everyMs: number,
    private readonly write: (job: DiscordJob, out: Outgoing) => Promise<void>,
    private readonly onError: (job: string, error: unknown) => void,
  ) {}

  private slot(job: string): Slot {
    let slot = this.slots.get(job);
    if (!slot) this.slots.set(job, (slot = { last: 0, chain: Promise.resolve(), closed: false }));
    return slot;
  }

  /** Shows `out` as soon as allowed (at once with `now`); a later call before then replaces it. */
  show(job: DiscordJob, out: Outgoing, now = false): void {
    const slot = this.slot(job.id);
    if (slot.closed) return;
    slot.next = { job, out };
    const wait = now ? 0 : Math.max(0, slot.last + this.everyMs - Date.now());
    if (wait === 0) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
      this.flush(slot);
    } else slot.timer ??= setTimeout(() => {
      slot.timer = undefined;
      this.flush(slot);
    }, wait);
  }

  private flush(slot: Slot): void {
    const next = slot.next;
    slot.next = undefined;
    if (!next || slot.closed) return;
    slot.last = Date.now();
    slot.chain = slot.chain.then(() => this.write(next.job, next.out)).catch((error: unknown) => this.onError(next.job.id, error));
  }

  /** Stops the job's edits (it has ended) and waits for one under way, so the final answer is the last word. */
  async close(job: string): Promise<void> {
    const slot = this.slot(job);
    slot.closed = true;
    clearTimeout(slot.timer);
    await slot.chain;
  }

  /** Forgets a delivered job. */
  drop(job: string): void {
    const slot = this.slots.get(job);
    if (slot) clearTimeout(slot.timer);
    this.slots.delete(job);
  }

  /** Stops every pending edit. */
  clear(): void {
    for (const slot of this.slots.values()) clearTimeout(slot.timer);
  }
}

/**
 * Who a web visitor is, and how many uploads they may have in line.
 *
 * A person is known by several names at once: their browser's visitor cookie, and their access key (a script's
 * Bearer key, or the key kept in the browser) or, without a key, their address. An upload counts against every
 * one of them, so leaving out the cookie gains nothing: before, one client without cookies queued 9 jobs past a
 * limit of 3.
 *
 * The limit (`limits.queuedPerOwner`) counts uploads, not files: one upload of up to `MAX_FILES` images is taken
 * whole (the queue's fair turns interleave it with other people's jobs), and a person may have that many uploads
 * with a job still waiting or running. Before, six files chosen at once had three refused with "you already have
 * 3 images in the queue".
 */
import { randomBytes } from 'node:crypto';
import type { Job, ReplyTo } from '../../src/types.js';

/** Files taken from one upload request; the rest are listed with a reason, so every file gets an answer. */
export const MAX_FILES = 20;

/** Where a web job's answer goes, kept with the job: its upload and the names of the person who sent it. */
export interface WebReply extends ReplyTo {
  adapter: 'web';
  /** The upload the job came in with; its siblings count as one upload. */
  upload: string;
  /** The sender's names (`v:…` cookie, `k:…` key, `a:…` address). */
  people: string[];
}

/** A visitor as a request shows them. */
export interface Visitor {
  /** Every name they are known by, the queue owner first. */
  names: string[];
  /** The queue's owner of their jobs: their key, else their cookie, else their address. */
  owner: string;
}

/**
 * A visitor from what a request carries.
 *
 * @example
 * visitorFrom({ visitor: 'Qm9…', address: '203.0.113.7' });
 * // { names: ['v:Qm9…', 'a:203.0.113.7'], owner: 'web:v:Qm9…' }
 */
export function visitorFrom(parts: { visitor?: string; key?: string; address: string }): Visitor {
  const holder = parts.key ? `k:${parts.key}` : `a:${parts.address}`;
  const names = parts.visitor ? [`v:${parts.visitor}`, holder] : [holder];
  // A key names a person (or a script) better than a cookie does, and a cookie better than an address.
  const owner = `web:${parts.key ? holder : names[0]}`;
  return { names, owner };
}

/** Uploads in line per name; `reserve` before the first file is read, `settle` as jobs end. */
export class People {
  private readonly uploads = new Map<string, { names: string[]; jobs: Set<string>; open: boolean }>();
  private readonly byName = new Map<string, Set<string>>();
  private readonly jobUpload = new Map<string, string>();

  constructor(private readonly limit: number) {}

  /**
   * A new upload for `visitor`, or the count that refuses it: every name must have fewer than `limit` uploads
   * in line. Counted before anything is awaited, so two uploads at once cannot both slip under the limit.
   */
  reserve(visitor: Visitor): { upload: string } | { count: number; limit: number } {
    const count = Math.max(...visitor.names.map((n) => this.byName.get(n)?.size ?? 0));
    if (count >= this.limit) return { count, limit: this.limit };
    const upload = randomBytes(9).toString('base64url');
    this.uploads.set(upload, { names: visitor.names, jobs: new Set(), open: true });
    for (const name of visitor.names) {
      if (!this.byName.has(name)) this.byName.set(name, new Set());
      this.byName.get(name)!.add(upload);
    }
    return { upload };
  }

  /** A job of `upload` is in line. */
  add(upload: string, job: string): void {
    this.uploads.get(upload)?.jobs.add(job);
    this.jobUpload.set(job, upload);
  }

  /** Every file of `upload` was read: from now on it ends when its last job does. */
  close(upload: string): void {
    const entry = this.uploads.get(upload);
    if (!entry) return;
    entry.open = false;
    if (entry.jobs.size === 0) this.drop(upload);
  }

  /** A job ended (or is no longer the door's to count). */
  settle(job: string): void {
    const upload = this.jobUpload.get(job);
    if (upload === undefined) return;
    this.jobUpload.delete(job);
    const entry = this.uploads.get(upload);
    entry?.jobs.delete(job);
    if (entry && !entry.open && entry.jobs.size === 0) this.drop(upload);
  }

  /** Counts again the jobs an earlier run left in line (after a restart), from their `WebReply`. */
  recover(jobs: readonly Job[]): void {
    for (const job of jobs) {
      const reply = job.request.replyTo as Partial<WebReply> | undefined;
      if (reply?.adapter !== 'web' || typeof reply.upload !== 'string' || !Array.isArray(reply.people)) continue;
      if (!this.uploads.has(reply.upload)) {
        this.uploads.set(reply.upload, { names: reply.people, jobs: new Set(), open: false });
        for (const name of reply.people) {
          if (!this.byName.has(name)) this.byName.set(name, new Set());
          this.byName.get(name)!.add(reply.upload);
        }
      }
      this.add(reply.upload, job.id);
    }
  }

  /** Names with an upload in line: for a test that the books are kept, and for nothing else. */
  get size(): number {
    return this.byName.size;
  }

  private drop(upload: string): void {
    const entry = this.uploads.get(upload);
    if (!entry) return;
    this.uploads.delete(upload);
    for (const name of entry.names) {
      const set = this.byName.get(name);
      set?.delete(upload);
      if (set?.size === 0) this.byName.delete(name);
    }
  }
}

/**
 * Signed, expiring links to job pages: `/job/<id>?e=<expiry>&s=<signature>`, the signature an HMAC-SHA256 over the
 * job id and the expiry with a key of this service's own (`<data>/web/link.key`, made once, readable only by its
 * owner). A person with the link needs no login; without it a job id alone opens nothing, and a link past its
 * expiry or with one byte changed opens nothing either.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { JOB_ID, mkdirPrivate, OperatorError } from '../../src/index.js';

/** What a link's query says, checked. */
export type LinkCheck = { ok: true; expires: number } | { ok: false; why: 'forged' | 'expired' };

export class LinkSigner {
  private constructor(private readonly key: Buffer) {}

  /** Reads the key from `dir/link.key`, making it (32 random bytes, mode 600) the first time. */
  static async open(dir: string): Promise<LinkSigner> {
    const file = path.join(dir, 'link.key');
    await mkdirPrivate(dir);
    try {
      await fs.writeFile(file, randomBytes(32), { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const mode = (await fs.stat(file)).mode & 0o777;
    // The key signs every link and derives the access cookie: anyone who can read it can open every job.
    if (mode & 0o077) {
      throw new OperatorError(`web: ${file} is readable by other users (mode ${mode.toString(8)}): run chmod 600 on it, or remove it to make a new one (old links stop working)`);
    }
    const key = await fs.readFile(file);
    if (key.length < 32) throw new Error(`${file} is damaged (${key.length} bytes, not 32): remove it to make a new one (old links stop working)`);
    return new LinkSigner(key);
  }

  /** A key for another purpose (the access cookie), derived from this one so the data folder holds one secret. */
  derive(label: string): Buffer {
    return createHmac('sha256', this.key).update(`derive:${label}`).digest();
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}.${expires}`).digest('base64url');
  }

  /**
   * The path and query of the job page, valid until `expires` (ms since the epoch).
   *
   * @example
   * signer.link('mc0k2x9ab1f3e2d', Date.now() + 7 * 86_400_000); // '/job/mc0k2x9ab1f3e2d?e=…&s=…'
   */
  link(id: string, expires: number, suffix = ''): string {
    return `/job/${id}${suffix}?e=${expires}&s=${this.sign(id, expires)}`;
  }

  /** Checks a link's id, expiry and signature; `now` for tests. */
  check(id: string, e: unknown, s: unknown, now = Date.now()): LinkCheck {
    if (!JOB_ID.test(id) || typeof e !== 'string' || typeof s !== 'string' || !/^\d{1,15}$/.test(e)) return { ok: false, why: 'forged' };
    const expires = Number(e);
    const want = Buffer.from(this.sign(id, expires));
    const got = Buffer.from(s);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, why: 'forged' };
    return expires <= now ? { ok: false, why: 'expired' } : { ok: true, expires };
  }
}

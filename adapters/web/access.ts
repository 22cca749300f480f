/**
 * Who gets in: uploads are open to a browser on this machine; from anywhere else (a non-loopback address, or a
 * request a reverse proxy passed on) they need an access key, unless the door is open on purpose. A browser
 * enters the key once and keeps it in a cookie (an HMAC of the key, so the cookie is not the key itself); a
 * script sends it as `Authorization: Bearer <key>`. Visitors are told apart by a random cookie (see people.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { OperatorError } from '../../src/index.js';

export const KEY_COOKIE = 'enhancer_key';
export const VISITOR_COOKIE = 'enhancer_visitor';

/** Whether `host` only listens on this machine: 127.0.0.0/8, ::1 or `localhost`. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net.isIPv4(host) && host.startsWith('127.');
}

/** Refuses a start-up that would open uploads to a network without a key and without `open`. */
export function checkExposure(host: string, keys: readonly string[], open: boolean): void {
  if (isLoopback(host) || keys.length > 0 || open) return;
  throw new OperatorError(
    `web: host ${host} is reachable from other machines and no access key is set: set web.accessKeys (ENHANCER_WEB_KEY), or web.open (ENHANCER_WEB_OPEN=true) to let anyone upload on purpose`,
  );
}

/**
 * The peers whose forwarding headers are believed (fastify's `trustProxy`): a reverse proxy on this machine, the
 * set-up the docs show. The rate limit then counts each person's address, not the proxy's, and a cookie is
 * marked Secure when the proxy says the browser came over https. A local process could claim any address, but it
 * could as well upload directly.
 */
export const TRUSTED_PROXIES = ['127.0.0.0/8', '::1'];

/**
 * Whether a request came through a proxy: it carries a header proxies add. Such a request comes from elsewhere
 * even when the service listens on 127.0.0.1: before, a page behind a public reverse proxy on this machine took
 * uploads from anyone, without a key.
 *
 * @example proxied({ 'x-forwarded-for': '203.0.113.7' }) // true
 */
export function proxied(headers: IncomingHttpHeaders): boolean {
  return headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined || headers['x-real-ip'] !== undefined;
}

/** What a request may do: upload (with the key it used, as a short id that is not the key), or why not. */
export type Admission = { ok: true; key?: string } | { ok: false; why: 'needKey' | 'noKeys' | 'badKey' };

export class Access {
  private readonly tokens: Buffer[];

  constructor(
    private readonly secret: Buffer,
    keys: readonly string[],
    private readonly door: { loopback: boolean; open: boolean },
  ) {
    this.tokens = keys.map((k) => this.token(k));
  }

  /** Whether an upload with these headers needs a key: from elsewhere (see `proxied`), and the door not open. */
  keyNeeded(headers: IncomingHttpHeaders): boolean {
    return !this.door.open && (!this.door.loopback || proxied(headers));
  }

  /** Whether any key is configured: behind a proxy on a loopback address there may be none to enter. */
  get hasKeys(): boolean {
    return this.tokens.length > 0;
  }

  /** The cookie value for a key: an HMAC, so a leaked cookie does not reveal the key. */
  token(key: string): Buffer {
    return createHmac('sha256', this.secret).update(`access:${key}`).digest();
  }

  /** Whether `key` is one of the configured keys. */
  validKey(key: string): boolean {
    return this.matches(this.token(key));
  }

  /**
   * What a request may do, from its `Authorization: Bearer` header or its key cookie. A Bearer key that is wrong
   * is refused even where none is needed, so a script with a mistyped key hears of it.
   *
   * @example
   * access.admit({ authorization: 'Bearer a-long-random-key' }, undefined); // { ok: true, key: 'q1x…' }
   */
  admit(headers: IncomingHttpHeaders, keyCookie: string | undefined): Admission {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')?.[1];
    if (bearer !== undefined) {
      const token = this.token(bearer);
      return this.matches(token) ? { ok: true, key: keyId(token) } : { ok: false, why: 'badKey' };
    }
    const cookie = keyCookie && /^[A-Za-z0-9_-]{43}$/.test(keyCookie) ? Buffer.from(keyCookie, 'base64url') : undefined;
    if (cookie && this.matches(cookie)) return { ok: true, key: keyId(cookie) };
    if (!this.keyNeeded(headers)) return { ok: true };
    return { ok: false, why: this.hasKeys ? 'needKey' : 'noKeys' };
  }

  private matches(token: Buffer): boolean {
    return this.tokens.some((t) => t.length === token.length && timingSafeEqual(t, token));
  }
}

/** A key's name in the books (people.ts): the start of its HMAC, never the key. */
const keyId = (token: Buffer) => token.subarray(0, 12).toString('base64url');

/** A new visitor id: 16 random bytes. */
export function newVisitor(): string {
  return randomBytes(16).toString('base64url');
}

/** A visitor id as the cookie holds it, or undefined when it is missing or not one of ours. */
export function visitorOf(cookie: string | undefined): string | undefined {
  return cookie && /^[A-Za-z0-9_-]{22}$/.test(cookie) ? cookie : undefined;
}

/**
 * Who gets in: uploads are open to a browser on this machine; from anywhere else (a non-loopback address, or a
 * request a reverse proxy passed on) they need an access key, entered once and kept in a cookie (as an HMAC of
 * the key, so the cookie is not the key itself), unless the door is open on purpose. Visitors are told apart by a
 * random cookie, for the per-person queued-job limit.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { EnhanceError } from '../../src/errors.js';

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
  throw new EnhanceError(
    `web: host ${host} is reachable from other machines and no access key is set: set web.accessKeys (ENHANCER_WEB_KEY), or web.open (ENHANCER_WEB_OPEN=true) to let anyone upload on purpose`,
    'options',
  );
}

/**
 * The peers whose forwarding headers are believed (fastify's `trustProxy`): a reverse proxy on this machine, the
 * set-up the README shows. The rate limit then counts each person's address, not the proxy's, and a cookie is
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

/** The cookies of a request, by name. */
export function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (header ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const value = pair.slice(at + 1).trim();
    // A value that is not valid percent-encoding (a cookie set by something else) is taken as it is, not thrown.
    try {
      out[pair.slice(0, at).trim()] = decodeURIComponent(value);
    } catch {
      out[pair.slice(0, at).trim()] = value;
    }
  }
  return out;
}

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

  /** Whether a request with these headers (its cookies) may upload. */
  allowed(headers: IncomingHttpHeaders): boolean {
    if (!this.keyNeeded(headers)) return true;
    const cookie = cookies(headers.cookie)[KEY_COOKIE];
    return typeof cookie === 'string' && /^[A-Za-z0-9_-]{43}$/.test(cookie) && this.matches(Buffer.from(cookie, 'base64url'));
  }

  private matches(token: Buffer): boolean {
    return this.tokens.some((t) => t.length === token.length && timingSafeEqual(t, token));
  }
}

/** A new visitor id: 16 random bytes. */
export function newVisitor(): string {
  return randomBytes(16).toString('base64url');
}

/** A visitor id as the cookie holds it, or undefined when it is missing or not one of ours. */
export function visitorOf(jar: Record<string, string>): string | undefined {
  const v = jar[VISITOR_COOKIE];
  return v && /^[A-Za-z0-9_-]{22}$/.test(v) ? v : undefined;
}

/**
 * Who gets in: uploads are open on a loopback address; on any other they need an access key, entered once and
 * kept in a cookie (as an HMAC of the key, so the cookie is not the key itself), unless the door is open on
 * purpose. Visitors are told apart by a random cookie, for the per-person queued-job limit.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
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

/** The cookies of a request, by name. */
export function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (header ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at > 0) out[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return out;
}

export class Access {
  private readonly tokens: Buffer[];

  constructor(
    private readonly secret: Buffer,
    keys: readonly string[],
    /** Uploads need a key: a non-loopback address without `open`. */
    readonly keyNeeded: boolean,
  ) {
    this.tokens = keys.map((k) => this.token(k));
  }

  /** The cookie value for a key: an HMAC, so a leaked cookie does not reveal the key. */
  token(key: string): Buffer {
    return createHmac('sha256', this.secret).update(`access:${key}`).digest();
  }

  /** Whether `key` is one of the configured keys. */
  validKey(key: string): boolean {
    return this.matches(this.token(key));
  }

  /** Whether a request with these cookies may upload. */
  allowed(jar: Record<string, string>): boolean {
    if (!this.keyNeeded) return true;
    const cookie = jar[KEY_COOKIE];
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

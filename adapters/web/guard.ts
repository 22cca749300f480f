/**
 * The web door's guard against a hostile network, as a fastify plugin: every listener is assumed to face one.
 *
 * - **Slow and many clients.** A socket that sends nothing for `IDLE_MS` is closed; an idle keep-alive socket
 *   after `KEEP_ALIVE_MS`; a request body must arrive within a time set from its declared size; one address holds
 *   at most `CONNECTIONS_PER_ADDRESS` sockets and the door `CONNECTIONS` in all, so no one exhausts the process's
 *   file descriptors (20,000 here: before, 20,000 half-sent bodies did, and uploads then failed with EMFILE).
 * - **Where a request comes from.** Host must be a name the door serves (DNS rebinding sends another); a request
 *   that changes anything must come from the door's own origin (Origin and Sec-Fetch-Site, which a browser sets
 *   and a page cannot forge). A request with neither is a script's, such as curl's, and is welcome.
 * - **Bodies.** A body must say its length (browsers and curl do), so the limit and the time allowed are known
 *   before a byte is read; one over the limit is refused and the connection closed at once.
 *
 * Every refusal is one line in the visitor's language, with the security headers (server.ts adds them).
 */
import type { Socket } from 'node:net';
import net from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { say, type Locale, type Logger } from '../../src/index.js';
import { plain } from './reply.js';

/** A socket silent this long, in either direction, is closed: a body that stopped, a client that went away. */
export const IDLE_MS = 30_000;
/** An idle keep-alive socket closes after this (Node's default is 5 s, fastify's 72 s). */
export const KEEP_ALIVE_MS = 5_000;
/** Request headers must be in within this. */
export const HEADERS_MS = 15_000;
/**
 * How fast a body must come: after `BODY_BASE_MS`, at least `MIN_BYTES_PER_S` on average since it started, checked
 * every `BODY_CHECK_MS`. 64 KB/s is a 512 kbit/s uplink: a 50 MB photo may take 13 minutes, as long as it keeps
 * coming; a body that trickles (one byte every few seconds, never silent long enough for `IDLE_MS`) is cut after
 * about 30 s whatever size it declared. So the longest any connection is held without its due is ~35 s.
 */
export const BODY_BASE_MS = 30_000;
export const MIN_BYTES_PER_S = 64_000;
const BODY_CHECK_MS = 5_000;
/**
 * Sockets one address may hold at once. A browser opens at most 6 per host, plus one event stream a job page;
 * a reverse proxy on this machine counts as one address for all its visitors, hence some room.
 */
export const CONNECTIONS_PER_ADDRESS = 64;
/** Sockets the door holds in all: far below the process's descriptors (`ulimit -n`, 20,000 here). */
export const CONNECTIONS = 2_000;

/** Methods that change something: they must come from the door's own pages or from a script. */
const CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface GuardOptions {
  /** Host names (without port) the door answers to besides IP literals and localhost names. */
  hosts: readonly string[];
  /** The visitor's language, for the refusals. */
  localeOfRequest(request: FastifyRequest): Locale;
  /** The largest body a route takes: its `bodyLimit`, else this. */
  bodyLimit: number;
  logger: Logger;
}

/**
 * Bodies up to this size are still taken in (and dropped) after a refusal, for `LINGER_MS` at most, so the client
 * finishes sending and reads the answer: closing at once made it fail with EPIPE instead. A larger one, or one
 * not in by then, has its connection closed.
 */
export const LINGER_BYTES = 64 * 1024;
export const LINGER_MS = 5_000;

/**
 * Readies an answer to a request whose body will not be read: a small body is drained for a moment, a large one
 * (or a slow one) closes the connection, so a refused request never holds a socket for long.
 */
export function leaveBody(request: FastifyRequest, reply: FastifyReply): void {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (request.headers['transfer-encoding'] === undefined && declared === 0) return;
  if (request.headers['transfer-encoding'] !== undefined || !(declared <= LINGER_BYTES)) {
    reply.header('connection', 'close');
    return;
  }
  const raw = request.raw;
  const timer = setTimeout(() => {
    if (!raw.complete) raw.socket.destroy();
  }, LINGER_MS).unref();
  raw.once('close', () => clearTimeout(timer));
}

/** A refusal of the guard: one line from the catalogue's `webDoor` section. */
function refuse(request: FastifyRequest, reply: FastifyReply, status: number, line: string): FastifyReply {
  leaveBody(request, reply);
  return plain(reply, status, line);
}

/** Whether `name` (a Host without its port) is one the door serves. */
export function servedHost(name: string, hosts: readonly string[]): boolean {
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  // An IP literal cannot be rebound: a browser sends it only when it connects to that address itself.
  if (net.isIP(bare)) return true;
  const lower = bare.toLowerCase().replace(/\.$/, '');
  return lower === 'localhost' || lower.endsWith('.localhost') || hosts.some((h) => h.toLowerCase() === lower);
}

/** The host name of a Host header, without its port. */
export function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon >= 0 ? host.slice(0, colon) : host;
}

/**
 * Why a state-changing request is not from the door's own pages, or undefined when it is (or is a script's).
 * `origin` is what the page's origin must be: the scheme and Host this request came in on.
 */
export function crossSite(headers: FastifyRequest['headers'], origin: string, publicOrigin?: string): string | undefined {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site ${site}`;
  const from = headers.origin;
  if (from === undefined) return undefined;
  if (from === origin || (publicOrigin !== undefined && from === publicOrigin)) return undefined;
  return `Origin ${from}`;
}

/**
 * Registers the guard on the door's fastify instance (call before the routes): socket caps and timeouts on its
 * server, and an `onRequest` hook that checks Host, origin and body before any route reads a byte.
 */
export function guard(app: FastifyInstance, options: GuardOptions & { publicOrigin?: string }): void {
  const server = app.server;
  server.headersTimeout = HEADERS_MS;
  server.maxConnections = CONNECTIONS;
  const perAddress = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (perAddress.get(address) ?? 0) + 1;
    if (count > CONNECTIONS_PER_ADDRESS) {
      // Closed before a byte is read: answering would need the request, which is what is being refused.
      socket.destroy();
      return;
    }
    perAddress.set(address, count);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
  });

  app.addHook('onRequest', async (request, reply) => {
    const locale = options.localeOfRequest(request);
    const host = request.headers.host;
    if (!host || !servedHost(hostName(host), options.hosts)) {
      return refuse(request, reply, 421, say(locale, { key: 'webDoor.host', values: { host: hostName(host ?? '').slice(0, 100) } }));
    }
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined;
    if (CHANGING.has(request.method)) {
      const why = crossSite(request.headers, `${request.protocol}://${request.host}`, options.publicOrigin);
      if (why) {
        options.logger.info({ why, url: request.routeOptions.url }, 'cross-site request refused');
        return refuse(request, reply, 403, say(locale, { key: 'webDoor.crossSite' }));
      }
    }
    if (!hasBody) return;
    const declared = Number(request.headers['content-length']);
    if (request.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(declared)) {
      return refuse(request, reply, 411, say(locale, { key: 'webDoor.length' }));
    }
    const limit = request.routeOptions.bodyLimit ?? options.bodyLimit;
    if (declared > limit) return refuse(request, reply, 413, say(locale, { key: 'webDoor.tooLarge', values: { limit } }));
    bodyDeadline(request, declared, options.logger);
  });
}

/** Ends a request whose body does not keep up with `MIN_BYTES_PER_S` once `BODY_BASE_MS` have passed. */
function bodyDeadline(request: FastifyRequest, bytes: number, log: Logger): void {
  const raw = request.raw;
  const socket = raw.socket;
  const start = Date.now();
  const readBefore = socket.bytesRead;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    // In whole, or its connection already gone (a refusal that lingered, the client that left).
    if (raw.complete || socket.destroyed) return;
    const elapsed = Date.now() - start;
    const due = Math.min(bytes, ((elapsed - BODY_BASE_MS) / 1000) * MIN_BYTES_PER_S);
    if (socket.bytesRead - readBefore < due) {
      log.info({ bytes, received: socket.bytesRead - readBefore, url: request.routeOptions.url, ms: elapsed }, 'a request body came too slowly; connection closed');
      socket.destroy();
      return;
    }
    timer = setTimeout(check, BODY_CHECK_MS).unref();
  };
  timer = setTimeout(check, BODY_BASE_MS).unref();
  const clear = () => clearTimeout(timer);
  raw.once('end', clear);
  raw.once('close', clear);
}

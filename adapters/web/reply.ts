/**
 * What every answer of the web door carries, and its plainest answer: one line of text. The guard, the routes and
 * the error handler all answer through these, so an error looks like any other answer (security headers, no
 * echo of the request).
 */
import type { FastifyReply } from 'fastify';

/**
 * Sent with every answer: the pages load nothing from elsewhere, are never framed, and a job link (a secret in
 * the URL) never leaks through a Referer.
 */
export const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
} as const;

/** A one-line plain-text answer. */
export function plain(reply: FastifyReply, status: number, line: string): FastifyReply {
  return reply.code(status).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(`${line}\n`);
}

/**
 * What the web door's route plugins share: the door's parts, handed to each plugin as its options (fastify's
 * encapsulation keeps the plugins apart; this is the one thing they have in common), and the request
 * decorations every route reads.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EnhanceQueue, Locale, Logger } from '../../src/index.js';
import { KEY_COOKIE, newVisitor, VISITOR_COOKIE, visitorOf, type Access, type Admission } from './access.js';
import type { WebConfig } from './config.js';
import type { JobFeed } from './feed.js';
import type { Intake } from './intake.js';
import type { Keep, KeptJob } from './keep.js';
import type { ModelChoice } from './language.js';
import type { LinkSigner } from './links.js';
import { visitorFrom, type Visitor } from './people.js';
import type { Snapshot } from './status.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A route's body as the API document describes it, where no schema validates it (a multipart upload). */
    openapiBody?: object;
  }
  interface FastifyRequest {
    /** The visitor's language: the `lang` cookie, else Accept-Language, else English (language.ts). */
    readonly locale: Locale;
    /** On `/job/:id` routes: the kept job its signed link names, checked before anything else. */
    kept: KeptJob | null;
  }
}


/** The upload counter an address, shared by the routes that take uploads (an `onRequest` hook). */
export type UploadLimiter = ReturnType<FastifyInstance['rateLimit']>;

export interface WebContext {
  config: WebConfig;
  maxFileBytes: number;
  maxPixels: number;
  defaultModel: string;
  log: Logger;
  queue: EnhanceQueue;
  keep: Keep;
  links: LinkSigner;
  access: Access;
  feed: JobFeed;
  intake: Intake;
  /** A page in a language, rendered at start (`index.html`, `job.html`). */
  page(name: 'index.html' | 'job.html', locale: Locale): string;
  /** A static file by its table name, or undefined. */
  file(name: string): { type: string; bytes: Buffer } | undefined;
  /** Where a kept job stands now. */
  snapshot(kept: KeptJob): Promise<Snapshot>;
  /** The models, by use, in `locale`. */
  models(locale: Locale): ModelChoice[];
}

/**
 * The visitor a request comes from, after `admission` let it in: its cookie (set here the first time), its key
 * or else its address.
 */
export function visitorOfRequest(request: FastifyRequest, reply: FastifyReply, admission: Extract<Admission, { ok: true }>): Visitor {
  let id = visitorOf(request.cookies[VISITOR_COOKIE]);
  if (!id) {
    id = newVisitor();
    reply.setCookie(VISITOR_COOKIE, id, { path: '/', httpOnly: true, sameSite: 'lax', maxAge: 31_536_000, secure: request.protocol === 'https' });
  }
  return visitorFrom({ visitor: id, key: admission.key, address: request.ip });
}

/** Admission from a request's headers and key cookie. */
export function admission(access: Access, request: FastifyRequest): Admission {
  return access.admit(request.headers, request.cookies[KEY_COOKIE]);
}

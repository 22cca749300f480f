/**
 * The web door's fastify instance: the guard against a hostile network first, then cookies, the rate limiter,
 * multipart uploads and the OpenAPI document, then the route plugins (pages, a job's signed scope, the API),
 * one error handler and one not-found handler. Every answer, errors included, carries the security headers and
 * never echoes the request: before, fastify's own 400s and 404s carried neither and repeated the URL.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { fastifyCookie } from '@fastify/cookie';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DEFAULT_LOCALE, EnhanceError, say } from '../../src/index.js';
import { TRUSTED_PROXIES } from './access.js';
import type { WebContext } from './context.js';
import { guard, IDLE_MS, KEEP_ALIVE_MS } from './guard.js';
import { localeOfRequest } from './language.js';
import { plain, SECURITY_HEADERS } from './reply.js';
import { apiRoutes } from './routes/api.js';
import { jobRoutes } from './routes/job.js';
import { pageRoutes } from './routes/pages.js';


/** The body of any request but an upload: a key, a cancel, "enhance again" options. */
const BODY_LIMIT = 64 * 1024;

/** Builds the door's server, ready to listen. `publicUrl` (may be empty) is where people reach it from elsewhere. */
export async function buildServer(ctx: WebContext): Promise<FastifyInstance> {
  const { config } = ctx;
  const publicUrl = config.publicUrl ? new URL(config.publicUrl) : undefined;
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    bodyLimit: BODY_LIMIT,
    trustProxy: TRUSTED_PROXIES,
    connectionTimeout: IDLE_MS,
    keepAliveTimeout: KEEP_ALIVE_MS,
    // A reference a person can quote and the log can be searched for; random, so it says nothing of the traffic.
    genReqId: () => randomBytes(4).toString('hex'),
    requestIdHeader: false,
    // Malformed URLs and the like: a plain line, never the URL back.
    frameworkErrors: (error, request, reply) => {
      void plain(reply.headers(SECURITY_HEADERS), 400, say(localeOfRequest(request.headers), { key: 'webDoor.badRequest' }));
      ctx.log.info({ code: error.code }, 'malformed request refused');
    },
    clientErrorHandler: (error, socket) => clientError(error as NodeJS.ErrnoException, socket),
  });
  app.decorateRequest('locale', {
    getter(this: FastifyRequest) {
      return localeOfRequest(this.headers);
    },
  });
  app.decorateRequest('kept', null);
  // Set first, so every answer has them: refusals of the guard, errors, hijacked event streams.
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  guard(app, { hosts: [...config.hosts, ...(publicUrl ? [publicUrl.hostname] : [])], publicOrigin: publicUrl?.origin, localeOfRequest: (r) => r.locale, bodyLimit: BODY_LIMIT, logger: ctx.log });
  await app.register(fastifyCookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (request, context) =>
      Object.assign(new Error(say(request.locale, { key: 'web.rateLimited', values: { max: context.max, count: Math.max(1, Math.ceil(context.ttl / 1000)) } })), { statusCode: 429 }),
  });
  await app.register(multipart, {
    // Past fileSize busboy drops a file's bytes and marks it truncated: nothing over the limit is held.
    limits: { fileSize: ctx.maxFileBytes, fields: 16, fieldSize: 200, parts: 64 },
    throwFileSizeLimit: false,
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'image-enhancer', version: '1', description: 'Enhance images with Real-ESRGAN: upload, follow, download. See docs/api.md.' },
      components: { securitySchemes: { accessKey: { type: 'http', scheme: 'bearer', description: 'An access key of web.accessKeys (not needed from this machine)' } } },
    },
    hideUntagged: true,
    // Multipart bodies are read as they stream, not validated by a schema; the document still describes them.
    transform: ({ schema, url, route }) => {
      const documented = (route.config as { openapiBody?: object } | undefined)?.openapiBody;
      return { schema: documented ? { ...schema, body: documented } : schema, url } as never;
    },
  });
  app.setErrorHandler((error: FastifyError, request, reply) => answerError(error, request, reply, ctx));
  app.setNotFoundHandler((request, reply) => plain(reply, 404, say(request.locale, { key: 'web.notFound' })));

  // One upload counter an address, shared by uploads and "Enhance again": before, each had its own and an address
  // got twice web.uploadsPerMinute.
  const uploads = app.rateLimit({ max: config.uploadsPerMinute, timeWindow: 60_000 });
  await app.register(pageRoutes, ctx);
  await app.register(jobRoutes, { ...ctx, uploads });
  await app.register(apiRoutes, { ...ctx, uploads });
  return app;
}


/** Multipart's own failures: a body that is not a well-formed form. */
const MALFORMED = /^FST_(INVALID_MULTIPART|PARTS_LIMIT|FILES_LIMIT|FIELDS_LIMIT|PROTO_VIOLATION)|^FST_ERR_CTP_/;

/**
 * The one error handler. A malformed request gets 400 and one line; a validation failure names the field; an
 * internal error gives the person a plain line with a reference to find in the log, never a path or a stack.
 */
function answerError(error: FastifyError, request: FastifyRequest, reply: FastifyReply, ctx: WebContext) {
  const locale = request.locale;
  if (error.validation) {
    const issue = error.validation[0];
    const field = String(issue?.instancePath || (issue?.params as { missingProperty?: string })?.missingProperty || '').replace(/^\//, '');
    return reply.code(400).send({ error: say(locale, { key: 'webDoor.badField', values: { field: field || error.validationContext || 'request' } }) });
  }
  const status = error.statusCode ?? 500;
  if (MALFORMED.test(error.code ?? '') || /multipart|boundary|unexpected end of form/i.test(error.message)) {
    ctx.log.info({ ref: request.id, code: error.code }, 'malformed upload refused');
    return reply.code(400).send({ error: say(locale, { key: 'webDoor.malformed' }) });
  }
  if (status === 429) return reply.code(429).send({ error: error.message });
  if (status < 500 && error instanceof EnhanceError) return reply.code(status).send({ error: error.message });
  if (status < 500) return reply.code(status).send({ error: say(locale, { key: 'webDoor.badRequest' }) });
  ctx.log.error({ ref: request.id, err: error, route: request.routeOptions.url }, 'the web door could not answer');
  return reply.code(500).send({ error: say(locale, { key: 'webDoor.internal', values: { ref: request.id } }) });
}

/** What a socket that sent no well-formed request is told: one line with the security headers, then closed. */
function clientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
  const body = `${say(DEFAULT_LOCALE, { key: 'webDoor.badRequest' })}\n`;
  const headers = Object.entries(SECURITY_HEADERS).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`);
}

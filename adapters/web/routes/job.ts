/**
 * A job's own addresses, reached only through its signed, expiring link (`/job/<id>?e=…&s=…`): the page, its
 * state, its live events, its files, Cancel and "Enhance again". One hook checks the link before anything else,
 * before a byte of a body is read: before, `POST /job/<any id>/cancel` read a body first, and 20,000 half-sent
 * bodies held the service.
 */
import fs from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatType, reasonTextOf, say } from '../../../src/index.js';
import { admission, visitorOfRequest, type UploadLimiter, type WebContext } from '../context.js';
import { choicesFrom } from '../intake.js';
import { KEPT_KINDS, type KeptKind } from '../keep.js';
import { describeDuration, plainPage, webSay } from '../language.js';
import { leaveBody } from '../guard.js';
import { plain } from '../reply.js';
import { snapshotFor } from '../status.js';

const TYPES: Record<KeptKind, string> = {
  input: 'application/octet-stream',
  result: 'image/png',
  preview: 'image/jpeg',
  compare: 'image/jpeg',
  pdf: 'application/pdf',
  early: 'image/png',
};
const INPUT_TYPES: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif', avif: 'image/avif', tiff: 'image/tiff', heif: 'image/heif' };

/** A job's id and its link's expiry and signature, as every route here takes them. */
export const LINK_SCHEMA = {
  params: { type: 'object', properties: { id: { type: 'string', maxLength: 32, description: 'the job id' } }, required: ['id'] },
  querystring: {
    type: 'object',
    properties: { e: { type: 'string', maxLength: 16, description: "the link's expiry" }, s: { type: 'string', maxLength: 64, description: "the link's signature" } },
  },
} as const;

type LinkRequest = FastifyRequest<{ Params: { id: string }; Querystring: { e?: string; s?: string } }>;

export async function jobRoutes(app: FastifyInstance, ctx: WebContext & { uploads: UploadLimiter }): Promise<void> {
  app.addHook('onRequest', async (request, reply) => {
    const { params, query } = request as LinkRequest;
    const locale = request.locale;
    const keepFor = describeDuration(locale, ctx.config.keepFor);
    const refuse = (status: number, name: 'forged' | 'expired' | 'gone') => {
      // A body this request still carries is not read (see `leaveBody`).
      leaveBody(request, reply);
      return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(plainPage(locale, webSay(locale, `${name}Title`), webSay(locale, name, { keepFor })));
    };
    const check = ctx.links.check(params.id, query.e, query.s);
    if (!check.ok) return refuse(check.why === 'forged' ? 403 : 410, check.why);
    const kept = await ctx.keep.get(params.id);
    if (!kept) return refuse(410, 'gone');
    request.kept = kept;
  });

  app.get('/job/:id', { schema: LINK_SCHEMA }, (request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('vary', 'accept-language, cookie').send(ctx.page('job.html', request.locale)),
  );

  app.get(
    '/job/:id/state',
    { schema: { ...LINK_SCHEMA, tags: ['jobs'], summary: "A job's state, through its signed link", description: 'Where the job stands, said in the viewer\'s language (`text`), with its result once done.' } },
    async (request, reply) => reply.header('cache-control', 'no-store').send(snapshotFor(request.locale, await ctx.snapshot(request.kept!))),
  );

  app.get(
    '/job/:id/events',
    { schema: { ...LINK_SCHEMA, tags: ['jobs'], summary: "A job's live events (server-sent events), through its signed link", description: '`state` first, then `queued`, `started`, `progress`, `preview`, `finishing` and `done`; the stream ends with the job or its link.' } },
    async (request, reply) => {
      const kept = request.kept!;
      const refused = ctx.feed.refusal(request.ip, kept.id);
      if (refused) return plain(reply, 429, say(request.locale, { key: refused === 'address' ? 'webDoor.streamsAddress' : 'webDoor.streamsJob' }));
      // The record read again once the stream listens: an end kept in between would otherwise be missed, and the
      // page would wait at "Finishing" for ever.
      await ctx.feed.stream(request, reply, kept, request.locale, async () => ctx.snapshot((await ctx.keep.get(kept.id)) ?? kept));
    },
  );

  app.get<{ Params: { id: string; kind: string } }>(
    '/job/:id/file/:kind',
    {
      schema: {
        params: { type: 'object', properties: { id: LINK_SCHEMA.params.properties.id, kind: { type: 'string', maxLength: 16, description: `one of ${KEPT_KINDS.join(', ')}` } }, required: ['id', 'kind'] },
        querystring: LINK_SCHEMA.querystring,
        tags: ['jobs'],
        summary: "One of a job's files, through its signed link",
        description: '`result` the enhanced image (in the format asked for), `preview` the thumbnail, `compare` the before/after, `pdf` the summary when asked, `input` the upload, `early` the early preview.',
      },
    },
    async (request, reply) => {
      const kept = request.kept!;
      const kind = request.params.kind as KeptKind;
      if (!KEPT_KINDS.includes(kind)) return plain(reply, 404, webSay(request.locale, 'noSuchFile'));
      const file = ctx.keep.file(kept.id, kind);
      const stats = await fs.promises.stat(file).catch(() => undefined);
      if (!stats) return plain(reply, 404, webSay(request.locale, 'notMade'));
      const type = kind === 'input' ? (INPUT_TYPES[kept.format] ?? TYPES.input) : kind === 'result' ? formatType(kept.result?.format ?? 'png') : TYPES[kind];
      // A picture opened on its own is shown by the browser's viewer, which styles it inline: the pages' policy
      // made it log three errors. Nothing in a picture runs, so it gets a policy of its own.
      if (type.startsWith('image/')) reply.header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox");
      return reply.type(type).header('content-length', stats.size).header('cache-control', 'private, max-age=3600').send(fs.createReadStream(file));
    },
  );

  app.post('/job/:id/cancel', { schema: LINK_SCHEMA }, async (request, reply) => {
    const kept = request.kept!;
    try {
      const job = await ctx.queue.getJob(kept.id);
      if (!job || (job.state !== 'waiting' && job.state !== 'active')) return reply.code(409).send({ error: webSay(request.locale, 'jobEnded') });
      await ctx.queue.cancel(kept.id, job.request.owner ?? 'local');
      return { ok: true };
    } catch (error) {
      return reply.code(409).send({ error: say(request.locale, reasonTextOf(error)) });
    }
  });

  app.post<{ Body: Record<string, unknown> }>(
    '/job/:id/again',
    {
      onRequest: ctx.uploads,
      schema: {
        ...LINK_SCHEMA,
        body: {
          type: 'object',
          // Strings, as a form sends them; a script's numbers and booleans are taken as their text.
          properties: { model: { type: 'string', maxLength: 64 }, scale: { type: 'string', maxLength: 4 }, tune: { type: 'string', maxLength: 16 }, pdf: { type: 'string', maxLength: 8 } },
        },
      },
    },
    async (request, reply) => {
      const kept = request.kept!;
      const locale = request.locale;
      const admitted = admission(ctx.access, request);
      if (!admitted.ok) return reply.code(admitted.why === 'badKey' ? 401 : 403).send({ error: webSay(locale, admitted.why === 'needKey' ? 'needKeyAgain' : admitted.why) });
      const input = await fs.promises.readFile(ctx.keep.file(kept.id, 'input')).catch(() => undefined);
      if (!input) return reply.code(410).send({ error: webSay(locale, 'inputGone') });
      // The job's own options, with what the body changes: "again" keeps every option it is not told to change.
      const own = { model: kept.options.model, scale: kept.options.scale, tune: kept.options.tune, pdf: kept.report };
      const choices = choicesFrom({ ...own, ...Object.fromEntries(Object.entries(request.body ?? {}).filter(([, v]) => v !== undefined && v !== '')) });
      const visitor = visitorOfRequest(request, reply, admitted);
      const slot = ctx.intake.begin(visitor, locale);
      if ('refused' in slot) return reply.code(429).send({ error: slot.refused });
      try {
        const answer = await ctx.intake.submit({ name: kept.name, bytes: input }, choices, visitor, slot.upload, locale);
        return answer.link ? { id: answer.id, link: answer.link } : reply.code(400).send({ error: answer.reason });
      } finally {
        slot.done();
      }
    },
  );
}

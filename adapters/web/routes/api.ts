/**
 * The API, for the page and for scripts alike: the session (what the page offers), the access key, uploads, and a
 * job's state and cancel by id for whoever uploaded it. A script sends its access key as `Authorization: Bearer`
 * (not needed from this machine); the document at `/api/openapi.json` is generated from these schemas.
 *
 * @example
 * curl -H "Authorization: Bearer $KEY" -F file=@cat.jpg -F model=x4fast https://enhance.example.org/api/jobs
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import { reasonTextOf, say } from '../../../src/index.js';
import { admission, visitorOfRequest, type UploadLimiter, type WebContext } from '../context.js';
import { choicesFrom, shownName, type FileAnswer } from '../intake.js';
import { KEY_COOKIE } from '../access.js';
import { MAX_FILES } from '../people.js';
import { snapshotFor } from '../status.js';
import { readUpload } from '../upload.js';
import { webSay } from '../language.js';

/** Form overhead allowed on top of the files of an upload: boundaries, part headers and option fields. */
const FORM_OVERHEAD = 1_000_000;

const ERROR = { type: 'object', properties: { error: { type: 'string', description: 'one line, in the language asked for' } } } as const;
const JOB_ID = { type: 'object', properties: { id: { type: 'string', maxLength: 32 } }, required: ['id'] } as const;
const OPTION_FIELDS = {
  model: { type: 'string', description: 'auto (by the picture and the time), x4plus (photos, best), x4fast (photos, fast), anime (drawings, best), anime-fast (drawings, fast); default the service\'s' },
  scale: { type: 'string', enum: ['1', '2', '3', '4'], description: 'output size relative to the input (1: restored at the same size); default 4' },
  size: { type: 'string', pattern: '^[0-9]{2,5}$', description: "the output's long side in pixels, 16 to 16384 (2048, 3840, 7680 offered); wins over scale" },
  format: { type: 'string', enum: ['png', 'webp', 'jpeg', 'avif'], description: 'the result file: png (lossless, default), webp (lossless unless quality), jpeg or avif' },
  quality: { type: 'string', pattern: '^[0-9]{1,3}$', description: '1 to 100, for jpeg (default 90), avif (default 60) and webp (lossy at this quality)' },
  tune: { type: 'string', enum: ['gentle', 'raw'], description: 'gentle touch-up (default) or the raw model output' },
  pdf: { type: 'string', enum: ['on', 'true'], description: 'also make the PDF summary' },
  ask: { type: 'string', enum: ['on', 'true'], description: 'ask before a job over limits.confirmOver instead of queueing it (the upload page sets it)' },
} as const;

export async function apiRoutes(app: FastifyInstance, ctx: WebContext & { uploads: UploadLimiter }): Promise<void> {
  app.get(
    '/api/session',
    { schema: { tags: ['session'], summary: 'What the upload page offers this visitor: models, limits, defaults, whether a key is needed' } },
    (request, reply) => {
      const admitted = admission(ctx.access, request);
      if (admitted.ok) visitorOfRequest(request, reply, admitted);
      return {
        keyNeeded: ctx.access.keyNeeded(request.headers),
        allowed: admitted.ok,
        models: ctx.models(request.locale),
        limits: webSay(request.locale, 'limits', { bytes: ctx.maxFileBytes, pixels: ctx.maxPixels }),
        defaults: { model: ctx.defaultModel, scale: 4, tune: 'gentle', format: 'png' },
        maxFileBytes: ctx.maxFileBytes,
        maxPixels: ctx.maxPixels,
        maxFiles: MAX_FILES,
        keepFor: ctx.config.keepFor,
      };
    },
  );

  app.post<{ Body: { key: string } }>(
    '/api/key',
    {
      config: { rateLimit: { max: 10, timeWindow: 60_000 } },
      schema: { body: { type: 'object', properties: { key: { type: 'string', maxLength: 512 } }, required: ['key'] } },
    },
    (request, reply) => {
      if (!ctx.access.validKey(request.body.key)) return reply.code(403).send({ error: webSay(request.locale, 'badKey') });
      const secure = request.protocol === 'https';
      return reply.setCookie(KEY_COOKIE, ctx.access.token(request.body.key).toString('base64url'), { path: '/', httpOnly: true, sameSite: 'strict', maxAge: 31_536_000, secure }).send({ ok: true });
    },
  );

  app.post(
    '/api/jobs',
    {
      onRequest: ctx.uploads,
      bodyLimit: MAX_FILES * ctx.maxFileBytes + FORM_OVERHEAD,
      config: {
        openapiBody: {
          content: {
            'multipart/form-data': {
              schema: { type: 'object', properties: { ...OPTION_FIELDS, file: { type: 'array', items: { type: 'string', format: 'binary' }, description: `one to ${MAX_FILES} images; options before files` } } },
            },
          },
        },
      },
      schema: {
        tags: ['jobs'],
        summary: 'Upload images: each becomes a job',
        description: `Up to ${MAX_FILES} files; one job each, or its one-line reason. The options fields go before the files.`,
        security: [{ accessKey: [] }],
        response: {
          200: {
            type: 'object',
            properties: {
              jobs: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    id: { type: 'string' },
                    link: { type: 'string', description: 'the job page, signed; its state, events and files hang below it: <path>/state?<query>' },
                    reason: { type: 'string', description: 'why this file was refused' },
                    model: { type: 'string', description: 'the model that runs: the one asked for, or the one auto chose' },
                    etaSeconds: { type: 'number', description: 'how long the job itself should take on this machine, in seconds (waiting not counted)' },
                    confirm: {
                      type: 'object',
                      description: 'only when the form sent ask=on: the job would take over limits.confirmOver and was not queued; send the file again with the model of run or other',
                      properties: {
                        question: { type: 'string' },
                        run: { type: 'object', properties: { model: { type: 'string' }, label: { type: 'string' } } },
                        other: { type: 'object', properties: { model: { type: 'string' }, label: { type: 'string' } } },
                      },
                    },
                    other: { type: 'object', description: 'where auto chose: the other model and its time, e.g. { "model": "x4plus", "label": "Use x4plus instead (about 36 min)" }', properties: { model: { type: 'string' }, label: { type: 'string' } } },
                    why: { type: 'string', description: 'where auto chose the model, what and why, e.g. "photo: x4plus would take about 36 min, used x4fast"' },
                  },
                },
              },
            },
          },
          '4xx': ERROR,
        },
      },
    },
    async (request, reply) => {
      const locale = request.locale;
      const admitted = admission(ctx.access, request);
      if (!admitted.ok) return reply.code(admitted.why === 'badKey' ? 401 : 403).send({ error: webSay(locale, admitted.why) });
      if (!request.isMultipart()) return reply.code(415).send({ error: webSay(locale, 'notMultipart') });
      const visitor = visitorOfRequest(request, reply, admitted);
      const slot = ctx.intake.begin(visitor, locale);
      if ('refused' in slot) return reply.code(429).send({ error: slot.refused });
      const fields: Record<string, string> = {};
      const jobs: FileAnswer[] = [];
      try {
        for await (const part of request.parts()) {
          if (part.type === 'field') {
            fields[part.fieldname] = String(part.value);
            continue;
          }
          if (jobs.length >= MAX_FILES) {
            (part as MultipartFile).file.resume();
            jobs.push(ctx.intake.tooMany(part.filename || 'upload', locale));
            continue;
          }
          const file = await readUpload(part, ctx.maxFileBytes, ctx.maxPixels);
          jobs.push(await ctx.intake.submit(file, choicesFrom(fields), visitor, slot.upload, locale));
        }
      } finally {
        slot.done();
      }
      if (jobs.length === 0) return reply.code(400).send({ error: webSay(locale, 'noFile') });
      return { jobs: jobs.map((j) => ({ ...j, name: shownName(j.name) })) };
    },
  );

  /** The kept job `id` when the request comes from whoever uploaded it; else an answer has been sent. */
  const ownJob = async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const admitted = admission(ctx.access, request);
    if (!admitted.ok) {
      await reply.code(admitted.why === 'badKey' ? 401 : 403).send({ error: webSay(request.locale, admitted.why) });
      return undefined;
    }
    const visitor = visitorOfRequest(request, reply, admitted);
    const kept = await ctx.keep.get(request.params.id);
    // Someone else's job and no job at all look the same: an id says nothing to whoever did not upload it.
    if (!kept || !kept.people?.some((name) => visitor.names.includes(name))) {
      await reply.code(404).send({ error: say(request.locale, { key: 'webDoor.noJob' }) });
      return undefined;
    }
    return kept;
  };

  app.get<{ Params: { id: string } }>(
    '/api/jobs/:id',
    {
      schema: {
        params: JOB_ID,
        tags: ['jobs'],
        summary: 'A job you uploaded: where it stands, its result once done, its signed link',
        security: [{ accessKey: [] }],
      },
    },
    async (request, reply) => {
      const kept = await ownJob(request, reply);
      if (!kept) return reply;
      return { ...snapshotFor(request.locale, await ctx.snapshot(kept)), link: ctx.links.link(kept.id, kept.expires) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/jobs/:id',
    { schema: { params: JOB_ID, tags: ['jobs'], summary: 'Cancel a job you uploaded (it stops within seconds, even mid-tile)', security: [{ accessKey: [] }] } },
    async (request, reply) => {
      const kept = await ownJob(request, reply);
      if (!kept) return reply;
      const job = await ctx.queue.getJob(kept.id);
      if (!job || (job.state !== 'waiting' && job.state !== 'active')) return reply.code(409).send({ error: webSay(request.locale, 'jobEnded') });
      try {
        const ended = await ctx.queue.cancel(kept.id, job.request.owner ?? 'local');
        return { id: ended.id, state: ended.state };
      } catch (error) {
        return reply.code(409).send({ error: say(request.locale, reasonTextOf(error)) });
      }
    },
  );

  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());
}

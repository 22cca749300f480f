/**
 * The pages and their files: the upload page at `/`, the fixed files under `/static/`, and the icon browsers ask
 * for at `/favicon.ico`. Files come from a table, so no part of a request ever becomes a path.
 */
import type { FastifyInstance } from 'fastify';
import { say } from '../../../src/index.js';
import type { WebContext } from '../context.js';
import { plain } from '../reply.js';

export async function pageRoutes(app: FastifyInstance, ctx: WebContext): Promise<void> {
  app.get('/', (request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').header('vary', 'accept-language, cookie').send(ctx.page('index.html', request.locale)),
  );
  app.get<{ Params: { name: string } }>(
    '/static/:name',
    { schema: { params: { type: 'object', properties: { name: { type: 'string', maxLength: 64 } }, required: ['name'] } } },
    (request, reply) => {
      const file = ctx.file(request.params.name);
      if (!file) return plain(reply, 404, say(request.locale, { key: 'web.notFound' }));
      return reply.type(file.type).header('cache-control', 'no-cache').send(file.bytes);
    },
  );
  // Asked for by a browser on any answer without an icon of its own (an error page, a file).
  app.get('/favicon.ico', (request, reply) => {
    const icon = ctx.file('favicon.svg');
    if (!icon) return plain(reply, 404, say(request.locale, { key: 'web.notFound' }));
    return reply.type(icon.type).header('cache-control', 'public, max-age=86400').send(icon.bytes);
  });
}

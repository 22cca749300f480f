/**
 * The health and metrics endpoint, `/healthz` and `/metrics`, on fastify: the same framework as the web door, so
 * the service has one HTTP layer, but on a listener of its own (`ENHANCER_HTTP_PORT`, config `http.port`; off
 * unless a port is set), so metrics stay off the web door's public address.
 */
import Fastify from 'fastify';
import { EnhanceError, reasonOf } from '../errors.js';
import { listenProblem } from '../listen-problem.js';
import { silentLogger, type Logger } from '../log.js';
import type { EnhanceQueue } from '../queue/queue.js';
import type { Worker } from '../queue/worker.js';
import { runChecks, type HealthCheck } from './health.js';
import { createMetrics } from './metrics.js';

export interface ObservabilityOptions {
  /** The TCP port; 0 picks a free one (tests read it back from `port`). */
  port: number;
  /** The address to listen on, e.g. 127.0.0.1 or 0.0.0.0. */
  host: string;
  /** Where the port and the host were set, for the one-line error, e.g. `$ENHANCER_HTTP_PORT`. Default the keys. */
  from?: { port: string; host: string };
  /** The queue whose jobs `/metrics` counts (a front role or the embedded service). */
  queue?: EnhanceQueue;
  /** The worker in this process (a worker role or the embedded service). */
  worker?: Pick<Worker, 'status'>;
  /** What `/healthz` asks, in the order it lists them. */
  checks: readonly HealthCheck[];
  logger?: Logger;
  /** Node's process metrics on `/metrics`; default on. */
  processMetrics?: boolean;
}

export interface Observability {
  /** The port it listens on. */
  readonly port: number;
  close(): Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';

/**
 * Starts the endpoint. Rejects with a one-line `EnhanceError` (kind `options`) naming the port and where it came
 * from when it cannot listen (in use, an address this machine does not have).
 *
 * @example
 * const observe = await startObservability({ port: 9464, host: '0.0.0.0', queue, worker, checks: [inProcessQueue(), workerAlive(worker)] });
 * // curl localhost:9464/healthz → {"ok":true,"checks":[{"name":"queue connected","ok":true}, …]}
 * await observe.close();
 */
export async function startObservability(options: ObservabilityOptions): Promise<Observability> {
  const log = options.logger ?? silentLogger;
  const metrics = createMetrics({ queue: options.queue, worker: options.worker, processMetrics: options.processMetrics });
  // forceCloseConnections: a scraper's keep-alive connection does not hold up the service's stop.
  const app = Fastify({ logger: false, forceCloseConnections: true });
  let lastFailing = '[]';

  // Read-only: any other method is told so before routing (fastify would answer 404 for a known path).
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') await reply.code(405).header('allow', 'GET, HEAD').type(TEXT).send('only GET\n');
  });
  // GET routes answer HEAD too (fastify's exposeHeadRoutes), with the same status and headers and no body.
  app.get('/healthz', async (_request, reply) => {
    const checks = await runChecks(options.checks);
    const ok = checks.every((c) => c.ok);
    // Once per change, not once per probe: Docker alone probes every 30 s.
    const failing = checks.filter((c) => !c.ok);
    const now = JSON.stringify(failing);
    if (now !== lastFailing) {
      if (failing.length) log.warn({ failing }, 'health check failing');
      else log.info('health checks pass again');
      lastFailing = now;
    }
    // As bytes: a string would get "; charset=utf-8" appended, and the content type stays as it always was.
    return reply.code(ok ? 200 : 503).type('application/json').header('cache-control', 'no-store').send(Buffer.from(`${JSON.stringify({ ok, checks })}\n`));
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).header('cache-control', 'no-store').send(text);
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).type(TEXT).send('not found: try /healthz or /metrics\n'));
  app.setErrorHandler((error, request, reply) => {
    log.error({ err: error, url: request.url }, 'health endpoint could not answer');
    return reply.code(500).type(TEXT).send(`${reasonOf(error)}\n`);
  });

  try {
    await app.listen({ port: options.port, host: options.host });
  } catch (error) {
    metrics.close();
    await app.close();
    throw new EnhanceError(listenProblem(error as NodeJS.ErrnoException, { name: 'http', port: options.port, host: options.host, from: options.from ?? { port: 'http.port', host: 'http.host' } }), 'options');
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  log.info({ host: options.host, port }, 'health and metrics on http (/healthz, /metrics)');
  return {
    port,
    close: async () => {
      metrics.close();
      await app.close();
    },
  };
}

/**
 * The health and metrics endpoint: a plain node:http server (two read-only routes need no framework) with
 * `/healthz` and `/metrics`. Off unless a port is set (`ENHANCER_HTTP_PORT`, config `http.port`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EnhanceError, reasonOf } from '../errors.js';
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
  const server = http.createServer((request, response) => {
    void answer(request, response).catch((error: unknown) => {
      log.error({ err: error, url: request.url }, 'health endpoint could not answer');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`${reasonOf(error)}\n`);
    });
  });
  let lastFailing = '[]';
  const answer = async (request: http.IncomingMessage, response: http.ServerResponse) => {
    const route = new URL(request.url ?? '/', 'http://x').pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET\n');
    } else if (route === '/healthz') {
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
      response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(`${JSON.stringify({ ok, checks })}\n`);
    } else if (route === '/metrics') {
      const text = await metrics.registry.metrics();
      response.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(text);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /healthz or /metrics\n');
    }
  };

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    metrics.close();
    throw new EnhanceError(listenProblem(error as NodeJS.ErrnoException, options), 'options');
  }
  const port = (server.address() as AddressInfo).port;
  log.info({ host: options.host, port }, 'health and metrics on http (/healthz, /metrics)');
  return {
    port,
    close: async () => {
      metrics.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function listenProblem(error: NodeJS.ErrnoException, { port, host, from = { port: 'http.port', host: 'http.host' } }: ObservabilityOptions): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return `http: port ${port} (from ${from.port}) is already in use on ${host}; stop what uses it or set another port`;
    case 'EACCES':
      return `http: no permission to listen on port ${port} (from ${from.port}); ports below 1024 need privileges`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `http: host ${JSON.stringify(host)} (from ${from.host}) is not an address of this machine`;
    default:
      return `http: cannot listen on ${host}:${port} (from ${from.host} and ${from.port}): ${error.code ?? error.message}`;
  }
}

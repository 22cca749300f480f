/**
 * The endpoint as a role of the service starts it from its config: nothing while `http.port` is 0, else
 * `/healthz` with the checks that role needs and `/metrics` of its queue and worker.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { EnhanceQueue } from '../queue/queue.js';
import type { Worker } from '../queue/worker.js';
import { inProcessQueue, modelsVerified, workerAlive, type HealthCheck } from './health.js';
import { startObservability, type Observability } from './http.js';

export interface RoleParts {
  /** The queue this process submits to or serves (front and embedded roles). */
  queue?: EnhanceQueue;
  /** Its "queue connected" check; default the in-process queue's, which always passes. */
  queueCheck?: HealthCheck;
  /** The worker in this process (worker and embedded roles): adds "worker alive". */
  worker?: Worker;
  /** Models this process runs (worker and embedded roles): adds "models verified". */
  models?: readonly string[];
  /** Further checks of this role (on Redis: its worker is taking jobs). */
  checks?: readonly HealthCheck[];
}

/**
 * Starts the endpoint when `config.http.port` is set; resolves to undefined when it is 0. Rejects with the one
 * line to show (port in use, an address not of this machine).
 *
 * @example
 * const observe = await observeRole(config, { queue, worker, models: [config.model] }, log);
 * // on shutdown:
 * await observe?.close();
 */
export async function observeRole(config: Pick<Config, 'http' | 'models' | 'origin'>, parts: RoleParts, logger: Logger): Promise<Observability | undefined> {
  if (config.http.port === 0) return undefined;
  const checks: HealthCheck[] = [];
  if (parts.models?.length) checks.push(modelsVerified(config.models, parts.models));
  if (parts.queue || parts.queueCheck) checks.push(parts.queueCheck ?? inProcessQueue());
  if (parts.worker) checks.push(workerAlive(parts.worker));
  checks.push(...(parts.checks ?? []));
  return startObservability({ port: config.http.port, host: config.http.host, from: { port: config.origin('http.port'), host: config.origin('http.host') }, queue: parts.queue, worker: parts.worker, checks, logger });
}

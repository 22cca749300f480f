/**
 * The worker side of `EngineThread`: runs `enhance` for the messages it is sent and answers with progress,
 * log lines and the result. onnxruntime-node's `run` is synchronous under its promise, so this is what keeps
 * the service's event loop free while a model runs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { EnhanceError } from '../errors.js';
import { enhance } from './enhance.js';
import { ModelPool, type RuntimeSettings } from './session.js';
import type { ToWorker, FromWorker } from './engine-thread.js';

const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);
// The worker's log lines go to the main thread, which writes them with its own logger.
const logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => post({ type: 'log', line }) });
let controller: AbortController | null = null;
// Consecutive jobs on one model reuse its session, with the threads and GPU the thread was started with.
const models = new ModelPool(workerData as RuntimeSettings);

port.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    controller?.abort(new EnhanceError(message.reason, message.kind));
    return;
  }
  controller = new AbortController();
  enhance(message.request, {
    ...message.context,
    models,
    signal: controller.signal,
    logger,
    onProgress: (progress) => post({ type: 'progress', progress }),
  }).then(
    (result) => post({ type: 'done', result }),
    (error: unknown) =>
      post({
        type: 'failed',
        message: error instanceof EnhanceError ? (error.text ?? error.message) : error instanceof Error ? error.message : String(error),
        kind: error instanceof EnhanceError ? error.kind : undefined,
      }),
  );
});

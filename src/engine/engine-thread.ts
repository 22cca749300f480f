/**
 * `EngineThread`: `enhance` on a worker thread of its own, for the service.
 *
 * onnxruntime-node runs a model synchronously on the thread that calls it (its promise only defers the start),
 * so in-process a job blocked the event loop for the whole of each window: 1 s for x4fast at 256x256, 12 s
 * for x4plus. Chat connections, the hot folder, progress events and the previous job's preview, comparison
 * and PDF all waited. On a worker thread they go on while the model runs. The CLI still calls `enhance`
 * directly: nothing else runs there.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EnhanceError } from '../errors.js';
import type { Text } from '../i18n/i18n.js';
import type { Logger } from '../log.js';
import { projectRoot } from '../paths.js';
import type { EnhancedImage, EnhanceProgress, EnhanceRequest } from '../types.js';
import type { Engine, EnhanceContext } from './enhance.js';
import { DEFAULT_RUNTIME, type RuntimeSettings } from './session.js';

/** Messages to the worker. */
export type ToWorker =
  | { type: 'run'; request: EnhanceRequest; context: Pick<EnhanceContext, 'modelsDir' | 'maxPixels' | 'overlap' | 'region'> }
  | { type: 'abort'; reason: string | Text; kind: EnhanceError['kind'] };

/** Messages from the worker. */
export type FromWorker =
  | { type: 'progress'; progress: EnhanceProgress }
  | { type: 'log'; line: string }
  | { type: 'done'; result: EnhancedImage }
  | { type: 'failed'; message: string | Text; kind?: EnhanceError['kind'] };

/** The compiled worker: vitest runs the sources, but a worker thread needs plain JavaScript. */
const WORKER_FILE = path.join(projectRoot, 'dist', 'src', 'engine', 'engine-worker.js');

const LEVELS: Record<number, 'debug' | 'info' | 'warn' | 'error'> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error' };

/** Runs one enhancement at a time on a worker thread that lives as long as this object. */
export class EngineThread implements Engine {
  private worker: Worker | null = null;
  private busy = false;

  /** `runtime`: the CPU provider's threads and the GPU, handed to the thread when it starts. */
  constructor(private readonly runtime: RuntimeSettings = DEFAULT_RUNTIME) {}

  /** `enhance` with the same request, context and result, run on the worker thread. */
  async enhance(request: EnhanceRequest, context: EnhanceContext = {}): Promise<EnhancedImage> {
    if (this.busy) throw new Error('EngineThread runs one enhancement at a time');
    context.signal?.throwIfAborted();
    this.busy = true;
    const worker = this.start();
    worker.ref();
    try {
      return await new Promise<EnhancedImage>((resolve, reject) => {
        const onAbort = () => {
          const reason = context.signal?.reason;
          worker.postMessage({
            type: 'abort',
            // A reason's catalogue message crosses as it is, so the person reads it in their own language.
            reason: reason instanceof EnhanceError ? (reason.text ?? reason.message) : reason instanceof Error ? reason.message : String(reason),
            kind: reason instanceof EnhanceError ? reason.kind : 'cancelled',
          } satisfies ToWorker);
        };
        const onMessage = (message: FromWorker) => {
          if (message.type === 'progress') context.onProgress?.(message.progress);
          else if (message.type === 'log') relay(context.logger, message.line);
          else if (message.type === 'done') settle(() => resolve({ ...message.result, png: asBuffer(message.result.png) }));
          else settle(() => reject(message.kind ? new EnhanceError(message.message, message.kind) : new Error(String(message.message))));
        };
        const onError = (error: Error) => settle(() => reject(new Error(`engine thread failed: ${error.message}`)));
        const onExit = (code: number) => settle(() => reject(new Error(`engine thread exited with code ${code}`)));
        const settle = (then: () => void) => {
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
          context.signal?.removeEventListener('abort', onAbort);
          then();
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
        context.signal?.addEventListener('abort', onAbort, { once: true });
        const { modelsDir, maxPixels, overlap, region } = context;
        worker.postMessage({ type: 'run', request, context: { modelsDir, maxPixels, overlap, region } } satisfies ToWorker);
      });
    } finally {
      this.busy = false;
      // An idle worker does not keep the process alive.
      this.worker?.unref();
    }
  }

  /** Stops the worker thread; a later `enhance` starts a new one. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private start(): Worker {
    if (!this.worker) {
      const worker = new Worker(WORKER_FILE, { workerData: this.runtime });
      // A worker that failed or exited is replaced at the next enhancement.
      const forget = () => {
        if (this.worker === worker) this.worker = null;
      };
      worker.on('error', forget).on('exit', forget);
      this.worker = worker;
    }
    return this.worker;
  }
}

/** The PNG arrives as a plain Uint8Array (structured clone); callers expect a Buffer, without a copy. */
const asBuffer = (png: Uint8Array) => Buffer.from(png.buffer, png.byteOffset, png.byteLength);

/** Writes a log line from the worker with the main thread's logger. */
function relay(logger: Logger | undefined, line: string): void {
  if (!logger) return;
  const { level, msg, time: _time, ...fields } = JSON.parse(line) as { level: number; msg?: string; time?: number };
  logger[LEVELS[level] ?? 'info'](fields, msg);
}

/**
 * `EngineProcess`: `enhance` in a child process of its own, for the service.
 *
 * onnxruntime-node runs a model synchronously under its promise, on the thread that calls it: 12 s for one
 * 256x256 x4plus window on 2 cores. In the service's own thread that stopped chats, the hot folder and progress
 * for the whole window; a worker thread kept those going, but neither it nor `Worker.terminate()` can stop native
 * code, so a cancel or a shutdown waited for the window to end. A process can be ended mid-window: on the
 * signal the child is asked to stop (it does between two windows), and one that has not answered within
 * `ABORT_GRACE_MS` is killed, the call rejecting with the signal's reason at once; the next call forks a fresh
 * child. A child that dies by itself (the OOM killer, a crash) fails only the call it ran, the same way.
 *
 * The CLI still calls `enhance` directly: nothing else runs there.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EnhanceError, type EnhanceErrorKind } from '../errors.js';
import { mkdirPrivate } from '../files.js';
import type { Text } from '../i18n/i18n.js';
import { silentLogger, type Logger } from '../log.js';
import { DEFAULT_MODELS_DIR, projectRoot } from '../paths.js';
import type { EnhancedImage, EnhanceProgress, EnhanceRequest } from '../types.js';
import type { Engine, EnhanceContext } from './enhance.js';
import { DEFAULT_RUNTIME } from './session.js';

/** Messages to the child. */
export type ToChild =
  | {
      type: 'run';
      request: EnhanceRequest;
      context: Pick<EnhanceContext, 'modelsDir' | 'maxPixels' | 'overlap' | 'region' | 'keepGps'>;
      /**
       * Where the child writes the PNG (mode 0600); the parent reads and deletes it. A 4x PNG can be hundreds of
       * MB: a 100 MB Buffer took 0.85-1.7 s through the channel (advanced serialization), written to a file and
       * read back 0.55 s, on a 2-core machine at load 5-9. The input crosses in the message (at most
       * `limits.maxFileBytes`, 50 MB by default: about half that time).
       */
      resultFile: string;
    }
  | { type: 'abort' };

/** Messages from the child. */
export type FromChild =
  | { type: 'progress'; progress: EnhanceProgress }
  | { type: 'log'; line: string }
  /** The PNG is in `file`, or in `png` when the disk had no room for it. */
  | { type: 'done'; result: Omit<EnhancedImage, 'image'>; file?: string; image?: Uint8Array }
  | { type: 'failed'; message: string | Text; kind?: EnhanceErrorKind };

/** The compiled child: vitest runs the sources, but a child process needs plain JavaScript. */
const CHILD_FILE = path.join(projectRoot, 'dist', 'src', 'engine', 'engine-child.js');

/**
 * How long a child asked to stop may take to answer before it is killed. It answers between two windows, so
 * within the rest of the window it is in: x4fast's 64x64 windows (tile 32) came 0.16-0.4 s apart on a 2-core
 * machine loaded to 9-12, and cancels were answered in 0.31-0.57 s; an x4plus window takes 3-12 s (67 s at that
 * load for 256x256), so it is killed. Killing costs the next job a fresh child, fork and model load, measured at
 * the same load at 0.8-1.6 s for x4fast and 2.3-3.1 s for x4plus, so short windows are let finish. 1 s leaves
 * 2 s of the 3 s a cancel may take: killed runs ended 1.02-1.2 s after their cancel.
 */
export const ABORT_GRACE_MS = 1_000;

const LEVELS: Record<number, 'debug' | 'info' | 'warn' | 'error'> = { 20: 'debug', 30: 'info', 40: 'warn', 50: 'error' };

export interface EngineProcessOptions {
  /** The service's data folder: results cross from the child as files in engine/ there, deleted once read. */
  dataDir: string;
  /** Models for calls whose context names no folder (default: models/ or ENHANCER_MODELS). */
  modelsDir?: string;
  /** Threads of the CPU provider; 0 (the default) for every core. */
  threads?: number;
  /** The GPU the CUDA provider runs on (default 0, the first). */
  gpu?: number;
  /** For the engine's own lines (a child ended or cut short) when a call brings no logger. */
  logger?: Logger;
  /**
   * The environment the child starts in; default this process's, which the launcher (bin/enhancer.js) started with
   * `MALLOC_ENV` (src/malloc.ts): a caller that was not launched so (a test, a benchmark) passes it here.
   */
  env?: NodeJS.ProcessEnv;
}

/** Runs one enhancement at a time in a child process that is forked when needed and kept between calls. */
export class EngineProcess implements Engine {
  private child: ChildProcess | null = null;
  private busy = false;
  private readonly resultsDir: string;

  constructor(private readonly options: EngineProcessOptions) {
    this.resultsDir = path.join(options.dataDir, 'engine');
  }

  /** The running child's process id; undefined before the first call, after `close()`, or once it ended. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** `enhance` with the same request, context and result, run in the child process. */
  async enhance(request: EnhanceRequest, context: EnhanceContext = {}): Promise<EnhancedImage> {
    if (this.busy) throw new Error('EngineProcess runs one enhancement at a time');
    context.signal?.throwIfAborted();
    this.busy = true;
    const log = context.logger ?? this.options.logger ?? silentLogger;
    const resultFile = path.join(this.resultsDir, `${randomUUID()}.png`);
    try {
      await mkdirPrivate(this.resultsDir);
      const child = this.start();
      child.ref();
      child.channel?.ref();
      return await this.run(child, request, context, resultFile, log);
    } finally {
      this.busy = false;
      // Gone already when it was read; left by a child that died writing it.
      await fs.promises.rm(resultFile, { force: true });
      // An idle child does not keep the process alive.
      this.child?.unref();
      this.child?.channel?.unref();
    }
  }

  /** Ends the child; a later `enhance` forks a new one. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child) await end(child);
  }

  private run(child: ChildProcess, request: EnhanceRequest, context: EnhanceContext, resultFile: string, log: Logger): Promise<EnhancedImage> {
    const { signal } = context;
    return new Promise<EnhancedImage>((resolve, reject) => {
      let grace: NodeJS.Timeout | undefined;
      const onMessage = (message: FromChild) => {
        if (message.type === 'log') relay(log, message.line);
        else if (signal?.aborted) {
          // Asked to stop and answered in time: whatever it answered, the call ends with the signal's reason.
          if (message.type !== 'progress') settle(() => reject(signal.reason));
        } else if (message.type === 'progress') context.onProgress?.(message.progress);
        else if (message.type === 'done') settle(() => resolve(readResult(message)));
        else settle(() => reject(message.kind ? new EnhanceError(message.message, message.kind) : new Error(String(message.message))));
      };
      const onExit = (code: number | null, killedBy: NodeJS.Signals | null) => {
        if (signal?.aborted) return settle(() => reject(signal.reason));
        log.warn({ pid: child.pid, code, signal: killedBy, model: request.options?.model, name: request.name }, 'the engine process ended during a job; the next job starts a fresh one');
        const text: Text = killedBy ? { key: 'reason.engineKilled', values: { signal: killedBy } } : { key: 'reason.engineExited', values: { code: code ?? 'unknown' } };
        settle(() => reject(new EnhanceError(text, 'device')));
      };
      const onError = (error: Error) => settle(() => reject(new Error(`the engine process could not be started or reached: ${error.message}`)));
      const onAbort = () => {
        child.send({ type: 'abort' } satisfies ToChild, () => {});
        grace = setTimeout(() => {
          log.warn({ pid: child.pid, graceMs: ABORT_GRACE_MS, name: request.name }, 'the engine did not stop between tiles in time: its process was ended mid-tile; the next job starts a fresh one');
          this.forget(child);
          void end(child);
          settle(() => reject(signal!.reason));
        }, ABORT_GRACE_MS);
      };
      const settle = (then: () => void) => {
        clearTimeout(grace);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
        then();
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.on('error', onError);
      // Aborted while the folder was made: nothing was sent, so nothing is to be stopped.
      if (signal?.aborted) return settle(() => reject(signal.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      const { modelsDir = this.options.modelsDir ?? DEFAULT_MODELS_DIR, maxPixels, overlap, region, keepGps } = context;
      child.send({ type: 'run', request, context: { modelsDir, maxPixels, overlap, region, keepGps }, resultFile } satisfies ToChild, () => {});
    });
  }

  /** The running child, or a fresh one. */
  private start(): ChildProcess {
    if (this.child) return this.child;
    const log = this.options.logger ?? silentLogger;
    const threads = this.options.threads ?? DEFAULT_RUNTIME.threads;
    const gpu = this.options.gpu ?? DEFAULT_RUNTIME.gpu;
    const child = fork(CHILD_FILE, ['--threads', String(threads), '--gpu', String(gpu)], {
      // Buffers and typed arrays cross as they are, not as JSON.
      serialization: 'advanced',
      // glibc reads these only at start (see src/malloc.ts).
      env: this.options.env,
      // Not the service's own flags: a test runner's loaders or an --inspect port are not the child's.
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    // A child that ended or could not start is replaced at the next call; one that ends while idle is only noted.
    child.on('error', (error) => {
      log.warn({ pid: child.pid, err: error.message }, 'the engine process failed; the next job starts a fresh one');
      this.forget(child);
      // One that could not be reached may still be running: it must not hold its memory for nothing.
      void end(child);
    });
    child.on('exit', (code, killedBy) => {
      if (this.child !== child) return;
      this.forget(child);
      if (!this.busy) log.warn({ pid: child.pid, code, signal: killedBy }, 'the engine process ended while idle; the next job starts a fresh one');
    });
    this.child = child;
    return child;
  }

  private forget(child: ChildProcess): void {
    if (this.child === child) this.child = null;
  }
}

/** Kills `child` (it holds nothing worth a gentler end) and resolves once it is gone. */
function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    // An idle child is unref'd: without this the caller's process could end before hearing it did.
    child.ref();
    child.kill('SIGKILL');
  });
}

/** The child's result with its image, read from the file it wrote (and deleted) or taken from the message. */
async function readResult(message: Extract<FromChild, { type: 'done' }>): Promise<EnhancedImage> {
  if (!message.file) return { ...message.result, image: asBuffer(message.image!) };
  const image = await fs.promises.readFile(message.file);
  await fs.promises.rm(message.file, { force: true });
  return { ...message.result, image };
}

/** Callers expect a Buffer; advanced serialization may hand over a plain Uint8Array. No copy either way. */
const asBuffer = (png: Uint8Array) => (Buffer.isBuffer(png) ? png : Buffer.from(png.buffer, png.byteOffset, png.byteLength));

/** Writes a log line from the child with this process's logger. */
function relay(logger: Logger, line: string): void {
  const { level, msg, time: _time, ...fields } = JSON.parse(line) as { level: number; msg?: string; time?: number };
  logger[LEVELS[level] ?? 'info'](fields, msg);
}

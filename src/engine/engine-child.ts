/**
 * The child's side of `EngineProcess` (src/engine/engine-process.ts): runs `enhance` for the messages it is sent
 * and answers with progress, log lines and the result. Its threads and GPU come as arguments
 * (`--threads N --gpu N`), so `ps` shows what it runs with.
 *
 * It lives as long as its parent wants it: a stop signal meant for the service's process group (Ctrl-C in a
 * terminal, systemd stopping the unit) is ignored here, so the running job gets the service's shutdown grace;
 * the parent kills it when it is done with it, and it leaves by itself when the parent's channel closes.
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { isDiskFull } from '../disk-space.js';
import { EnhanceError } from '../errors.js';
import { PRIVATE_FILE } from '../files.js';
import { DecodeReuse, enhance } from './enhance.js';
import type { FromChild, ToChild } from './engine-process.js';
import { ModelPool } from './session.js';

const { values } = parseArgs({ options: { threads: { type: 'string' }, gpu: { type: 'string' } } });
const whole = (name: 'threads' | 'gpu'): number => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`engine process: --${name} must be a whole number from 0 (got ${JSON.stringify(values[name])})`);
  return value;
};
const runtime = { threads: whole('threads'), gpu: whole('gpu') };

const post = (message: FromChild) => process.send!(message);
// The log lines go to the parent, which writes them with its own logger.
const logger = pino({ level: 'debug', base: undefined }, { write: (line: string) => post({ type: 'log', line }) });
let controller: AbortController | null = null;
// Consecutive jobs on one model reuse its session; a job's preview and its whole run, one decode.
const models = new ModelPool(runtime);
const decodes = new DecodeReuse();

for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, () => {});
process.on('disconnect', () => process.exit(0));

process.on('message', (message: ToChild) => {
  if (message.type === 'abort') {
    // What the parent rejects with is its own signal's reason; this only stops the run between two tiles.
    controller?.abort(new EnhanceError({ key: 'reason.cancelled' }, 'cancelled'));
    return;
  }
  controller = new AbortController();
  enhance(message.request, { ...message.context, models, decodes, signal: controller.signal, logger, onProgress: (progress) => post({ type: 'progress', progress }) }).then(
    async ({ image, ...result }) => {
      try {
        // A file, not the message (see `resultFile` in engine-process.ts). Private: it is someone's picture.
        await fs.writeFile(message.resultFile, image, { mode: PRIVATE_FILE, flag: 'wx' });
        post({ type: 'done', result, file: message.resultFile });
      } catch (error) {
        // A full disk must not fail a job that has done its work: the channel is slower but needs no disk, and
        // the worker then holds the result until there is room (see src/queue/worker.ts).
        if (!isDiskFull(error)) throw error;
        await fs.rm(message.resultFile, { force: true });
        post({ type: 'done', result, image });
      }
    },
    (error: unknown) =>
      post({
        type: 'failed',
        message: error instanceof EnhanceError ? (error.text ?? error.message) : error instanceof Error ? error.message : String(error),
        kind: error instanceof EnhanceError ? error.kind : undefined,
      }),
  ).catch((error: unknown) => post({ type: 'failed', message: `the engine could not hand over its result: ${(error as Error).message}` }));
});

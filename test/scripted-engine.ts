/**
 * A scripted stand-in for the engine, for queue tests about order and timing: every `enhance` call waits until
 * the test lets it finish, so nothing depends on how fast this machine runs a model. What it returns is a real
 * PNG (the input enlarged 4x with square pixels), so the rest of the pipeline (thumbnail, comparison, PDF, result
 * store, delivery) runs for real.
 */
import { EventEmitter } from 'node:events';
import sharp from 'sharp';
import { signatureOf, type Engine, type EnhanceContext } from '../src/engine/enhance.js';
import { EnhanceError } from '../src/errors.js';
import { normalizeOptions } from '../src/options.js';
import type { EnhancedImage, EnhanceRequest } from '../src/types.js';

/** One call to `enhance`, as the test sees it. */
export interface Call {
  name: string;
  /** Set for an early preview's run. */
  region?: EnhanceContext['region'];
  /** Reports `tiles` tiles (checking the signal before each, as the engine does), then returns the image. */
  finish(tiles?: number): void;
  /** Fails the run with this error. */
  fail(error: Error): void;
}

export class ScriptedEngine extends EventEmitter<{ call: [Call] }> implements Engine {
  /** Every call so far, in order. */
  readonly calls: Call[] = [];
  /** Runs at once, as opposed to waiting for `finish`: an engine that is simply fast. */
  auto = false;
  /** Calls running right now; more than one would mean two inferences at once. */
  running = 0;
  maxRunning = 0;

  async enhance(request: EnhanceRequest, context: EnhanceContext = {}): Promise<EnhancedImage> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const step = await new Promise<{ tiles: number } | { error: Error }>((resolve) => {
        const call: Call = { name: request.name, region: context.region, finish: (tiles = 1) => resolve({ tiles }), fail: (error) => resolve({ error }) };
        this.calls.push(call);
        // Stopped while it waits, as the engine stops between two tiles.
        context.signal?.addEventListener('abort', () => resolve({ error: context.signal!.reason as Error }), { once: true });
        this.emit('call', call);
        if (this.auto) call.finish();
      });
      if ('error' in step) throw step.error;
      for (let done = 1; done <= step.tiles; done++) {
        context.signal?.throwIfAborted();
        context.onProgress?.({ tilesDone: done, tilesTotal: step.tiles, etaMs: (step.tiles - done) * 10 });
        await new Promise((resolve) => setImmediate(resolve));
      }
      context.signal?.throwIfAborted();
      return await render(request, context);
    } finally {
      this.running--;
    }
  }

  /** The next call (already made, or the next to come). */
  next(): Promise<Call> {
    const waiting = this.calls.find((c) => !taken.has(c));
    if (waiting) {
      taken.add(waiting);
      return Promise.resolve(waiting);
    }
    return new Promise((resolve) =>
      this.once('call', (call) => {
        taken.add(call);
        resolve(call);
      }),
    );
  }
}

const taken = new WeakSet<Call>();

async function render(request: EnhanceRequest, context: EnhanceContext): Promise<EnhancedImage> {
  const options = normalizeOptions(request.options);
  let image = sharp(request.input).rotate();
  const meta = await sharp(request.input).metadata();
  if (context.region) image = image.extract(context.region);
  const width = (context.region?.width ?? meta.width!) * options.scale;
  const height = (context.region?.height ?? meta.height!) * options.scale;
  if (width < 1 || height < 1) throw new EnhanceError('empty region', 'input');
  const png = await image.resize(width, height, { kernel: 'nearest' }).png().toBuffer();
  const ms = { load: 0, decode: 0, infer: 1, encode: 0, total: 1 };
  return {
    image: png,
    input: { width: meta.width!, height: meta.height!, channels: 3, bits: 8, format: meta.format! },
    output: { width, height, channels: 3, bits: 8 },
    format: 'png',
    options,
    modelSha256: 'scripted',
    device: 'cpu',
    precision: options.precision === 'int8' ? 'int8' : 'fp32',
    tile: 0,
    tiles: 1,
    signature: signatureOf(request.input, options, 'scripted'),
    ms,
  };
}

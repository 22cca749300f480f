/**
 * ETAs learned from measured throughput: milliseconds per input megapixel for each model on each device,
 * a moving average kept in `<data>/state/throughput.json` so estimates are good from the first job after a
 * restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Device } from '../types.js';
import { mkdirPrivate, writeAtomic } from '../files.js';

/** First guesses, measured on the 2-core CPU machines (docs/benchmarks.md); replaced by what this machine does. */
export const GUESS_MS_PER_MP: Record<string, number> = { x4plus: 250_000, x4fast: 22_000 };
/** Weight of the newest measurement. */
export const ALPHA = 0.3;

export class Throughput {
  private readonly file: string;
  private readonly rates: Record<string, number>;
  private device: Device = 'cpu';

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'state', 'throughput.json');
    try {
      this.rates = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Record<string, number>;
    } catch {
      this.rates = {};
    }
  }

  /** Expected milliseconds for a job of `pixels` input pixels with `model`, on the device used last. */
  estimate(model: string, pixels: number): number {
    const rate = this.rates[`${model}:${this.device}`] ?? GUESS_MS_PER_MP[model] ?? GUESS_MS_PER_MP.x4plus;
    return (rate * pixels) / 1e6;
  }

  /** Records a finished job's inference time. */
  async learn(model: string, device: Device, pixels: number, ms: number): Promise<void> {
    if (pixels <= 0) return;
    this.device = device;
    const key = `${model}:${device}`;
    const measured = (ms / pixels) * 1e6;
    const old = this.rates[key];
    this.rates[key] = old === undefined ? measured : old + ALPHA * (measured - old);
    await mkdirPrivate(path.dirname(this.file));
    await writeAtomic(this.file, JSON.stringify(this.rates));
  }
}

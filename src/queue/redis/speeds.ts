/**
 * Learned speeds shared by every worker through Redis (`enhancer:speeds`, field `<model>:<device>`, milliseconds
 * per input megapixel), the same moving average as throughput.ts, so a front's ETAs know what the workers do.
 */
import type { Redis } from 'ioredis';
import type { Device } from '../../types.js';
import { GUESS_MS_PER_MP, ALPHA } from '../throughput.js';
import { PREFIX } from './store.js';

const SPEEDS = `${PREFIX}:speeds`;

/** Moves the average towards a measurement in one step, so two workers learning at once both count. */
const LEARN = `
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local measured = tonumber(ARGV[2])
local new = measured
if old then new = old + tonumber(ARGV[3]) * (measured - old) end
redis.call('HSET', KEYS[1], ARGV[1], tostring(new))
return 1`;

export class RedisSpeeds {
  constructor(private readonly redis: Redis) {}

  /** Records a finished job's inference time. */
  async learn(model: string, device: Device, pixels: number, ms: number): Promise<void> {
    if (pixels <= 0) return;
    await this.redis.eval(LEARN, 1, SPEEDS, `${model}:${device}`, String((ms / pixels) * 1e6), String(ALPHA));
  }

  /**
   * The estimate as it stands now: expected milliseconds for `pixels` with `model`, at the fastest device any
   * worker has reported for it (a GPU worker takes most of the line).
   *
   * @example
   * const estimate = await speeds.snapshot();
   * estimate('x4fast', 128 * 128); // ms
   */
  async snapshot(): Promise<(model: string, pixels: number) => number> {
    const rates = await this.redis.hgetall(SPEEDS);
    return (model, pixels) => {
      const known = Object.entries(rates).filter(([k]) => k.startsWith(`${model}:`)).map(([, v]) => Number(v));
      const rate = known.length > 0 ? Math.min(...known) : (GUESS_MS_PER_MP[model] ?? GUESS_MS_PER_MP.x4plus);
      return (rate * pixels) / 1e6;
    };
  }
}

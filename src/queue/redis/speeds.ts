/**
 * Learned costs shared by every worker through Redis (`enhancer:speeds`), the same lines as throughput.ts, so a
 * front's ETAs know what the workers do: each field is a line's weighted sums as JSON (`x4fast:cpu:run`, `tail`,
 * `render`, …; see throughput.ts), and `last` the model that ran last and when. A field of the old format (a
 * number under `<model>:<device>`, inference ms per input megapixel) is still read, as throughput.ts reads it.
 */
import type { Redis } from 'ioredis';
import { Costs, DECAY, MODEL_KEPT_MS, observations, type CostState, type FirstGuesses, type JobSample } from '../throughput.js';
import { PREFIX } from './store.js';

const SPEEDS = `${PREFIX}:speeds`;
const LAST = 'last';

/**
 * Adds one job to each line it teaches, in one step, so two workers learning at once both count: `addTo` of
 * throughput.ts in Lua. KEYS: speeds hash; ARGV: decay, `last` as JSON (or ''), then field, x, y for each line.
 */
const LEARN = `
local decay = tonumber(ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], '${LAST}', ARGV[2]) end
for i = 3, #ARGV, 3 do
  local s = {}
  local text = redis.call('HGET', KEYS[1], ARGV[i])
  if text then
    local ok, old = pcall(cjson.decode, text)
    if ok and type(old) == 'table' then s = old end
  end
  local x, y = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local function add(name, v) s[name] = (tonumber(s[name]) or 0) * decay + v end
  add('n', 1)
  add('x', x)
  add('y', y)
  add('xx', x * x)
  add('xy', x * y)
  redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(s))
end
return 1`;

export class RedisSpeeds {
  /** @param guesses this machine's first guesses of the CPU run rates (see `Throughput`) */
  constructor(
    private readonly redis: Redis,
    private readonly guesses: FirstGuesses = {},
  ) {}

  /** Learns from a finished job (see `Throughput.learn`). */
  async learn(sample: JobSample): Promise<void> {
    const last = sample.accelerator ? JSON.stringify({ model: sample.shape.model, at: Date.now() }) : '';
    const lines = observations(sample).flatMap(([field, x, y]) => [field, String(x), String(y)]);
    await this.redis.eval(LEARN, 1, SPEEDS, String(DECAY), last, ...lines);
  }

  /**
   * The costs as they stand now, at the fastest device any worker has reported for each model (a GPU worker
   * takes most of the line).
   *
   * @example
   * const costs = await speeds.costs();
   * costs.accelerator({ model: 'x4fast', mp: 0.016, outMP: 0.26, previewMP: 0, report: false }, false); // ms
   */
  async costs(now = Date.now()): Promise<Costs> {
    const all = await this.redis.hgetall(SPEEDS);
    const state: CostState = {};
    let loaded: string | undefined;
    for (const [field, text] of Object.entries(all)) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        continue;
      }
      if (field === LAST) {
        const last = value as { model?: unknown; at?: unknown } | null;
        if (typeof last?.model === 'string' && now - Number(last.at) < MODEL_KEPT_MS) loaded = last.model;
      } else if (typeof value === 'number' || (value && typeof value === 'object')) {
        state[field] = value as CostState[string];
      }
    }
    return new Costs(state, undefined, loaded, this.guesses);
  }
}

/**
 * What a job costs a person, learned from the jobs this machine ran, so that an ETA counts all of it: the model's
 * load, the early preview, the run, and the thumbnail, comparison and PDF after it.
 *
 * Each cost is a straight line, milliseconds = a fixed part per job + a rate per megapixel, fitted by least
 * squares to the recent jobs, each job weighing `DECAY` times the one after it (so about the last ten count).
 * Until the jobs' sizes differ enough to tell a rate from a fixed part, the rate stays the first guess's and the
 * fixed part moves the line through them. The lines, per model and device:
 *
 * - `<model>:<device>:run`: the job's time on the accelerator besides its preview and its model's load (decode,
 *   inference, encode, and the queue's own steps), per input megapixel;
 * - `<model>:<device>:preview`: the early preview's run besides the load, per megapixel of its window;
 * - `<model>:<device>:load`: loading the model, when the engine does not hold it already (a plain average);
 *
 * and for every model (sharp's work, not the model's):
 *
 * - `tail`: what is left on the accelerator after the last tile (the PNG's encoding), per output megapixel;
 * - `render` and `report`: the thumbnail and comparison after the accelerator is free, without and with the PDF,
 *   per output megapixel.
 *
 * Kept as weighted sums in `<data>/state/throughput.json` (and in Redis, see redis/speeds.ts), so ETAs are good
 * from the first job after a restart. Before, the file held one number per model and device, inference only
 * (`"x4fast:cpu": 22000`, ms per input megapixel): such a number is still read, as the rate of that run line's
 * first guess.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Device } from '../types.js';
import { mkdirPrivate, writeAtomic } from '../files.js';

/** A job as far as its cost goes: all of it known at submit (see `shapeOf` in src/pipeline/shape.ts). */
export interface JobShape {
  model: string;
  /** Input megapixels. */
  mp: number;
  /** Output megapixels: the input's times the scale squared. */
  outMP: number;
  /** Megapixels of the early preview's window (its region and the context around it); 0 without a preview. */
  previewMP: number;
  /** The PDF summary is made too. */
  report: boolean;
}

/** What one finished job measured, to learn from. */
export interface JobSample {
  shape: JobShape;
  device: Device;
  /** Its time on the accelerator, in ms; absent when the result came from the cache. */
  accelerator?: {
    /** Everything besides the preview and the model's load. */
    runMs: number;
    /** The early preview's run besides the load; absent when it had none. */
    previewMs?: number;
    /** Loading the model, in the preview's run or the job's own; 0 when the engine held it already. */
    loadMs: number;
    /** From the last tile to the accelerator being free. */
    tailMs: number;
    /**
     * The first job of the engine's process: its run and render fault in their memory and load what they use
     * for the first time, and took twice a later job's time and more (x4fast 400x300 at a load of 12: 22 s, then
     * 11 s; a 32x32 job's render 247 ms, then 57 ms). It teaches only the model's load.
     */
    cold?: boolean;
  };
  /** Thumbnail, comparison and (when asked) the PDF, after the accelerator was free. */
  renderMs: number;
}

/** Weighted sums over recent jobs of a line's x (megapixels) and y (ms): all a least-squares line needs. */
export interface Sums {
  n: number;
  x: number;
  y: number;
  xx: number;
  xy: number;
}

/** Milliseconds = `fixedMs` + `msPerMP` × megapixels. */
export interface Line {
  fixedMs: number;
  msPerMP: number;
}

/**
 * First guesses of each model's run rate on this machine's CPU, ms per input megapixel, from the start-up probe
 * (`firstGuesses`, src/engine/probe.ts): they come before `GUESSES`' constants, after anything learned.
 */
export type FirstGuesses = Readonly<Record<string, number>>;

/** The learned state: a field's sums, or (the old format) an inference rate in ms per input megapixel. */
export type CostState = Record<string, Sums | number | undefined>;

/** Each job weighs this much of the one after it: the newest counts 10%, the tenth before it 4%. */
export const DECAY = 0.9;
/**
 * Below this spread of the jobs' sizes (their standard deviation over their mean) the rate is not fitted: jobs of
 * one size cannot tell a rate from a fixed part, and a fit to their noise could point anywhere.
 */
const MIN_SPREAD = 0.25;
/** How long the engine keeps an idle model (ModelPool's `idleMs`, src/engine/session.ts). */
export const MODEL_KEPT_MS = 60_000;

/**
 * First guesses for a 2-core CPU machine, replaced by what this machine does from its first job on. x4fast at
 * 256x256 took 0.58-0.96 s quiet and 1.49 s at a load of 6-7 (22.8 s/MP; docs/benchmarks.md). Four runs of
 * `enhancer bench --eta` at loads of 7-10 learned for x4fast 44-183 ms + 22 000-44 000 ms/MP for the run,
 * 226-311 ms for the load, 68-115 ms besides the rate for the preview; 11-33 ms + 38-54 ms/MP for the tail,
 * 173-243 ms + 37-108 ms/MP for the render. x4plus at 256x256 took 7.5-12.3 s quiet, its load 0.4-0.55 s, and the
 * thumbnail, comparison and PDF of its 1 MP result 210-320 ms (docs/benchmarks.md). The rates are a busy
 * machine's: a shared machine is more often busy than quiet, and an ETA that proves long disappoints less than one
 * that proves short. An unknown model takes x4plus's, the slower.
 */
export const GUESSES = {
  run: {
    x4plus: { fixedMs: 150, msPerMP: 250_000 },
    x4fast: { fixedMs: 100, msPerMP: 22_000 },
    // By FLOPs per pixel against their photo twins (11.41 M against 35.85 M; 1.24 M against 2.42 M).
    anime: { fixedMs: 150, msPerMP: 80_000 },
    'anime-fast': { fixedMs: 100, msPerMP: 12_000 },
  } as Record<string, Line>,
  /** The preview's rate is its run's: the same model on a smaller window. */
  previewFixedMs: { x4plus: 150, x4fast: 80, anime: 150, 'anime-fast': 80 } as Record<string, number>,
  load: { x4plus: 500, x4fast: 270, anime: 300, 'anime-fast': 250 } as Record<string, number>,
  tail: { fixedMs: 20, msPerMP: 50 },
  render: { fixedMs: 180, msPerMP: 70 },
  report: { fixedMs: 250, msPerMP: 100 },
};

const EMPTY: Sums = { n: 0, x: 0, y: 0, xx: 0, xy: 0 };

/** `sums` with one more job, the earlier ones weighing `DECAY` times what they did. */
export function addTo(sums: Sums | undefined, x: number, y: number): Sums {
  const s = sums ?? EMPTY;
  return { n: s.n * DECAY + 1, x: s.x * DECAY + x, y: s.y * DECAY + y, xx: s.xx * DECAY + x * x, xy: s.xy * DECAY + x * y };
}

/** The line through the jobs in `sums`, or `guess` while there are none (see the top for the rule). */
export function fit(sums: Sums | undefined, guess: Line): Line {
  // A damaged state (a field edited by hand, cut short) is as good as none.
  if (!sums || !(sums.n > 0) || ![sums.x, sums.y, sums.xx, sums.xy].every(Number.isFinite)) return guess;
  const mx = sums.x / sums.n;
  const my = sums.y / sums.n;
  const vx = sums.xx / sums.n - mx * mx;
  let msPerMP = vx > (MIN_SPREAD * mx) ** 2 && vx > 0 ? Math.max(0, (sums.xy / sums.n - mx * my) / vx) : guess.msPerMP;
  let fixedMs = my - msPerMP * mx;
  // A negative fixed part would promise tiny jobs for nothing: the line goes through the origin instead.
  if (fixedMs < 0) [fixedMs, msPerMP] = [0, mx > 0 ? my / mx : 0];
  return { fixedMs, msPerMP };
}

/** What a finished job teaches: field, x (megapixels), y (ms), in the order they are learned. */
export function observations(sample: JobSample): Array<[field: string, x: number, y: number]> {
  const { shape, device, accelerator: a } = sample;
  const key = `${shape.model}:${device}`;
  const out: Array<[string, number, number]> = [];
  if (a?.loadMs) out.push([`${key}:load`, 0, a.loadMs]);
  if (a?.cold) return out;
  if (a) {
    out.push([`${key}:run`, shape.mp, a.runMs]);
    if (a.previewMs !== undefined && shape.previewMP > 0) out.push([`${key}:preview`, shape.previewMP, a.previewMs]);
    out.push(['tail', shape.outMP, a.tailMs]);
  }
  out.push([shape.report ? 'report' : 'render', shape.outMP, sample.renderMs]);
  return out;
}

/**
 * The costs as they stand: plain arithmetic over a copy of the learned state, no I/O.
 *
 * @example
 * const costs = throughput.costs();
 * costs.accelerator({ model: 'x4fast', mp: 0.065, outMP: 1.05, previewMP: 0, report: false }, true); // ms
 */
export class Costs {
  /**
   * @param preferred the device that ran last, where it is known for a model; else the fastest known one (a GPU
   *   worker takes most of the line), else the CPU's first guesses
   * @param loaded the model the engine holds now, when known
   * @param guesses this machine's first guesses of the CPU run rates, from the probe
   */
  constructor(
    private readonly state: CostState,
    private readonly preferred?: Device,
    readonly loaded?: string,
    private readonly guesses: FirstGuesses = {},
  ) {}

  /** Milliseconds on the accelerator: the model's load when `load`, the early preview, the run. */
  accelerator(shape: JobShape, load: boolean): number {
    const key = `${shape.model}:${this.deviceFor(shape.model)}`;
    const loading = load ? this.at(`${key}:load`, 0) : 0;
    const preview = shape.previewMP > 0 ? this.at(`${key}:preview`, shape.previewMP) : 0;
    return loading + preview + this.at(`${key}:run`, shape.mp);
  }

  /** Milliseconds left on the accelerator after the last tile. */
  tail(shape: JobShape): number {
    return this.at('tail', shape.outMP);
  }

  /** Milliseconds of the thumbnail, the comparison and (when asked) the PDF, once the accelerator is free. */
  render(shape: JobShape): number {
    return this.at(shape.report ? 'report' : 'render', shape.outMP);
  }

  /** The line in use for `field` (see the top): fitted to the jobs learned, or its first guess. */
  line(field: string): Line {
    const sums = this.state[field];
    return fit(typeof sums === 'object' ? sums : undefined, this.guess(field));
  }

  private at(field: string, x: number): number {
    const { fixedMs, msPerMP } = this.line(field);
    return Math.max(0, fixedMs + msPerMP * x);
  }

  /**
   * A field's first guess. A run line's rate is the old file's for its model and device where there is one, else
   * the probe's for a CPU run, else the constant's; a preview's rate is its run's (the same model on a smaller
   * window).
   */
  private guess(field: string): Line {
    const [model, device, kind] = field.split(':');
    if (kind === undefined) return GUESSES[field as 'tail' | 'render' | 'report'] ?? { fixedMs: 0, msPerMP: 0 };
    if (kind === 'load') return { fixedMs: GUESSES.load[model] ?? GUESSES.load.x4plus, msPerMP: 0 };
    if (kind === 'preview') return { fixedMs: GUESSES.previewFixedMs[model] ?? GUESSES.previewFixedMs.x4plus, msPerMP: this.line(`${model}:${device}:run`).msPerMP };
    const guess = GUESSES.run[model] ?? GUESSES.run.x4plus;
    const old = this.state[`${model}:${device}`];
    if (typeof old === 'number' && old > 0) return { ...guess, msPerMP: old };
    const probed = device === 'cpu' ? this.guesses[model] : undefined;
    return probed !== undefined && probed > 0 ? { ...guess, msPerMP: probed } : guess;
  }

  private deviceFor(model: string): Device {
    const known = (['cuda', 'cpu'] as const).filter((d) => typeof this.state[`${model}:${d}:run`] === 'object' || typeof this.state[`${model}:${d}`] === 'number');
    if (this.preferred && known.includes(this.preferred)) return this.preferred;
    if (known.length < 2) return known[0] ?? 'cpu';
    // The one that runs a megapixel soonest.
    const megapixel = (d: Device) => this.at(`${model}:${d}:run`, 1);
    return megapixel('cuda') <= megapixel('cpu') ? 'cuda' : 'cpu';
  }
}

/** The learned costs of this machine, kept in `<data>/state/throughput.json`. */
export class Throughput {
  private readonly file: string;
  private readonly state: CostState;
  private device?: Device;
  /** The model of the last job and when it ended: the engine holds it for `MODEL_KEPT_MS`. */
  private last?: { model: string; at: number };

  /**
   * @param guesses this machine's first guesses of the CPU run rates (`firstGuesses` of the start-up probe)
   */
  constructor(
    dataDir: string,
    private readonly now: () => number = Date.now,
    private readonly guesses: FirstGuesses = {},
  ) {
    this.file = path.join(dataDir, 'state', 'throughput.json');
    try {
      const read = JSON.parse(fs.readFileSync(this.file, 'utf8')) as unknown;
      this.state = read && typeof read === 'object' && !Array.isArray(read) ? (read as CostState) : {};
    } catch {
      this.state = {};
    }
  }

  /** The costs as they stand now. */
  costs(): Costs {
    const loaded = this.last && this.now() - this.last.at < MODEL_KEPT_MS ? this.last.model : undefined;
    return new Costs({ ...this.state }, this.device, loaded, this.guesses);
  }

  /** Learns from a finished job, and saves what it learned. */
  async learn(sample: JobSample): Promise<void> {
    for (const [field, x, y] of observations(sample)) {
      const old = this.state[field];
      this.state[field] = addTo(typeof old === 'object' ? old : undefined, x, y);
    }
    if (sample.accelerator) [this.device, this.last] = [sample.device, { model: sample.shape.model, at: this.now() }];
    await mkdirPrivate(path.dirname(this.file));
    await writeAtomic(this.file, JSON.stringify(this.state));
  }
}

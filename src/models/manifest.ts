/**
 * models/manifest.json: the whitelist of models and the checksums that every prepared file is held to.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EnhanceError } from '../errors.js';

/** A file taken from the source package, with its checksum. */
export interface SourceFile {
  path: string;
  sha256: string;
}

export interface ModelEntry {
  /** The name users pass as `model`, e.g. `x4plus`. */
  name: string;
  description: string;
  /** File name of the ONNX model inside models/. */
  file: string;
  /** SHA-256 of the ONNX file. */
  sha256: string;
  /** Output size / input size. */
  scale: number;
  /** FLOPs (multiply-add = 2) per input pixel. */
  flopsPerPixel: number;
  license: string;
  /** Where the weights came from; absent for a model a user placed by hand. */
  source?: { package: string; param: SourceFile; bin: SourceFile };
  /** The int8 variant (see src/models/quantize.ts), for `precision: int8`; absent where none was prepared. */
  int8?: Int8Entry;
}

/** An int8 (QDQ) variant of a model, calibrated at preparation on the photos listed. */
export interface Int8Entry {
  /** File name of the ONNX model inside models/. */
  file: string;
  /** SHA-256 of the ONNX file. */
  sha256: string;
  /** The calibration photos (paths relative to the project), with their checksums. */
  calibration: SourceFile[];
}

/**
 * The entry that runs for `precision`: the model itself for fp32, its int8 variant (file and checksum) for
 * int8, or an error naming the command that prepares it.
 *
 * @example variantFor(findModel(manifest, 'x4fast'), 'int8').file // 'realesrgan-x4fast-int8.onnx'
 */
export function variantFor(entry: ModelEntry, precision: 'fp32' | 'int8'): ModelEntry {
  if (precision === 'fp32') return entry;
  if (!entry.int8) {
    throw new EnhanceError(`model ${entry.name} has no int8 variant in models/manifest.json: run \`enhancer models\`, or use precision fp32`, 'model');
  }
  return { ...entry, file: entry.int8.file, sha256: entry.int8.sha256 };
}

export interface Manifest {
  models: ModelEntry[];
}

export const MANIFEST_FILE = 'manifest.json';

/** Manifests read, by file, with the size and modification time they were read at. */
const read = new Map<string, { stamp: string; manifest: Manifest }>();

/**
 * The manifest in `dir`, read and parsed once and then again only when the file changes (its size or modification
 * time): before, a job with a preview read and parsed it about 7 times. Treat it as read-only; `prepareModels`,
 * which changes it, works on a copy of its own (`readManifestCopy`).
 */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat) throw new EnhanceError(`no model manifest at ${file}: restore it from git, then run \`enhancer models\``, 'model');
  const stamp = `${stat.size}:${stat.mtimeMs}:${stat.ino}`;
  const known = read.get(file);
  if (known?.stamp === stamp) return known.manifest;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new EnhanceError(`no model manifest at ${file}: restore it from git, then run \`enhancer models\``, 'model');
  }
  const manifest = JSON.parse(text) as Manifest;
  read.set(file, { stamp, manifest });
  return manifest;
}

/** A copy of the manifest that its reader may change (and write back with `writeManifest`). */
export async function readManifestCopy(dir: string): Promise<Manifest> {
  return structuredClone(await readManifest(dir));
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const file = path.join(dir, MANIFEST_FILE);
  // This process's own temporary name: workers preparing into one folder at once must not write one file.
  await fs.writeFile(`${file}.${process.pid}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  await fs.rename(`${file}.${process.pid}.tmp`, file);
}

/** The entry for `name`, or an error that lists the allowed names. */
export function findModel(manifest: Manifest, name: string): ModelEntry {
  const entry = manifest.models.find((m) => m.name === name);
  if (!entry) {
    throw new EnhanceError({ key: 'reason.unknownModel', values: { name, allowed: manifest.models.map((m) => m.name) } }, 'options');
  }
  return entry;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Writing files so that no one ever sees half of one: a hidden temporary name beside the target, flushed to
 * disk, then a rename. Used for every output, the spool, the cache and state files.
 *
 * Files are private (0600) unless a caller says they are for people to read (the outbox, the CLI's results):
 * the data folder holds people's uploads and results, and under the usual umask 022 they were 0644, readable by
 * every user of the machine.
 */
import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Mode of the service's own files: its owner's alone. */
export const PRIVATE_FILE = 0o600;
/** Mode of the service's own folders. */
export const PRIVATE_DIR = 0o700;
/** Mode of files made for people (the outbox, the CLI's results): what the umask leaves. */
export const SHARED_FILE = 0o666;

/**
 * Makes the service's data folder, or makes an existing one private again (0700): everything in it, people's
 * uploads and results, is then out of other users' reach whatever the modes inside. Returns why it could not
 * (a folder of another user), for a warning; the service still runs.
 */
export function privateDataFolder(dir: string): string | undefined {
  fsSync.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  try {
    if ((fsSync.statSync(dir).mode & 0o777) !== PRIVATE_DIR) fsSync.chmodSync(dir, PRIVATE_DIR);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** Makes a folder of the service's own (and its missing parents), private. */
export async function mkdirPrivate(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
}

/** The temporary names `writeAtomic` uses (`.<name>.<8 hex>.tmp`), for clearing what a crash left behind. */
export const TEMP_NAME = /^\..+\.[0-9a-f]{8}\.tmp$/;

/** Room in a 255-byte file name for the rest of a temporary name: the dot, `.<8 hex>` and `.tmp`. */
const TEMP_ROOM = 255 - 14;

/**
 * `text` cut to at most `maxBytes` of UTF-8, on a character boundary: file names are limited in bytes, and a
 * name cut inside a character would not be valid UTF-8.
 *
 * @example
 * cutToBytes('ééé', 4); // 'éé'
 */
export function cutToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > maxBytes) break;
    out += ch;
  }
  return out;
}

/** A hidden temporary name beside `file`; a long name is cut so it still fits. */
export function tempNameFor(file: string): string {
  const base = cutToBytes(path.basename(file), TEMP_ROOM);
  return path.join(path.dirname(file), `.${base}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes a file and flushes it to disk, so a power cut after the rename cannot leave it empty. */
export async function writeSynced(file: string, data: Uint8Array | string, flag = 'w', mode = PRIVATE_FILE): Promise<void> {
  const handle = await fs.open(file, flag, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    // A write through a handle does not say where it wrote ("ENOSPC: no space left on device, write"); the disk
    // module needs the folder to probe for room (disk-space.ts).
    const e = error as NodeJS.ErrnoException;
    if (e && typeof e === 'object' && e.code && !e.path) e.path = file;
    throw error;
  } finally {
    await handle.close();
  }
}

/** Writes `file` whole or not at all; private unless `mode` says otherwise (e.g. `SHARED_FILE`). */
export async function writeAtomic(file: string, data: Uint8Array | string, mode = PRIVATE_FILE): Promise<void> {
  const temp = tempNameFor(file);
  try {
    // 'wx' never follows a link planted under the temporary name.
    await writeSynced(temp, data, 'wx', mode);
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

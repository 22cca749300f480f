/**
 * Writing files so that no one ever sees half of one: a hidden temporary name beside the target, flushed to
 * disk, then a rename. Used for every output, the spool, the cache and state files.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** The temporary names `writeAtomic` uses (`.<name>.<8 hex>.tmp`), for clearing what a crash left behind. */
export const TEMP_NAME = /^\..+\.[0-9a-f]{8}\.tmp$/;

/** Room in a 255-byte file name for the rest of a temporary name: the dot, `.<8 hex>` and `.tmp`. */
const TEMP_ROOM = 255 - 14;

/** A hidden temporary name beside `file`; a long name is cut (on a character boundary) so it still fits. */
export function tempNameFor(file: string): string {
  let base = path.basename(file);
  while (Buffer.byteLength(base) > TEMP_ROOM) base = [...base].slice(0, -1).join('');
  return path.join(path.dirname(file), `.${base}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes a file and flushes it to disk, so a power cut after the rename cannot leave it empty. */
export async function writeSynced(file: string, data: Uint8Array | string, flag = 'w'): Promise<void> {
  const handle = await fs.open(file, flag);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `file` whole or not at all. */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const temp = tempNameFor(file);
  try {
    // 'wx' never follows a link planted under the temporary name.
    await writeSynced(temp, data, 'wx');
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

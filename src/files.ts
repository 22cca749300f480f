/**
 * Writing files so that no one ever sees half of one: a hidden temporary name beside the target, flushed to
 * disk, then a rename. Used for every output, the spool, the cache and state files.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** The temporary names `writeAtomic` uses (`.<name>.<8 hex>.tmp`), for clearing what a crash left behind. */
export const TEMP_NAME = /^\..+\.[0-9a-f]{8}\.tmp$/;

/** A hidden temporary name beside `file`. */
export function tempNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
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

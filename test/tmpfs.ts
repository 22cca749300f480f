/**
 * A small tmpfs for tests of a full disk: mounted on a folder, filled to a given room, enlarged, unmounted.
 * Mounting needs root (CI runs as root); `canMount` says whether this machine allows it, so a test can skip with
 * a clear message instead of failing where it cannot run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Mounts a tmpfs of `size` (as mount says it: `2m`, `512k`) on `dir`, creating it. */
export function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
}

/** Gives the tmpfs on `dir` a new size, keeping what is on it. */
export function resizeTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-o', `remount,size=${size}`, dir], { stdio: 'pipe' });
}

/** Unmounts `dir` if something is mounted there (lazily, so a process still holding a file cannot stop it). */
export function unmount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch {
    // Not mounted.
  }
}

/** Bytes a file may still take on the file system of `dir`. */
export function room(dir: string): number {
  const s = fs.statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Writes a filler file into `dir` so that only about `leave` bytes stay free; returns its path. */
export function fillLeaving(dir: string, leave: number): string {
  const file = path.join(dir, 'filler');
  const size = Math.max(0, room(dir) - leave);
  const fd = fs.openSync(file, 'w');
  try {
    // Written, not truncated to size: tmpfs counts only pages that hold data.
    const chunk = Buffer.alloc(1 << 20, 1);
    for (let done = 0; done < size; ) {
      const n = Math.min(chunk.length, size - done);
      fs.writeSync(fd, chunk, 0, n);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** Whether this process may mount a tmpfs (root, or the capability), found by trying once. */
export const canMount: boolean = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enhancer-mount-probe-'));
  try {
    mountTmpfs(dir, '64k');
    unmount(dir);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();

/** Why tests on a tmpfs were skipped, for the test output. */
export const NO_MOUNT = 'skipped: mounting a tmpfs is not permitted here (these tests need root, as CI has)';

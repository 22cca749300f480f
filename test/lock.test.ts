/**
 * The data folder lock on its own: held by another process it refuses with that process's pid; released, or its
 * holder killed with SIGKILL, it can be taken at once. Both the abstract-namespace form (Linux) and the socket
 * file form (other Unixes, tried here on Linux) are exercised.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../src/paths.js';
import { DataFolderLocked, lockAddress, lockDataFolder } from '../src/service/lock.js';
import { tempDir } from './helpers.js';

let dir: string;
let holder: ChildProcess | undefined;

beforeEach(() => {
  dir = tempDir('enhancer-lock-');
});
afterEach(() => {
  holder?.kill('SIGKILL');
  holder = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Another process that takes the lock (through the built dist/) and says so on stdout. */
async function holdElsewhere(data: string, platform: NodeJS.Platform): Promise<ChildProcess> {
  const module = pathToFileURL(path.join(projectRoot, 'dist', 'src', 'service', 'lock.js')).href;
  const code = `const { lockDataFolder } = await import(${JSON.stringify(module)});
    await lockDataFolder(${JSON.stringify(data)}, ${JSON.stringify(platform)});
    process.stdout.write('held\\n');
    setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  holder = child;
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => text.includes('held') && resolve());
    child.on('exit', (code) => reject(new Error(`the holder exited (${code}) before taking the lock`)));
  });
  return child;
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('data folder lock', () => {
  it('names a folder by its real path', () => {
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    fs.symlinkSync(data, path.join(dir, 'link'));
    expect(lockAddress(fs.realpathSync(data), 'linux')).toMatch(/^\0image-enhancer\/[0-9a-f]{32}$/);
    expect(lockAddress(fs.realpathSync(path.join(dir, 'link')), 'linux')).toBe(lockAddress(fs.realpathSync(data), 'linux'));
    expect(lockAddress('/a', 'linux')).not.toBe(lockAddress('/b', 'linux'));
  });

  it('refuses a second holder in this process, and can be taken again once released', async () => {
    const data = path.join(dir, 'data');
    const lock = await lockDataFolder(data);
    expect(fs.statSync(data).isDirectory()).toBe(true);
    const refused = await lockDataFolder(path.join(dir, '.', 'data')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DataFolderLocked);
    expect((refused as DataFolderLocked).pid).toBe(process.pid);
    expect((refused as Error).message).toBe(
      `another service (pid ${process.pid}) is already using the data folder ${fs.realpathSync(data)}; stop it first or set ENHANCER_DATA to another folder`,
    );
    await lock.release();
    await lock.release(); // twice is fine
    const again = await lockDataFolder(data);
    await again.release();
  });

  for (const platform of ['linux', 'darwin'] as const) {
    it(`${platform === 'linux' ? 'abstract socket' : 'socket file'}: another process's lock names its pid, and dies with it`, async () => {
      const data = path.join(dir, 'data');
      const child = await holdElsewhere(data, platform);
      await expect(lockDataFolder(data, platform)).rejects.toMatchObject({ name: 'DataFolderLocked', pid: child.pid });
      await killed(child);
      // Nothing stale: taken at once after a kill -9 (for the socket file: the file is still there, nobody answers).
      if (platform === 'darwin') expect(fs.existsSync(lockAddress(fs.realpathSync(data), platform))).toBe(true);
      const lock = await lockDataFolder(data, platform);
      await lock.release();
      if (platform === 'darwin') expect(fs.existsSync(lockAddress(fs.realpathSync(data), platform))).toBe(false);
    });
  }
});

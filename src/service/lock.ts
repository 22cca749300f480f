/**
 * One service per data folder. Two services on one folder would watch the same inbox and recover the same spool,
 * running every job twice (three `npm start` in one folder all ran before this lock).
 *
 * The lock is a listening Unix-domain socket whose name is derived from the folder's real path. On Linux it lives
 * in the abstract namespace and on Windows it is a named pipe: the kernel frees both names when the process ends,
 * however it ends, so a crash or `kill -9` never leaves a stale lock behind, and taking the name is atomic, so
 * two services started at the same moment cannot both win. A second service that finds the name taken connects
 * to it and the holder answers with its pid, which goes into the error. Elsewhere (macOS) the socket is a file in
 * the temporary folder; one that nobody answers on is left over from a crash and is removed.
 *
 * Abstract names are per network namespace: containers that share a data volume but not a network namespace do
 * not see each other's lock.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { privateDataFolder } from '../files.js';

/** A data folder held by this process. */
export interface DataLock {
  /** The folder's real path. */
  readonly dir: string;
  /** The socket name that holds it. */
  readonly address: string;
  /** Lets the folder go; resolves once another service can take it. Safe to call twice. */
  release(): Promise<void>;
}

/** The data folder is held by another running service. */
export class DataFolderLocked extends Error {
  constructor(
    readonly dir: string,
    /** The holder's pid, when it answered. */
    readonly pid: number | undefined,
  ) {
    super(
      `another service (${pid === undefined ? 'pid unknown' : `pid ${pid}`}) is already using the data folder ${dir}; ` +
        'stop it first or set ENHANCER_DATA to another folder',
    );
    this.name = 'DataFolderLocked';
  }
}

/** How long a holder has to answer with its pid; its event loop is free (the model runs on a worker thread). */
const ASK_TIMEOUT_MS = 5_000;

/**
 * The socket name for a data folder's real path on a platform.
 *
 * @example
 * lockAddress('/srv/enhancer/data', 'linux'); // '\0image-enhancer/5f1c…' (abstract namespace)
 */
export function lockAddress(realDir: string, platform: NodeJS.Platform = process.platform): string {
  const id = createHash('sha256').update(realDir).digest('hex').slice(0, 32);
  if (platform === 'linux') return `\0image-enhancer/${id}`;
  if (platform === 'win32') return `\\\\?\\pipe\\image-enhancer-${id}`;
  // A file path: short, since socket paths are limited to about 100 bytes.
  return path.join(os.tmpdir(), `image-enhancer-${id}.sock`);
}

/**
 * Takes the data folder (creating it if missing) for this process, or throws {@link DataFolderLocked} naming
 * the folder and the holder's pid. The lock does not keep the process alive and ends with it.
 *
 * @example
 * const lock = await lockDataFolder(config.data);
 * try {
 *   // recover the spool, run the service
 * } finally {
 *   await lock.release();
 * }
 */
export async function lockDataFolder(dir: string, platform: NodeJS.Platform = process.platform): Promise<DataLock> {
  privateDataFolder(dir);
  const real = fs.realpathSync(dir);
  const address = lockAddress(real, platform);
  const isFile = platform !== 'linux' && platform !== 'win32';
  // Three tries: a holder that is closing frees its name between our listen and our connect.
  for (let attempt = 1; ; attempt++) {
    const server = await listen(address);
    if (server) return held(server, real, address);
    const holder = await askHolder(address);
    if (holder !== 'gone') throw new DataFolderLocked(real, holder);
    if (attempt === 3) throw new DataFolderLocked(real, undefined);
    // Nobody answers on a socket file: left over from a crash.
    if (isFile) fs.rmSync(address, { force: true });
  }
}

/** Listens on the name, or resolves undefined if it is taken. */
function listen(address: string): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    server.listen(address, () => resolve(server));
  });
}

function held(server: net.Server, dir: string, address: string): DataLock {
  const answer = `${JSON.stringify({ pid: process.pid, dir })}\n`;
  server.on('connection', (socket) => {
    socket.on('error', () => {}); // an asker that hangs up early is no concern of ours
    socket.unref();
    socket.end(answer);
  });
  server.on('error', () => {}); // nothing to do about an accept error; the name stays held
  server.unref();
  let released: Promise<void> | undefined;
  return {
    dir,
    address,
    release: () =>
      // close() frees the name at once (and removes a socket file); its callback waits for askers being answered.
      (released ??= new Promise<void>((resolve) => server.close(() => resolve()))),
  };
}

/** The holder's pid (undefined if it did not say), or 'gone' if nobody listens on the name. */
function askHolder(address: string): Promise<number | undefined | 'gone'> {
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(address);
    const timer = setTimeout(() => socket.destroy(), ASK_TIMEOUT_MS);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'gone' : undefined);
    });
    socket.on('close', (hadError) => {
      clearTimeout(timer);
      if (hadError) return; // answered by the error handler
      try {
        const pid = (JSON.parse(text) as { pid?: unknown }).pid;
        resolve(Number.isInteger(pid) ? (pid as number) : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}

/**
 * Downloading a file a person sent, by the address the Bot API gives for it (`getFile`'s `file_path`), never by
 * one a person typed. The files plugin (@grammyjs/files) was tried first: it fetches with `https.get`, so it cannot
 * reach a plain-http Bot API server (a self-hosted one on the same machine, the tests' fake), and it writes to a
 * temporary file without a size limit. Here the bytes are streamed into memory and the download stops at the limit,
 * or when nothing arrives for `stallMs` (without that, a stalled connection held the person's image for good).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Api } from 'grammy';
import { checkFileSize, EnhanceError } from '../../src/index.js';

export interface DownloadOptions {
  api: Api;
  token: string;
  apiRoot: string;
  /** Larger files are refused, from the size Telegram reports and again while reading. */
  maxBytes: number;
  /** Given up when getFile or the download sends nothing for this long. */
  stallMs: number;
  /**
   * The Bot API server is a self-hosted one run with `--local` (`telegram.localServer`): only then is an absolute
   * `file_path` a file on this machine's disk to read. Any other server giving one is refused, so a server (or
   * whoever answers in its place) cannot make the bot read a file of its choosing.
   */
  localServer: boolean;
}

/**
 * The bytes of the file `fileId`.
 *
 * @example
 * const bytes = await downloadFile('AgACAgIAAx…', { api: bot.api, token, apiRoot, maxBytes: 20e6, stallMs: 30_000, localServer: false });
 */
export async function downloadFile(fileId: string, options: DownloadOptions): Promise<Buffer> {
  const stall = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(), options.stallMs);
  };
  alive();
  try {
    return await download(fileId, options, stall.signal, alive);
  } catch (error) {
    if (stall.signal.aborted) throw new EnhanceError({ key: 'telegram.stalled', values: { seconds: options.stallMs / 1000 } }, 'input');
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function download(fileId: string, options: DownloadOptions, signal: AbortSignal, alive: () => void): Promise<Buffer> {
  // grammY's types take the signal of the abort-controller package; Node's own is the same at run time.
  const file = await options.api.getFile(fileId, signal as Parameters<Api['getFile']>[1]);
  alive();
  if (file.file_size !== undefined) checkFileSize(file.file_size, options.maxBytes);
  if (!file.file_path) throw new EnhanceError({ key: 'telegram.noFilePath' }, 'input');
  if (path.isAbsolute(file.file_path)) {
    if (!options.localServer) {
      throw new EnhanceError({ key: 'telegram.localPath' }, 'input');
    }
    const stats = await fs.stat(file.file_path);
    checkFileSize(stats.size, options.maxBytes);
    return fs.readFile(file.file_path);
  }
  const url = `${options.apiRoot}/file/bot${options.token}/${file.file_path}`;
  const response = await fetch(url, { signal });
  // The status only: the URL holds the token.
  if (!response.ok || !response.body) throw new Error(`downloading the file failed (HTTP ${response.status})`);
  const declared = Number(response.headers.get('content-length'));
  if (declared) checkFileSize(declared, options.maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    alive();
    total += chunk.length;
    checkFileSize(total, options.maxBytes);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

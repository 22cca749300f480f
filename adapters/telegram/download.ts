/**
 * Downloading a file a person sent, by the address the Bot API gives for it (`getFile`'s `file_path`), never by
 * one a person typed. The files plugin (@grammyjs/files) was tried first: it fetches with `https.get`, so it cannot
 * reach a plain-http Bot API server (a self-hosted one on the same machine, the tests' fake), and it writes to a
 * temporary file without a size limit. Here the bytes are streamed into memory and the download stops at the limit.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Api } from 'grammy';
import { EnhanceError } from '../../src/errors.js';
import { checkFileSize } from '../../src/imaging/input.js';

export interface DownloadOptions {
  api: Api;
  token: string;
  apiRoot: string;
  /** Larger files are refused, from the size Telegram reports and again while reading. */
  maxBytes: number;
}

/**
 * The bytes of the file `fileId`. A self-hosted server run with `--local` answers with an absolute path on its
 * own disk, which is read directly.
 *
 * @example
 * const bytes = await downloadFile('AgACAgIAAx…', { api: bot.api, token, apiRoot, maxBytes: 20e6 });
 */
export async function downloadFile(fileId: string, options: DownloadOptions): Promise<Buffer> {
  const file = await options.api.getFile(fileId);
  if (file.file_size !== undefined) checkFileSize(file.file_size, options.maxBytes);
  if (!file.file_path) throw new EnhanceError('Telegram did not give an address for the file (too large for this server?)', 'input');
  if (path.isAbsolute(file.file_path)) {
    const stats = await fs.stat(file.file_path);
    checkFileSize(stats.size, options.maxBytes);
    return fs.readFile(file.file_path);
  }
  const url = `${options.apiRoot}/file/bot${options.token}/${file.file_path}`;
  const response = await fetch(url);
  // The status only: the URL holds the token.
  if (!response.ok || !response.body) throw new Error(`downloading the file failed (HTTP ${response.status})`);
  const declared = Number(response.headers.get('content-length'));
  if (declared) checkFileSize(declared, options.maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.length;
    checkFileSize(total, options.maxBytes);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

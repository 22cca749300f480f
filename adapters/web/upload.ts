/**
 * Reading an upload's files while they stream: each file's bytes are counted as they arrive and its header is
 * checked as soon as the first 64 KiB are in, so a file over the byte limit, a non-image or an image over the
 * pixel limit is refused without being held (the rest of it is read and dropped, never kept).
 */
import type { MultipartFile } from '@fastify/multipart';
import { EnhanceError, probeImage, reasonOf, reasonTextOf, type Text } from '../../src/index.js';

/** One file of an upload: its bytes, or the one-line reason it was refused (said in the uploader's language). */
export type UploadedFile = { name: string; bytes: Buffer } | { name: string; reason: Text };

/** Enough of any accepted format for its header: PNG's IHDR, JPEG's SOF after EXIF, WebP's VP8 header. */
const HEADER_BYTES = 64 * 1024;

/** Refusals the header alone settles; anything else a partial file says waits for the whole file. */
const SETTLED_BY_HEADER = /^(the image is |not an image|.* input is not accepted|animated or multi-page)/;

/**
 * Reads one streamed file. `maxBytes` must also be the multipart `fileSize` limit, so busboy stops handing over
 * bytes past it and marks the stream truncated.
 */
export async function readUpload(part: MultipartFile, maxBytes: number, maxPixels: number): Promise<UploadedFile> {
  const name = part.filename || 'upload';
  const chunks: Buffer[] = [];
  let size = 0;
  let refused: Text | undefined;
  let checked = false;
  for await (const chunk of part.file as AsyncIterable<Buffer>) {
    if (refused) continue; // read and dropped, so the request goes on to the next file
    chunks.push(chunk);
    size += chunk.length;
    if (!checked && size >= HEADER_BYTES) {
      checked = true;
      refused = await headerRefusal(Buffer.concat(chunks), maxPixels);
      if (refused) chunks.length = 0;
    }
  }
  if (part.file.truncated) return { name, reason: { key: 'web.overLimit', values: { limit: maxBytes } } };
  if (refused) return { name, reason: refused };
  if (size === 0) return { name, reason: { key: 'reason.empty' } };
  return { name, bytes: Buffer.concat(chunks, size) };
}

async function headerRefusal(head: Buffer, maxPixels: number): Promise<Text | undefined> {
  try {
    await probeImage(head, maxPixels);
    return undefined;
  } catch (error) {
    // Told apart by the English line, which every reason also has.
    return error instanceof EnhanceError && SETTLED_BY_HEADER.test(reasonOf(error)) ? reasonTextOf(error) : undefined;
  }
}

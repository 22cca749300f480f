/**
 * The photo's own metadata, carried from the input to the result: its EXIF (orientation set to 1 once applied,
 * GPS dropped unless kept, the old thumbnail dropped), its ICC profile and its density. The result is first a PNG
 * whose chunks are written here (`withMetadata`), because sharp's pipeline starts from raw samples, which carry
 * none, and sharp's own `withIccProfile` would convert the colours instead of only naming their space.
 */
import { crc32, deflateSync } from 'node:zlib';
import type { Metadata } from 'sharp';

/** What of the input's metadata the result carries. */
export interface KeptMetadata {
  /** The input's EXIF as sharp reads it (edited for the result by {@link editExif}); absent when it had none. */
  exif?: Buffer;
  /** An RGB ICC profile; the decoded samples are in its space, not converted. Absent: sRGB. */
  icc?: Buffer;
  /** Dots per inch of the input, when it said. */
  density?: number;
}

/**
 * A profile the samples can stay in: an RGB one. A CMYK or grey profile is converted to sRGB on decoding, as before,
 * and not kept: the model reads RGB.
 */
export function isRgbProfile(icc: Buffer | undefined): icc is Buffer {
  return icc !== undefined && icc.length >= 132 && icc.toString('latin1', 16, 20) === 'RGB ';
}

/** What the result keeps of `meta` (sharp's reading of the input's header). */
export function keptMetadata(meta: Metadata): KeptMetadata {
  const kept: KeptMetadata = {};
  if (meta.exif) kept.exif = meta.exif;
  if (isRgbProfile(meta.icc)) kept.icc = meta.icc;
  // 72 is what most encoders write when they know nothing; a JPEG without density data reads as 72 too.
  if (meta.density !== undefined && meta.density > 0) kept.density = meta.density;
  return kept;
}

const ORIENTATION = 0x0112;
const X_RESOLUTION = 0x011a;
const Y_RESOLUTION = 0x011b;
const EXIF_IFD = 0x8769;
const GPS_IFD = 0x8825;
const PIXEL_X = 0xa002;
const PIXEL_Y = 0xa003;
/** Bytes per value of each TIFF field type (1 BYTE … 12 DOUBLE). */
const TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8];

/**
 * `exif` (libvips' blob, `Exif\0\0` then TIFF) edited for the result: orientation 1 (the rotation is applied to
 * the pixels), the GPS folder removed and its bytes zeroed unless `keepGps`, the thumbnail (IFD1, a picture of
 * the input) cut off, the pixel dimensions (in the Exif folder) set to the result's, and the resolution scaled
 * as the density is (a reader takes the EXIF's over the file's own). Undefined when the block
 * cannot be read: a damaged EXIF is dropped rather than copied.
 */
export function editExif(exif: Buffer, keepGps: boolean, size: { width: number; height: number; densityScale: number }): Buffer | undefined {
  const start = exif.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0;
  const tiff = Buffer.from(exif.subarray(start));
  try {
    const little = tiff.toString('latin1', 0, 2) === 'II';
    if (!little && tiff.toString('latin1', 0, 2) !== 'MM') return undefined;
    const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
    const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
    const w16 = (at: number, v: number) => (little ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at));
    const w32 = (at: number, v: number) => (little ? tiff.writeUInt32LE(v, at) : tiff.writeUInt32BE(v, at));
    const ifd0 = u32(4);
    let count = u16(ifd0);
    for (let i = 0; i < count; i++) {
      const entry = ifd0 + 2 + 12 * i;
      const tag = u16(entry);
      if (tag === ORIENTATION) w16(entry + 8, 1);
      if ((tag === X_RESOLUTION || tag === Y_RESOLUTION) && u16(entry + 2) === 5) {
        const at = u32(entry + 8);
        const value = (u32(at) / (u32(at + 4) || 1)) * size.densityScale;
        w32(at, Math.round(value * 100));
        w32(at + 4, 100);
      }
      if (tag === EXIF_IFD) {
        const sub = u32(entry + 8);
        for (let k = 0; k < u16(sub); k++) {
          const field = sub + 2 + 12 * k;
          const side = u16(field) === PIXEL_X ? size.width : u16(field) === PIXEL_Y ? size.height : undefined;
          if (side === undefined) continue;
          if (u16(field + 2) === 3 && side <= 0xffff) w16(field + 8, side);
          else {
            w16(field + 2, 4);
            w32(field + 8, side);
          }
        }
      }
      if (tag === GPS_IFD && !keepGps) {
        zeroIfd(tiff, u32(entry + 8), u16, u32);
        // The entry out, the ones after it up one place; the count down by one.
        tiff.copy(tiff, entry, entry + 12, ifd0 + 2 + 12 * count + 4);
        count -= 1;
        w16(ifd0, count);
        i -= 1;
      }
    }
    // No next IFD: IFD1 holds the input's thumbnail, a small picture of the photo before it was enhanced.
    w32(ifd0 + 2 + 12 * count, 0);
    return tiff;
  } catch {
    return undefined;
  }
}

/** Zeroes an IFD and every value it points to, so no trace of it stays in the file. */
function zeroIfd(tiff: Buffer, at: number, u16: (at: number) => number, u32: (at: number) => number): void {
  const count = u16(at);
  for (let i = 0; i < count; i++) {
    const entry = at + 2 + 12 * i;
    const bytes = (TYPE_BYTES[u16(entry + 2)] ?? 1) * u32(entry + 4);
    if (bytes > 4) tiff.fill(0, u32(entry + 8), u32(entry + 8) + bytes);
  }
  tiff.fill(0, at, at + 2 + 12 * count + 4);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(Buffer.from(type, 'latin1'))) >>> 0);
  return Buffer.concat([head, data, crc]);
}

/** Chunks sharp may write that say the same things as ours. */
const REPLACED = new Set(['iCCP', 'sRGB', 'gAMA', 'cHRM', 'pHYs', 'eXIf']);

export interface WriteMetadata {
  /** The result's size, for the EXIF's pixel dimensions. */
  width: number;
  height: number;
  /** Output pixels per input pixel: the density grows by it, so the print size stays (docs/doors.md#metadata). */
  densityScale: number;
  keepGps: boolean;
}

/**
 * `png` with `kept` written into it: the ICC profile (iCCP: the samples are in its space), the density (pHYs)
 * and the EXIF (eXIf, edited by {@link editExif}). Chunks sharp wrote for the same things go; the pixels are not
 * touched.
 */
export function withMetadata(png: Buffer, kept: KeptMetadata, how: WriteMetadata): Buffer {
  const exif = kept.exif && editExif(kept.exif, how.keepGps, how);
  const parts: Buffer[] = [png.subarray(0, 8)];
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const end = at + 12 + length;
    if (!REPLACED.has(type)) parts.push(png.subarray(at, end));
    if (type === 'IHDR') {
      if (kept.icc) parts.push(chunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(kept.icc)])));
      if (kept.density) {
        const data = Buffer.alloc(9);
        const perMetre = Math.round((kept.density * how.densityScale) / 0.0254);
        data.writeUInt32BE(perMetre, 0);
        data.writeUInt32BE(perMetre, 4);
        data[8] = 1;
        parts.push(chunk('pHYs', data));
      }
      if (exif) parts.push(chunk('eXIf', exif));
    }
    at = end;
  }
  return Buffer.concat(parts);
}

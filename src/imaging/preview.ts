/**
 * The quick preview: a small JPEG of the enhanced image that chats and file browsers show at once.
 */
import sharp from 'sharp';

/** Longest side of a preview, in pixels. */
export const PREVIEW_MAX = 512;

/** Background that transparent parts are laid on, since JPEG has no alpha. */
export const FLATTEN_BACKGROUND = '#ffffff';

/**
 * A JPEG whose longest side is at most `PREVIEW_MAX` (never enlarged), 8-bit sRGB, transparency on white.
 *
 * @example
 * const jpg = await makePreview(result.png); // 1024x768 PNG → 512x384 JPEG
 */
export async function makePreview(png: Uint8Array): Promise<Buffer> {
  return sharp(png, { limitInputPixels: false })
    .resize(PREVIEW_MAX, PREVIEW_MAX, { fit: 'inside', withoutEnlargement: true, kernel: 'lanczos3' })
    .flatten({ background: FLATTEN_BACKGROUND })
    .toColourspace('srgb')
    .jpeg({ quality: 82 })
    .toBuffer();
}

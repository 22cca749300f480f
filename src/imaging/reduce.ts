/**
 * Reduces a decoded image before the model runs, when a small output is asked for (see src/engine/sizing.ts):
 * the colour and the alpha with the same lanczos3 filter the result is reduced with.
 */
import sharp from 'sharp';
import type { DecodedImage } from './input.js';

async function resized(samples: Uint8Array | Uint16Array, from: DecodedImage, channels: 1 | 3, width: number, height: number) {
  const data = await sharp(samples, { raw: { width: from.width, height: from.height, channels }, limitInputPixels: false })
    .resize(width, height, { kernel: 'lanczos3', fit: 'fill' })
    // Without it sharp hands back three channels for one, and 8 bits for 16.
    .toColourspace(channels === 1 ? (from.bits === 16 ? 'grey16' : 'b-w') : from.bits === 16 ? 'rgb16' : 'srgb')
    .raw({ depth: from.bits === 16 ? 'ushort' : 'uchar' })
    .toBuffer();
  return from.bits === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** `image` at `width` x `height`; its metadata and kind unchanged. */
export async function reduceImage(image: DecodedImage, width: number, height: number): Promise<DecodedImage> {
  const [rgb, alpha] = await Promise.all([resized(image.rgb, image, 3, width, height), image.alpha ? resized(image.alpha, image, 1, width, height) : null]);
  return { ...image, width, height, rgb, alpha };
}

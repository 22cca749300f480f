/**
 * TEMPORARY stand-in for the scene reader another branch writes (photo or drawing, from the pixels); the lead
 * replaces this file with the real one at merge. Same API; a plain measure: drawings are made of few flat colours,
 * so on a copy at most 128 pixels a side (nearest neighbour, no new colours), the share of pixels whose exact
 * colour is one of the 32 most common. The SVG drawings of test/helpers.ts: 0.955-0.996 (64x48 to 640x480); the
 * photos of test/photos: 0.06-0.79 (rocket-sky's smooth sky the highest, camera.png's grey 0.68).
 */
import sharp from 'sharp';

export type Scene = 'photo' | 'drawing';

export interface SceneReading {
  scene: Scene;
  /** 0.5 (a guess) to 1 (sure). */
  confidence: number;
  /** What the reading rests on, by name. */
  measures: Record<string, number>;
  ms: number;
}

/** Above this share in the 32 commonest colours, a drawing. */
const FLAT_SHARE = 0.9;

/** Reads whether `input` (encoded image bytes) is a photo or a drawing. */
export async function readScene(input: Uint8Array): Promise<SceneReading> {
  const t = performance.now();
  const { data, info } = await sharp(input)
    .rotate()
    .resize(128, 128, { fit: 'inside', withoutEnlargement: true, kernel: 'nearest' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const counts = new Map<number, number>();
  const pixels = info.width * info.height;
  for (let i = 0; i < pixels; i++) {
    const o = i * info.channels;
    const key = info.channels >= 3 ? (data[o] << 16) | (data[o + 1] << 8) | data[o + 2] : data[o];
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const top = [...counts.values()].sort((a, b) => b - a).slice(0, 32);
  const flat = top.reduce((a, b) => a + b, 0) / Math.max(1, pixels);
  const scene: Scene = flat > FLAT_SHARE ? 'drawing' : 'photo';
  return { scene, confidence: Math.min(1, 0.5 + Math.abs(flat - FLAT_SHARE)), measures: { flatShare: flat, colours: counts.size }, ms: performance.now() - t };
}

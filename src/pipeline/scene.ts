/**
 * Tells a photo from a drawing, for the `auto` model (issue 26): photos go to x4plus or x4fast, drawings (anime,
 * illustration, logo, line art, comic, pixel art, flat UI) to anime or anime-fast.
 *
 * How: a copy at most 384 px on its long side (sharp shrinks a JPEG while decoding it), its luma, two shares of its
 * pixels (`even`: exactly one value across and down, the fills a drawing is made of; `texture`: a moderate slope,
 * the grain, fur and soft shading of a photo) and a logistic formula of the two whose weights are written below with
 * how they were found. On test/scenes/ (26 photos, 22 drawings) it reads 47 of 48 right: every photo, and every
 * drawing but a scanned pencil drawing on grainy paper; the same with every image re-encoded as JPEG q90 or q60.
 * On images it was not fitted on, docs/models.md#telling-a-photo-from-a-drawing says what it missed.
 *
 * Cost: a 12 MP (4000x3000) JPEG, 3.4 MB with grain, reads in 45 ms (median of 7; 34-62 ms), 20 ms without grain;
 * 12 MP of decoded RGB through {@link readSceneOf} in 25 ms; a full decode of the same JPEG alone takes 84 ms. All
 * on this 2-core machine at a load average of 12 (2026-12-06). The budget is 150 ms.
 */
import sharp from 'sharp';

export type Scene = 'photo' | 'drawing';

export interface SceneReading {
  scene: Scene;
  /** The formula's probability of `scene`: 0.5 is a coin toss, 1 is sure. */
  confidence: number;
  /** The measures (see {@link measureScene}), each a share of the pixels 0..1, and `drawing`: the formula's p. */
  measures: Record<string, number>;
  /** Time taken, decoding included. */
  ms: number;
}

/** The long side the measures are taken at. */
export const SCENE_SIDE = 384;

/**
 * Reads an image file's bytes (any format sharp reads; orientation applied; alpha flattened on white).
 *
 * @example
 * const { scene, confidence } = await readScene(await readFile('test/scenes/human-menu.png')); // 'drawing', 0.918
 */
export async function readScene(input: Uint8Array): Promise<SceneReading> {
  const t0 = performance.now();
  const { data, info } = await sharp(input, { failOn: 'none' })
    .rotate()
    .flatten({ background: '#ffffff' })
    .resize(SCENE_SIDE, SCENE_SIDE, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return decide(measureScene(data, info.width, info.height, info.channels), t0);
}

/**
 * The same reading from pixels already decoded (interleaved 8-bit RGB or RGBA, alpha ignored), so the pipeline can
 * reuse its decode. Downscaled here as {@link readScene} does.
 */
export async function readSceneOf(pixels: Uint8Array, width: number, height: number, channels: 3 | 4 = 3): Promise<SceneReading> {
  const t0 = performance.now();
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`readSceneOf: ${pixels.length} bytes are not ${width}x${height}x${channels}`);
  }
  const { data, info } = await sharp(pixels, { raw: { width, height, channels } })
    .resize(SCENE_SIDE, SCENE_SIDE, { fit: 'inside', withoutEnlargement: true })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return decide(measureScene(data, info.width, info.height, info.channels), t0);
}

/**
 * The measures, from interleaved 8-bit pixels (the first three channels read as RGB), on luma (Rec. 601), each a
 * share 0..1 of the pixels (3 px from the border left out):
 * - `flat`: no curve: the Laplacian (4 neighbours) is at most 1 of 255. A fill, or a smooth ramp such as a sky;
 *   reported, not in the formula (see below).
 * - `even`: no slope either: the neighbours either side differ by less than 0.5, across and down. A fill of one
 *   colour, which a drawing has plenty of; a photo's sky still slopes, and sensor noise survives the downscale.
 * - `texture`: a moderate slope, 8 to 39 of 255 between the neighbours either side: fur, grass, skin, a photo's soft
 *   shading. A drawing has little between its fills and its hard edges.
 * Luma, not each of R, G and B: JPEG keeps half the colour resolution (4:2:0), which smears every coloured edge;
 * with the largest of R, G and B a lossless anime sprite read flat 0.43 and the same sprite at JPEG q90 0.35.
 */
export function measureScene(data: Uint8Array, width: number, height: number, channels: number): Record<string, number> {
  const luma = new Float32Array(width * height);
  for (let p = 0, i = 0; p < luma.length; p++, i += channels) luma[p] = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
  let counted = 0, flat = 0, even = 0, texture = 0;
  for (let y = 3; y < height - 3; y++) {
    for (let x = 3; x < width - 3; x++) {
      const p = y * width + x;
      const left = luma[p - 1], right = luma[p + 1], up = luma[p - width], down = luma[p + width];
      const slope = Math.max(Math.abs(right - left), Math.abs(down - up));
      counted++;
      if (Math.abs(4 * luma[p] - left - right - up - down) <= 1) flat++;
      if (slope < 0.5) even++;
      else if (slope >= 8 && slope < 40) texture++;
    }
  }
  if (counted === 0) return { flat: 0, even: 0, texture: 0 };
  return { flat: flat / counted, even: even / counted, texture: texture / counted };
}

/**
 * The formula: p(drawing) = 1 / (1 + e^-(6.2 even - 3.9 texture - 1.1)). Fitted by logistic regression (L2 0.003,
 * gradient descent) on test/scenes/ with each image also re-encoded as JPEG q90 and q60 (144 readings), then rounded.
 * Leaving out each source with its re-encodes in turn, the fit on the rest reads 141 of 144 right at p 0.5 (all
 * three wrong are the scanned pencil drawing of hands, whose paper grain reads as a photo's texture, at p 0.19) and
 * 139 at 0.55 (two anime sprites at JPEG q60 fall to 0.54 and 0.55). Tried and left out:
 * `flat` (Laplacian at most 1, as third measure: the same 141; alone with texture 135, as a sky is flat), colour
 * counts (a grey photo has few colours, a JPEG drawing many), and the largest of R, G, B instead of luma (its best
 * pair read 130 of 144 even on the data it was fitted to).
 */
const EVEN_WEIGHT = 6.2;
const TEXTURE_WEIGHT = -3.9;
const BIAS = -1.1;
/**
 * Drawing from p 0.5. On the set, and with every image re-encoded as JPEG q90 and q60, the photos read at most 0.39
 * (the rocket at q60; its evening sky and brick at q60 0.38, the retina 0.36) and the drawings, hands aside, at least
 * 0.56 (the anime sprites at q60). The middle of that gap is 0.475: 0.5 leans towards photo, the safer guess when
 * unsure, and still leaves the q60 sprites room (at 0.55 they kept 0.01). Why photo is the safer guess: measured on
 * the set's images at 256 px, enlarged 4x from a quarter of that with x4fast and anime-fast, PSNR does not tell the
 * families apart (photos 22.9 and 23.6 dB, drawings 26.7 and 26.6 dB), so it rests on what one sees: the anime
 * models paint a photo's skin, paving and foliage into flat areas, while x4plus leaves a drawing a drawing with
 * slightly busier lines (crops of bg-uni, cops and the sylvie sprite through all four models, by eye).
 */
const DRAWING_FROM = 0.5;

function decide(measures: Record<string, number>, t0: number): SceneReading {
  const z = EVEN_WEIGHT * measures.even + TEXTURE_WEIGHT * measures.texture + BIAS;
  const drawing = 1 / (1 + Math.exp(-z));
  const scene: Scene = drawing >= DRAWING_FROM ? 'drawing' : 'photo';
  const confidence = scene === 'drawing' ? drawing : 1 - drawing;
  return { scene, confidence: Math.round(confidence * 1000) / 1000, measures: { ...measures, drawing }, ms: performance.now() - t0 };
}

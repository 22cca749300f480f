/**
 * The float64 reference the model tests compare the converted ONNX against: CHW tensors and plain loops, so a
 * layer's meaning is written out once, without the code under test. conversion.test.ts runs it on synthetic
 * layers, anime.test.ts on the real ncnn weights.
 */

/** CHW float64. */
export interface Tensor {
  c: number;
  h: number;
  w: number;
  data: Float64Array;
}

export const tensor = (c: number, h: number, w: number): Tensor => ({ c, h, w, data: new Float64Array(c * h * w) });
export const idx = (t: Tensor, c: number, y: number, x: number) => (c * t.h + y) * t.w + x;
export const map = (t: Tensor, f: (v: number, i: number) => number): Tensor => ({ ...t, data: t.data.map(f) });

/** PReLU: one slope per channel, or one for all (ncnn's single-slope form). */
export function prelu(x: Tensor, slopes: ArrayLike<number>): Tensor {
  return map(x, (v, i) => (v >= 0 ? v : v * slopes[slopes.length === 1 ? 0 : Math.floor(i / (x.h * x.w))]));
}

/** Nearest-neighbour enlargement by `s`. */
export function upscaleNearest(x: Tensor, s: number): Tensor {
  const out = tensor(x.c, x.h * s, x.w * s);
  for (let c = 0; c < x.c; c++) {
    for (let y = 0; y < out.h; y++) {
      for (let xx = 0; xx < out.w; xx++) {
        out.data[idx(out, c, y, xx)] = x.data[idx(x, c, Math.floor(y / s), Math.floor(xx / s))];
      }
    }
  }
  return out;
}

/** PyTorch pixel_shuffle: out[c][y*r+i][x*r+j] = in[c*r*r + i*r + j][y][x]. */
export function pixelShuffle(x: Tensor, r: number): Tensor {
  const out = tensor(x.c / (r * r), x.h * r, x.w * r);
  for (let c = 0; c < out.c; c++) {
    for (let y = 0; y < x.h; y++) {
      for (let xx = 0; xx < x.w; xx++) {
        for (let i = 0; i < r; i++) {
          for (let j = 0; j < r; j++) {
            out.data[idx(out, c, y * r + i, xx * r + j)] = x.data[idx(x, c * r * r + i * r + j, y, xx)];
          }
        }
      }
    }
  }
  return out;
}

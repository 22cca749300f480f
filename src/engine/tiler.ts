/**
 * Tiling: which windows of the input the model sees, and how their outputs are blended back together.
 *
 * Windows all have one shape (so the runtime reuses its memory plan) and lie inside the image, spread evenly so
 * that neighbours overlap by at least twice the overlap margin. A window at the image edge therefore sees the
 * real border exactly as a whole-image run does, instead of padding that the whole-image run never saw.
 * Overlaps are cross-faded with linear weights normalised to sum to exactly one, so the seams of hard crops
 * (RRDBNet's receptive field is large) do not appear.
 */

/** Window positions along one axis. */
export interface AxisPlan {
  /** Window length in input pixels (the same for every window). */
  size: number;
  /** Start of each window, ascending. */
  starts: number[];
}

export interface TilePlan {
  x: AxisPlan;
  y: AxisPlan;
  /** Model runs needed. */
  count: number;
}

/**
 * Plans windows along an axis of `length` pixels: `tile` is what each window contributes (0 = everything),
 * `overlap` the context added on each inner side.
 */
export function planAxis(length: number, tile: number, overlap: number): AxisPlan {
  if (tile <= 0 || length <= tile) return { size: length, starts: [0] };
  const n = Math.ceil(length / tile);
  const size = Math.min(length, Math.ceil((length + 2 * overlap * (n - 1)) / n));
  const stride = (length - size) / (n - 1);
  const starts = Array.from({ length: n }, (_, i) => Math.round(i * stride));
  return { size, starts };
}

export function planTiles(width: number, height: number, tile: number, overlap: number): TilePlan {
  const x = planAxis(width, tile, overlap);
  const y = planAxis(height, tile, overlap);
  return { x, y, count: x.starts.length * y.starts.length };
}

/**
 * Blend weights along one axis, one array per window at output resolution (`scale` output pixels per input
 * pixel): each window ramps linearly up from its edges across the part it shares with each neighbour, and
 * the weights are then divided by their sum at every position. Because the 2-D weight is the product of the
 * two axes', the products of these normalised weights also sum to exactly one, even where three windows
 * overlap (small tiles with a large overlap).
 */
export function blendWeights(plan: AxisPlan, scale: number): Float32Array[] {
  const size = plan.size * scale;
  const { starts } = plan;
  const raw = starts.map((start, i) => {
    const w = new Float32Array(size).fill(1);
    if (i > 0) {
      const shared = (starts[i - 1] + plan.size - start) * scale;
      for (let u = 0; u < shared; u++) w[u] = (u + 0.5) / shared;
    }
    if (i < starts.length - 1) {
      const shared = (start + plan.size - starts[i + 1]) * scale;
      for (let u = 0; u < shared; u++) w[size - 1 - u] = Math.min(w[size - 1 - u], (u + 0.5) / shared);
    }
    return w;
  });
  const total = new Float64Array((starts.at(-1)! + plan.size) * scale);
  raw.forEach((w, i) => w.forEach((v, u) => (total[starts[i] * scale + u] += v)));
  raw.forEach((w, i) => w.forEach((v, u) => (w[u] = v / total[starts[i] * scale + u])));
  return raw;
}

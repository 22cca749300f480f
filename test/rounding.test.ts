/**
 * Rounding weights against their inputs (src/models/rounding.ts): never worse than rounding to nearest on the
 * inputs it was measured on, the same as nearest where inputs are uncorrelated, and the Gram matrix the same as
 * summing the products by hand.
 */
import { describe, expect, it } from 'vitest';
import { choleskyUpper, GramAccumulator, roundAgainst, type Gram } from '../src/models/rounding.js';

/** A deterministic pseudo-random sequence in [-1, 1). */
function noise(seed: number) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1;
}

/** (w - q·scale)ᵀ H (w - q·scale), H = sum / count. */
function outputError(gram: Gram, w: Float64Array, q: Int8Array, scale: number): number {
  const n = gram.size;
  let e = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) e += (w[i] - q[i] * scale) * (gram.sum[i * n + j] / gram.count) * (w[j] - q[j] * scale);
  return e;
}

describe('rounding against the inputs', () => {
  it('on strongly correlated inputs, a much smaller output error than rounding each weight to nearest', () => {
    // 12 inputs that move together (one shared part, a little of their own), as neighbouring pixels do.
    const n = 12;
    const rand = noise(7);
    const gram: Gram = { sum: new Float64Array(n * n), size: n, count: 0 };
    for (let s = 0; s < 2000; s++) {
      const shared = rand();
      const x = Array.from({ length: n }, () => shared + 0.1 * rand());
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gram.sum[i * n + j] += x[i] * x[j];
      gram.count++;
    }
    // 64 output channels' weights, each with its own scale.
    let [errorAgainst, errorNearest] = [0, 0];
    const r = choleskyUpper(gram);
    for (let row = 0; row < 64; row++) {
      const w = Float64Array.from({ length: n }, () => rand());
      const scale = Math.max(...w.map(Math.abs)) / 127;
      const nearest = Int8Array.from(w, (v) => Math.round(v / scale));
      const against = new Int8Array(n);
      roundAgainst(w, scale, r, against);
      for (const q of against) expect(Math.abs(q)).toBeLessThanOrEqual(127);
      errorAgainst += outputError(gram, w, against, scale);
      errorNearest += outputError(gram, w, nearest, scale);
    }
    expect(errorAgainst).toBeLessThan(errorNearest / 3);
  });

  it('on uncorrelated inputs of equal size, the same as rounding to nearest', () => {
    const n = 9;
    const gram: Gram = { sum: new Float64Array(n * n), size: n, count: 1 };
    for (let i = 0; i < n; i++) gram.sum[i * n + i] = 1;
    const rand = noise(3);
    const w = Float64Array.from({ length: n }, () => rand());
    const scale = 1 / 127;
    const q = new Int8Array(n);
    roundAgainst(w, scale, choleskyUpper(gram), q);
    expect([...q]).toEqual([...w].map((v) => Math.round(v / scale)));
  });

  it('sums xᵀx over each 3x3 neighbourhood, with the padding as zeros, in the weights order', async () => {
    const [channels, height, width] = [2, 4, 4];
    const data = Float32Array.from({ length: channels * height * width }, (_, i) => (i % 7) - 3);
    const accumulator = new GramAccumulator();
    await accumulator.add('x', data, channels, height, width, 3, 1);
    await accumulator.release();
    const gram = accumulator.grams.get('x')!;
    const size = channels * 9;
    const expected = new Float64Array(size * size);
    let count = 0;
    // Sampled positions: every second row and column.
    for (let y = 0; y < height; y += 2) {
      for (let x = 0; x < width; x += 2) {
        const column = new Float64Array(size);
        for (let c = 0; c < channels; c++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const [yy, xx] = [y + ky - 1, x + kx - 1];
              if (yy >= 0 && yy < height && xx >= 0 && xx < width) column[(c * 3 + ky) * 3 + kx] = data[(c * height + yy) * width + xx];
            }
          }
        }
        for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) expected[i * size + j] += column[i] * column[j];
        count++;
      }
    }
    expect(gram.count).toBe(count);
    expect([...gram.sum]).toEqual([...expected]);
  });
});

import { describe, expect, it } from 'vitest';
import { blendWeights, planAxis, planTiles } from '../src/engine/tiler.js';

describe('planAxis', () => {
  it('runs the whole axis at once for tile 0 or a tile at least as long as the axis', () => {
    expect(planAxis(300, 0, 16)).toEqual({ size: 300, starts: [0] });
    expect(planAxis(100, 128, 16)).toEqual({ size: 100, starts: [0] });
  });

  it.each([
    [1000, 192, 16],
    [257, 32, 16],
    [96, 32, 16],
    [33, 32, 10],
    [4000, 500, 24],
  ])('length %i, tile %i, overlap %i: windows stay inside, cover everything and overlap by 2x overlap', (length, tile, overlap) => {
    const { size, starts } = planAxis(length, tile, overlap);
    expect(starts[0]).toBe(0);
    expect(starts.at(-1)! + size).toBe(length);
    expect(starts.length).toBe(Math.ceil(length / tile));
    // Each window contributes at most `tile` pixels: its size is at most tile + 2 * overlap.
    expect(size).toBeLessThanOrEqual(tile + 2 * overlap);
    for (let i = 1; i < starts.length; i++) {
      expect(starts[i]).toBeGreaterThan(starts[i - 1]);
      expect(starts[i - 1] + size - starts[i]).toBeGreaterThanOrEqual(Math.min(2 * overlap, size) - 1);
    }
  });

  it('counts windows over both axes', () => {
    expect(planTiles(100, 50, 32, 8).count).toBe(4 * 2);
  });
});

describe('blendWeights', () => {
  it.each([[257, 32, 16], [200, 64, 16], [1000, 192, 8]])('length %i, tile %i, overlap %i: weights covering an output pixel sum to one', (length, tile, overlap) => {
    const plan = planAxis(length, tile, overlap);
    const scale = 4;
    const total = new Float64Array(length * scale);
    blendWeights(plan, scale).forEach((w, i) => w.forEach((v, u) => (total[plan.starts[i] * scale + u] += v)));
    for (const t of total) expect(t).toBeCloseTo(1, 6);
  });

  it('fades towards a window edge that has a neighbour, and not at the image border', () => {
    const plan = planAxis(200, 64, 16);
    const weights = blendWeights(plan, 4);
    const first = weights[0];
    expect(first[0]).toBe(1);
    expect(first.at(-1)).toBeLessThan(0.01);
    const last = weights.at(-1)!;
    expect(last[0]).toBeLessThan(0.01);
    expect(last.at(-1)).toBe(1);
  });
});

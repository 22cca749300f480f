/**
 * x4fast's int8 graph carries each PReLU as [Relu(x), x] and folds the slopes into the next convolution's
 * weights (`splitWeights`): the convolution's result must not change.
 */
import { describe, expect, it } from 'vitest';
import { splitWeights } from '../src/models/quantize.js';

describe('PReLU carried as [Relu(x), x]', () => {
  it('a 1x1 convolution over [Relu(x), x] with the split weights gives what it gave over PReLU(x)', () => {
    const outCh = 2;
    const slopes = Float32Array.of(0.008, 0.5, 1.3);
    const weight = Float32Array.of(0.7, -1.2, 0.4, -0.3, 2.0, 0.9);
    const split = splitWeights(weight, outCh, 1, slopes);
    expect(split).toHaveLength(2 * weight.length);
    for (const x of [[-2, 0.5, -0.1], [1, -3, 0.25], [0, 0, -7]]) {
      const prelu = x.map((v, c) => (v > 0 ? v : slopes[c] * v));
      const carried = [...x.map((v) => Math.max(0, v)), ...x];
      for (let o = 0; o < outCh; o++) {
        const direct = prelu.reduce((s, v, c) => s + weight[o * 3 + c] * v, 0);
        const viaSplit = carried.reduce((s, v, c) => s + split[o * 6 + c] * v, 0);
        expect(viaSplit).toBeCloseTo(direct, 5);
      }
    }
  });
});

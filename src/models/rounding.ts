/**
 * Rounding int8 weights against what the convolution sees, not one weight at a time.
 *
 * Rounding each weight to its nearest step makes errors that add up along whatever the input has most of. With
 * H = E[x xᵀ] over the convolution's input patches (its Gram matrix, measured on the calibration photos), the
 * output error of one output channel is (w - q)ᵀ H (w - q). Writing H = Rᵀ R (R upper triangular, Cholesky), that
 * is |R (w - q)|², and choosing q from the last input to the first, each to cancel what the ones after it left
 * (Babai's nearest plane, the same as GPTQ's error feedback in reverse order), makes it much smaller than
 * rounding to nearest.
 *
 * Measured on x4fast against float32 over the nine held-out photos (test/int8.test.ts): 41.93 dB on average
 * instead of 39.17 with rounding to nearest; with float activations, rounding to nearest alone had measured
 * 41.90, so this takes away nearly all of the weights' share of the error. What it costs: in dark flat sky the
 * first few columns at the image's left edge, where padding takes taps away, come out about 1 level darker
 * (0.6 lighter with rounding to nearest). Ordering the centre taps last, sampling the edges more, or weighting
 * the Gram matrix towards missing taps each moved that edge by a few tenths either way, no better.
 *
 * x4plus: 38.43 dB instead of 37.80 (its weights are the smaller share of its error: rounding to nearest alone,
 * with float activations, measured 44.4 dB), and its dark skies no longer darker on average. Its preparation
 * takes about 160 s instead of 40: one Gram matrix and one factor per dense block (K = 1728, see `prefixHeads` in
 * calibrate.ts), the factors in JavaScript about 60 G multiply-adds.
 */
import ort from 'onnxruntime-node';
import { DataType, encodeModel, int } from './onnx-schema.js';

/** Pixels of each calibration patch that the Gram matrix samples: every `GRAM_STRIDE`th row and column. */
export const GRAM_STRIDE = 2;

/** The Gram matrix of one convolution input, summed over sampled positions. */
export interface Gram {
  /** Row-major K x K, K = channels x k x k, in the weights' order (channel, kernel row, kernel column). */
  sum: Float64Array;
  size: number;
  count: number;
}

/**
 * Sums xᵀx over the k x k neighbourhoods (zero padding `pad`) of an NCHW tensor, one Gemm per call through
 * onnxruntime: the products are far too many for JavaScript (about 1.4 G per x4fast convolution and patch). Always
 * two threads, whatever the machine: each splits the output, not the sums, so the bytes do not depend on it.
 */
export class GramAccumulator {
  private session?: ort.InferenceSession;
  readonly grams = new Map<string, Gram>();

  async add(name: string, data: Float32Array, channels: number, height: number, width: number, k: number, pad: number): Promise<void> {
    const size = channels * k * k;
    const rows: number[] = [];
    for (let y = 0; y < height; y += GRAM_STRIDE) for (let x = 0; x < width; x += GRAM_STRIDE) rows.push(y * width + x);
    const cols = new Float32Array(rows.length * size);
    rows.forEach((at, r) => {
      const y0 = Math.floor(at / width) - pad;
      const x0 = (at % width) - pad;
      for (let c = 0; c < channels; c++) {
        for (let ky = 0; ky < k; ky++) {
          const y = y0 + ky;
          if (y < 0 || y >= height) continue;
          for (let kx = 0; kx < k; kx++) {
            const x = x0 + kx;
            if (x >= 0 && x < width) cols[r * size + (c * k + ky) * k + kx] = data[(c * height + y) * width + x];
          }
        }
      }
    });
    this.session ??= await ort.InferenceSession.create(gemmModel(), { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, logSeverityLevel: 3 });
    const result = await this.session.run({ x: new ort.Tensor('float32', cols, [rows.length, size]) });
    const product = result.xtx.data as Float32Array;
    let gram = this.grams.get(name);
    if (!gram) this.grams.set(name, (gram = { sum: new Float64Array(size * size), size, count: 0 }));
    for (let i = 0; i < product.length; i++) gram.sum[i] += product[i];
    gram.count += rows.length;
    result.xtx.dispose();
  }

  async release(): Promise<void> {
    await this.session?.release();
  }
}

/** xtx = xᵀ x for x of any [n, K]. */
function gemmModel(): Uint8Array {
  const matrix = (name: string, dims: string[]) => ({
    name,
    type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((dim_param) => ({ dim_param })) } } },
  });
  return encodeModel({
    name: 'gram',
    doc: 'x transposed times x, for the int8 weight rounding',
    nodes: [{ op_type: 'Gemm', name: 'gram', input: ['x', 'x'], output: ['xtx'], attribute: [int('transA', 1)] }],
    initializers: [],
    inputs: [matrix('x', ['n', 'k'])],
    outputs: [matrix('xtx', ['k', 'k'])],
  });
}

/**
 * The upper Cholesky factor R of `gram` / count + damping (1% of the mean diagonal, which keeps inputs the
 * photos never exercised from getting arbitrary weights), with H = Rᵀ R.
 */
export function choleskyUpper(gram: Gram): Float64Array {
  const n = gram.size;
  const h = gram.sum.map((v) => v / gram.count);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += h[i * n + i];
  const damping = (0.01 * trace) / n || 1e-12;
  for (let i = 0; i < n; i++) h[i * n + i] += damping;
  // Lower L with H = L Lᵀ, row by row; R = Lᵀ.
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const s = h[i * n + j] - dot(l, i * n, l, j * n, j);
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 1e-30)) : s / l[j * n + j];
    }
  }
  const r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) r[j * n + i] = l[i * n + j];
  return r;
}

/**
 * Rounds one output channel's weights `w` to multiples of `scale` in [-127, 127] by nearest plane against `r`
 * (see `choleskyUpper`), writing the integers into `q`. `r` may be a larger factor, `stride` wide, whose leading
 * block is the one for `w`'s inputs.
 *
 * @example roundAgainst(w, wScale, choleskyUpper(gram), wq.subarray(o * perIn, (o + 1) * perIn));
 */
export function roundAgainst(w: ArrayLike<number>, scale: number, r: Float64Array, q: Int8Array, stride = w.length): void {
  const n = w.length;
  const error = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    const carried = dot(r, i * stride + i + 1, error, i + 1, n - i - 1);
    const target = w[i] + carried / r[i * stride + i];
    const step = Math.max(-127, Math.min(127, Math.round(target / scale)));
    q[i] = step;
    error[i] = w[i] - step * scale;
  }
}

/**
 * a[aAt..] · b[bAt..] over `length` terms, in four interleaved sums, always added in the same order: a factor of
 * K = 1152 took 260 ms instead of 357 with one running sum, and x4plus's factors are about 60 G multiply-adds.
 */
function dot(a: Float64Array, aAt: number, b: Float64Array, bAt: number, length: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let m = 0;
  for (; m + 3 < length; m += 4) {
    s0 += a[aAt + m] * b[bAt + m];
    s1 += a[aAt + m + 1] * b[bAt + m + 1];
    s2 += a[aAt + m + 2] * b[bAt + m + 2];
    s3 += a[aAt + m + 3] * b[bAt + m + 3];
  }
  for (; m < length; m++) s0 += a[aAt + m] * b[bAt + m];
  return s0 + s1 + (s2 + s3);
}

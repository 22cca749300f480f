/**
 * ncnn → ONNX conversion, checked op by op: each test writes a tiny ncnn network (`.param` text and `.bin`
 * bytes), converts it with convertToOnnx, runs it with onnxruntime-node and compares the result with plain
 * nested-loop reference implementations of the same ops written below.
 */
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseParam, readBin, type NcnnNet } from '../src/models/ncnn.js';
import { ModelProto } from '../src/models/onnx-schema.js';
import { convertToOnnx } from '../src/models/to-onnx.js';
import { idx, map, pixelShuffle, prelu, tensor, upscaleNearest, type Tensor } from './reference-tensor.js';

const H = 5;
const W = 7;
/**
 * Float32 inference against the float64 reference differs by under 1e-6 here. 1e-5 is still tight enough that a
 * reference using the unrounded weights of a float16 layer fails (those differ by 1e-5 to 1.5e-4).
 */
const TOLERANCE = 1e-5;

// ---------------------------------------------------------------------------------------------------------------
// Seeded random numbers.

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uniform(rand: () => number, count: number, lo: number, hi: number): number[] {
  return Array.from({ length: count }, () => lo + (hi - lo) * rand());
}

// ---------------------------------------------------------------------------------------------------------------
// Float16, written independently of the reader in src/.

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const frac = x - floor;
  if (frac > 0.5) return floor + 1;
  if (frac < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** IEEE binary16 bits of `value`, rounded to nearest, ties to even. */
function toHalfBits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a === 0) return sign;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  if (e < -14) {
    // Subnormal: units of 2^-24. Rounding up to 1024 units lands exactly on the smallest normal's bits.
    return sign | roundHalfEven(a / 2 ** -24);
  }
  let mantissa = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | mantissa;
}

function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
}

const toHalf = (value: number) => fromHalfBits(toHalfBits(value));

// ---------------------------------------------------------------------------------------------------------------
// Writing ncnn nets.

type Activation = { kind: 'none' } | { kind: 'relu' } | { kind: 'leaky'; slope: number };
const NONE: Activation = { kind: 'none' };
const RELU: Activation = { kind: 'relu' };
const leaky = (slope: number): Activation => ({ kind: 'leaky', slope });

interface ConvOptions {
  inCh: number;
  outCh: number;
  /** Kernel size (square); padding is k >> 1 so the spatial size is kept. */
  k?: number;
  fp16?: boolean;
  /** [out][in][kh][kw], before any float16 rounding. */
  weights: number[];
  bias?: number[];
  act?: Activation;
}

/** A convolution exactly as the `.bin` holds it: the values the reference must compute with. */
interface ConvRef {
  inCh: number;
  outCh: number;
  k: number;
  pad: number;
  weights: Float64Array;
  bias?: Float64Array;
  act: Activation;
}

const TAG_FLOAT16 = 0x01306b47;
const TAG_FLOAT32 = 0;

class NcnnBuilder {
  private readonly lines: string[] = [];
  private readonly blobs = new Set<string>();
  private readonly chunks: Uint8Array[] = [];

  layer(type: string, name: string, inputs: string[], outputs: string[], params: string[] = []): this {
    this.lines.push([type, name, inputs.length, outputs.length, ...inputs, ...outputs, ...params].join(' '));
    for (const blob of [...inputs, ...outputs]) this.blobs.add(blob);
    return this;
  }

  input(blob: string): this {
    return this.layer('Input', 'in0', [], [blob], [`0=${W}`, `1=${H}`, '2=3']);
  }

  conv(name: string, input: string, output: string, o: ConvOptions): ConvRef {
    const k = o.k ?? 3;
    const pad = k >> 1;
    const count = o.outCh * o.inCh * k * k;
    if (o.weights.length !== count) throw new Error(`${name}: ${o.weights.length} weights, expected ${count}`);
    const act = o.act ?? NONE;
    const params = [`0=${o.outCh}`, `1=${k}`, `11=${k}`, '2=1', '12=1', '3=1', '13=1'];
    params.push(`4=${pad}`, `14=${pad}`, `15=${pad}`, `16=${pad}`, `5=${o.bias ? 1 : 0}`, `6=${count}`);
    if (act.kind === 'relu') params.push('9=1');
    if (act.kind === 'leaky') params.push('9=2', `-23310=1,${act.slope.toExponential(6)}`);
    this.layer('Convolution', name, [input], [output], params);

    let weights: Float64Array;
    if (o.fp16) {
      this.uint32(TAG_FLOAT16);
      const bits = o.weights.map(toHalfBits);
      const bytes = new Uint8Array(Math.ceil((count * 2) / 4) * 4); // zero padding up to a multiple of 4
      const view = new DataView(bytes.buffer);
      bits.forEach((b, i) => view.setUint16(i * 2, b, true));
      this.chunks.push(bytes);
      weights = Float64Array.from(bits, fromHalfBits);
    } else {
      this.uint32(TAG_FLOAT32);
      this.float32s(o.weights);
      weights = Float64Array.from(o.weights, Math.fround);
    }
    let bias: Float64Array | undefined;
    if (o.bias) {
      if (o.bias.length !== o.outCh) throw new Error(`${name}: ${o.bias.length} biases for ${o.outCh} channels`);
      this.float32s(o.bias);
      bias = Float64Array.from(o.bias, Math.fround);
    }
    return { inCh: o.inCh, outCh: o.outCh, k, pad, weights, bias, act };
  }

  /** PReLU: the slopes are raw float32 with no tag. Returns them as stored. */
  prelu(name: string, input: string, output: string, slopes: number[]): Float64Array {
    this.layer('PReLU', name, [input], [output], [`0=${slopes.length}`]);
    this.float32s(slopes);
    return Float64Array.from(slopes, Math.fround);
  }

  get param(): string {
    return ['7767517', `${this.lines.length} ${this.blobs.size}`, ...this.lines].join('\n') + '\n';
  }

  get bin(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }

  /** Parses the `.param` text and reads the `.bin` through the code under test. */
  net(): NcnnNet {
    const net = parseParam(this.param);
    readBin(net, this.bin);
    return net;
  }

  private uint32(value: number): void {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value, true);
    this.chunks.push(bytes);
  }

  private float32s(values: number[]): void {
    const bytes = new Uint8Array(values.length * 4);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    this.chunks.push(bytes);
  }
}

/** Random conv options: weights uniform in ±wRange, bias (when given) uniform in biasCenter ± biasRange. */
function randomConv(
  rand: () => number,
  inCh: number,
  outCh: number,
  o: { k?: number; wRange: number; bias?: [center: number, range: number]; fp16?: boolean; act?: Activation },
): ConvOptions {
  const k = o.k ?? 3;
  return {
    inCh,
    outCh,
    k,
    fp16: o.fp16,
    act: o.act,
    weights: uniform(rand, outCh * inCh * k * k, -o.wRange, o.wRange),
    bias: o.bias && uniform(rand, outCh, o.bias[0] - o.bias[1], o.bias[0] + o.bias[1]),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reference implementation: CHW float64 tensors and plain loops.

// (test/reference-tensor.ts: the tensor, PReLU, nearest enlargement and pixel shuffle shared with anime.test.ts)

function randomInput(seed: number): Tensor {
  const t = tensor(3, H, W);
  t.data.set(uniform(prng(seed), t.data.length, 0.2, 0.8));
  return t;
}

/** Convolution with zero padding, then the fused activation. */
function conv(x: Tensor, c: ConvRef): Tensor {
  if (x.c !== c.inCh) throw new Error(`conv expects ${c.inCh} channels, got ${x.c}`);
  const out = tensor(c.outCh, x.h, x.w);
  for (let o = 0; o < c.outCh; o++) {
    for (let y = 0; y < x.h; y++) {
      for (let xx = 0; xx < x.w; xx++) {
        let sum = c.bias ? c.bias[o] : 0;
        for (let i = 0; i < c.inCh; i++) {
          for (let ky = 0; ky < c.k; ky++) {
            for (let kx = 0; kx < c.k; kx++) {
              const sy = y + ky - c.pad;
              const sx = xx + kx - c.pad;
              if (sy < 0 || sy >= x.h || sx < 0 || sx >= x.w) continue;
              sum += c.weights[((o * c.inCh + i) * c.k + ky) * c.k + kx] * x.data[idx(x, i, sy, sx)];
            }
          }
        }
        out.data[idx(out, o, y, xx)] = sum;
      }
    }
  }
  return activate(out, c.act);
}

function activate(x: Tensor, act: Activation): Tensor {
  if (act.kind === 'relu') return relu(x);
  if (act.kind === 'leaky') return leakyRelu(x, act.slope);
  return x;
}

const relu = (x: Tensor) => map(x, (v) => Math.max(v, 0));
const leakyRelu = (x: Tensor, slope: number) => map(x, (v) => (v >= 0 ? v : v * slope));

/** Eltwise sum with coefficients: a * x0 + b * x1. */
function eltwise(x0: Tensor, x1: Tensor, a: number, b: number): Tensor {
  return map(x0, (v, i) => a * v + b * x1.data[i]);
}

const add = (x0: Tensor, x1: Tensor) => eltwise(x0, x1, 1, 1);

/** The other DepthToSpace ordering (DCR): out[c][y*r+i][x*r+j] = in[(i*r + j)*C + c][y][x]. Only used to show a test tells the two apart. */
function pixelShuffleDcr(x: Tensor, r: number): Tensor {
  const out = tensor(x.c / (r * r), x.h * r, x.w * r);
  for (let c = 0; c < out.c; c++) {
    for (let y = 0; y < x.h; y++) {
      for (let xx = 0; xx < x.w; xx++) {
        for (let i = 0; i < r; i++) {
          for (let j = 0; j < r; j++) {
            out.data[idx(out, c, y * r + i, xx * r + j)] = x.data[idx(x, (i * r + j) * out.c + c, y, xx)];
          }
        }
      }
    }
  }
  return out;
}

function concat(...xs: Tensor[]): Tensor {
  const out = tensor(
    xs.reduce((n, x) => n + x.c, 0),
    xs[0].h,
    xs[0].w,
  );
  let offset = 0;
  for (const x of xs) {
    out.data.set(x.data, offset);
    offset += x.data.length;
  }
  return out;
}

const clamp01 = (x: Tensor) => map(x, (v) => Math.min(Math.max(v, 0), 1));

// ---------------------------------------------------------------------------------------------------------------
// Running and comparing.

async function runOnnx(onnx: Uint8Array, x: Tensor): Promise<Tensor> {
  // One thread: these nets are tiny, and the machine is shared.
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const result = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.data), [1, x.c, x.h, x.w]) });
    const output = result.output;
    const [n, c, h, w] = output.dims;
    expect(n).toBe(1);
    return { c, h, w, data: Float64Array.from(output.data as Float32Array) };
  } finally {
    await session.release();
  }
}

function maxDiff(a: Tensor, b: Tensor): number {
  expect([a.c, a.h, a.w]).toEqual([b.c, b.h, b.w]);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i] - b.data[i]));
  return max;
}

/**
 * `actual` matches the reference `expected` (already clamped). The comparison only means something when the
 * clamp did not flatten the output, so most reference values must lie strictly inside (0, 1).
 */
function expectMatches(actual: Tensor, expected: Tensor): void {
  expect(maxDiff(actual, expected)).toBeLessThan(TOLERANCE);
  const inside = expected.data.filter((v) => v > 0.01 && v < 0.99).length;
  expect(inside / expected.data.length).toBeGreaterThan(0.8);
}

/** Converts the builder's net, runs it on `x` and checks it against `expected` (before clamping). */
/** The converted graph's operators, in order. */
const opTypes = (onnx: Uint8Array): string[] =>
  (ModelProto.toObject(ModelProto.decode(onnx)) as { graph: { node: Array<{ op_type: string }> } }).graph.node.map((n) => n.op_type);

async function convertAndCompare(b: NcnnBuilder, x: Tensor, expected: Tensor) {
  const converted = convertToOnnx(b.net(), 'test');
  const actual = await runOnnx(converted.onnx, x);
  const reference = clamp01(expected);
  expectMatches(actual, reference);
  return { ...converted, actual, reference };
}

// ---------------------------------------------------------------------------------------------------------------

describe('float16 test helper', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00], // tie: rounds to the even mantissa below
    [1 + 3 * 2 ** -11, 0x3c02], // tie: rounds to the even mantissa above
    [2 - 2 ** -12, 0x4000], // rounds up into the next exponent
    [0, 0x0000],
  ])('encodes %d as float16 bits %i', (value, bits) => {
    expect(toHalfBits(value)).toBe(bits);
    expect(fromHalfBits(bits)).toBeCloseTo(value, 3);
  });
});

describe('parseParam', () => {
  it('reads layers, blobs and scalar and array parameters', () => {
    const net = parseParam(
      '7767517\n3 3\nInput in0 0 1 data 0=7 1=5 2=3\n' +
        'Split sp 1 2 data a b\n' +
        'Eltwise e 2 1 a b out 0=1 -23301=2,2.000000e-01,1.000000e+00\n',
    );
    expect(net.layers.map((l) => l.type)).toEqual(['Input', 'Split', 'Eltwise']);
    expect(net.layers[1]).toMatchObject({ name: 'sp', inputs: ['data'], outputs: ['a', 'b'] });
    expect(net.layers[2].inputs).toEqual(['a', 'b']);
    expect(net.layers[2].params.get(0)).toEqual([1]);
    expect(net.layers[2].params.get(-23301)).toEqual([0.2, 1]);
  });

  it('rejects text without the 7767517 magic', () => {
    expect(() => parseParam('7767518\n1 1\nInput in0 0 1 data\n')).toThrow(/magic/);
    expect(() => parseParam('1 1\nInput in0 0 1 data\n')).toThrow(/magic/);
    expect(parseParam('7767517\n1 1\nInput in0 0 1 data\n').layers).toHaveLength(1);
  });

  it('rejects a layer count that does not match the layers', () => {
    expect(() => parseParam('7767517\n2 1\nInput in0 0 1 data\n')).toThrow(/2 layers/);
  });
});

describe('readBin', () => {
  // conv_a: 3x3x3x3 = 81 float16 weights (odd: 162 bytes + 2 padding) and 3 biases; prelu: 3 slopes;
  // conv_b: 3x3x1x1 = 9 float32 weights, no bias. Layout by byte offset:
  //   0 tag a | 4 weights a | 166 padding | 168 bias a | 180 slopes | 192 tag b | 196 weights b | 232 end
  const special = [1e-6, -1e-6, 0.1, -0.1, 1 / 3, 1.5, -2, 65504, 0, 2 ** -24];
  const aWeights = [...special, ...uniform(prng(7), 81 - special.length, -1, 1)];
  const aBias = [0.25, -0.125, 0.1];
  const slopes = [-0.5, 0.2, 1.7];
  const bWeights = uniform(prng(8), 9, -1, 1);
  const build = () => {
    const b = new NcnnBuilder().input('data');
    b.conv('conv_a', 'data', 'a', { inCh: 3, outCh: 3, fp16: true, weights: aWeights, bias: aBias });
    b.prelu('prelu', 'a', 'p', slopes);
    b.conv('conv_b', 'p', 'out', { inCh: 3, outCh: 3, k: 1, weights: bWeights });
    return b;
  };

  it('reads float16 weights (odd count, padded to 4 bytes), float32 weights, biases and PReLU slopes', () => {
    const b = build();
    expect(b.bin.length).toBe(232);
    const [, convA, prel, convB] = b.net().layers;
    // Every float16 value is exact in float32, so the reader must produce exactly what the encoder meant.
    expect(convA.weight).toEqual(Float32Array.from(aWeights, toHalf));
    expect(convA.weight![0]).not.toBe(0); // 1e-6 survives as a float16 subnormal
    expect(convA.bias).toEqual(Float32Array.from(aBias));
    expect(prel.weight).toEqual(Float32Array.from(slopes));
    expect(convB.weight).toEqual(Float32Array.from(bWeights));
    expect(convB.bias).toBeUndefined();
  });

  it('throws when bytes are left over', () => {
    const b = build();
    const longer = new Uint8Array(b.bin.length + 4);
    longer.set(b.bin);
    expect(() => readBin(parseParam(b.param), longer)).toThrow(/4 bytes left over/);
  });

  it.each<[number, string]>([
    [0, 'conv_a tag'],
    [2, 'conv_a tag'],
    [100, 'conv_a weights'],
    [167, 'conv_a bias'], // the padding is cut short: the bias cannot start where it should
    [179, 'conv_a bias'],
    [185, 'prelu slopes'],
    [194, 'conv_b tag'],
    [228, 'conv_b weights'],
  ])('throws when the .bin stops after %i bytes, inside %s', (length, what) => {
    const b = build();
    expect(() => readBin(parseParam(b.param), b.bin.slice(0, length))).toThrow(`.bin ends inside ${what}`);
  });

  it('throws on an unknown weight storage tag', () => {
    const b = build();
    const bin = b.bin;
    new DataView(bin.buffer).setUint32(192, 0x12345678, true);
    expect(() => readBin(parseParam(b.param), bin)).toThrow(/conv_b: unsupported weight storage tag 0x12345678/);
  });
});

describe('convertToOnnx against a JS reference', () => {
  const cases = [true, false].flatMap((fp16) =>
    [true, false].flatMap((bias) => [NONE, RELU, leaky(0.2)].map((act) => ({ fp16, bias, act }))),
  );

  it.each(cases)('Convolution, float16 $fp16, bias $bias, activation $act.kind', async ({ fp16, bias, act }) => {
    const rand = prng(100 + Number(fp16) * 10 + Number(bias) * 5 + ['none', 'relu', 'leaky'].indexOf(act.kind));
    const x = randomInput(1);
    const b = new NcnnBuilder().input('data');
    // 5x3x3x3 = 135 weights: an odd float16 count, so the padding before the bias (or the next tag) matters.
    const a = b.conv('conv_a', 'data', 'a', randomConv(rand, 3, 5, { wRange: 0.3, bias: bias ? [0, 0.2] : undefined, fp16, act }));
    // A second convolution with mixed-sign weights shows negative activations that the final clamp would hide.
    const c = b.conv('conv_b', 'a', 'out', randomConv(rand, 5, 3, { wRange: 0.15, bias: [0.5, 0.05] }));

    const preActivation = conv(x, { ...a, act: NONE });
    expect(Math.min(...preActivation.data)).toBeLessThan(-0.1);
    const { actual } = await convertAndCompare(b, x, conv(conv(x, a), c));

    // The activation is visible: the reference with a different one does not match.
    const other = act.kind === 'none' ? RELU : act.kind === 'relu' ? NONE : RELU;
    expect(maxDiff(actual, clamp01(conv(conv(x, { ...a, act: other }), c)))).toBeGreaterThan(1e-3);
  });

  it('LeakyReLU uses the slope from -23310', async () => {
    const rand = prng(3);
    const x = randomInput(2);
    const b = new NcnnBuilder().input('data');
    const a = b.conv('conv_a', 'data', 'a', randomConv(rand, 3, 4, { wRange: 0.3, bias: [0, 0.2], act: leaky(0.05) }));
    const c = b.conv('conv_b', 'a', 'out', randomConv(rand, 4, 3, { wRange: 0.2, bias: [0.5, 0.05] }));
    const { actual } = await convertAndCompare(b, x, conv(conv(x, a), c));
    expect(maxDiff(actual, clamp01(conv(conv(x, { ...a, act: leaky(0.2) }), c)))).toBeGreaterThan(1e-3);
  });

  it('PReLU with per-channel slopes, negative, 1 and above 1, folded into the convolutions around it', async () => {
    const rand = prng(16);
    const x = randomInput(3);
    const b = new NcnnBuilder().input('data');
    const a = b.conv('conv_a', 'data', 'a', randomConv(rand, 3, 4, { wRange: 0.3, bias: [0, 0.2] }));
    const slopes = b.prelu('prelu', 'a', 'p', [-0.6, 1, 0.25, 1.7]);
    const c = b.conv('conv_b', 'p', 'out', randomConv(rand, 4, 3, { wRange: 0.15, bias: [0.5, 0.05] }));
    const ya = conv(x, a);
    for (let ch = 0; ch < 4; ch++) {
      // Every channel has negative values, so every slope is exercised.
      expect(Math.min(...ya.data.subarray(ch * H * W, (ch + 1) * H * W))).toBeLessThan(0);
    }
    const { actual, onnx } = await convertAndCompare(b, x, conv(prelu(ya, slopes), c));
    // The slopes are applied per channel, in order.
    expect(maxDiff(actual, clamp01(conv(prelu(ya, [...slopes].reverse()), c)))).toBeGreaterThan(1e-3);
    // Folded: one scale (BatchNormalization) per PReLU, the other went into the convolutions' weights.
    expect(opTypes(onnx)).toEqual(['Conv', 'BatchNormalization', 'Relu', 'Add', 'Conv', 'Clip']);
  });

  it('PReLU that cannot fold into its convolutions: a slope of 0, and an output read twice', async () => {
    const rand = prng(17);
    const x = randomInput(3);
    const b = new NcnnBuilder().input('data');
    const a = b.conv('conv_a', 'data', 'a', randomConv(rand, 3, 3, { wRange: 0.1, bias: [0, 0.1] }));
    const slopes = b.prelu('prelu', 'a', 'p', [0, -0.3, 1.4]);
    b.layer('Split', 'split', ['p'], ['p0', 'p1']);
    const c = b.conv('conv_b', 'p0', 'c', randomConv(rand, 3, 3, { wRange: 0.1, bias: [0.5, 0.05] }));
    b.layer('BinaryOp', 'sum', ['c', 'p1'], ['out']);
    const ya = conv(x, a);
    const y = prelu(ya, slopes);
    const { onnx } = await convertAndCompare(b, x, add(conv(y, c), y));
    expect(opTypes(onnx).filter((op) => op === 'BatchNormalization')).toHaveLength(2);
    // Each channel has negative values, so each slope counts.
    for (let ch = 0; ch < 3; ch++) expect(Math.min(...ya.data.subarray(ch * H * W, (ch + 1) * H * W))).toBeLessThan(0);
  });

  it.each([
    [0.2, 1],
    [-0.5, 0.75],
    [1, 1],
  ])('Eltwise sum with coefficients %d and %d', async (ca, cb) => {
    const rand = prng(5);
    const x = randomInput(4);
    const b = new NcnnBuilder().input('data');
    b.layer('Split', 'split', ['data'], ['d0', 'd1']);
    const a = b.conv('conv_a', 'd0', 'a', randomConv(rand, 3, 3, { wRange: 0.05, bias: [0, 0.1] }));
    b.layer('Eltwise', 'elt', ['a', 'd1'], ['out'], ['0=1', `-23301=2,${ca.toExponential(6)},${cb.toExponential(6)}`]);
    const { actual, onnx } = await convertAndCompare(b, x, eltwise(conv(x, a), x, ca, cb));
    if (ca !== cb) expect(maxDiff(actual, clamp01(eltwise(conv(x, a), x, cb, ca)))).toBeGreaterThan(1e-3);
    // Weights are per-channel scales (BatchNormalization), which onnxruntime keeps in its NCHWc layout; a Mul
    // by a constant is not.
    expect(opTypes(onnx)).not.toContain('Mul');
    expect(opTypes(onnx).filter((op) => op === 'BatchNormalization')).toHaveLength([ca, cb].filter((c) => c !== 1).length);
  });

  it('Eltwise sum without coefficients adds', async () => {
    const rand = prng(6);
    const x = randomInput(5);
    const b = new NcnnBuilder().input('data');
    b.layer('Split', 'split', ['data'], ['d0', 'd1']);
    const a = b.conv('conv_a', 'd0', 'a', randomConv(rand, 3, 3, { wRange: 0.05, bias: [0, 0.1] }));
    b.layer('Eltwise', 'elt', ['a', 'd1'], ['out'], ['0=1']);
    await convertAndCompare(b, x, add(conv(x, a), x));
  });

  it('BinaryOp without 0= adds', async () => {
    const rand = prng(7);
    const x = randomInput(6);
    const b = new NcnnBuilder().input('data');
    b.layer('Split', 'split', ['data'], ['d0', 'd1']);
    const a = b.conv('conv_a', 'd0', 'a', randomConv(rand, 3, 3, { wRange: 0.05, bias: [0, 0.1] }));
    b.layer('BinaryOp', 'sum', ['d1', 'a'], ['out']);
    const { scale } = await convertAndCompare(b, x, add(x, conv(x, a)));
    expect(scale).toBe(1);
  });

  it('Interp 0=1 upscales by 2 with nearest neighbours', async () => {
    const rand = prng(8);
    const x = randomInput(7);
    const b = new NcnnBuilder().input('data');
    const a = b.conv('conv_a', 'data', 'a', randomConv(rand, 3, 3, { wRange: 0.1, bias: [0.5, 0.1] }));
    b.layer('Interp', 'up', ['a'], ['out'], ['0=1', '1=2.000000e+00', '2=2.000000e+00']);
    const { actual, scale, flopsPerPixel } = await convertAndCompare(b, x, upscaleNearest(conv(x, a), 2));
    expect([actual.h, actual.w]).toEqual([2 * H, 2 * W]);
    expect(scale).toBe(2);
    expect(flopsPerPixel).toBe(2 * 3 * 3 * 9);
  });

  it.each([2, 3])('PixelShuffle 0=%i follows PyTorch pixel_shuffle', async (r) => {
    const rand = prng(9 + r);
    const x = randomInput(8);
    const b = new NcnnBuilder().input('data');
    const a = b.conv('conv_a', 'data', 'a', randomConv(rand, 3, 3 * r * r, { wRange: 0.05, bias: [0.5, 0.2] }));
    b.layer('PixelShuffle', 'ps', ['a'], ['out'], [`0=${r}`]);
    const { actual, scale } = await convertAndCompare(b, x, pixelShuffle(conv(x, a), r));
    expect([actual.h, actual.w]).toEqual([r * H, r * W]);
    expect(scale).toBe(r);
    expect(maxDiff(actual, clamp01(pixelShuffleDcr(conv(x, a), r)))).toBeGreaterThan(1e-2);
  });

  it('Concat joins along channels, in input order', async () => {
    const rand = prng(12);
    const x = randomInput(9);
    const b = new NcnnBuilder().input('data');
    b.layer('Split', 'split', ['data'], ['d0', 'd1']);
    const a = b.conv('conv_a', 'd0', 'a', randomConv(rand, 3, 1, { k: 1, wRange: 0.2, bias: [0.5, 0.1] }));
    const c = b.conv('conv_c', 'd1', 'c', randomConv(rand, 3, 2, { wRange: 0.1, bias: [0.5, 0.1], fp16: true }));
    b.layer('Concat', 'cat', ['a', 'c'], ['out'], ['0=0']);
    const { actual, flopsPerPixel } = await convertAndCompare(b, x, concat(conv(x, a), conv(x, c)));
    expect(maxDiff(actual, clamp01(concat(conv(x, c), conv(x, a))))).toBeGreaterThan(1e-2);
    expect(flopsPerPixel).toBe(2 * 1 * 3 * 1 + 2 * 2 * 3 * 9);
  });

  it('an RRDB-like x4 net: Split, Concat, LeakyReLU, Eltwise residual, two Interp x2, float16 and float32', async () => {
    const rand = prng(13);
    const x = randomInput(10);
    const b = new NcnnBuilder().input('data');
    const first = b.conv('conv_first', 'data', 'f', randomConv(rand, 3, 4, { wRange: 0.2, bias: [0.2, 0.1], fp16: true }));
    b.layer('Split', 'split', ['f'], ['f0', 'f1', 'f2']);
    const c1 = b.conv('conv1', 'f0', 'y1', randomConv(rand, 4, 4, { wRange: 0.2, bias: [0, 0.1], act: leaky(0.2) }));
    b.layer('Concat', 'cat', ['f1', 'y1'], ['cat'], ['0=0']);
    const c2 = b.conv('conv2', 'cat', 'y2', randomConv(rand, 8, 4, { wRange: 0.1, bias: [0, 0.1], fp16: true }));
    b.layer('Eltwise', 'res', ['y2', 'f2'], ['r'], ['0=1', '-23301=2,2.000000e-01,1.000000e+00']);
    b.layer('Interp', 'up1', ['r'], ['u1'], ['0=1', '1=2.000000e+00', '2=2.000000e+00']);
    const c3 = b.conv('conv_up1', 'u1', 'z1', randomConv(rand, 4, 4, { wRange: 0.2, bias: [0, 0.1], act: leaky(0.2) }));
    b.layer('Interp', 'up2', ['z1'], ['u2'], ['0=1', '1=2.000000e+00', '2=2.000000e+00']);
    const c4 = b.conv('conv_up2', 'u2', 'z2', randomConv(rand, 4, 4, { wRange: 0.2, bias: [0, 0.1], act: leaky(0.2), fp16: true }));
    const last = b.conv('conv_last', 'z2', 'out', randomConv(rand, 4, 3, { wRange: 0.2, bias: [0.5, 0.05] }));

    const f = conv(x, first);
    const r = eltwise(conv(concat(f, conv(f, c1)), c2), f, 0.2, 1);
    const z1 = conv(upscaleNearest(r, 2), c3);
    const expected = conv(conv(upscaleNearest(z1, 2), c4), last);
    const { actual, scale, flopsPerPixel } = await convertAndCompare(b, x, expected);
    expect([actual.c, actual.h, actual.w]).toEqual([3, 4 * H, 4 * W]);
    expect(scale).toBe(4);
    // 2*out*in*k*k per conv, times (spatial scale)^2 where it runs:
    // conv_first 216, conv1 288, conv2 576 at x1; conv_up1 288 at x2 (x4); conv_up2 288 and conv_last 216 at x4 (x16).
    expect(flopsPerPixel).toBe(216 + 288 + 576 + 288 * 4 + 288 * 16 + 216 * 16);
  });

  it('an SRVGG-like x2 net: PReLU, PixelShuffle, Interp of the input and BinaryOp add', async () => {
    const rand = prng(14);
    const x = randomInput(11);
    const b = new NcnnBuilder().input('data');
    b.layer('Split', 'split', ['data'], ['d0', 'd1']);
    const c0 = b.conv('conv0', 'd0', 'a0', randomConv(rand, 3, 4, { wRange: 0.3, bias: [0, 0.2] }));
    const p0 = b.prelu('prelu0', 'a0', 'a1', [0.25, -0.3, 1.5, 0.05]);
    const c1 = b.conv('conv1', 'a1', 'a2', randomConv(rand, 4, 4, { wRange: 0.3, bias: [0, 0.2], fp16: true }));
    const p1 = b.prelu('prelu1', 'a2', 'a3', [1.2, 0.1, -0.2, 0.5]);
    const c2 = b.conv('conv2', 'a3', 'a4', randomConv(rand, 4, 12, { wRange: 0.05, bias: [0, 0.05] }));
    b.layer('PixelShuffle', 'ps', ['a4'], ['a5'], ['0=2']);
    b.layer('Interp', 'up', ['d1'], ['base'], ['0=1', '1=2.000000e+00', '2=2.000000e+00']);
    b.layer('BinaryOp', 'add', ['a5', 'base'], ['out'], ['0=0']);

    const body = conv(prelu(conv(prelu(conv(x, c0), p0), c1), p1), c2);
    const expected = add(pixelShuffle(body, 2), upscaleNearest(x, 2));
    const { actual, scale, flopsPerPixel } = await convertAndCompare(b, x, expected);
    expect([actual.c, actual.h, actual.w]).toEqual([3, 2 * H, 2 * W]);
    expect(scale).toBe(2);
    // conv0 216, conv1 288, conv2 864, all at x1.
    expect(flopsPerPixel).toBe(216 + 288 + 864);
  });
});

describe('convertToOnnx errors', () => {
  it('names an unknown layer type', () => {
    const b = new NcnnBuilder().input('data');
    b.layer('Deconvolution', 'deconv0', ['data'], ['out'], ['0=3', '1=4']);
    expect(() => convertToOnnx(b.net(), 'test')).toThrow(/Deconvolution/);
  });

  it.each<[string, string[], RegExp]>([
    ['BinaryOp', ['0=2'], /BinaryOp/],
    ['Interp', ['0=2', '1=2.0', '2=2.0'], /nearest/],
    ['Eltwise', ['0=0'], /Eltwise sum/],
  ])('refuses %s %j instead of converting it wrongly', (type, params, message) => {
    const b = new NcnnBuilder().input('data');
    b.layer('Split', 'split', ['data'], ['d0', 'd1']);
    b.layer(type, 'op', type === 'Interp' ? ['d0'] : ['d0', 'd1'], ['out'], params);
    expect(() => convertToOnnx(b.net(), 'test')).toThrow(message);
  });
});

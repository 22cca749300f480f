/**
 * Builds the int8 variant of an ncnn RealESRGAN-family network as a QDQ ONNX graph: QuantizeLinear /
 * DequantizeLinear pairs around every convolution but the last few, which onnxruntime's CPU provider fuses into
 * QLinearConv, QLinearLeakyRelu, QLinearConcat and QLinearAdd (u8 x s8 products, VNNI where the CPU has it).
 *
 * The same walk over the network also builds the float graph that calibration runs: there every tensor that
 * the int8 graph quantizes from a measured range is an extra output (see `calibrate.ts`).
 *
 * Choices, after the study in issue 12:
 * - weights int8, symmetric, one scale per output channel; bias int32 at the input scale times the weight scale;
 * - activations uint8, asymmetric, one range per tensor; the model input at exactly 1/255 (8-bit pixels are
 *   represented without loss), a nearest-neighbour resize and a concat take their input's or inputs' range;
 * - an Eltwise's weight (x4plus's 0.2 residual scale) goes into the DequantizeLinear scale, so the sum stays a
 *   QLinearAdd;
 * - the last `floatConvs` convolutions stay float32 (at least the last, whose output is the picture): see
 *   `BUILT_IN` in prepare.ts for what each model keeps and what it measured.
 */
import { DataType, encodeModel, float, imageInfo, int, ints, str, type Attribute } from './onnx-schema.js';
import { param, type NcnnLayer, type NcnnNet } from './ncnn.js';
import { concatGroups, quantParams, readersOf, splitWeights, type QParams, type Range } from './quant-params.js';
import { roundAgainst } from './rounding.js';

export { quantParams, readersOf, splitWeights, type QParams, type Range } from './quant-params.js';

/** What `buildGraph` made. */
export interface BuiltGraph {
  onnx: Uint8Array;
  /** Calibration graph only: the tensors whose ranges the int8 graph needs, all of them graph outputs. */
  observed: string[];
  /** The inputs of the int8 convolutions, by the same name in both graphs (outputs of the calibration graph). */
  convInputs: string[];
  /** The float result of the last convolution (an output of the calibration graph, and of a probe). */
  lastConvOutput: string;
  /**
   * What reads each of `convInputs`: the int8 convolution's kernel side and padding, and the values the input is
   * made of (a concat's inputs, in order; otherwise the input itself).
   */
  convReads: Map<string, { k: number; pad: number; parts: string[] }>;
}

/** What makes the int8 graph. */
export interface Int8Plan {
  /** One range per observed tensor of the calibration graph. */
  ranges: Map<string, Range>;
  /**
   * Per-channel means of each convolution input on the calibration patches, for bias correction: rounding the
   * weights changes a channel's output by (Wq - W) * x on average, (Wq - W) * mean(x), which is taken out of
   * the bias.
   */
  inputMeans?: Map<string, Float64Array>;
  /**
   * Per channel, the mean error (int8 minus float, on the calibration patches) that reaches the last, float,
   * convolution's output; taken out of its bias. In x4fast each of those channels is one of the 4x4 positions
   * that DepthToSpace makes of an input pixel, and without this a steady offset per position (0.4 levels) made
   * a faint 4 px grid in clear sky.
   */
  lastShift?: Float64Array;
  /** Also output `lastConvOutput`, to measure `lastShift`. */
  probe?: boolean;
  /**
   * Give the inputs of a concat, and the concat, one range (the union of theirs): onnxruntime's QLinearConcat
   * then copies instead of requantizing each input through a lookup table. An input that a sum also reads (in
   * x4plus the input of each dense block, which the block's residual sum carries on) keeps its own, narrower
   * range and is requantized: with the union it made the whole residual stream coarser, 1.4-2.3 dB further
   * from float32 on the held-out photos (grass 33.9 instead of 35.5 dB, rocket sky 41.8 instead of 44.2 dB)
   * and a dark sky 1.5 instead of 0.8 levels darker, for about 7% of speed.
   */
  sharedConcat?: boolean;
  /**
   * Per convolution input, the Cholesky factor of its Gram matrix on the calibration patches (`choleskyUpper`),
   * or of one whose first channels it is (the factor's leading block is then its own): the weights of a
   * convolution whose input has one are rounded against it (rounding.ts) instead of to nearest.
   */
  roundingFactors?: Map<string, { r: Float64Array; size: number }>;
  /** Weights rounded against their inputs, by layer name: filled by the first graph built, reused by the next. */
  rounded?: Map<string, Int8Array>;
  /** Carry a PReLU between int8 convolutions as [Relu(x), x] (see `splitPRelu`); on unless false. */
  splitPRelu?: boolean;
}

/**
 * Without `plan`: the float calibration graph, with every tensor to measure as an output. With a plan (a range
 * per observed tensor): the int8 QDQ graph. `quantizeNet` in calibrate.ts runs both steps.
 *
 * @example
 * const { observed } = buildGraph(net, 'x4fast', undefined, 3); // run it, measure `observed` into `ranges`
 * const int8 = buildGraph(net, 'x4fast', { ranges }, 3).onnx;
 */
export function buildGraph(net: NcnnNet, modelName: string, plan?: Int8Plan, floatConvs = 1): BuiltGraph {
  const quantizing = plan !== undefined;
  const ranges = plan?.ranges;
  const convInputs: string[] = [];
  const convReads = new Map<string, { k: number; pad: number; parts: string[] }>();
  const concatParts = new Map<string, string[]>();
  const nodes: object[] = [];
  const initializers: object[] = [];
  const observed: string[] = [];
  const alias = new Map<string, string>();
  /** Values in the int8 domain: produced by an int8 op or the input; their parameters are fixed on demand. */
  const int8Domain = new Map<string, () => QParams>();
  /** Values whose QuantizeLinear exists: name of its uint8 output and its parameters. */
  const quantized = new Map<string, { q: string; p: QParams }>();
  let counter = 0;

  const node = (op_type: string, input: string[], output: string[], attribute: Attribute[] = []) =>
    nodes.push({ op_type, name: `${op_type}_${counter++}`, input, output, attribute });
  const constant = (name: string, dims: number[], values: Float32Array | Uint8Array | Int8Array | Int32Array): string => {
    const dataType =
      values instanceof Float32Array ? DataType.FLOAT : values instanceof Uint8Array ? DataType.UINT8 : values instanceof Int8Array ? DataType.INT8 : DataType.INT32;
    const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    initializers.push({ name, dims, data_type: dataType, raw_data: raw.slice() });
    return name;
  };

  /** The measured range of `value`, once calibrated; in the calibration graph, marks it to be measured. */
  const groups = plan?.sharedConcat ? concatGroups(net, ranges!) : new Map<string, QParams>();
  const measured = (value: string) => (): QParams => {
    const shared = groups.get(value);
    if (shared) return shared;
    const range = ranges!.get(value);
    if (!range) throw new Error(`no calibrated range for ${value}`);
    return quantParams(range);
  };
  const enterInt8 = (value: string, params: () => QParams) => int8Domain.set(value, params);
  /** `value` joins the int8 domain with a range measured in calibration. */
  const enterMeasured = (value: string) => {
    enterInt8(value, measured(value));
    if (!quantizing) observed.push(value);
  };
  const paramsOf = (value: string): QParams => {
    const get = int8Domain.get(value);
    if (!get) throw new Error(`${value} is not in the int8 domain`);
    return get();
  };
  /** The QuantizeLinear of `value`, made once. */
  const qOf = (value: string) => {
    let q = quantized.get(value);
    if (!q) {
      const p = paramsOf(value);
      const name = `${value}_q`;
      node('QuantizeLinear', [value, constant(`${name}_scale`, [], new Float32Array([p.scale])), constant(`${name}_zp`, [], new Uint8Array([p.zeroPoint]))], [name]);
      q = { q: name, p };
      quantized.set(value, q);
    }
    return q;
  };
  /**
   * A float view of `value` for one consumer, times `factor`: in the int8 graph its own DequantizeLinear (the
   * factor in its scale); in the calibration graph the value itself (times the factor).
   */
  const floatOf = (value: string, factor = 1): string => {
    const name = `${value}_dq${counter++}`;
    if (!quantizing || !int8Domain.has(value)) {
      if (factor === 1) return value;
      node('Mul', [value, constant(`${name}_factor`, [], new Float32Array([factor]))], [name]);
      return name;
    }
    const { q, p } = qOf(value);
    node('DequantizeLinear', [q, constant(`${name}_scale`, [], new Float32Array([Math.fround(p.scale * factor)])), constant(`${name}_zp`, [], new Uint8Array([p.zeroPoint]))], [name]);
    return name;
  };
  const allInt8 = (values: string[]) => values.every((v) => int8Domain.has(v));

  /** PReLU outputs carried as [Relu(x), x] (see `splitPRelu`): the carried value and the slopes. */
  const splitInputs = new Map<string, { value: string; slopes: Float32Array }>();
  const convs = net.layers.filter((l) => l.type === 'Convolution');
  const lastConv = convs[convs.length - 1];
  const floatConv = new Set(convs.slice(convs.length - floatConvs));

  for (const layer of net.layers) {
    const ins = layer.type === 'Input' ? [] : layer.inputs.map((blob) => {
      const name = alias.get(blob);
      if (name === undefined) throw new Error(`blob ${blob} is used before it is produced`);
      return name;
    });
    const out = `blob_${layer.outputs[0]}`;
    switch (layer.type) {
      case 'Input':
        alias.set(layer.outputs[0], 'input');
        // 8-bit pixels / 255 are exactly representable: no loss at the input.
        enterInt8('input', () => quantParams({ lo: 0, hi: 1 }, false));
        break;
      case 'Split':
        for (const o of layer.outputs) alias.set(o, ins[0]);
        break;
      case 'Convolution':
        convolution(layer, ins[0], out, !floatConv.has(layer) && int8Domain.has(ins[0]));
        alias.set(layer.outputs[0], out);
        break;
      case 'PReLU': {
        if (plan?.splitPRelu !== false && int8Domain.has(ins[0]) && feedsOnlyInt8Convs(layer)) {
          splitPRelu(layer, ins[0], out);
          alias.set(layer.outputs[0], out);
          break;
        }
        const slope = constant(`${layer.name}_slope`, [layer.weight!.length, 1, 1], Float32Array.from(layer.weight!));
        node('PRelu', [floatOf(ins[0]), slope], [out]);
        if (int8Domain.has(ins[0])) enterMeasured(out);
        alias.set(layer.outputs[0], out);
        break;
      }
      case 'Concat': {
        if (param(layer, 0, 0) !== 0) throw new Error(`${layer.name}: only channel concat is supported`);
        node('Concat', ins.map((v) => floatOf(v)), [out], [int('axis', 1)]);
        concatParts.set(out, ins);
        if (allInt8(ins) && groups.has(out)) {
          // The group's range, which holds every input: those in the group are copied.
          enterInt8(out, () => groups.get(out)!);
        } else if (allInt8(ins)) {
          // The envelope of the inputs' ranges: every input fits without clipping, and nothing new to measure.
          enterInt8(out, () => {
            const ps = ins.map(paramsOf);
            if (ps.every((p) => p === ps[0])) return ps[0];
            const lo = Math.min(...ps.map((p) => -p.zeroPoint * p.scale));
            const hi = Math.max(...ps.map((p) => (255 - p.zeroPoint) * p.scale));
            return quantParams({ lo, hi }, false);
          });
        }
        alias.set(layer.outputs[0], out);
        break;
      }
      case 'Eltwise':
      case 'BinaryOp': {
        if (layer.type === 'Eltwise' && param(layer, 0, 1) !== 1) throw new Error(`${layer.name}: only Eltwise sum (0=1) is supported`);
        if (layer.type === 'BinaryOp' && param(layer, 0, 0) !== 0) throw new Error(`${layer.name}: only BinaryOp add is supported`);
        if (ins.length !== 2) throw new Error(`${layer.name}: only sums of two inputs are supported`);
        const coeffs = layer.type === 'Eltwise' ? layer.params.get(-23301) ?? [1, 1] : [1, 1];
        node('Add', ins.map((v, i) => floatOf(v, coeffs[i])), [out]);
        if (allInt8(ins)) enterMeasured(out);
        alias.set(layer.outputs[0], out);
        break;
      }
      case 'Interp': {
        if (param(layer, 0, 0) !== 1) throw new Error(`${layer.name}: only nearest-neighbour Interp is supported`);
        const s = param(layer, 1, 1);
        const scales = constant(`${layer.name}_scales`, [4], new Float32Array([1, 1, s, param(layer, 2, 1)]));
        node('Resize', [floatOf(ins[0]), '', scales], [out], [
          str('mode', 'nearest'),
          str('coordinate_transformation_mode', 'asymmetric'),
          str('nearest_mode', 'floor'),
        ]);
        // Nearest-neighbour only copies values: the input's parameters fit exactly, and onnxruntime then runs it on uint8.
        if (int8Domain.has(ins[0])) enterInt8(out, () => paramsOf(ins[0]));
        alias.set(layer.outputs[0], out);
        break;
      }
      case 'PixelShuffle':
        node('DepthToSpace', [floatOf(ins[0])], [out], [int('blocksize', param(layer, 0, 1)), str('mode', 'CRD')]);
        if (int8Domain.has(ins[0])) enterInt8(out, () => paramsOf(ins[0]));
        alias.set(layer.outputs[0], out);
        break;
      default:
        throw new Error(`${layer.name}: ncnn layer type ${layer.type} is not supported`);
    }
  }

  const last = `blob_${lastConv.outputs[0]}`;
  const finalBlob = net.layers[net.layers.length - 1].outputs[0];
  const result = alias.get(finalBlob) ?? last;
  node('Clip', [floatOf(result), constant('zero', [], new Float32Array([0])), constant('one', [], new Float32Array([1]))], ['output']);

  const extra = [...observed, ...(quantizing ? [] : convInputs.filter((n) => n !== 'input' && !observed.includes(n))), ...(quantizing && !plan.probe ? [] : [last])];
  const onnx = encodeModel({
    name: modelName,
    doc: `${modelName}${quantizing ? ' int8 (QDQ)' : ' calibration graph'}: Real-ESRGAN weights (BSD-3-Clause, Real-ESRGAN authors), converted from ncnn`,
    nodes,
    initializers,
    inputs: [imageInfo('input', 'height', 'width')],
    outputs: [imageInfo('output', 'out_height', 'out_width'), ...extra.map((name) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } }))],
  });
  return { onnx, observed, convInputs, lastConvOutput: last, convReads };

  /** Does every reader of `layer`'s output become an int8 convolution (so none needs the PReLU itself)? */
  function feedsOnlyInt8Convs(layer: NcnnLayer): boolean {
    const readers = readersOf(net, layer.outputs[0]);
    return readers.length > 0 && readers.every((r) => r.type === 'Convolution' && !floatConv.has(r));
  }

  /**
   * PReLU(x) = (1 - slope) * Relu(x) + slope * x, per channel: the int8 graph carries [Relu(x), x] (a
   * QLinearLeakyRelu with alpha 0 and a QLinearConcat that copies, both at x's range) and the next convolution
   * takes the slopes into its weights (`splitWeights`). onnxruntime has no int8 PReLU: as a float PRelu with a
   * dequantize before and a quantize after it took 360 of 700 ms at 256x256.
   */
  function splitPRelu(layer: NcnnLayer, input: string, output: string): void {
    const relu = `${output}_relu`;
    const value = `${output}_split`;
    const params = () => paramsOf(input);
    node('LeakyRelu', [floatOf(input)], [relu], [float('alpha', 0)]);
    enterInt8(relu, params);
    node('Concat', [floatOf(relu), floatOf(input)], [value], [int('axis', 1)]);
    enterInt8(value, params);
    enterInt8(output, params);
    splitInputs.set(output, { value, slopes: layer.weight! });
  }

  function convolution(layer: NcnnLayer, input: string, output: string, int8: boolean): void {
    const outCh = param(layer, 0, 0);
    const k = param(layer, 1, 1);
    const pad = param(layer, 4, 0);
    if ((layer.params.has(11) && param(layer, 11, k) !== k) || param(layer, 2, 1) !== 1 || param(layer, 3, 1) !== 1 || param(layer, 7, 1) !== 1) {
      throw new Error(`${layer.name}: only square, undilated, unstrided, ungrouped convolutions are supported`);
    }
    const perOut = layer.weight!.length / outCh;
    const inCh = perOut / (k * k);
    const dims = [outCh, inCh, k, k];
    const attrs = [ints('kernel_shape', [k, k]), ints('pads', [pad, pad, pad, pad]), ints('strides', [1, 1]), ints('dilations', [1, 1]), int('group', 1)];
    const activation = param(layer, 9, 0);
    if (activation !== 0 && activation !== 2) throw new Error(`${layer.name}: fused activation ${activation} is not supported`);
    const convOut = activation === 0 ? output : `${output}_preact`;
    const lastShift = layer === lastConv ? plan?.lastShift : undefined;
    const bias = (layer.bias ?? new Float32Array(outCh)).map((v, o) => v - (lastShift?.[o] ?? 0));
    const split = int8 ? splitInputs.get(input) : undefined;
    if (split) input = split.value;
    const x = floatOf(input);
    const weight = split ? splitWeights(layer.weight!, outCh, k * k, split.slopes) : layer.weight!;
    if (split) dims[1] = 2 * inCh;
    const perIn = weight.length / outCh;
    if (!quantizing || !int8) {
      node('Conv', [x, constant(`${layer.name}_w`, dims, Float32Array.from(weight)), constant(`${layer.name}_b`, [outCh], Float32Array.from(bias))], [convOut], attrs);
    } else {
      const inScale = qOf(input).p.scale;
      const mean = plan.inputMeans?.get(input);
      const factor = plan.roundingFactors?.get(input);
      if (factor && factor.size < perIn) throw new Error(`${layer.name}: the rounding factor for ${input} is too small`);
      const rounded = factor ? plan.rounded?.get(layer.name) ?? new Int8Array(weight.length) : undefined;
      const fresh = factor !== undefined && !plan.rounded?.has(layer.name);
      const wq = new Int8Array(weight.length);
      const wScale = new Float32Array(outCh);
      const bq = new Int32Array(outCh);
      const bScale = new Float32Array(outCh);
      for (let o = 0; o < outCh; o++) {
        const w = weight.subarray(o * perIn, (o + 1) * perIn);
        const max = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        wScale[o] = max > 0 ? max / 127 : 1;
        if (fresh) roundAgainst(w, wScale[o], factor.r, rounded!.subarray(o * perIn, (o + 1) * perIn), factor.size);
        let shift = 0;
        for (let i = 0; i < perIn; i++) {
          wq[o * perIn + i] = rounded ? rounded[o * perIn + i] : Math.round(w[i] / wScale[o]);
          if (mean) shift += (wq[o * perIn + i] * wScale[o] - w[i]) * mean[Math.floor(i / (k * k))];
        }
        bScale[o] = inScale * wScale[o];
        bq[o] = Math.round((bias[o] - shift) / bScale[o]);
      }
      if (fresh) plan.rounded?.set(layer.name, rounded!);
      const w = `${layer.name}_w`;
      const b = `${layer.name}_b`;
      node('DequantizeLinear', [constant(`${w}_q`, dims, wq), constant(`${w}_scale`, [outCh], wScale), constant(`${w}_zp`, [outCh], new Int8Array(outCh))], [w], [int('axis', 0)]);
      node('DequantizeLinear', [constant(`${b}_q`, [outCh], bq), constant(`${b}_scale`, [outCh], bScale), constant(`${b}_zp`, [outCh], new Int32Array(outCh))], [b], [int('axis', 0)]);
      node('Conv', [x, w, b], [convOut], attrs);
    }
    if (int8) {
      enterMeasured(convOut);
      convInputs.push(input);
      convReads.set(input, { k, pad, parts: concatParts.get(input) ?? [input] });
    }
    if (activation === 2) {
      node('LeakyRelu', [floatOf(convOut)], [output], [float('alpha', layer.params.get(-23310)?.[0] ?? 0)]);
      if (int8) enterMeasured(output);
    }
  }
}

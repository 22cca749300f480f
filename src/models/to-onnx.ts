/**
 * Converts an ncnn RealESRGAN-family network into an ONNX model: float32 NCHW input named `input` with dynamic
 * height and width, values in [0,1]; output `output`, clamped to [0,1].
 */
import { DataType, encodeModel, float, imageInfo, int, ints, str, type Attribute } from './onnx-schema.js';
import { param, type NcnnLayer, type NcnnNet } from './ncnn.js';

interface Node {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Attribute[];
}

interface Tensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

/** What the conversion learned about the network besides the ONNX bytes. */
export interface ConvertedModel {
  onnx: Uint8Array;
  /** Output size / input size. */
  scale: number;
  /** Floating-point operations (a multiply-add counts 2) per input pixel, convolutions only. */
  flopsPerPixel: number;
}

/** Builds the ONNX graph for `net`, whose weights must already be read with `readBin`. */
export function convertToOnnx(net: NcnnNet, modelName: string): ConvertedModel {
  const nodes: Node[] = [];
  const initializers: Tensor[] = [];
  /** ncnn blob name → ONNX value name (Split only aliases). */
  const alias = new Map<string, string>();
  /** Spatial size of each value relative to the input, to count FLOPs and find the model's scale. */
  const blobScale = new Map<string, number>();
  /** Channels of each value. */
  const blobChannels = new Map<string, number>();
  const consumed = new Set<string>();
  let flopsPerPixel = 0;

  const resolve = (blob: string): string => {
    const name = alias.get(blob);
    if (name === undefined) throw new Error(`blob ${blob} is used before it is produced`);
    consumed.add(name);
    return name;
  };
  const produce = (blob: string, name: string, scale: number, channels: number) => {
    alias.set(blob, name);
    blobScale.set(name, scale);
    blobChannels.set(name, channels);
  };
  const constant = (name: string, dims: number[], values: Float32Array | BigInt64Array): string => {
    const dataType = values instanceof Float32Array ? DataType.FLOAT : DataType.INT64;
    const raw = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    initializers.push({ name, dims, data_type: dataType, raw_data: raw.slice() });
    return name;
  };
  const node = (op_type: string, name: string, input: string[], output: string[], attribute: Attribute[] = []) =>
    nodes.push({ op_type, name, input, output, attribute });

  const folds = planPReluFolds(net);

  for (const layer of net.layers) {
    const ins = layer.type === 'Input' ? [] : layer.inputs.map(resolve);
    const inScale = ins.length > 0 ? blobScale.get(ins[0])! : 1;
    const inChannels = ins.length > 0 ? blobChannels.get(ins[0])! : 3;
    // Prefixed so that no ncnn blob name can clash with the graph's own `input` and `output`.
    const blob = layer.outputs[0];
    const out = `blob_${blob}`;
    switch (layer.type) {
      case 'Input':
        produce(blob, 'input', 1, 3);
        break;
      case 'Split':
        for (const o of layer.outputs) produce(o, ins[0], inScale, inChannels);
        break;
      case 'Convolution':
        flopsPerPixel += convolution(layer, ins[0], out) * inScale * inScale;
        produce(blob, out, inScale, param(layer, 0, 0));
        break;
      case 'PReLU':
        prelu(layer, ins[0], out);
        produce(blob, out, inScale, inChannels);
        break;
      case 'Concat':
        if (param(layer, 0, 0) !== 0) throw new Error(`${layer.name}: only channel concat is supported`);
        node('Concat', layer.name, ins, [out], [int('axis', 1)]);
        produce(blob, out, inScale, ins.reduce((sum, name) => sum + blobChannels.get(name)!, 0));
        break;
      case 'Eltwise':
        eltwise(layer, ins, out, inChannels);
        produce(blob, out, inScale, inChannels);
        break;
      case 'BinaryOp':
        if (param(layer, 0, 0) !== 0) throw new Error(`${layer.name}: only BinaryOp add (0=0) is supported`);
        node('Add', layer.name, ins, [out]);
        produce(blob, out, inScale, inChannels);
        break;
      case 'Interp': {
        if (param(layer, 0, 0) !== 1) throw new Error(`${layer.name}: only nearest-neighbour Interp (0=1) is supported`);
        const sh = param(layer, 1, 1);
        const sw = param(layer, 2, 1);
        if (sh !== sw) throw new Error(`${layer.name}: unequal height and width scales are not supported`);
        const scales = constant(`${layer.name}_scales`, [4], new Float32Array([1, 1, sh, sw]));
        node('Resize', layer.name, [ins[0], '', scales], [out], [
          str('mode', 'nearest'),
          str('coordinate_transformation_mode', 'asymmetric'),
          str('nearest_mode', 'floor'),
        ]);
        produce(blob, out, inScale * sh, inChannels);
        break;
      }
      case 'PixelShuffle': {
        const r = param(layer, 0, 1);
        node('DepthToSpace', layer.name, ins, [out], [int('blocksize', r), str('mode', 'CRD')]);
        produce(blob, out, inScale * r, inChannels / (r * r));
        break;
      }
      default:
        throw new Error(`${layer.name}: ncnn layer type ${layer.type} is not supported`);
    }
  }

  const produced = [...new Set(alias.values())];
  const outputs = produced.filter((name) => !consumed.has(name) && name !== 'input');
  if (outputs.length !== 1) throw new Error(`expected one network output, found ${outputs.length}`);
  const scale = blobScale.get(outputs[0])!;
  node('Clip', 'clamp_output', [outputs[0], constant('zero', [], new Float32Array([0])), constant('one', [], new Float32Array([1]))], ['output']);

  const onnx = encodeModel({
    name: modelName,
    doc: `${modelName}: Real-ESRGAN weights (BSD-3-Clause, Real-ESRGAN authors), converted from ncnn`,
    nodes,
    initializers,
    inputs: [imageInfo('input', 'height', 'width')],
    outputs: [imageInfo('output', 'out_height', 'out_width')],
  });
  return { onnx, scale, flopsPerPixel };

  /** Adds Conv (+ activation) and returns its FLOPs per pixel at its own resolution. */
  function convolution(layer: NcnnLayer, input: string, output: string): number {
    const outCh = param(layer, 0, 0);
    const k = param(layer, 1, 1);
    const kw = layer.params.has(11) ? param(layer, 11, k) : k;
    const dilation = param(layer, 2, 1);
    const stride = param(layer, 3, 1);
    const pad = param(layer, 4, 0);
    if (kw !== k || dilation !== 1 || stride !== 1 || pad < 0 || param(layer, 7, 1) !== 1) {
      throw new Error(`${layer.name}: only square, undilated, unstrided, ungrouped convolutions are supported`);
    }
    const inCh = layer.weight!.length / (outCh * k * k);
    if (!Number.isInteger(inCh)) throw new Error(`${layer.name}: weight count ${layer.weight!.length} does not fit ${outCh}x?x${k}x${k}`);
    const outScale = folds.outScale.get(layer.name);
    const inSign = folds.inSign.get(layer.name);
    const weights = Float32Array.from(layer.weight!, (v, i) => {
      const o = Math.floor(i / (inCh * k * k));
      const c = Math.floor(i / (k * k)) % inCh;
      return v * (outScale?.[o] ?? 1) * (inSign?.[c] ?? 1);
    });
    const w = constant(`${layer.name}_w`, [outCh, inCh, k, k], weights);
    const convIn = [input, w];
    if (layer.bias) convIn.push(constant(`${layer.name}_b`, [outCh], layer.bias.map((v, o) => v * (outScale?.[o] ?? 1))));
    const activation = param(layer, 9, 0);
    const convOut = activation === 0 ? output : `${output}_preact`;
    node('Conv', layer.name, convIn, [convOut], [
      ints('kernel_shape', [k, k]),
      ints('pads', [pad, pad, pad, pad]),
      ints('strides', [1, 1]),
      ints('dilations', [1, 1]),
      int('group', 1),
    ]);
    if (activation === 1) {
      node('Relu', `${layer.name}_relu`, [convOut], [output]);
    } else if (activation === 2) {
      const slope = layer.params.get(-23310)?.[0] ?? 0;
      node('LeakyRelu', `${layer.name}_lrelu`, [convOut], [output], [float('alpha', slope)]);
    } else if (activation !== 0) {
      throw new Error(`${layer.name}: fused activation ${activation} is not supported`);
    }
    return 2 * outCh * inCh * k * k;
  }

  /**
   * Multiplies each channel by its factor, as a BatchNormalization (mean 0, variance 1, no bias): onnxruntime
   * runs that in its blocked NCHWc layout, as a 1x1 depthwise convolution, or folds it into the convolution
   * before. A Mul by a constant instead sent x4plus's activations back to plain NCHW after its first block,
   * with a layout round trip around every later convolution (10% of its run time).
   */
  function scaleChannels(name: string, input: string, factors: Float32Array, output: string): void {
    const c = factors.length;
    const named = (what: string, values: Float32Array) => constant(`${name}_${what}`, [c], values);
    const inputs = [input, named('scale', factors), named('bias', new Float32Array(c)), named('mean', new Float32Array(c))];
    node('BatchNormalization', name, [...inputs, named('var', new Float32Array(c).fill(1))], [output], [float('epsilon', 0)]);
  }

  /**
   * PReLU(x) = slope * x + (1 - slope) * Relu(x), with the per-channel scales as BatchNormalization: onnxruntime
   * keeps Relu, BatchNormalization and Add in its blocked (NCHWc) layout between convolutions, where its PRelu
   * kernel or a Min/Mul form forced a layout round trip per layer (a third of x4fast's run time).
   *
   * Between two convolutions the layer folds into them (see `planPReluFolds`): with sign = +1 for a slope up
   * to 1, else -1, the convolution before writes x' = sign * slope * x, this layer computes
   * x' + Relu((1 - slope) / slope * x'), which is sign * PReLU(x), and the convolution after takes the sign
   * into its weights. onnxruntime runs the scale and Relu as one fused pass and the Add as a second: two
   * passes over the activations instead of four.
   */
  function prelu(layer: NcnnLayer, input: string, output: string): void {
    const slope = layer.weight!;
    if (folds.prelus.has(layer.name)) {
      scaleChannels(`${layer.name}_ratio`, input, slope.map((v) => (1 - v) / v), `${output}_scaled`);
      node('Relu', `${layer.name}_relu`, [`${output}_scaled`], [`${output}_relu`]);
      node('Add', layer.name, [input, `${output}_relu`], [output]);
      return;
    }
    node('Relu', `${layer.name}_relu`, [input], [`${output}_relu`]);
    scaleChannels(`${layer.name}_pos`, `${output}_relu`, slope.map((v) => 1 - v), `${output}_pos`);
    scaleChannels(`${layer.name}_lin`, input, Float32Array.from(slope), `${output}_lin`);
    node('Add', layer.name, [`${output}_pos`, `${output}_lin`], [output]);
  }

  function eltwise(layer: NcnnLayer, inputs: string[], output: string, channels: number): void {
    if (param(layer, 0, 1) !== 1) throw new Error(`${layer.name}: only Eltwise sum (0=1) is supported`);
    const coeffs = layer.params.get(-23301) ?? inputs.map(() => 1);
    const terms = inputs.map((input, i) => {
      if (coeffs[i] === 1) return input;
      scaleChannels(`${layer.name}_scale${i}`, input, new Float32Array(channels).fill(coeffs[i]), `${layer.name}_term${i}`);
      return `${layer.name}_term${i}`;
    });
    node(terms.length === 2 ? 'Add' : 'Sum', layer.name, terms, [output]);
  }
}

/** PReLU layers whose scales fold into the convolutions around them (see `prelu` in `convertToOnnx`). */
interface PReluFolds {
  prelus: Set<string>;
  /** Per output channel factor for a convolution's weights and bias. */
  outScale: Map<string, Float32Array>;
  /** Per input channel sign for a convolution's weights. */
  inSign: Map<string, Float32Array>;
}

/** Smallest slope magnitude that folds: the convolution before scales its output by the slope. */
const MIN_FOLD_SLOPE = 1e-6;

/** +1 for a slope up to 1, else -1: the sign that makes (1 - slope) * Relu(x) a Relu of a scaled x. */
const foldSign = (slope: number) => (slope > 1 ? -1 : 1);

/**
 * A PReLU folds when it reads a convolution without fused activation that nothing else reads, only one
 * convolution reads it, and no slope is within 1e-6 of 0 (where the scaled x' would lose the signal).
 */
function planPReluFolds(net: NcnnNet): PReluFolds {
  const folds: PReluFolds = { prelus: new Set(), outScale: new Map(), inSign: new Map() };
  const readers = (blob: string) => net.layers.filter((l) => l.inputs.includes(blob));
  for (const layer of net.layers) {
    if (layer.type !== 'PReLU') continue;
    const slope = layer.weight!;
    const before = net.layers.find((l) => l.outputs.includes(layer.inputs[0]));
    const after = readers(layer.outputs[0]);
    const plainConv = (l?: NcnnLayer) => l?.type === 'Convolution' && param(l, 9, 0) === 0;
    if (!plainConv(before) || readers(layer.inputs[0]).length !== 1 || after.length !== 1 || after[0].type !== 'Convolution') continue;
    if (slope.some((v) => Math.abs(v) < MIN_FOLD_SLOPE) || folds.outScale.has(before!.name) || folds.inSign.has(after[0].name)) continue;
    folds.prelus.add(layer.name);
    folds.outScale.set(before!.name, slope.map((v) => foldSign(v) * v));
    folds.inSign.set(after[0].name, slope.map(foldSign));
  }
  return folds;
}

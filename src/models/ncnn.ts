/**
 * Reader for ncnn's `.param` (text graph) and `.bin` (weights) files, limited to the layer types the
 * RealESRGAN family uses. The format facts are in shared/design.md; every byte of the `.bin` must be consumed,
 * which is how a misunderstanding of the layout shows up at once instead of as a subtly wrong model.
 */

/** One layer as written in the `.param` file, with its weights once the `.bin` has been read. */
export interface NcnnLayer {
  type: string;
  name: string;
  inputs: string[];
  outputs: string[];
  /** `key=value` parameters; array values (negative keys such as -23310) keep every element. */
  params: Map<number, number[]>;
  /** Convolution: weights [out][in][kh][kw] as float32. PReLU: slopes. */
  weight?: Float32Array;
  /** Convolution with `5=1`: one bias per output channel. */
  bias?: Float32Array;
}

export interface NcnnNet {
  layers: NcnnLayer[];
}

const PARAM_MAGIC = '7767517';
const TAG_FLOAT16 = 0x01306b47;
const TAG_FLOAT32 = 0;

/** First value of parameter `key`, or `fallback` when the layer does not set it. */
export function param(layer: NcnnLayer, key: number, fallback: number): number {
  const value = layer.params.get(key);
  return value === undefined ? fallback : value[0];
}

/** Parses the text of a `.param` file. */
export function parseParam(text: string): NcnnNet {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines[0] !== PARAM_MAGIC) throw new Error(`not an ncnn .param file (magic ${JSON.stringify(lines[0])})`);
  const [layerCount] = lines[1].split(/\s+/).map(Number);
  const layers: NcnnLayer[] = [];
  for (const line of lines.slice(2)) {
    const parts = line.split(/\s+/);
    const [type, name] = parts;
    const nIn = Number(parts[2]);
    const nOut = Number(parts[3]);
    const inputs = parts.slice(4, 4 + nIn);
    const outputs = parts.slice(4 + nIn, 4 + nIn + nOut);
    const params = new Map<number, number[]>();
    for (const kv of parts.slice(4 + nIn + nOut)) {
      const [k, v] = kv.split('=');
      const key = Number(k);
      // Keys at or below -23300 hold arrays written as `count,v1,v2,...`.
      const values = v.split(',').map(Number);
      params.set(key, key <= -23300 ? values.slice(1) : values);
    }
    layers.push({ type, name, inputs, outputs, params });
  }
  if (layers.length !== layerCount) {
    throw new Error(`.param declares ${layerCount} layers but holds ${layers.length}`);
  }
  return { layers };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Reads the `.bin` weights into the layers of `net`, in file order; throws unless every byte is consumed. */
export function readBin(net: NcnnNet, bin: Uint8Array): void {
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  let offset = 0;
  const need = (bytes: number, what: string) => {
    if (offset + bytes > bin.byteLength) throw new Error(`.bin ends inside ${what}`);
  };
  const rawFloats = (count: number, what: string): Float32Array => {
    need(count * 4, what);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + i * 4, true);
    offset += count * 4;
    return out;
  };

  for (const layer of net.layers) {
    if (layer.type === 'Convolution') {
      const count = param(layer, 6, 0);
      need(4, `${layer.name} tag`);
      const tag = view.getUint32(offset, true);
      offset += 4;
      if (tag === TAG_FLOAT16) {
        need(count * 2, `${layer.name} weights`);
        const w = new Float32Array(count);
        for (let i = 0; i < count; i++) w[i] = halfToFloat(view.getUint16(offset + i * 2, true));
        offset += Math.ceil((count * 2) / 4) * 4;
        layer.weight = w;
      } else if (tag === TAG_FLOAT32) {
        layer.weight = rawFloats(count, `${layer.name} weights`);
      } else {
        throw new Error(`${layer.name}: unsupported weight storage tag 0x${tag.toString(16)}`);
      }
      if (param(layer, 5, 0) === 1) layer.bias = rawFloats(param(layer, 0, 0), `${layer.name} bias`);
    } else if (layer.type === 'PReLU') {
      layer.weight = rawFloats(param(layer, 0, 0), `${layer.name} slopes`);
    }
  }
  if (offset !== bin.byteLength) {
    throw new Error(`.bin has ${bin.byteLength - offset} bytes left over after the last layer`);
  }
}

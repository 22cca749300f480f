/**
 * The part of ONNX's protobuf schema (onnx/onnx.proto, proto2) that a convolutional model needs, with the
 * field numbers of the published format. protobufjs does the encoding and decoding.
 */
import protobuf from 'protobufjs';

const SCHEMA = `
syntax = "proto2";
package onnx;

message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message StringStringEntryProto { optional string key = 1; optional string value = 2; }

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  optional string doc_string = 12;
}

message TensorShapeProto {
  message Dimension {
    oneof value { int64 dim_value = 1; string dim_param = 2; }
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}

message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; optional string doc_string = 3; }

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional AttributeType type = 20;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}
`;

/** The `onnx.ModelProto` message type. */
export const ModelProto = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('onnx.ModelProto');

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

/** ONNX AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

/** The ONNX versions the project writes: opset 17 has every operator used here, IR 8 goes with it. */
export const OPSET = 17;
export const IR_VERSION = 8;

/** An attribute of a node, as `ModelProto` encodes it. */
export interface Attribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

/** Attribute builders, e.g. `ints('pads', [1, 1, 1, 1])`. */
export const ints = (name: string, values: number[]): Attribute => ({ name, type: AttributeType.INTS, ints: values });
export const int = (name: string, value: number): Attribute => ({ name, type: AttributeType.INT, i: value });
export const float = (name: string, value: number): Attribute => ({ name, type: AttributeType.FLOAT, f: value });
export const str = (name: string, value: string): Attribute => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });

/** A float32 NCHW RGB image of dynamic height and width, as a graph input or output (`h`, `w` name its dims). */
export const imageInfo = (name: string, h: string, w: string) => ({
  name,
  type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_value: 1 }, { dim_value: 3 }, { dim_param: h }, { dim_param: w }] } } },
});

/** What `encodeModel` writes: one graph named after the model. */
export interface ModelParts {
  name: string;
  /** Says what the file is and whose weights it holds. */
  doc: string;
  nodes: object[];
  initializers: object[];
  inputs: object[];
  outputs: object[];
}

/**
 * Encodes a model as the project writes them all: IR 8, opset 17, producer image-enhancer.
 *
 * @example
 * const onnx = encodeModel({ name: 'x4fast', doc, nodes, initializers, inputs: [imageInfo('input', 'height', 'width')], outputs });
 */
export function encodeModel(parts: ModelParts): Uint8Array {
  const model = {
    ir_version: IR_VERSION,
    producer_name: 'image-enhancer',
    producer_version: '1',
    doc_string: parts.doc,
    opset_import: [{ domain: '', version: OPSET }],
    graph: { name: parts.name, node: parts.nodes, initializer: parts.initializers, input: parts.inputs, output: parts.outputs },
  };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

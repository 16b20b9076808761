import { ProtobufWriter } from './protobuf-writer.ts';

/** ONNX TensorProto.DataType values used by the engine. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  DOUBLE: 11,
} as const;
export type OnnxDataTypeCode = (typeof OnnxDataType)[keyof typeof OnnxDataType];

export type OnnxAttribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'tensor'; value: OnnxTensor }
  | { kind: 'graph'; value: OnnxGraph };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  attributes?: Readonly<Record<string, OnnxAttribute>>;
  domain?: string;
}

export interface OnnxTensor {
  name: string;
  dataType: OnnxDataTypeCode;
  dims: readonly number[];
  /** Little-endian raw bytes, as ONNX raw_data stores them. Ignored when `external` is set. */
  raw: Uint8Array;
  /**
   * Keeps the data in another file instead (ONNX external data): `location` relative to the model
   * file's directory, the data at `offset` (default 0) for `length` bytes (default: to the end).
   */
  external?: { location: string; offset?: number; length?: number };
}

/** ONNX SparseTensorProto: `values` at `indices` of a dense tensor of shape `dims`. */
export interface OnnxSparseTensor {
  values: OnnxTensor;
  indices: OnnxTensor;
  dims: readonly number[];
}

/** A dimension is a fixed size or a symbolic name such as "batch". */
export type OnnxDimension = number | string;

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataTypeCode;
  shape: readonly OnnxDimension[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  sparseInitializers?: readonly OnnxSparseTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  graph: OnnxGraph;
  opsetVersion: number;
  irVersion: number;
  producerName: string;
  producerVersion: string;
  metadata?: Readonly<Record<string, string>>;
}

/** IR 8 / opset 17 is understood by every ONNX Runtime since 1.13 and by the onnx checker 1.12+. */
export const ENGINE_OPSET = 17;
export const ENGINE_IR_VERSION = 8;

export const attribute = {
  int: (value: number): OnnxAttribute => ({ kind: 'int', value }),
  float: (value: number): OnnxAttribute => ({ kind: 'float', value }),
  string: (value: string): OnnxAttribute => ({ kind: 'string', value }),
  ints: (value: readonly number[]): OnnxAttribute => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): OnnxAttribute => ({ kind: 'floats', value }),
  tensor: (value: OnnxTensor): OnnxAttribute => ({ kind: 'tensor', value }),
  graph: (value: OnnxGraph): OnnxAttribute => ({ kind: 'graph', value }),
};

export function floatTensor(name: string, dims: readonly number[], values: Float32Array | readonly number[]): OnnxTensor {
  const array = values instanceof Float32Array ? values : Float32Array.from(values);
  return { name, dataType: OnnxDataType.FLOAT, dims, raw: new Uint8Array(array.buffer, array.byteOffset, array.byteLength) };
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): OnnxTensor {
  const array = BigInt64Array.from(values.map((value) => BigInt(value)));
  return { name, dataType: OnnxDataType.INT64, dims, raw: new Uint8Array(array.buffer) };
}

function writeTensor(writer: ProtobufWriter, tensor: OnnxTensor): void {
  if (tensor.dims.length > 0) writer.packedInt64(1, tensor.dims);
  writer.int64(2, tensor.dataType);
  writer.string(8, tensor.name);
  if (tensor.external === undefined) {
    writer.bytes(9, tensor.raw);
    return;
  }
  const entries: [string, string][] = [['location', tensor.external.location]];
  if (tensor.external.offset !== undefined) entries.push(['offset', String(tensor.external.offset)]);
  if (tensor.external.length !== undefined) entries.push(['length', String(tensor.external.length)]);
  for (const [key, value] of entries) writer.message(13, (entry) => entry.string(1, key).string(2, value));
  writer.int64(14, 1); // data_location = EXTERNAL
}

function writeSparseTensor(writer: ProtobufWriter, tensor: OnnxSparseTensor): void {
  writer.message(1, (inner) => writeTensor(inner, tensor.values));
  writer.message(2, (inner) => writeTensor(inner, tensor.indices));
  if (tensor.dims.length > 0) writer.packedInt64(3, tensor.dims);
}

const attributeTypeCode = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7 } as const;

function writeAttribute(writer: ProtobufWriter, name: string, value: OnnxAttribute): void {
  writer.string(1, name);
  switch (value.kind) {
    case 'float':
      writer.float32(2, value.value);
      break;
    case 'int':
      writer.int64(3, value.value);
      break;
    case 'string':
      writer.string(4, value.value);
      break;
    case 'tensor':
      writer.message(5, (inner) => writeTensor(inner, value.value));
      break;
    case 'graph':
      writer.message(6, (inner) => writeGraph(inner, value.value));
      break;
    case 'floats':
      writer.packedFloat32(7, value.value);
      break;
    case 'ints':
      writer.packedInt64(8, value.value);
      break;
  }
  writer.int64(20, attributeTypeCode[value.kind]);
}

function writeNode(writer: ProtobufWriter, node: OnnxNode): void {
  for (const input of node.inputs) writer.string(1, input);
  for (const output of node.outputs) writer.string(2, output);
  writer.string(3, node.name);
  writer.string(4, node.opType);
  if (node.domain !== undefined) writer.string(7, node.domain);
  for (const [name, value] of Object.entries(node.attributes ?? {})) {
    writer.message(5, (inner) => writeAttribute(inner, name, value));
  }
}

function writeValueInfo(writer: ProtobufWriter, info: OnnxValueInfo): void {
  writer.string(1, info.name);
  writer.message(2, (typeProto) =>
    typeProto.message(1, (tensorType) => {
      tensorType.int64(1, info.elemType);
      tensorType.message(2, (shape) => {
        for (const dimension of info.shape) {
          shape.message(1, (dim) => {
            if (typeof dimension === 'number') dim.int64(1, dimension);
            else dim.string(2, dimension);
          });
        }
      });
    }),
  );
}

function writeGraph(writer: ProtobufWriter, graph: OnnxGraph): void {
  for (const node of graph.nodes) writer.message(1, (inner) => writeNode(inner, node));
  writer.string(2, graph.name);
  for (const tensor of graph.initializers) writer.message(5, (inner) => writeTensor(inner, tensor));
  for (const input of graph.inputs) writer.message(11, (inner) => writeValueInfo(inner, input));
  for (const output of graph.outputs) writer.message(12, (inner) => writeValueInfo(inner, output));
  for (const tensor of graph.sparseInitializers ?? []) writer.message(15, (inner) => writeSparseTensor(inner, tensor));
}

/** One NodeProto's bytes (the message body, without a field key). */
export function encodeNode(node: OnnxNode): Uint8Array {
  const writer = new ProtobufWriter();
  writeNode(writer, node);
  return writer.finish();
}

/** One TensorProto's bytes (the message body, without a field key). */
export function encodeTensor(tensor: OnnxTensor): Uint8Array {
  const writer = new ProtobufWriter();
  writeTensor(writer, tensor);
  return writer.finish();
}

/** Serialise to the ONNX protobuf wire format (a `.onnx` file's bytes). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const writer = new ProtobufWriter();
  writer.int64(1, model.irVersion);
  writer.string(2, model.producerName);
  writer.string(3, model.producerVersion);
  writer.message(7, (graph) => writeGraph(graph, model.graph));
  writer.message(8, (opset) => {
    opset.string(1, '');
    opset.int64(2, model.opsetVersion);
  });
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    writer.message(14, (entry) => entry.string(1, key).string(2, value));
  }
  return writer.finish();
}

/**
 * A field-level view of an ONNX ModelProto for tools that rewrite part of a model and must keep the
 * rest byte for byte (quantization, cost analysis): every field of the model and of its main graph
 * is kept as a span of the original bytes, and only what those tools read is decoded (nodes, their
 * attributes, initializers, graph inputs and outputs, opset imports). Field numbers are onnx.proto's.
 */
import { InvalidOnnxError } from './external-data.ts';
import { ProtobufDecodeError, ProtobufReader, WireType } from './protobuf-reader.ts';
import { varintBytes } from './skeleton.ts';

/** One field of a message: its bytes are `message.subarray(start, end)`, key included. */
export interface FieldSpan {
  readonly field: number;
  readonly wireType: number;
  readonly start: number;
  readonly end: number;
  /** Length-delimited fields: the payload. */
  readonly payload?: Uint8Array;
  /** Varint fields: the value as a signed 32-bit-safe number (int64 values beyond that are not needed here). */
  readonly value?: number;
}

export interface AttributeView {
  readonly name: string;
  readonly int?: number;
  readonly float?: number;
  readonly text?: string;
  readonly ints?: readonly number[];
  /** GraphProto bodies of `g` and `graphs` (If, Loop, Scan). */
  readonly graphs: readonly Uint8Array[];
  /** The attribute's own bytes as a NodeProto field (key included), to copy onto another node. */
  readonly fieldBytes: Uint8Array;
}

export interface NodeView {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, AttributeView>;
}

export interface TensorView {
  readonly name: string;
  readonly dataType: number;
  readonly dims: readonly number[];
  /** Data kept in another file (data_location EXTERNAL or external_data entries). */
  readonly external: boolean;
  readonly rawData?: Uint8Array;
  /** float_data, packed or not. */
  readonly floatData?: readonly number[];
}

export interface GraphView {
  readonly fields: readonly FieldSpan[];
  readonly bytes: Uint8Array;
  /** Index into `fields` with the decoded node. */
  readonly nodes: readonly { readonly fieldIndex: number; readonly node: NodeView }[];
  readonly initializers: readonly { readonly fieldIndex: number; readonly tensor: TensorView }[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface ModelView {
  readonly bytes: Uint8Array;
  readonly fields: readonly FieldSpan[];
  readonly graphFieldIndex: number;
  readonly graph: GraphView;
  readonly irVersion: number;
  /** Opset of the default ('' or 'ai.onnx') domain; 0 when the model imports none. */
  readonly defaultOpset: number;
}

const Model = { irVersion: 1, graph: 7, opsetImport: 8 } as const;
const Opset = { domain: 1, version: 2 } as const;
const Graph = { node: 1, initializer: 5, input: 11, output: 12 } as const;
const Node = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const Attribute = { name: 1, f: 2, i: 3, s: 4, g: 6, ints: 8, graphs: 11 } as const;
const Tensor = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9, externalData: 13, dataLocation: 14 } as const;
const ValueInfo = { name: 1 } as const;

const utf8 = new TextDecoder();

/** A varint's low 32 bits as a signed number: small negative int64s (axis -1) come out right. */
function signed(reader: ProtobufReader): number {
  return reader.fitsIn32Bits ? reader.low32 : reader.low32 | 0;
}

export function fieldSpans(message: Uint8Array): FieldSpan[] {
  const reader = new ProtobufReader(message);
  const spans: { field: number; wireType: number; start: number; payload?: Uint8Array; value?: number }[] = [];
  while (reader.next()) {
    const span: { field: number; wireType: number; start: number; payload?: Uint8Array; value?: number } = { field: reader.field, wireType: reader.wireType, start: reader.offset };
    if (reader.wireType === WireType.LENGTH_DELIMITED) span.payload = reader.payload('field');
    else if (reader.wireType === WireType.VARINT) span.value = signed(reader);
    spans.push(span);
  }
  return spans.map((span, index) => ({ ...span, end: index + 1 < spans.length ? spans[index + 1]!.start : message.byteLength }));
}

/** Packed varints (repeated int64 in a length-delimited field). */
function packedVarints(payload: Uint8Array): number[] {
  const values: number[] = [];
  let position = 0;
  while (position < payload.length) {
    let value = 0;
    let scale = 1;
    let byte: number;
    let count = 0;
    do {
      if (position >= payload.length || count >= 10) throw new InvalidOnnxError('a packed varint is truncated');
      byte = payload[position++]!;
      value += (byte & 0x7f) * scale;
      scale *= 128;
      count += 1;
    } while ((byte & 0x80) !== 0);
    // Negative int64s are ten-byte two's complement: fold them back.
    values.push(value >= 2 ** 63 ? value - 2 ** 64 : value);
  }
  return values;
}

function text(span: FieldSpan): string {
  return utf8.decode(span.payload ?? new Uint8Array(0));
}

function fixed32Float(message: Uint8Array, span: FieldSpan): number {
  return new DataView(message.buffer, message.byteOffset + span.end - 4, 4).getFloat32(0, true);
}

function readAttribute(bytes: Uint8Array, fieldBytes: Uint8Array): AttributeView {
  let name = '';
  let int: number | undefined;
  let float: number | undefined;
  let attributeText: string | undefined;
  const ints: number[] = [];
  const graphs: Uint8Array[] = [];
  for (const span of fieldSpans(bytes)) {
    if (span.field === Attribute.name) name = text(span);
    else if (span.field === Attribute.f && span.wireType === WireType.FIXED32) float = fixed32Float(bytes, span);
    else if (span.field === Attribute.i && span.value !== undefined) int = span.value;
    else if (span.field === Attribute.s) attributeText = text(span);
    else if (span.field === Attribute.ints) {
      if (span.payload !== undefined) ints.push(...packedVarints(span.payload));
      else if (span.value !== undefined) ints.push(span.value);
    } else if ((span.field === Attribute.g || span.field === Attribute.graphs) && span.payload !== undefined) graphs.push(span.payload);
  }
  return {
    name,
    graphs,
    fieldBytes,
    ...(int === undefined ? {} : { int }),
    ...(float === undefined ? {} : { float }),
    ...(attributeText === undefined ? {} : { text: attributeText }),
    ...(ints.length === 0 ? {} : { ints }),
  };
}

export function readNode(bytes: Uint8Array): NodeView {
  const inputs: string[] = [];
  const outputs: string[] = [];
  const attributes = new Map<string, AttributeView>();
  let name = '';
  let opType = '';
  let domain = '';
  for (const span of fieldSpans(bytes)) {
    if (span.field === Node.input) inputs.push(text(span));
    else if (span.field === Node.output) outputs.push(text(span));
    else if (span.field === Node.name) name = text(span);
    else if (span.field === Node.opType) opType = text(span);
    else if (span.field === Node.domain) domain = text(span);
    else if (span.field === Node.attribute && span.payload !== undefined) {
      const attribute = readAttribute(span.payload, bytes.subarray(span.start, span.end));
      attributes.set(attribute.name, attribute);
    }
  }
  return { name, opType, domain: domain === 'ai.onnx' ? '' : domain, inputs, outputs, attributes };
}

export function readTensor(bytes: Uint8Array): TensorView {
  let name = '';
  let dataType = 0;
  const dims: number[] = [];
  let external = false;
  let rawData: Uint8Array | undefined;
  const floatData: number[] = [];
  for (const span of fieldSpans(bytes)) {
    if (span.field === Tensor.name) name = text(span);
    else if (span.field === Tensor.dataType && span.value !== undefined) dataType = span.value;
    else if (span.field === Tensor.dims) {
      if (span.payload !== undefined) dims.push(...packedVarints(span.payload));
      else if (span.value !== undefined) dims.push(span.value);
    } else if (span.field === Tensor.rawData) rawData = span.payload;
    else if (span.field === Tensor.floatData) {
      if (span.payload !== undefined) {
        const view = new DataView(span.payload.buffer, span.payload.byteOffset, span.payload.byteLength);
        for (let offset = 0; offset + 4 <= span.payload.byteLength; offset += 4) floatData.push(view.getFloat32(offset, true));
      } else if (span.wireType === WireType.FIXED32) floatData.push(fixed32Float(bytes, span));
    } else if (span.field === Tensor.externalData) external = true;
    else if (span.field === Tensor.dataLocation && span.value === 1) external = true;
  }
  return { name, dataType, dims, external, ...(rawData === undefined ? {} : { rawData }), ...(floatData.length === 0 ? {} : { floatData }) };
}

function readGraph(bytes: Uint8Array): GraphView {
  const fields = fieldSpans(bytes);
  const nodes: { fieldIndex: number; node: NodeView }[] = [];
  const initializers: { fieldIndex: number; tensor: TensorView }[] = [];
  const inputNames: string[] = [];
  const outputNames: string[] = [];
  fields.forEach((span, fieldIndex) => {
    if (span.payload === undefined) return;
    if (span.field === Graph.node) nodes.push({ fieldIndex, node: readNode(span.payload) });
    else if (span.field === Graph.initializer) initializers.push({ fieldIndex, tensor: readTensor(span.payload) });
    else if (span.field === Graph.input || span.field === Graph.output) {
      const nameSpan = fieldSpans(span.payload).find((inner) => inner.field === ValueInfo.name);
      (span.field === Graph.input ? inputNames : outputNames).push(nameSpan === undefined ? '' : text(nameSpan));
    }
  });
  return { fields, bytes, nodes, initializers, inputNames, outputNames };
}

/** Reads the model's fields; InvalidOnnxError when the bytes are not an ONNX model with a graph. */
export function readModelView(bytes: Uint8Array): ModelView {
  try {
    const fields = fieldSpans(bytes);
    const graphFieldIndex = fields.findIndex((span) => span.field === Model.graph && span.payload !== undefined);
    if (graphFieldIndex < 0) throw new InvalidOnnxError('the model has no graph');
    let defaultOpset = 0;
    let irVersion = 0;
    for (const span of fields) {
      if (span.field === Model.irVersion && span.value !== undefined) irVersion = span.value;
      if (span.field !== Model.opsetImport || span.payload === undefined) continue;
      let domain = '';
      let version = 0;
      for (const inner of fieldSpans(span.payload)) {
        if (inner.field === Opset.domain) domain = text(inner);
        if (inner.field === Opset.version && inner.value !== undefined) version = inner.value;
      }
      if (domain === '' || domain === 'ai.onnx') defaultOpset = version;
    }
    return { bytes, fields, graphFieldIndex, graph: readGraph(fields[graphFieldIndex]!.payload!), irVersion, defaultOpset };
  } catch (error) {
    if (error instanceof ProtobufDecodeError) throw new InvalidOnnxError(`the model is not a valid ONNX protobuf: ${error.message}`);
    throw error;
  }
}

/** A length-delimited field: key, length, body. */
export function lengthDelimitedField(field: number, body: Uint8Array): Uint8Array {
  return Buffer.concat([varintBytes(field * 8 + WireType.LENGTH_DELIMITED), varintBytes(body.byteLength), body]);
}

/** The float32 values of a FLOAT tensor stored in the file; undefined for any other tensor. */
export function floatValues(tensor: TensorView): Float32Array | undefined {
  if (tensor.dataType !== 1 || tensor.external) return undefined;
  const count = tensor.dims.reduce((product, dimension) => product * dimension, 1);
  if (tensor.rawData !== undefined) {
    if (tensor.rawData.byteLength !== count * 4) return undefined;
    const copy = new Float32Array(count);
    new Uint8Array(copy.buffer).set(tensor.rawData);
    return copy;
  }
  if (tensor.floatData !== undefined && tensor.floatData.length === count) return Float32Array.from(tensor.floatData);
  return count === 0 ? new Float32Array(0) : undefined;
}

export const GraphFieldNumber = Graph;
export const ModelFieldNumber = Model;

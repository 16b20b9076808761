/**
 * KServe V2 / Open Inference Protocol (REST) adapter: pure functions from the protocol's JSON to the
 * internal InferRequest and back. Spec: kserve docs/predict-api/v2/required_api.md.
 */
import { AiaasError, quoteForError } from '../../errors.ts';
import type { ModelSignature, Tensor, TensorData, TensorDataType, TensorSpec } from '../../runtimes/runtime.ts';
import { elementCount } from '../../runtimes/tensor.ts';
import type { InferRequest, ParameterValue } from '../../inference/types.ts';
import { isLabelsOnly, labelsOnlyClassifications, topClassifications } from './classification.ts';
import { type BinarySection, bytesPerElement, decodeBinaryTensor, encodeBinaryTensor } from './binary-tensors.ts';
import {
  assertElementCap,
  assertTensorRank,
  decodeUtf8Element,
  checkOutputNames,
  flattenData,
  formatShape,
  fromJsonElements,
  fromPackedNumbers,
  invalidTensor,
  isTensorDataType,
  matchSignature,
  tensorDataTypes,
  toJsonElements,
} from './tensor-json.ts';

export interface V2ParseOptions {
  maxTensorElements: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseParameters(value: unknown, where: string): Record<string, ParameterValue> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw new AiaasError('INVALID_REQUEST', `${where}: 'parameters' must be an object`);
  for (const [key, item] of Object.entries(value)) {
    if (!['string', 'number', 'boolean'].includes(typeof item)) {
      throw new AiaasError('INVALID_REQUEST', `${where}: parameter '${key}' must be a string, number or boolean`);
    }
  }
  return value as Record<string, ParameterValue>;
}

/** Which outputs go in the binary section: Triton's per-output `binary_data` over the request's `binary_data_output`. */
export interface BinaryOutputChoice {
  all: boolean;
  byName: ReadonlyMap<string, boolean>;
}

/** A parsed V2 inference call: the internal request plus how its outputs travel back. */
export interface V2InferCall {
  request: InferRequest;
  binaryOutputs: BinaryOutputChoice;
  /** Triton's classification extension: outputs to return as their top-k classes, with k. */
  classifications?: ReadonlyMap<string, number>;
  /** The model's class names (labels in the classification strings). */
  classNames?: string[];
}

/** `"classification": k` on a requested output: a positive integer (Triton's extension). */
function classificationParameter(parameters: Record<string, ParameterValue> | undefined, where: string): number | undefined {
  const value = parameters?.classification;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new AiaasError('INVALID_REQUEST', `${where}: parameter 'classification' must be a positive integer (the number of top classes to return), got ${JSON.stringify(value)}`);
  }
  return value;
}

export function wantsBinaryOutput(choice: BinaryOutputChoice, name: string): boolean {
  return choice.byName.get(name) ?? choice.all;
}

function booleanParameter(parameters: Record<string, ParameterValue> | undefined, key: string, where: string): boolean | undefined {
  const value = parameters?.[key];
  if (value === undefined || typeof value === 'boolean') return value;
  throw new AiaasError('INVALID_REQUEST', `${where}: parameter '${key}' must be true or false`);
}

interface InputHeader {
  name: string;
  datatype: TensorDataType;
  shape: number[];
  data: unknown;
  /** Byte count in the binary section (Triton's `binary_data_size`); undefined for JSON data. */
  binarySize?: number;
}

function parseInputHeader(raw: unknown, index: number, hasBinarySection: boolean): InputHeader {
  if (!isObject(raw)) throw new AiaasError('INVALID_TENSOR', `inputs[${index}] must be an object`);
  if (typeof raw.name !== 'string' || raw.name === '') throw new AiaasError('INVALID_TENSOR', `inputs[${index}] needs a 'name' string`);
  const name = raw.name;
  if (!isTensorDataType(raw.datatype)) {
    throw invalidTensor(name, `unknown datatype ${quoteForError(raw.datatype)}; expected one of ${tensorDataTypes.join(', ')}`);
  }
  if (!Array.isArray(raw.shape) || !raw.shape.every((dim) => Number.isSafeInteger(dim) && (dim as number) >= 0)) {
    throw invalidTensor(name, "'shape' must be an array of non-negative integers");
  }
  assertTensorRank(name, raw.shape.length);
  const shape = raw.shape as number[];
  const binarySize = parseParameters(raw.parameters, `input '${name}'`)?.binary_data_size;
  if (binarySize === undefined) {
    if (raw.data === undefined) throw invalidTensor(name, "missing 'data'");
    return { name, datatype: raw.datatype, shape, data: raw.data };
  }
  if (typeof binarySize !== 'number' || !Number.isSafeInteger(binarySize) || binarySize < 0) {
    throw invalidTensor(name, `binary_data_size must be a non-negative integer, got ${JSON.stringify(binarySize)}`);
  }
  if (raw.data !== undefined) throw invalidTensor(name, "has both 'data' and binary_data_size; send its data one way");
  if (!hasBinarySection) {
    throw invalidTensor(name, 'has binary_data_size, but the request has no binary section (send the Inference-Header-Content-Length header with the JSON length)');
  }
  const width = bytesPerElement(raw.datatype);
  const count = elementCount(shape);
  if (width !== undefined && binarySize !== width * count) {
    throw invalidTensor(name, `binary_data_size is ${binarySize} bytes, but ${raw.datatype} ${formatShape(shape)} is ${width * count} bytes`, {
      expected: width * count,
      actual: binarySize,
    });
  }
  if (width === undefined && binarySize < 4 * count) {
    throw invalidTensor(name, `binary_data_size is ${binarySize} bytes, too small for ${count} BYTES elements of at least 4 bytes each`);
  }
  return { name, datatype: raw.datatype, shape, data: undefined, binarySize };
}

/**
 * Parses `$inference_request` and validates it against the model signature. `section` is the
 * binary tail of a request that carried `Inference-Header-Content-Length`: inputs with
 * `binary_data_size` take their bytes from it, in the order they are listed; the others keep JSON `data`.
 */
export function parseV2InferRequest(json: unknown, signature: ModelSignature, options: V2ParseOptions, section?: BinarySection): V2InferCall {
  if (section?.raw === true) return parseRawBinaryRequest(section.bytes, signature, options);
  const binary = section?.bytes;
  if (!isObject(json)) throw new AiaasError('INVALID_REQUEST', 'the request body must be a JSON object with an "inputs" array');
  if (json.id !== undefined && typeof json.id !== 'string') throw new AiaasError('INVALID_REQUEST', "'id' must be a string");
  const parameters = parseParameters(json.parameters, 'request');
  if (!Array.isArray(json.inputs) || json.inputs.length === 0) throw new AiaasError('INVALID_REQUEST', "'inputs' must be a non-empty array");

  // Declared sizes first, so an oversized request is refused before its data is walked.
  let declaredElements = 0;
  let declaredBinaryBytes = 0;
  const headers = json.inputs.map((raw: unknown, index: number) => {
    const header = parseInputHeader(raw, index, binary !== undefined);
    declaredElements += elementCount(header.shape);
    declaredBinaryBytes += header.binarySize ?? 0;
    return header;
  });
  assertElementCap(declaredElements, options.maxTensorElements);
  if (binary !== undefined && declaredBinaryBytes !== binary.length) {
    throw new AiaasError(
      'INVALID_REQUEST',
      `the binary section after the JSON header has ${binary.length} bytes, but the inputs' binary_data_size values add up to ${declaredBinaryBytes}`,
    );
  }

  let offset = 0;
  const inputs: Tensor[] = headers.map((header) => {
    const expected = elementCount(header.shape);
    if (header.binarySize !== undefined) {
      const bytes = binary!.subarray(offset, offset + header.binarySize);
      offset += header.binarySize;
      return { name: header.name, datatype: header.datatype, shape: header.shape, data: decodeBinaryTensor(bytes, header.datatype, expected, header.name) };
    }
    // A typed array: a parse worker already found a flat array of numbers (see json-offload.ts).
    const packed = header.data instanceof Float32Array || header.data instanceof Float64Array;
    const flat = packed ? (header.data as Float32Array | Float64Array) : flattenData(header.data, header.shape, header.name);
    if (flat.length !== expected) {
      throw invalidTensor(header.name, `shape ${formatShape(header.shape)} needs ${expected} elements, data has ${flat.length}`, {
        expected,
        actual: flat.length,
      });
    }
    const data = packed ? fromPackedNumbers(flat as Float32Array | Float64Array, header.datatype, header.name) : fromJsonElements(flat as unknown[], header.datatype, header.name);
    return { name: header.name, datatype: header.datatype, shape: header.shape, data };
  });

  const request: InferRequest = { inputs: matchSignature(inputs, signature) };
  const byName = new Map<string, boolean>();
  const classifications = new Map<string, number>();
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs)) throw new AiaasError('INVALID_REQUEST', "'outputs' must be an array of {\"name\": ...}");
    const names = json.outputs.map((output: unknown, index: number) => {
      if (!isObject(output) || typeof output.name !== 'string') throw new AiaasError('INVALID_REQUEST', `outputs[${index}] needs a 'name' string`);
      const outputParameters = parseParameters(output.parameters, `output '${output.name}'`);
      const binaryData = booleanParameter(outputParameters, 'binary_data', `output '${output.name}'`);
      if (binaryData !== undefined) byName.set(output.name, binaryData);
      const classification = classificationParameter(outputParameters, `output '${output.name}'`);
      if (classification !== undefined) classifications.set(output.name, classification);
      return output.name;
    });
    checkOutputNames(names, signature);
    if (names.length > 0) request.outputs = names;
  }
  if (typeof json.id === 'string') request.id = json.id;
  if (parameters !== undefined) request.parameters = parameters;
  return {
    request,
    binaryOutputs: { all: booleanParameter(parameters, 'binary_data_output', 'request') ?? false, byName },
    ...(classifications.size === 0 ? {} : { classifications }),
    ...(classifications.size === 0 || signature.classNames === undefined ? {} : { classNames: signature.classNames }),
  };
}

/**
 * Triton's raw binary request (`Inference-Header-Content-Length: 0`): the body is the one input's
 * bytes. The shape comes from the signature: a dynamic leading (batch) dimension of a rank ≥ 2
 * input is 1, as Triton treats such a request as batch 1; one other dynamic dimension is deduced
 * from the byte count. A BYTES input takes the body as its single element. Every output returns binary.
 */
function parseRawBinaryRequest(bytes: Buffer, signature: ModelSignature, options: V2ParseOptions): V2InferCall {
  const raw = 'a raw binary request (Inference-Header-Content-Length: 0)';
  if (signature.inputs.length !== 1) {
    throw new AiaasError('INVALID_REQUEST', `${raw} needs a model with one input; this one has ${signature.inputs.length} (${signature.inputs.map((input) => input.name).join(', ')})`);
  }
  const spec = signature.inputs[0]!;
  const shape = spec.shape.map((dim, index) => (dim < 0 && index === 0 && spec.shape.length > 1 ? 1 : dim));
  let data: TensorData;
  const width = bytesPerElement(spec.datatype);
  if (width === undefined) {
    if (shape.some((dim) => dim > 1)) throw invalidTensor(spec.name, `${raw} of BYTES needs shape [1]; the model's is ${formatShape(spec.shape)}`);
    shape.fill(1);
    data = [decodeUtf8Element(bytes, spec.name, 0)];
  } else {
    const dynamic = shape.flatMap((dim, index) => (dim < 0 ? [index] : []));
    if (dynamic.length > 1) {
      throw invalidTensor(spec.name, `${raw} needs at most one variable dimension besides the batch; the model's shape is ${formatShape(spec.shape)}`);
    }
    const fixedBytes = width * elementCount(shape.filter((dim) => dim >= 0));
    if (dynamic.length === 1) {
      if (fixedBytes === 0 || bytes.length % fixedBytes !== 0) {
        throw invalidTensor(spec.name, `${raw} has ${bytes.length} bytes, not a multiple of ${fixedBytes} (${spec.datatype} ${formatShape(spec.shape)})`);
      }
      shape[dynamic[0]!] = bytes.length / fixedBytes;
    } else if (bytes.length !== fixedBytes) {
      throw invalidTensor(spec.name, `${raw} has ${bytes.length} bytes, but ${spec.datatype} ${formatShape(shape)} is ${fixedBytes} bytes`);
    }
    assertElementCap(elementCount(shape), options.maxTensorElements);
    data = decodeBinaryTensor(bytes, spec.datatype, elementCount(shape), spec.name);
  }
  return { request: { inputs: [{ name: spec.name, datatype: spec.datatype, shape, data }] }, binaryOutputs: { all: true, byName: new Map() } };
}

export interface V2ModelIdentity {
  name: string;
  version: string;
  /** Set when the model withholds scores (`topK`): classification strings then carry no score. */
  outputPolicy?: { topK?: number } | undefined;
}

/** A rendered `$inference_response`: the JSON object, and the binary section when any output is binary. */
export interface V2InferResponseParts {
  json: Record<string, unknown>;
  /** In the order of `json.outputs`; undefined when every output is JSON. */
  binary?: Buffer[];
}

/** `$inference_response`; JSON data is flat (row-major) as most V2 clients expect. */
export function renderV2InferResponse(model: V2ModelIdentity, call: V2InferCall, outputs: readonly Tensor[]): V2InferResponseParts {
  const binary: Buffer[] = [];
  let anyBinary = false;
  const rendered = outputs.map((raw) => {
    const count = call.classifications?.get(raw.name);
    const output =
      count === undefined
        ? raw
        : isLabelsOnly(raw, model.outputPolicy)
          ? labelsOnlyClassifications(raw, count, call.classNames)
          : topClassifications(raw, count, call.classNames);
    if (!wantsBinaryOutput(call.binaryOutputs, output.name)) {
      return { name: output.name, datatype: output.datatype, shape: output.shape, data: toJsonElements(output) };
    }
    anyBinary = true;
    const bytes = encodeBinaryTensor(output);
    binary.push(bytes);
    return { name: output.name, datatype: output.datatype, shape: output.shape, parameters: { binary_data_size: bytes.length } };
  });
  const json = {
    model_name: model.name,
    model_version: model.version,
    ...(call.request.id === undefined ? {} : { id: call.request.id }),
    outputs: rendered,
  };
  return anyBinary ? { json, binary } : { json };
}

/** Triton's platform name for ONNX Runtime models. */
export const v2OnnxPlatform = 'onnxruntime_onnx';

function metadataTensor(spec: TensorSpec): { name: string; datatype: string; shape: number[] } {
  return { name: spec.name, datatype: spec.datatype, shape: spec.shape };
}

/** `$metadata_model_response`. */
export function renderV2ModelMetadata(name: string, versions: readonly string[], signature: ModelSignature): Record<string, unknown> {
  return {
    name,
    versions: [...versions],
    platform: v2OnnxPlatform,
    inputs: signature.inputs.map(metadataTensor),
    outputs: signature.outputs.map(metadataTensor),
  };
}


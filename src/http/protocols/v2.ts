/**
 * KServe V2 / Open Inference Protocol (REST) adapter: pure functions from the protocol's JSON to the
 * internal InferRequest and back. Spec: kserve docs/predict-api/v2/required_api.md.
 */
import { AiaasError, quoteForError } from '../../errors.ts';
import type { ModelSignature, Tensor, TensorSpec } from '../../runtimes/runtime.ts';
import { elementCount } from '../../runtimes/tensor.ts';
import type { InferRequest, ParameterValue } from '../../inference/types.ts';
import {
  assertElementCap,
  assertTensorRank,
  checkOutputNames,
  flattenData,
  formatShape,
  fromJsonElements,
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

/** Parses `$inference_request` and validates it against the model signature. */
export function parseV2InferRequest(body: unknown, signature: ModelSignature, options: V2ParseOptions): InferRequest {
  if (!isObject(body)) throw new AiaasError('INVALID_REQUEST', 'the request body must be a JSON object with an "inputs" array');
  if (body.id !== undefined && typeof body.id !== 'string') throw new AiaasError('INVALID_REQUEST', "'id' must be a string");
  const parameters = parseParameters(body.parameters, 'request');
  if (!Array.isArray(body.inputs) || body.inputs.length === 0) throw new AiaasError('INVALID_REQUEST', "'inputs' must be a non-empty array");

  // Declared sizes first, so an oversized request is refused before its data is walked.
  let declaredElements = 0;
  const headers = body.inputs.map((raw: unknown, index: number) => {
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
    const inputParameters = parseParameters(raw.parameters, `input '${name}'`);
    if (inputParameters?.binary_data_size !== undefined) {
      throw invalidTensor(name, 'binary tensor data (binary_data_size) is not supported; send JSON data');
    }
    if (raw.data === undefined) throw invalidTensor(name, "missing 'data'");
    const shape = raw.shape as number[];
    declaredElements += elementCount(shape);
    return { name, datatype: raw.datatype, shape, data: raw.data };
  });
  assertElementCap(declaredElements, options.maxTensorElements);

  const inputs: Tensor[] = headers.map((header) => {
    const flat = flattenData(header.data, header.shape, header.name);
    const expected = elementCount(header.shape);
    if (flat.length !== expected) {
      throw invalidTensor(header.name, `shape ${formatShape(header.shape)} needs ${expected} elements, data has ${flat.length}`, {
        expected,
        actual: flat.length,
      });
    }
    return { name: header.name, datatype: header.datatype, shape: header.shape, data: fromJsonElements(flat, header.datatype, header.name) };
  });

  const request: InferRequest = { inputs: matchSignature(inputs, signature) };
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) throw new AiaasError('INVALID_REQUEST', "'outputs' must be an array of {\"name\": ...}");
    const names = body.outputs.map((output: unknown, index: number) => {
      if (!isObject(output) || typeof output.name !== 'string') throw new AiaasError('INVALID_REQUEST', `outputs[${index}] needs a 'name' string`);
      return output.name;
    });
    checkOutputNames(names, signature);
    if (names.length > 0) request.outputs = names;
  }
  if (typeof body.id === 'string') request.id = body.id;
  if (parameters !== undefined) request.parameters = parameters;
  return request;
}

export interface V2ModelIdentity {
  name: string;
  version: string;
}

/** `$inference_response`; data is flat (row-major) as most V2 clients expect. */
export function renderV2InferResponse(model: V2ModelIdentity, request: InferRequest, outputs: readonly Tensor[]): Record<string, unknown> {
  return {
    model_name: model.name,
    model_version: model.version,
    ...(request.id === undefined ? {} : { id: request.id }),
    outputs: outputs.map((output) => ({ name: output.name, datatype: output.datatype, shape: output.shape, data: toJsonElements(output) })),
  };
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


/**
 * TensorFlow Serving REST adapter (predict, model status, metadata): pure functions between the
 * protocol's JSON and the internal InferRequest. Spec: tensorflow/serving g3doc/api_rest.md.
 */
import { AiaasError, quoteForError } from '../../errors.ts';
import type { ModelSignature, Tensor, TensorDataType, TensorSpec } from '../../runtimes/runtime.ts';
import type { InferRequest } from '../../inference/types.ts';
import {
  assertElementCap,
  flattenNested,
  fromJsonElements,
  inferShape,
  invalidTensor,
  isBase64Object,
  matchSignature,
  nest,
  shortName,
  toJsonElements,
} from './tensor-json.ts';

export type TfServingFormat = 'row' | 'columnar';

export const defaultSignatureName = 'serving_default';

export interface TfServingParseOptions {
  maxTensorElements: number;
}

function isNamedObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isBase64Object(value);
}

function specFor(signature: ModelSignature, name: string): TensorSpec {
  const spec = signature.inputs.find((input) => input.name === name);
  if (spec === undefined) {
    throw new AiaasError('INVALID_TENSOR', `unknown input '${shortName(name)}'; the model's inputs are: ${signature.inputs.map((input) => input.name).join(', ')}`);
  }
  return spec;
}

function onlyInput(signature: ModelSignature): TensorSpec {
  if (signature.inputs.length !== 1) {
    throw new AiaasError(
      'INVALID_REQUEST',
      `the model has ${signature.inputs.length} inputs (${signature.inputs.map((input) => input.name).join(', ')}); name each one (objects keyed by input name)`,
    );
  }
  return signature.inputs[0]!;
}

function tensorOf(spec: TensorSpec, shape: number[], flat: readonly unknown[], elements: { count: number }, cap: number): Tensor {
  elements.count += flat.length;
  assertElementCap(elements.count, cap);
  const datatype: TensorDataType = spec.datatype;
  return { name: spec.name, datatype, shape, data: fromJsonElements(flat, datatype, spec.name, { allowNonFiniteStrings: true }) };
}

/** Parses a `:predict` body in row (`instances`) or columnar (`inputs`) format. */
export function parseTfServingPredictRequest(
  body: unknown,
  signature: ModelSignature,
  options: TfServingParseOptions,
): { request: InferRequest; format: TfServingFormat } {
  if (!isNamedObject(body)) throw new AiaasError('INVALID_REQUEST', 'the request body must be a JSON object with "instances" or "inputs"');
  if (body.signature_name !== undefined && body.signature_name !== defaultSignatureName) {
    throw new AiaasError('INVALID_REQUEST', `unknown signature_name ${quoteForError(body.signature_name)}; only "${defaultSignatureName}" exists`);
  }
  const hasInstances = body.instances !== undefined;
  const hasInputs = body.inputs !== undefined;
  if (hasInstances === hasInputs) throw new AiaasError('INVALID_REQUEST', 'the request must have exactly one of "instances" (row format) or "inputs" (columnar format)');
  const elements = { count: 0 };
  const cap = options.maxTensorElements;
  const inputs: Tensor[] = [];

  if (hasInstances) {
    const instances = body.instances;
    if (!Array.isArray(instances) || instances.length === 0) throw new AiaasError('INVALID_REQUEST', '"instances" must be a non-empty list');
    if (instances.every(isNamedObject)) {
      const names = Object.keys(instances[0] as Record<string, unknown>);
      for (const name of names) {
        const spec = specFor(signature, name);
        const rows = instances.map((instance, index) => {
          const record = instance as Record<string, unknown>;
          if (!(name in record)) throw invalidTensor(name, `missing from instance ${index}; every instance needs the same named inputs`);
          return record[name];
        });
        const rowShape = inferShape(rows[0], name);
        rows.forEach((row, index) => {
          const shape = inferShape(row, name);
          if (shape.join(',') !== rowShape.join(',')) {
            throw invalidTensor(name, `instance ${index} has shape [${shape.join(',')}], instance 0 has [${rowShape.join(',')}]; all instances must agree`);
          }
        });
        inputs.push(tensorOf(spec, [rows.length, ...rowShape], rows.flatMap(flattenNested), elements, cap));
      }
      instances.forEach((instance, index) => {
        for (const key of Object.keys(instance as Record<string, unknown>)) {
          if (!names.includes(key)) throw invalidTensor(key, `appears in instance ${index} but not in instance 0`);
        }
      });
    } else if (instances.some(isNamedObject)) {
      throw new AiaasError('INVALID_REQUEST', '"instances" mixes objects and plain values');
    } else {
      const spec = onlyInput(signature);
      inputs.push(tensorOf(spec, inferShape(instances, spec.name), flattenNested(instances), elements, cap));
    }
  } else if (isNamedObject(body.inputs)) {
    for (const [name, value] of Object.entries(body.inputs)) {
      const spec = specFor(signature, name);
      inputs.push(tensorOf(spec, inferShape(value, name), flattenNested(value), elements, cap));
    }
  } else {
    const spec = onlyInput(signature);
    inputs.push(tensorOf(spec, inferShape(body.inputs, spec.name), flattenNested(body.inputs), elements, cap));
  }
  return { request: { inputs: matchSignature(inputs, signature) }, format: hasInstances ? 'row' : 'columnar' };
}

/**
 * JSON elements of an output. api_rest.md: string outputs whose name ends in `_bytes` hold binary
 * values and are written as `{"b64": ...}`.
 */
function outputElements(output: Tensor): unknown[] {
  if (output.datatype === 'BYTES' && output.name.endsWith('_bytes')) {
    return (output.data as string[]).map((text) => ({ b64: Buffer.from(text, 'utf8').toString('base64') }));
  }
  return toJsonElements(output);
}

/** `{"predictions": ...}` for row requests, `{"outputs": ...}` for columnar ones. */
export function renderTfServingPredictResponse(format: TfServingFormat, outputs: readonly Tensor[]): Record<string, unknown> {
  const nested = outputs.map((output) => nest(outputElements(output), output.shape));
  if (format === 'columnar') {
    if (outputs.length === 1) return { outputs: nested[0] };
    return { outputs: Object.fromEntries(outputs.map((output, index) => [output.name, nested[index]])) };
  }
  if (outputs.length === 1) return { predictions: nested[0] };
  const rows = outputs[0]?.shape[0];
  if (rows === undefined || outputs.some((output) => output.shape[0] !== rows)) {
    throw new AiaasError('INVALID_REQUEST', 'the model\'s outputs do not share a 0-th dimension, so they cannot be returned as rows; use the columnar "inputs" format');
  }
  return {
    predictions: Array.from({ length: rows }, (_, row) =>
      Object.fromEntries(outputs.map((output, index) => [output.name, (nested[index] as unknown[])[row]])),
    ),
  };
}

/** GetModelStatusResponse in proto3 JSON. */
export function renderTfServingStatus(versions: readonly { version: string; available: boolean }[]): Record<string, unknown> {
  return {
    model_version_status: versions.map(({ version, available }) => ({
      version,
      state: available ? 'AVAILABLE' : 'UNKNOWN',
      status: { error_code: 'OK', error_message: '' },
    })),
  };
}

const tfDataTypes: Record<TensorDataType, string> = {
  FP32: 'DT_FLOAT',
  FP64: 'DT_DOUBLE',
  FP16: 'DT_HALF',
  INT8: 'DT_INT8',
  INT16: 'DT_INT16',
  INT32: 'DT_INT32',
  INT64: 'DT_INT64',
  UINT8: 'DT_UINT8',
  UINT16: 'DT_UINT16',
  UINT32: 'DT_UINT32',
  UINT64: 'DT_UINT64',
  BOOL: 'DT_BOOL',
  BYTES: 'DT_STRING',
};

function tensorInfo(spec: TensorSpec): Record<string, unknown> {
  return {
    dtype: tfDataTypes[spec.datatype],
    // proto3 JSON writes int64 as strings; -1 marks an unknown dimension as in TensorShapeProto.
    tensor_shape: { dim: spec.shape.map((size) => ({ size: String(size), name: '' })), unknown_rank: false },
    name: spec.name,
  };
}

/** GetModelMetadataResponse in proto3 JSON with one `serving_default` signature. */
export function renderTfServingMetadata(name: string, version: string, signature: ModelSignature): Record<string, unknown> {
  return {
    model_spec: { name, signature_name: '', version },
    metadata: {
      signature_def: {
        signature_def: {
          [defaultSignatureName]: {
            inputs: Object.fromEntries(signature.inputs.map((spec) => [spec.name, tensorInfo(spec)])),
            outputs: Object.fromEntries(signature.outputs.map((spec) => [spec.name, tensorInfo(spec)])),
            method_name: 'tensorflow/serving/predict',
            defaults: {},
          },
        },
      },
    },
  };
}

/**
 * TensorFlow Serving REST adapter (predict, model status, metadata): pure functions between the
 * protocol's JSON and the internal InferRequest. Spec: tensorflow/serving g3doc/api_rest.md.
 */
import { AiaasError, quoteForError } from '../../errors.ts';
import type { ModelSignature, Tensor, TensorDataType, TensorSpec } from '../../runtimes/runtime.ts';
import type { InferRequest } from '../../inference/types.ts';
import { classScoresPerRow, isLabelsOnly, policyLabelsPerRow } from './classification.ts';
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

export interface TfServingClassifyCall {
  request: InferRequest;
  /** The model's class names (labels of the results), when it was trained on string labels. */
  classNames?: string[];
}

/** The names a `:classify` example may use for the model's per-sample elements: its feature names, or f0, f1, … */
function featureNamesOf(signature: ModelSignature, elements: number): string[] {
  return signature.featureNames ?? Array.from({ length: elements }, (_, index) => `f${index}`);
}

/**
 * Parses a `:classify` body: `examples` (feature dicts), an optional `context` of features shared by
 * every example, `signature_name`. An example maps to the model's one input either as a single
 * feature named like the input holding the sample's values (a number or nested list), or as one
 * feature per input element, named by the model's feature names (a model trained on a CSV) or
 * `f0`…`fN-1`, each a number or a one-number list (tf.Example features are lists).
 */
export function parseTfServingClassifyRequest(body: unknown, signature: ModelSignature, options: TfServingParseOptions): TfServingClassifyCall {
  if (!isNamedObject(body)) throw new AiaasError('INVALID_REQUEST', 'the request body must be a JSON object with "examples"');
  if (body.signature_name !== undefined && body.signature_name !== defaultSignatureName) {
    throw new AiaasError('INVALID_REQUEST', `unknown signature_name ${quoteForError(body.signature_name)}; only "${defaultSignatureName}" exists`);
  }
  for (const key of Object.keys(body)) {
    if (!['signature_name', 'context', 'examples'].includes(key)) throw new AiaasError('INVALID_REQUEST', `unknown field ${quoteForError(key)} in a :classify request; expected "examples", "context", "signature_name"`);
  }
  const examples = body.examples;
  if (!Array.isArray(examples) || examples.length === 0 || !examples.every(isNamedObject)) {
    throw new AiaasError('INVALID_REQUEST', '"examples" must be a non-empty list of objects (feature name → value or list)');
  }
  const context = body.context ?? {};
  if (!isNamedObject(context)) throw new AiaasError('INVALID_REQUEST', '"context" must be an object of features shared by every example');
  const input = onlyInput(signature);
  const output = signature.outputs[0];
  if (output === undefined) throw new AiaasError('INVALID_REQUEST', 'the model has no outputs to classify with');
  const sampleShape = input.shape.slice(1);
  const staticSample = sampleShape.every((dimension) => dimension >= 0);
  const sampleElements = sampleShape.reduce((total, dimension) => total * Math.max(dimension, 0), 1);
  const elements = { count: 0 };
  const flat: unknown[] = [];
  let shape: number[] | undefined;
  examples.forEach((example, row) => {
    const features: Record<string, unknown> = { ...(context as Record<string, unknown>) };
    for (const [name, value] of Object.entries(example as Record<string, unknown>)) {
      if (Object.hasOwn(context, name)) throw new AiaasError('INVALID_REQUEST', `feature ${quoteForError(name)} is in "context" and in example ${row}; a context feature must not appear in an example`);
      features[name] = value;
    }
    const names = Object.keys(features);
    let values: unknown[];
    let rowShape: number[];
    if (names.length === 1 && names[0] === input.name) {
      const value = features[input.name];
      rowShape = staticSample ? sampleShape : inferShape(value, input.name);
      values = flattenNested(value);
      if (values.length !== rowShape.reduce((total, dimension) => total * dimension, 1)) {
        throw invalidTensor(input.name, `example ${row} has ${values.length} values; the model takes [${sampleShape.join(', ')}] per example`);
      }
    } else {
      if (!staticSample) throw new AiaasError('INVALID_REQUEST', `the model's input '${input.name}' has a variable shape [${sampleShape.join(', ')}]; send each example as {"${input.name}": values}`);
      const expected = featureNamesOf(signature, sampleElements);
      const unknown = names.find((name) => !expected.includes(name));
      if (unknown !== undefined) {
        throw invalidTensor(input.name, `example ${row} has the unknown feature ${quoteForError(unknown)}; the model's features are ${shortList(expected)}, or one feature "${input.name}" holding all values`);
      }
      const missing = expected.find((name) => !Object.hasOwn(features, name));
      if (missing !== undefined) throw invalidTensor(input.name, `example ${row} lacks the feature ${quoteForError(missing)} (the model takes ${expected.length} features: ${shortList(expected)})`);
      rowShape = sampleShape;
      values = expected.map((name) => {
        const value = features[name];
        const single = Array.isArray(value) && value.length === 1 ? value[0] : value;
        if (typeof single !== 'number') throw invalidTensor(input.name, `feature ${quoteForError(name)} of example ${row} is ${quoteForError(value)}, expected a number (or a list of one number)`);
        return single;
      });
    }
    if (shape !== undefined && shape.join(',') !== rowShape.join(',')) throw invalidTensor(input.name, `example ${row} has shape [${rowShape.join(', ')}], example 0 has [${shape.join(', ')}]`);
    shape = rowShape;
    elements.count += values.length;
    assertElementCap(elements.count, options.maxTensorElements);
    // One by one: spreading a large example into push() would exceed the engine's argument limit.
    for (const value of values) flat.push(value);
  });
  const tensor = tensorOf(input, [examples.length, ...(shape ?? [])], flat, { count: 0 }, options.maxTensorElements);
  return { request: { inputs: matchSignature([tensor], signature), outputs: [output.name] }, ...(signature.classNames === undefined ? {} : { classNames: signature.classNames }) };
}

function shortList(names: readonly string[]): string {
  const shown = names.slice(0, 8).map((name) => quoteForError(name)).join(', ');
  return names.length > 8 ? `${shown}, … (${names.length} in all)` : shown;
}

/**
 * `{"results": [[[label, score], …], …]}`: per example, every class in index order with the model's
 * score (its probability for a softmax or sigmoid output). The label is the class name, or the class
 * index as a string for a model trained on numeric labels. (api_rest.md's format shows "result"; the
 * server itself, and its tests, write "results".)
 */
export function renderTfServingClassifyResponse(
  output: Tensor,
  classNames: readonly string[] | undefined,
  policy?: { topK?: number },
): { results: [string, number | null][][] } {
  if (isLabelsOnly(output, policy)) {
    // The model's output policy withholds scores: the best k labels, best first, each with a null score.
    return { results: policyLabelsPerRow(output).map((row) => row.map((index) => [classNames?.[index] ?? String(index), null] as [string, null])) };
  }
  return {
    results: classScoresPerRow(output).map((row) => row.map(({ index, score }) => [classNames?.[index] ?? String(index), score] as [string, number])),
  };
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

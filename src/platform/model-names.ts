/**
 * Class and feature names travel inside model.onnx (metadata `aiaas.class_names` and
 * `aiaas.feature_names`, written by the engine for a model trained on string labels or on a CSV). A
 * server reads them from every ONNX model it registers and keeps them in the version's signature,
 * where the classification APIs (TF-Serving `:classify`, V2 `classification`) find them.
 */
import { classNamesMetadataKey, featureNamesMetadataKey, parseNamesMetadata } from '../engine/names-metadata.ts';
import { AiaasError } from '../errors.ts';
import { InvalidOnnxError } from '../onnx/external-data.ts';
import { readOnnxMetadata } from '../onnx/metadata.ts';
import type { ModelSignature } from '../runtimes/runtime.ts';

/**
 * The signature plus the names `onnx` (the model's bytes, or its skeleton) declares. Names that do
 * not fit the model are INVALID_MODEL_FILE: more class names than the first output's last axis has
 * classes (a single sigmoid unit may name its two classes), or feature names that do not number
 * the first input's per-sample elements.
 */
export function withModelNames(signature: ModelSignature, onnx: Uint8Array): ModelSignature {
  let metadata: Map<string, string>;
  try {
    metadata = readOnnxMetadata(onnx);
  } catch (error) {
    if (error instanceof InvalidOnnxError) throw new AiaasError('INVALID_MODEL_FILE', `the uploaded file is not a loadable ONNX model: ${error.message}`);
    throw error;
  }
  const classNames = parseNamesMetadata(metadata.get(classNamesMetadataKey), classNamesMetadataKey, 'model.onnx', 'INVALID_MODEL_FILE');
  const featureNames = parseNamesMetadata(metadata.get(featureNamesMetadataKey), featureNamesMetadataKey, 'model.onnx', 'INVALID_MODEL_FILE');
  const named: ModelSignature = { ...signature };
  if (classNames !== undefined) {
    const output = signature.outputs[0];
    const classes = output?.shape.at(-1);
    if (output === undefined || classes === undefined) {
      throw new AiaasError('INVALID_MODEL_FILE', `model.onnx declares class names (${classNamesMetadataKey}) but has no output with a class axis`);
    }
    if (!(classes < 0 || classNames.length <= classes || (classes === 1 && classNames.length === 2))) {
      throw new AiaasError('INVALID_MODEL_FILE', `model.onnx declares ${classNames.length} class names (${classNamesMetadataKey}), but its output '${output.name}' has ${classes} classes`, {
        details: { classNames: classNames.length, classes },
      });
    }
    named.classNames = classNames;
  }
  if (featureNames !== undefined) {
    const input = signature.inputs[0];
    const perSample = input?.shape.slice(1) ?? [];
    const elements = perSample.reduce((total, dimension) => total * dimension, 1);
    if (input === undefined || signature.inputs.length !== 1 || perSample.some((dimension) => dimension < 0) || elements !== featureNames.length) {
      throw new AiaasError('INVALID_MODEL_FILE', `model.onnx declares ${featureNames.length} feature names (${featureNamesMetadataKey}), which do not number its input's elements`, {
        details: { featureNames: featureNames.length },
      });
    }
    named.featureNames = featureNames;
  }
  return named;
}

/**
 * Class names travel inside model.onnx (metadata `aiaas.class_names`, written by the engine for a
 * model trained on string labels). A server reads them from every ONNX model it registers and keeps
 * them in the version's signature, where the classification APIs find them.
 */
import { classNamesMetadataKey } from '../engine/model.ts';
import { parseClassNamesMetadata } from '../engine/class-names-metadata.ts';
import { AiaasError } from '../errors.ts';
import { InvalidOnnxError } from '../onnx/external-data.ts';
import { readOnnxMetadata } from '../onnx/metadata.ts';
import type { ModelSignature } from '../runtimes/runtime.ts';

/**
 * The signature plus the class names `onnx` (the model's bytes, or its skeleton) declares. A
 * declaration that does not fit the first output (more names than its last axis has classes; a
 * single sigmoid unit may name its two classes) is INVALID_MODEL_FILE.
 */
export function withClassNames(signature: ModelSignature, onnx: Uint8Array): ModelSignature {
  let metadata: Map<string, string>;
  try {
    metadata = readOnnxMetadata(onnx);
  } catch (error) {
    if (error instanceof InvalidOnnxError) throw new AiaasError('INVALID_MODEL_FILE', `the uploaded file is not a loadable ONNX model: ${error.message}`);
    throw error;
  }
  const classNames = parseClassNamesMetadata(metadata.get(classNamesMetadataKey), 'model.onnx', 'INVALID_MODEL_FILE');
  if (classNames === undefined) return signature;
  const output = signature.outputs[0];
  const classes = output?.shape.at(-1);
  if (output === undefined || classes === undefined) {
    throw new AiaasError('INVALID_MODEL_FILE', 'model.onnx declares class names (aiaas.class_names) but has no output with a class axis');
  }
  const fits = classes < 0 || classNames.length <= classes || (classes === 1 && classNames.length === 2);
  if (!fits) {
    throw new AiaasError(
      'INVALID_MODEL_FILE',
      `model.onnx declares ${classNames.length} class names (aiaas.class_names), but its output '${output.name}' has ${classes} classes`,
      { details: { classNames: classNames.length, classes } },
    );
  }
  return { ...signature, classNames };
}

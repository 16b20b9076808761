import ort from 'onnxruntime-node';
import { AiaasError } from '../../errors.ts';
import type { ModelSignature, TensorDataType, TensorSpec } from '../runtime.ts';

/*
 * ONNX Runtime's names for element types and value metadata, mapped to ours. The sessions themselves
 * live in worker threads (onnx-worker-runtime.ts); ORT's `run` blocks whatever thread calls it.
 */

export const fromOrtType: Partial<Record<string, TensorDataType>> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

export const toOrtType: Record<TensorDataType, ort.Tensor.Type> = {
  FP32: 'float32',
  FP64: 'float64',
  FP16: 'float16',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  BOOL: 'bool',
  BYTES: 'string',
};

/** Converts ORT value metadata into our signature; symbolic or unknown dimensions become -1. */
export function signatureFromMetadata(
  inputs: readonly ort.InferenceSession.ValueMetadata[],
  outputs: readonly ort.InferenceSession.ValueMetadata[],
): ModelSignature {
  const convert = (metadata: ort.InferenceSession.ValueMetadata, role: string): TensorSpec => {
    if (!metadata.isTensor) {
      throw new AiaasError('INVALID_MODEL_FILE', `${role} '${metadata.name}' is not a tensor (sequences and maps are not supported)`);
    }
    const datatype = fromOrtType[metadata.type];
    if (datatype === undefined) {
      throw new AiaasError('INVALID_MODEL_FILE', `${role} '${metadata.name}' has unsupported element type ${metadata.type}`);
    }
    const shape = metadata.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : -1));
    return { name: metadata.name, datatype, shape };
  };
  return { inputs: inputs.map((item) => convert(item, 'input')), outputs: outputs.map((item) => convert(item, 'output')) };
}

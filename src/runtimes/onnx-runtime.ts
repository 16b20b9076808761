import ort from 'onnxruntime-node';
import { AiaasError } from '../errors.ts';
import { cleanRuntimeError } from './runtime-errors.ts';
import type { ModelFile, ModelSignature, Runtime, Tensor, TensorData, TensorDataType, TensorSpec } from './runtime.ts';

export interface OnnxRuntimeOptions {
  /** Threads ONNX Runtime may use inside one operator; 0 lets ORT decide. */
  intraOpThreads?: number;
}

const fromOrtType: Partial<Record<string, TensorDataType>> = {
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

const toOrtType: Record<TensorDataType, ort.Tensor.Type> = {
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

class OnnxRuntime implements Runtime {
  readonly specificationVersion = 'v1' as const;
  readonly #session: ort.InferenceSession;
  readonly #signature: ModelSignature;
  /** All output names in signature order: the fetch list when a request names none. */
  readonly #outputNames: readonly string[];
  readonly #bytes: number;
  #disposed = false;

  constructor(session: ort.InferenceSession, signature: ModelSignature, bytes: number) {
    this.#session = session;
    this.#signature = signature;
    this.#outputNames = signature.outputs.map((output) => output.name);
    this.#bytes = bytes;
  }

  signature(): ModelSignature {
    return this.#signature;
  }

  async infer(inputs: Tensor[], outputNames?: string[]): Promise<Tensor[]> {
    if (this.#disposed) throw new AiaasError('MODEL_NOT_READY', 'model was unloaded');
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of inputs) {
      feeds[input.name] = new ort.Tensor(toOrtType[input.datatype], input.data as ort.Tensor.DataType, input.shape);
    }
    const names = outputNames ?? this.#outputNames;
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.#session.run(feeds, names);
    } catch (error) {
      // The input passed the signature checks, so what failed is this model on this input.
      throw new AiaasError('INFERENCE_FAILED', `the model failed to run on this input: ${cleanRuntimeError(error)}`, { cause: error });
    }
    return names.map((name) => {
      const value = results[name];
      if (value === undefined) throw new AiaasError('INTERNAL', `ONNX Runtime returned no output '${name}'`);
      const datatype = fromOrtType[value.type];
      if (datatype === undefined) throw new AiaasError('INTERNAL', `output '${name}' has unsupported type ${value.type}`);
      return { name, datatype, shape: [...value.dims], data: value.data as TensorData };
    });
  }

  /**
   * An estimate: the size of the model's files (external data included). Weights dominate small and
   * medium models and ORT keeps roughly one copy of them; arena growth during inference is not counted.
   */
  memoryBytes(): number {
    return this.#bytes;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#session.release();
  }
}

/**
 * Opens an ONNX model from its file, never from bytes: ORT resolves external data against the
 * model file's directory (for bytes it would use the process's working directory). Parse failures
 * become MODEL_LOAD_FAILED with a message cleaned of host paths; the full text stays on `cause`.
 */
export async function loadOnnxRuntime(model: ModelFile, options: OnnxRuntimeOptions = {}): Promise<Runtime> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model.path, {
      ...(options.intraOpThreads === undefined ? {} : { intraOpNumThreads: options.intraOpThreads }),
      graphOptimizationLevel: 'all',
    });
  } catch (error) {
    throw new AiaasError('MODEL_LOAD_FAILED', `ONNX Runtime could not open the model: ${cleanRuntimeError(error)}`, { cause: error });
  }
  try {
    return new OnnxRuntime(session, signatureFromMetadata(session.inputMetadata, session.outputMetadata), model.sizeBytes);
  } catch (error) {
    await session.release();
    throw error;
  }
}

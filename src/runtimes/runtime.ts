/**
 * The one small interface between serving and the engines that execute models. Versioned like
 * vercel/ai's `LanguageModelV4` so a later runtime (gguf) can be added without touching callers,
 * and a breaking change is visible in the type rather than at run time.
 */

/** Element types, spelled as the KServe V2 protocol spells them so routes need no second table. */
export type TensorDataType =
  | 'FP32'
  | 'FP64'
  | 'FP16'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'BOOL'
  | 'BYTES';

/** Declared tensor of a signature; -1 marks a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: TensorDataType;
  shape: number[];
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /**
   * Class names by index of the (single) output's last axis, when the model file names them
   * (model.onnx metadata `aiaas.class_names`); used by TF-Serving `:classify` and V2 classification.
   */
  classNames?: string[];
  /** Names of the (single) input's per-sample elements in flat order (`aiaas.feature_names`): TF-Serving `:classify` examples use them. */
  featureNames?: string[];
}

/**
 * Element storage per data type. BOOL is one byte per element (0 or 1), FP16 the raw IEEE half bits,
 * BYTES one JavaScript string per element.
 */
export interface TensorDataMap {
  FP32: Float32Array;
  FP64: Float64Array;
  FP16: Uint16Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  BOOL: Uint8Array;
  BYTES: string[];
}

export type TensorData = TensorDataMap[TensorDataType];

/** A concrete tensor: row-major data whose length is the product of `shape`. */
export interface Tensor {
  name: string;
  datatype: TensorDataType;
  shape: number[];
  data: TensorData;
}

/**
 * A model as a runtime opens it: a file in a private directory (beside any files it refers to, such
 * as ONNX external data), never bytes in memory.
 */
export interface ModelFile {
  /** Absolute path of the model file. */
  path: string;
  /** Size of the model's files together (external data included); the memory estimate starts here. */
  sizeBytes: number;
}

export interface TimedOutputs {
  outputs: Tensor[];
  /** Milliseconds the model ran for (fractional). */
  computeMs: number;
}

export interface Runtime {
  readonly specificationVersion: 'v1';
  signature(): ModelSignature;
  /**
   * Runs the model once. `outputNames` restricts (and orders) the outputs; all outputs when omitted.
   * The runtime may take over the inputs' buffers (worker runtimes transfer them): pass tensors you
   * do not reuse.
   */
  infer(inputs: Tensor[], outputNames?: string[]): Promise<Tensor[]>;
  /**
   * `infer` with the time the model itself ran (worker milliseconds, measured around the session's
   * run, without the thread hand-over). Runtimes without it are timed around `infer` by the caller.
   */
  inferTimed?(inputs: Tensor[], outputNames?: string[]): Promise<TimedOutputs>;
  /** Inferences that may run at once (instances); 1 when absent. */
  readonly concurrency?: number;
  /** Estimated resident memory, used by the model manager's budget. */
  memoryBytes(): number;
  dispose(): Promise<void>;
}

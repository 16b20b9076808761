/**
 * One model format, as the core sees it: a folder under `runtimes/<format>/` whose `format.ts`
 * exports one object of this shape (tfjs' `KernelConfig` style: data looked up by name). The model
 * registry and the model manager find a version's format in `formats.ts` by the name stored with
 * the version, and never branch on the name themselves. Versioned like the runtime interfaces, so a
 * breaking change shows in the type.
 */
import { writeFile } from 'node:fs/promises';
import type { EmbeddingRuntime, GenerativeRuntime } from './generative.ts';
import type { ModelFile, ModelSignature, Runtime } from './runtime.ts';

/**
 * Where an opened runtime computes, declared by the format and honoured by the core:
 * - `worker`: a worker thread per instance (the main thread only routes and serializes);
 * - `child-process`: a separate process (isolation for runtimes that may crash or balloon);
 * - `in-process`: in the server process, for runtimes that already compute off the event loop on
 *   their own native threads (node-llama-cpp).
 */
export type RuntimePlacement = 'worker' | 'child-process' | 'in-process';

/** A loaded language model: generation and embeddings from one runtime. */
export type LanguageModelRuntime = GenerativeRuntime & EmbeddingRuntime;

/** A model file to check: written where the validator wants it, with memory bounded (streamed from the store). */
export interface ModelSource {
  readonly path?: undefined;
  readonly byteLength: number;
  writeTo(path: string): Promise<void>;
  /** Files the model refers to by relative location (ONNX external data), already checked safe. */
  readonly externalData?: ReadonlyMap<string, Uint8Array>;
}

/**
 * A file already in a private directory (a loading version's plaintext directory), with any files it
 * refers to beside it: checked in place, without a copy.
 */
export interface ModelFileInPlace {
  readonly path: string;
}

/** Limits of the isolated (child-process) check. */
export interface ValidationLimits {
  /** Wall-clock limit; on expiry the child is killed. */
  timeoutMs?: number;
  /** Resident-set limit of the child in bytes; above it the child is killed. */
  memoryLimitBytes?: number;
  memoryPollMs?: number;
  /** Where the private (0700) directory holding the child's plaintext copy is made; the OS temp dir otherwise. */
  scratchRoot?: string;
  /** Replaces the child's script (tests: a child that crashes, hangs or balloons). */
  childScriptPath?: string;
}

/** What the isolated check learned about a file (describe): stored with the version. */
export interface ValidatedModel {
  /** The format's description, stored as the version's signature (ONNX: inputs and outputs; GGUF: header facts). */
  signature: ModelSignature | object;
  /** A language model's chat template; null when the file has none. Absent for formats without one. */
  chatTemplate?: string | null;
  /**
   * Resident memory one instance of the model takes, measured in the validation child (its RSS after
   * opening the model and one run on zero inputs, minus its RSS before opening). Undefined where the
   * format or the platform (no /proc) cannot measure it.
   */
  measuredMemoryBytes?: number;
}

/** The server's settings for opened runtimes, by capability. */
export interface RuntimeSettings {
  tensor: {
    /** Instances per loaded version (each its own session and copy of the weights). */
    instances: number;
    /** Compute threads inside one run of one instance. */
    intraOpThreads: number;
    /** Niceness added to each instance's thread, below the main thread's priority (0 = equal). */
    nice?: number;
  };
  language: {
    parallel: number;
    maxWaiting: number;
    threads: number;
    contextLength: number;
    maxContextLength: number;
  };
}

/** Where a format's loader reports what it did (pino's logger fits). */
export interface RuntimeLog {
  info(fields: Record<string, unknown>, message: string): void;
}

/** A version's files as a loader opens them, with what was measured at upload. */
export interface OpenRequest extends ModelFile {
  /** Bytes one instance was measured to take at upload; undefined for versions stored before measuring. */
  measuredMemoryBytes?: number;
}

/** Opens a format's files with the server's settings; holds shared native state (one llama.cpp) until closed. */
export interface FormatLoader<Opened> {
  open(model: OpenRequest, labels: { name?: string; version?: string }): Promise<Opened>;
  close(): Promise<void>;
}

interface FormatDescriptorBase {
  readonly specificationVersion: 'v1';
  /** The name stored in the version's `format` column. */
  readonly name: string;
  /** The file name the version's main artifact is written and downloaded as. */
  readonly fileName: string;
  readonly placement: RuntimePlacement;
  /**
   * Whether the file may name other files beside it (ONNX external data); the registry stores them
   * with the version and checks, before anything opens the model, that it reads nothing else.
   */
  readonly externalData: boolean;
  /**
   * Whether `validate` measures the memory of one instance (`ValidatedModel.measuredMemoryBytes`).
   * A version of such a format stored before measuring is measured (in a child) at its first load.
   */
  readonly measuresMemory: boolean;
  /** Whether a file starting with these bytes (at most the first 512) is of this format. */
  matches(head: Uint8Array): boolean;
  /**
   * Validates and describes the file in a child process under `limits`: a file that crashes, hangs
   * or balloons the parser kills only the child. INVALID_MODEL_FILE (400) for anything wrong.
   */
  validate(source: ModelSource | ModelFileInPlace, limits: ValidationLimits): Promise<ValidatedModel>;
}

/** A format served through the tensor protocols (V2, TF-Serving): `Runtime.infer` behind a Batcher. */
export interface TensorFormatDescriptor extends FormatDescriptorBase {
  readonly capability: 'tensor';
  createLoader(settings: RuntimeSettings['tensor'], log: RuntimeLog): FormatLoader<Runtime>;
}

/** A format served through the language-model protocols (OpenAI, Ollama): generation with its own batching. */
export interface LanguageFormatDescriptor extends FormatDescriptorBase {
  readonly capability: 'language';
  createLoader(settings: RuntimeSettings['language'], log: RuntimeLog): FormatLoader<LanguageModelRuntime>;
}

export type FormatDescriptor = TensorFormatDescriptor | LanguageFormatDescriptor;

/** A source over bytes already in memory (tar members, multipart parts). */
export function sourceFromBytes(bytes: Uint8Array, externalData?: ReadonlyMap<string, Uint8Array>): ModelSource {
  return {
    byteLength: bytes.byteLength,
    writeTo: (path) => writeFile(path, bytes, { mode: 0o600, flag: 'wx' }),
    ...(externalData === undefined ? {} : { externalData }),
  };
}

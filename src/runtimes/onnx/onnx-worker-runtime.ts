/**
 * ONNX models served from worker threads. onnxruntime-node's `run` executes synchronously on the
 * calling thread (its promise only defers the call), so a session on the main thread stalls health
 * checks, the management API and every other model for the whole run. Here each instance is a
 * worker thread holding its own session opened from the model's file; a version with N instances
 * runs N inferences at once (like Triton's instance groups). Tensors cross threads as transferred
 * ArrayBuffers.
 */
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type ort from 'onnxruntime-node';
import { AiaasError } from '../../errors.ts';
import { fromOrtType, signatureFromMetadata, toOrtType } from './onnx-runtime.ts';
import { cleanRuntimeError, cleanRuntimeMessage } from '../runtime-errors.ts';
import type { ModelFile, ModelSignature, Runtime, Tensor, TensorData, TimedOutputs } from '../runtime.ts';

export interface OnnxWorkerOptions {
  /** Worker threads, each with its own session: inferences of this version that may run at once. */
  instances: number;
  /** ONNX Runtime threads inside one run of one instance. */
  intraOpThreads: number;
  /** Niceness added to each instance's thread (Linux; 0 = as the main thread), see thread-priority.mjs. */
  nice?: number;
  /** Memory the model was measured to take (validation child); file size × instances when unknown. */
  measuredMemoryBytes?: number;
  /** Replaces the worker script (tests). */
  scriptPath?: string;
}

const defaultScript = fileURLToPath(new URL('./onnx-worker.mjs', import.meta.url));

interface WireTensor {
  name: string;
  type: ort.Tensor.Type;
  dims: number[];
  data: TensorData;
}

type WorkerMessage =
  | { type: 'ready'; inputs: ort.InferenceSession.ValueMetadata[]; outputs: ort.InferenceSession.ValueMetadata[] }
  | { type: 'failed'; message: string }
  | { type: 'result'; id: number; outputs: WireTensor[]; computeMs: number }
  | { type: 'error'; id: number; message: string };

interface Pending {
  resolve(result: TimedOutputs): void;
  reject(error: unknown): void;
}

interface Instance {
  worker: Worker;
  pending: Map<number, Pending>;
}

interface Waiting {
  run(instance: Instance): void;
}

/** ORT's messages name internal source paths and host files: clients get them cleaned, the log keeps `cause`. */
function runFailed(message: string): AiaasError {
  return new AiaasError('INFERENCE_FAILED', `the model failed to run on this input: ${cleanRuntimeMessage(message)}`, { cause: new Error(message) });
}

/**
 * The input's buffer is transferred to the worker, not copied: after `infer` the caller's typed array
 * is detached (empty). Every caller hands over tensors it just built (parsed requests, merged
 * batches, warm-up zeros); one that means to reuse a tensor must pass a copy.
 */
function toWire(tensor: Tensor, transfer: ArrayBuffer[]): WireTensor {
  let data = tensor.data;
  if (ArrayBuffer.isView(data)) {
    const elements = tensor.shape.reduce((product, dimension) => product * dimension, 1);
    if (data.length !== elements) {
      throw new AiaasError('INTERNAL', `input '${tensor.name}' holds ${data.length} elements for shape [${tensor.shape.join(', ')}] (a tensor whose buffer was already handed to a runtime?)`);
    }
    // Transfer hands the whole buffer over; a view into a larger (shared or pooled) buffer is copied first.
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) data = data.slice() as typeof data;
    transfer.push((data as Exclude<TensorData, string[]>).buffer as ArrayBuffer);
  }
  return { name: tensor.name, type: toOrtType[tensor.datatype], dims: tensor.shape, data };
}

function fromWire(tensor: WireTensor): Tensor {
  const datatype = fromOrtType[tensor.type];
  if (datatype === undefined) throw new AiaasError('INTERNAL', `output '${tensor.name}' has unsupported type ${tensor.type}`);
  return { name: tensor.name, datatype, shape: tensor.dims, data: tensor.data };
}

class OnnxWorkerRuntime implements Runtime {
  readonly specificationVersion = 'v1' as const;
  readonly #instances: Instance[];
  readonly #idle: Instance[];
  readonly #waiting: Waiting[] = [];
  readonly #signature: ModelSignature;
  readonly #outputNames: readonly string[];
  readonly #memoryBytes: number;
  #nextId = 0;
  #broken: AiaasError | undefined;
  #disposed = false;

  constructor(instances: Instance[], signature: ModelSignature, memoryBytes: number) {
    this.#instances = instances;
    this.#idle = [...instances];
    this.#signature = signature;
    this.#outputNames = signature.outputs.map((output) => output.name);
    this.#memoryBytes = memoryBytes;
    for (const instance of instances) {
      instance.worker.on('message', (message: WorkerMessage) => this.#settle(instance, message));
      instance.worker.on('error', (error) => this.#fail(new AiaasError('MODEL_LOAD_FAILED', `a model instance crashed: ${error.message}`, { cause: error })));
      instance.worker.on('exit', (code) => {
        if (!this.#disposed) this.#fail(new AiaasError('MODEL_LOAD_FAILED', `a model instance exited (code ${code}); the model will be reloaded`));
      });
    }
  }

  get concurrency(): number {
    return this.#instances.length;
  }

  /** Set when an instance died: the model manager unloads such a runtime and loads a fresh one. */
  get failure(): AiaasError | undefined {
    return this.#broken;
  }

  signature(): ModelSignature {
    return this.#signature;
  }

  memoryBytes(): number {
    return this.#memoryBytes;
  }

  async infer(inputs: Tensor[], outputNames?: string[]): Promise<Tensor[]> {
    return (await this.inferTimed(inputs, outputNames)).outputs;
  }

  async inferTimed(inputs: Tensor[], outputNames?: string[]): Promise<TimedOutputs> {
    if (this.#disposed) throw new AiaasError('MODEL_NOT_READY', 'model was unloaded');
    if (this.#broken !== undefined) throw this.#broken;
    const instance = this.#idle.pop() ?? (await new Promise<Instance>((resolve) => this.#waiting.push({ run: resolve })));
    try {
      return await this.#runOn(instance, inputs, outputNames ?? [...this.#outputNames]);
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next.run(instance);
      else this.#idle.push(instance);
    }
  }

  #runOn(instance: Instance, inputs: Tensor[], outputNames: string[]): Promise<TimedOutputs> {
    const id = this.#nextId++;
    return new Promise<TimedOutputs>((resolve, reject) => {
      instance.pending.set(id, { resolve, reject });
      const transfer: ArrayBuffer[] = [];
      try {
        instance.worker.postMessage({ type: 'infer', id, inputs: inputs.map((input) => toWire(input, transfer)), outputNames }, transfer);
      } catch (error) {
        instance.pending.delete(id);
        reject(error);
      }
    });
  }

  #settle(instance: Instance, message: WorkerMessage): void {
    if (message.type !== 'result' && message.type !== 'error') return;
    const pending = instance.pending.get(message.id);
    if (pending === undefined) return;
    instance.pending.delete(message.id);
    if (message.type === 'error') pending.reject(runFailed(message.message));
    else {
      try {
        pending.resolve({ outputs: message.outputs.map(fromWire), computeMs: message.computeMs });
      } catch (error) {
        pending.reject(error);
      }
    }
  }

  #fail(error: AiaasError): void {
    this.#broken ??= error;
    for (const instance of this.#instances) {
      for (const pending of instance.pending.values()) pending.reject(error);
      instance.pending.clear();
    }
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#fail(new AiaasError('MODEL_NOT_READY', 'model was unloaded'));
    await Promise.all(
      this.#instances.map(async (instance) => {
        const exited = new Promise<void>((resolve) => instance.worker.once('exit', () => resolve()));
        instance.worker.postMessage({ type: 'dispose' });
        // A worker stuck in a native run cannot be interrupted; terminate() ends it once the run returns.
        const timer = setTimeout(() => void instance.worker.terminate(), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

function startInstance(path: string, options: OnnxWorkerOptions): Promise<{ instance: Instance; signature: ModelSignature }> {
  const worker = new Worker(options.scriptPath ?? defaultScript, {
    workerData: { path, intraOpThreads: options.intraOpThreads, nice: options.nice ?? 0 },
    // The parent's loader flags (tsx, vitest) are of no use to plain JavaScript.
    execArgv: [],
  });
  return new Promise((resolve, reject) => {
    const fail = (error: AiaasError): void => {
      void worker.terminate();
      reject(error);
    };
    worker.once('error', (error) => fail(new AiaasError('MODEL_LOAD_FAILED', `ONNX Runtime could not open the model: ${cleanRuntimeError(error)}`, { cause: error })));
    worker.once('message', (message: WorkerMessage) => {
      if (message.type === 'ready') {
        try {
          resolve({ instance: { worker, pending: new Map() }, signature: signatureFromMetadata(message.inputs, message.outputs) });
        } catch (error) {
          void worker.terminate();
          reject(error);
        }
      } else if (message.type === 'failed') {
        fail(new AiaasError('MODEL_LOAD_FAILED', `ONNX Runtime could not open the model: ${cleanRuntimeMessage(message.message)}`, { cause: new Error(message.message) }));
      }
    });
  });
}

/**
 * Opens `instances` sessions of the ONNX model file, each in its own worker thread. From the file's
 * path, never from bytes: ORT resolves external data against the model file's directory.
 */
export async function openOnnxInWorkers(model: ModelFile | string, options: OnnxWorkerOptions): Promise<Runtime & { readonly concurrency: number }> {
  const path = typeof model === 'string' ? model : model.path;
  if (!Number.isInteger(options.instances) || options.instances < 1) throw new RangeError('instances must be an integer >= 1');
  const started = await Promise.allSettled(Array.from({ length: options.instances }, () => startInstance(path, options)));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.instance.worker.terminate() : undefined)));
    throw (failed as PromiseRejectedResult).reason;
  }
  const ready = started.map((result) => (result as PromiseFulfilledResult<{ instance: Instance; signature: ModelSignature }>).value);
  const fileBytes = typeof model === 'string' ? (await stat(path)).size : model.sizeBytes;
  const memoryBytes = options.measuredMemoryBytes ?? fileBytes * options.instances;
  return new OnnxWorkerRuntime(
    ready.map((item) => item.instance),
    ready[0]!.signature,
    memoryBytes,
  );
}

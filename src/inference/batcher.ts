import { AiaasError } from '../errors.ts';
import type { ModelSignature, Runtime, Tensor, TimedOutputs } from '../runtimes/runtime.ts';
import { concatenateBatch, sliceBatch } from '../runtimes/tensor.ts';
import type { BatchingOptions, InferRequest, InferResponse, ModelLabels, ServingMetricsSink } from './types.ts';

interface QueuedRequest {
  request: InferRequest;
  /** Whose request this is (an API key): batches take callers round-robin so one caller's flood cannot starve others. */
  fairnessKey: string;
  /** Requests with equal keys can share one run; undefined means this one must run alone. */
  mergeKey: string | undefined;
  rows: number;
  enqueuedAt: number;
  resolve(response: InferResponse): void;
  reject(error: unknown): void;
}

/** What the batcher needs of a cancellation signal: an AbortSignal, or anything as small (see route-support's DisconnectSignal). */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
}

export interface SubmitOptions {
  /** The caller (an API key id); requests without one share a single turn. */
  fairnessKey?: string;
  /** Aborted when the client goes away: a request still queued is dropped. */
  signal?: CancelSignal;
}

export interface BatcherOptions extends BatchingOptions {
  labels?: ModelLabels;
  metrics?: ServingMetricsSink;
  /** Monotonic clock in milliseconds; injectable for tests. */
  now?: () => number;
}

/**
 * Queues requests for one model version, merges compatible ones along axis 0, runs the runtime once
 * per batch and splits the outputs back. As many batches run at once as the runtime has instances
 * (`Runtime.concurrency`); while they run, newcomers queue and form the next batches, which is where
 * merging pays off under load. Batches start from the callers in turn (round-robin over fairness
 * keys) and fill round-robin too, so a flood from one caller waits behind its own requests only.
 */
export class Batcher {
  readonly #runtime: Runtime;
  readonly #options: BatchingOptions;
  readonly #labels: ModelLabels;
  readonly #metrics: ServingMetricsSink | undefined;
  readonly #now: () => number;
  readonly #batchable: boolean;
  readonly #queue: QueuedRequest[] = [];
  readonly #concurrency: number;
  #running = 0;
  #lastServed: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #coalescing: NodeJS.Immediate | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(runtime: Runtime, options: BatcherOptions) {
    if (!Number.isInteger(options.maxBatchSize) || options.maxBatchSize < 1) throw new RangeError('maxBatchSize must be an integer >= 1');
    if (!(options.maxQueueDelayMicroseconds >= 0)) throw new RangeError('maxQueueDelayMicroseconds must be >= 0');
    if (!Number.isInteger(options.maxQueueSize) || options.maxQueueSize < 1) throw new RangeError('maxQueueSize must be an integer >= 1');
    this.#runtime = runtime;
    this.#options = { maxBatchSize: options.maxBatchSize, maxQueueDelayMicroseconds: options.maxQueueDelayMicroseconds, maxQueueSize: options.maxQueueSize };
    this.#labels = options.labels ?? { model: 'unknown', version: 'unknown' };
    this.#metrics = options.metrics;
    this.#now = options.now ?? (() => performance.now());
    this.#batchable = options.maxBatchSize > 1 && hasDynamicBatchDimension(runtime.signature());
    this.#concurrency = Math.max(1, runtime.concurrency ?? 1);
  }

  /** Requests queued or running; a model with pending work must not be evicted. */
  get pending(): number {
    return this.#queue.length + this.#running;
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  submit(request: InferRequest, options: SubmitOptions = {}): Promise<InferResponse> {
    if (options.signal?.aborted === true) return Promise.reject(disconnected());
    if (this.#queue.length >= this.#options.maxQueueSize) {
      return Promise.reject(
        new AiaasError('QUEUE_FULL', `the queue of model '${this.#labels.model}' version ${this.#labels.version} is full (${this.#options.maxQueueSize} waiting); retry shortly`, {
          headers: { 'retry-after': '1' },
        }),
      );
    }
    return new Promise<InferResponse>((resolve, reject) => {
      const mergeKey = this.#batchable ? mergeKeyOf(request) : undefined;
      const rows = mergeKey === undefined ? 0 : request.inputs[0]!.shape[0]!;
      const item: QueuedRequest = { request, fairnessKey: options.fairnessKey ?? '', mergeKey, rows, enqueuedAt: this.#now(), resolve, reject };
      this.#queue.push(item);
      options.signal?.addEventListener(
        'abort',
        () => {
          const index = this.#queue.indexOf(item);
          if (index < 0) return; // already running: its answer is simply not read
          this.#queue.splice(index, 1);
          this.#metrics?.queueDepth(this.#labels, this.#queue.length);
          item.reject(disconnected());
        },
        { once: true },
      );
      this.#metrics?.queueDepth(this.#labels, this.#queue.length);
      if (mergeKey === undefined) this.#schedule();
      else this.#scheduleAfterThisTurn();
    });
  }

  /**
   * Schedules once the event loop has handled the requests that arrived with this one: requests
   * parsed in the same turn (many connections, a busy main thread) then leave in one batch, one
   * message to a worker, instead of one each. Costs no wait beyond the current turn.
   */
  #scheduleAfterThisTurn(): void {
    this.#coalescing ??= setImmediate(() => {
      this.#coalescing = undefined;
      this.#schedule();
    });
  }

  /** Runs everything queued now, ignoring the delay, and resolves once the batcher is idle. */
  async flush(): Promise<void> {
    while (this.pending > 0) {
      while (this.#running < this.#concurrency && this.#queue.length > 0) this.#dispatch();
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  #schedule(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0) {
      if (!this.#scheduleOne()) return;
    }
  }

  /** Dispatches the next batch if it is due; false when it must wait for more requests (or its timer). */
  #scheduleOne(): boolean {
    const head = this.#nextHead();
    if (head.mergeKey === undefined) {
      this.#dispatch();
      return true;
    }
    const rows = this.#compatible(head).reduce((sum, item) => sum + item.rows, 0);
    const waitedMs = this.#now() - head.enqueuedAt;
    const delayMs = this.#options.maxQueueDelayMicroseconds / 1000;
    if (rows >= this.#options.maxBatchSize || waitedMs >= delayMs) {
      this.#dispatch();
      return true;
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, Math.max(0, delayMs - waitedMs));
    }
    return false;
  }

  /** Fairness keys with queued requests, in the order of their oldest request. */
  #queuedKeys(): string[] {
    const keys: string[] = [];
    for (const item of this.#queue) if (!keys.includes(item.fairnessKey)) keys.push(item.fairnessKey);
    return keys;
  }

  /** The oldest request of the caller whose turn is next after the last one served. */
  #nextHead(): QueuedRequest {
    const keys = this.#queuedKeys();
    const last = this.#lastServed === undefined ? -1 : keys.indexOf(this.#lastServed);
    const key = keys[(last + 1) % keys.length] ?? keys[0];
    return this.#queue.find((item) => item.fairnessKey === key) ?? this.#queue[0]!;
  }

  /** Queued requests that can join the head's batch, taken round-robin across callers, within maxBatchSize rows. */
  #compatible(head: QueuedRequest): QueuedRequest[] {
    const byKey = new Map<string, QueuedRequest[]>();
    for (const item of this.#queue) {
      if (item === head || item.mergeKey !== head.mergeKey) continue;
      const list = byKey.get(item.fairnessKey) ?? [];
      list.push(item);
      byKey.set(item.fairnessKey, list);
    }
    const keys = [...byKey.keys()];
    const start = keys.indexOf(head.fairnessKey);
    const order = start < 0 ? keys : [...keys.slice(start + 1), ...keys.slice(0, start + 1)];
    const chosen: QueuedRequest[] = [head];
    let rows = head.rows;
    for (let round = 0; ; round++) {
      let took = false;
      for (const key of order) {
        const item = byKey.get(key)![round];
        if (item === undefined) continue;
        if (rows + item.rows > this.#options.maxBatchSize) return chosen;
        chosen.push(item);
        rows += item.rows;
        took = true;
      }
      if (!took) return chosen;
    }
  }

  #dispatch(): void {
    if (this.#coalescing !== undefined) {
      clearImmediate(this.#coalescing);
      this.#coalescing = undefined;
    }
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#queue.length === 0) return;
    const head = this.#nextHead();
    const batch = head.mergeKey === undefined ? [head] : this.#compatible(head);
    for (const item of batch) this.#queue.splice(this.#queue.indexOf(item), 1);
    this.#lastServed = head.fairnessKey;
    this.#metrics?.queueDepth(this.#labels, this.#queue.length);
    this.#running++;
    void this.#run(batch).finally(() => {
      this.#running--;
      if (this.#queue.length === 0) {
        if (this.#running === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const waiter of waiters) waiter();
        }
      } else if (this.#idleWaiters.length > 0) {
        this.#dispatch();
      } else {
        this.#schedule();
      }
    });
  }

  /** Settles every request of the batch exactly once; never rejects, so no request is left hanging. */
  #run(batch: QueuedRequest[]): Promise<void> {
    try {
      const rows = batch.reduce((sum, item) => sum + Math.max(item.rows, 1), 0);
      this.#metrics?.batchExecuted(this.#labels, rows, batch.length);
    } catch (error) {
      for (const item of batch) item.reject(error);
      return Promise.resolve();
    }
    return batch.length === 1 ? this.#runAlone(batch[0]!) : this.#runMerged(batch);
  }

  async #runMerged(batch: QueuedRequest[]): Promise<void> {
    const startedAt = this.#now();
    try {
      const first = batch[0]!.request;
      const inputs = first.inputs.map((_input, index) => concatenateBatch(batch.map((item) => item.request.inputs[index]!)));
      const { outputs, computeMs } = await this.#infer(inputs, first.outputs);
      const total = batch.reduce((sum, item) => sum + item.rows, 0);
      if (outputs.some((output) => output.shape[0] !== total)) {
        // The model's outputs are not batch-major after all; fall back to one run per request.
        for (const item of batch) await this.#runAlone(item);
        return;
      }
      let offset = 0;
      for (const item of batch) {
        item.resolve({
          outputs: outputs.map((output) => sliceBatch(output, offset, offset + item.rows)),
          timing: { queueMs: startedAt - item.enqueuedAt, computeMs, billedComputeMs: (computeMs * item.rows) / total },
        });
        offset += item.rows;
      }
    } catch (error) {
      // Settling twice is a no-op, so requests already answered keep their answer.
      for (const item of batch) item.reject(error);
    }
  }

  async #runAlone(item: QueuedRequest): Promise<void> {
    const startedAt = this.#now();
    try {
      const { outputs, computeMs } = await this.#infer(item.request.inputs, item.request.outputs);
      item.resolve({ outputs, timing: { queueMs: startedAt - item.enqueuedAt, computeMs, billedComputeMs: computeMs } });
    } catch (error) {
      item.reject(error);
    }
  }

  /** The runtime's own measure of its run when it has one (worker runtimes), else the call timed here. */
  async #infer(inputs: Tensor[], outputNames: string[] | undefined): Promise<TimedOutputs> {
    if (this.#runtime.inferTimed !== undefined) return this.#runtime.inferTimed(inputs, outputNames);
    const startedAt = this.#now();
    const outputs = await this.#runtime.infer(inputs, outputNames);
    return { outputs, computeMs: this.#now() - startedAt };
  }
}

function disconnected(): AiaasError {
  return new AiaasError('CLIENT_DISCONNECTED', 'the client closed the request before it ran');
}

/** Merging is only sound when every input and output is batch-major with a dynamic first dimension. */
function hasDynamicBatchDimension(signature: ModelSignature): boolean {
  const tensors = [...signature.inputs, ...signature.outputs];
  return tensors.length > 0 && tensors.every((spec) => spec.shape.length >= 1 && spec.shape[0] === -1);
}

/**
 * Requests merge when they feed the same inputs (same order, types and trailing dimensions), ask for
 * the same outputs and agree on the batch size of every input.
 */
function mergeKeyOf(request: InferRequest): string | undefined {
  const rows = request.inputs[0]?.shape[0];
  if (rows === undefined || rows < 1) return undefined;
  const parts: string[] = [];
  for (const input of request.inputs as Tensor[]) {
    const shape = input.shape;
    if (shape[0] !== rows) return undefined;
    let part = `${input.name}:${input.datatype}:`;
    for (let axis = 1; axis < shape.length; axis++) part += axis === 1 ? String(shape[axis]) : `x${shape[axis]}`;
    parts.push(part);
  }
  return `${parts.join('|')}=>${request.outputs?.join(',') ?? '*'}`;
}

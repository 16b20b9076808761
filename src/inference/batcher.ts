import { AiaasError } from '../errors.ts';
import type { ModelSignature, Runtime, Tensor } from '../runtimes/runtime.ts';
import { concatenateBatch, sliceBatch } from '../runtimes/tensor.ts';
import type { BatchingOptions, InferRequest, InferResponse, ModelLabels, ServingMetricsSink } from './types.ts';

interface QueuedRequest {
  request: InferRequest;
  /** Requests with equal keys can share one run; undefined means this one must run alone. */
  mergeKey: string | undefined;
  rows: number;
  enqueuedAt: number;
  resolve(response: InferResponse): void;
  reject(error: unknown): void;
}

export interface BatcherOptions extends BatchingOptions {
  labels?: ModelLabels;
  metrics?: ServingMetricsSink;
  /** Monotonic clock in milliseconds; injectable for tests. */
  now?: () => number;
}

/**
 * Queues requests for one model version, merges compatible ones along axis 0, runs the runtime once
 * per batch and splits the outputs back. One batch runs at a time: while it runs, newcomers queue and
 * form the next batch, which is where merging pays off under load.
 */
export class Batcher {
  readonly #runtime: Runtime;
  readonly #options: BatchingOptions;
  readonly #labels: ModelLabels;
  readonly #metrics: ServingMetricsSink | undefined;
  readonly #now: () => number;
  readonly #batchable: boolean;
  readonly #queue: QueuedRequest[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;
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
  }

  /** Requests queued or running; a model with pending work must not be evicted. */
  get pending(): number {
    return this.#queue.length + (this.#running ? 1 : 0);
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  submit(request: InferRequest): Promise<InferResponse> {
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
      this.#queue.push({ request, mergeKey, rows, enqueuedAt: this.#now(), resolve, reject });
      this.#metrics?.queueDepth(this.#labels, this.#queue.length);
      this.#schedule();
    });
  }

  /** Runs everything queued now, ignoring the delay, and resolves once the batcher is idle. */
  async flush(): Promise<void> {
    while (this.pending > 0) {
      if (!this.#running) this.#dispatch();
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  #schedule(): void {
    if (this.#running || this.#queue.length === 0) return;
    const head = this.#queue[0]!;
    if (head.mergeKey === undefined) return this.#dispatch();
    const rows = this.#compatible(head).reduce((sum, item) => sum + item.rows, 0);
    const waitedMs = this.#now() - head.enqueuedAt;
    const delayMs = this.#options.maxQueueDelayMicroseconds / 1000;
    if (rows >= this.#options.maxBatchSize || waitedMs >= delayMs) return this.#dispatch();
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, Math.max(0, delayMs - waitedMs));
    }
  }

  /** Queued requests that can join the head's batch, in arrival order, within maxBatchSize rows. */
  #compatible(head: QueuedRequest): QueuedRequest[] {
    const chosen: QueuedRequest[] = [head];
    let rows = head.rows;
    for (const item of this.#queue) {
      if (item === head || item.mergeKey !== head.mergeKey) continue;
      if (rows + item.rows > this.#options.maxBatchSize) break;
      chosen.push(item);
      rows += item.rows;
    }
    return chosen;
  }

  #dispatch(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const head = this.#queue[0];
    if (head === undefined) return;
    const batch = head.mergeKey === undefined ? [head] : this.#compatible(head);
    for (const item of batch) this.#queue.splice(this.#queue.indexOf(item), 1);
    this.#metrics?.queueDepth(this.#labels, this.#queue.length);
    this.#running = true;
    void this.#run(batch).finally(() => {
      this.#running = false;
      if (this.#queue.length === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const waiter of waiters) waiter();
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
    try {
      const first = batch[0]!.request;
      const inputs = first.inputs.map((_input, index) => concatenateBatch(batch.map((item) => item.request.inputs[index]!)));
      const outputs = await this.#runtime.infer(inputs, first.outputs);
      const total = batch.reduce((sum, item) => sum + item.rows, 0);
      if (outputs.some((output) => output.shape[0] !== total)) {
        // The model's outputs are not batch-major after all; fall back to one run per request.
        for (const item of batch) await this.#runAlone(item);
        return;
      }
      let offset = 0;
      for (const item of batch) {
        item.resolve({ outputs: outputs.map((output) => sliceBatch(output, offset, offset + item.rows)) });
        offset += item.rows;
      }
    } catch (error) {
      // Settling twice is a no-op, so requests already answered keep their answer.
      for (const item of batch) item.reject(error);
    }
  }

  async #runAlone(item: QueuedRequest): Promise<void> {
    try {
      item.resolve({ outputs: await this.#runtime.infer(item.request.inputs, item.request.outputs) });
    } catch (error) {
      item.reject(error);
    }
  }
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
    if (input.shape[0] !== rows) return undefined;
    parts.push(`${input.name}:${input.datatype}:${input.shape.slice(1).join('x')}`);
  }
  return `${parts.join('|')}=>${request.outputs?.join(',') ?? '*'}`;
}

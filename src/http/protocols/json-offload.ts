/**
 * Parses inference request bodies in worker threads, so the main thread neither spends its time on
 * JSON.parse (the largest single cost of a V2 request on it: about a third for a 784-element image)
 * nor stalls on a large body (a 1×3×640×640 image as JSON is 23 MB and ~200 ms of parsing). Bodies
 * that arrive in one event-loop turn go to a worker as one message, and come back as one.
 *
 * What comes back is what `parseJsonBody` would have returned, except that a flat array of numbers
 * under `inputs[].data` (KServe V2, `packTensors`) is a typed array (Float32Array for an FP32 input,
 * Float64Array otherwise), a view into one buffer per batch: the tensor parser takes either form.
 * Anything a worker cannot answer (not JSON, nesting deeper than 100, a worker that died) comes back
 * as `fallback`, and the caller parses it on its own thread, which reports where it breaks.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface JsonParsePoolOptions {
  /** Worker threads; each parses one batch at a time. */
  threads: number;
  /** Replaces the worker script (tests). */
  scriptPath?: string;
}

/** What a worker answers for one body. */
export type OffloadedParse = { value: unknown } | { empty: true } | { fallback: true };

interface Waiter {
  resolve(result: OffloadedParse): void;
}

interface Lane {
  worker: Worker | undefined;
  /** Batches sent and not yet answered, oldest first. */
  inFlight: Waiter[][];
  /** Bodies queued in this turn, sent together at its end. */
  queued: Buffer[];
  /** Per queued body: whether its flat numeric `inputs[].data` come back packed. */
  queuedPacks: boolean[];
  queuedBytes: number;
  queuedWaiters: Waiter[];
  /** Bytes sent and not yet answered: new bodies go to the lane with the fewest. */
  pendingBytes: number;
  inFlightBytes: number[];
}

const defaultScript = fileURLToPath(new URL('./json-parse-worker.mjs', import.meta.url));

const fallback: OffloadedParse = { fallback: true };

export class JsonParsePool {
  readonly #lanes: Lane[];
  readonly #scriptPath: string;
  #flush: NodeJS.Immediate | undefined;
  #closed = false;
  #parsed = 0;

  constructor(options: JsonParsePoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError('threads must be an integer >= 1');
    this.#scriptPath = options.scriptPath ?? defaultScript;
    this.#lanes = Array.from({ length: options.threads }, () => ({ worker: undefined, inFlight: [], queued: [], queuedPacks: [], queuedBytes: 0, queuedWaiters: [], pendingBytes: 0, inFlightBytes: [] }));
  }

  /**
   * Parses `body` in a worker. Resolves `fallback` when the pool is closed or a worker failed: the
   * caller then parses on its own thread.
   */
  parse(body: Buffer, options: { packTensors: boolean }): Promise<OffloadedParse> {
    if (this.#closed) return Promise.resolve(fallback);
    const lane = this.#leastBusy();
    return new Promise<OffloadedParse>((resolve) => {
      // Kept, not copied: bodies are copied once, into the batch's buffer, when the turn ends.
      lane.queued.push(body);
      lane.queuedPacks.push(options.packTensors);
      lane.queuedBytes += body.length;
      lane.queuedWaiters.push({ resolve });
      lane.pendingBytes += body.length;
      this.#flush ??= setImmediate(() => this.#send());
    });
  }

  /** Bodies a worker parsed (answered with a value or as empty), since the pool started. */
  get parsed(): number {
    return this.#parsed;
  }

  /** Ends the workers; bodies in flight are parsed by their callers instead. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#flush !== undefined) clearImmediate(this.#flush);
    this.#flush = undefined;
    await Promise.all(
      this.#lanes.map(async (lane) => {
        this.#failLane(lane);
        const worker = lane.worker;
        lane.worker = undefined;
        if (worker !== undefined) await worker.terminate();
      }),
    );
  }

  #leastBusy(): Lane {
    let best = this.#lanes[0]!;
    for (const lane of this.#lanes) if (lane.pendingBytes < best.pendingBytes) best = lane;
    return best;
  }

  #send(): void {
    this.#flush = undefined;
    for (const lane of this.#lanes) {
      if (lane.queued.length === 0) continue;
      const bodies = lane.queued;
      const packs = lane.queuedPacks;
      const waiters = lane.queuedWaiters;
      const bytes = new Uint8Array(lane.queuedBytes);
      const lengths: number[] = [];
      let offset = 0;
      for (const body of bodies) {
        bytes.set(body, offset);
        offset += body.length;
        lengths.push(body.length);
      }
      lane.queued = [];
      lane.queuedPacks = [];
      lane.queuedBytes = 0;
      lane.queuedWaiters = [];
      try {
        const worker = (lane.worker ??= this.#start(lane));
        lane.inFlight.push(waiters);
        lane.inFlightBytes.push(bytes.length);
        // Referenced while it owes answers, so a caller awaiting one keeps the process alive.
        worker.ref();
        worker.postMessage({ bytes, lengths, packs }, [bytes.buffer]);
      } catch {
        lane.inFlight.pop();
        lane.inFlightBytes.pop();
        lane.pendingBytes -= bytes.length;
        for (const waiter of waiters) waiter.resolve(fallback);
      }
    }
  }

  #start(lane: Lane): Worker {
    // The parent's loader flags (tsx, vitest) are of no use to plain JavaScript.
    const worker = new Worker(this.#scriptPath, { execArgv: [] });
    worker.on('message', (results: OffloadedParse[]) => {
      const waiters = lane.inFlight.shift();
      lane.pendingBytes -= lane.inFlightBytes.shift() ?? 0;
      // An idle parse worker must not keep the process alive.
      if (lane.inFlight.length === 0) worker.unref();
      if (waiters === undefined) return;
      for (let index = 0; index < waiters.length; index++) {
        const result = results[index] ?? fallback;
        if (!('fallback' in result)) this.#parsed++;
        waiters[index]!.resolve(result);
      }
    });
    // An answer that cannot be read on this side: its batch is parsed by the callers.
    worker.on('messageerror', () => {
      const waiters = lane.inFlight.shift();
      lane.pendingBytes -= lane.inFlightBytes.shift() ?? 0;
      if (lane.inFlight.length === 0) worker.unref();
      for (const waiter of waiters ?? []) waiter.resolve(fallback);
    });
    const lost = (): void => {
      if (lane.worker !== worker) return;
      // Started again on the next body; what was in flight is parsed by its callers.
      lane.worker = undefined;
      this.#failLane(lane);
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    return worker;
  }

  #failLane(lane: Lane): void {
    const waiting = [...lane.inFlight.flat(), ...lane.queuedWaiters];
    lane.inFlight = [];
    lane.inFlightBytes = [];
    lane.queued = [];
    lane.queuedPacks = [];
    lane.queuedBytes = 0;
    lane.queuedWaiters = [];
    lane.pendingBytes = 0;
    for (const waiter of waiting) waiter.resolve(fallback);
  }
}

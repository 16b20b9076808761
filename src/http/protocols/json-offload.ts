/**
 * Parses large inference request bodies in worker threads, so the main thread does not stall on them
 * (a 1×3×640×640 image as JSON is 23 MB and ~200 ms of parsing). Small V2 bodies are read on the main
 * thread by the V2 scanner instead (v2-json-scanner.ts), which costs less than the trip here and back;
 * TF-Serving bodies and what the scanner leaves come here. Bodies that arrive in one event-loop turn
 * go to a worker as one message, and come back as one.
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
  /** Niceness added to each parse thread (Linux; 0 = as the main thread), see runtimes/thread-priority.mjs. */
  nice?: number;
  /** Replaces the worker script (tests). */
  scriptPath?: string;
}

/** What a worker answers for one body. */
export type OffloadedParse = { value: unknown } | { empty: true } | { fallback: true };

/** A body waiting for the end of the turn, and who waits for its parse. */
interface QueuedBody {
  body: Buffer;
  /** Whether its flat numeric `inputs[].data` come back packed. */
  packTensors: boolean;
  resolve(result: OffloadedParse): void;
}

/** A batch sent to a worker and not yet answered. */
interface SentBatch {
  waiters: QueuedBody[];
  bytes: number;
}

interface Lane {
  worker: Worker | undefined;
  /** Bodies queued in this turn, sent together at its end. */
  queued: QueuedBody[];
  queuedBytes: number;
  /** Oldest first; a worker answers its batches in order. */
  inFlight: SentBatch[];
}

const defaultScript = fileURLToPath(new URL('./json-parse-worker.mjs', import.meta.url));

const fallback: OffloadedParse = { fallback: true };

export class JsonParsePool {
  readonly #lanes: Lane[];
  readonly #scriptPath: string;
  readonly #nice: number;
  #flush: NodeJS.Immediate | undefined;
  #closed = false;
  #parsed = 0;

  constructor(options: JsonParsePoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError('threads must be an integer >= 1');
    this.#scriptPath = options.scriptPath ?? defaultScript;
    this.#nice = options.nice ?? 0;
    this.#lanes = Array.from({ length: options.threads }, () => ({ worker: undefined, queued: [], queuedBytes: 0, inFlight: [] }));
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
      lane.queued.push({ body, packTensors: options.packTensors, resolve });
      lane.queuedBytes += body.length;
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

  /** The lane with the fewest bytes queued or being parsed. */
  #leastBusy(): Lane {
    const load = (lane: Lane): number => lane.inFlight.reduce((sum, batch) => sum + batch.bytes, lane.queuedBytes);
    let best = this.#lanes[0]!;
    for (const lane of this.#lanes) if (load(lane) < load(best)) best = lane;
    return best;
  }

  #send(): void {
    this.#flush = undefined;
    for (const lane of this.#lanes) {
      if (lane.queued.length === 0) continue;
      const waiters = lane.queued;
      const bytes = new Uint8Array(lane.queuedBytes);
      let offset = 0;
      for (const { body } of waiters) {
        bytes.set(body, offset);
        offset += body.length;
      }
      lane.queued = [];
      lane.queuedBytes = 0;
      try {
        const worker = (lane.worker ??= this.#start(lane));
        // Referenced while it owes answers, so a caller awaiting one keeps the process alive.
        worker.ref();
        worker.postMessage({ bytes, lengths: waiters.map(({ body }) => body.length), packs: waiters.map(({ packTensors }) => packTensors) }, [bytes.buffer]);
        lane.inFlight.push({ waiters, bytes: bytes.length });
      } catch {
        for (const waiter of waiters) waiter.resolve(fallback);
      }
    }
  }

  #start(lane: Lane): Worker {
    // The parent's loader flags (tsx, vitest) are of no use to plain JavaScript.
    const worker = new Worker(this.#scriptPath, { execArgv: [], workerData: { nice: this.#nice } });
    /** The oldest batch in flight, now answered (or unreadable). */
    const answered = (): QueuedBody[] => {
      const batch = lane.inFlight.shift();
      // An idle parse worker must not keep the process alive.
      if (lane.inFlight.length === 0) worker.unref();
      return batch?.waiters ?? [];
    };
    worker.on('message', (results: OffloadedParse[]) => {
      answered().forEach((waiter, index) => {
        const result = results[index] ?? fallback;
        if (!('fallback' in result)) this.#parsed++;
        waiter.resolve(result);
      });
    });
    // An answer that cannot be read on this side: its batch is parsed by the callers.
    worker.on('messageerror', () => {
      for (const waiter of answered()) waiter.resolve(fallback);
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
    const waiting = [...lane.inFlight.flatMap((batch) => batch.waiters), ...lane.queued];
    lane.inFlight = [];
    lane.queued = [];
    lane.queuedBytes = 0;
    for (const waiter of waiting) waiter.resolve(fallback);
  }
}

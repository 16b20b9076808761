import { AiaasError } from '../errors.ts';
import type { LanguageModelRuntime, OpenRequest } from '../runtimes/format.ts';
import { createFormatLoaders, formatNamed, type FormatLoaders, type OpenedRuntime } from '../runtimes/formats.ts';
import type { ModelSignature, Runtime } from '../runtimes/runtime.ts';
import { zeroTensor } from '../runtimes/tensor.ts';
import { Batcher, type SubmitOptions } from './batcher.ts';
import type { BatchingOptions, InferRequest, InferResponse, ModelLabels, ServingMetricsSink } from './types.ts';

/** Identifies one stored model version. `versionId` is the cache key; the rest labels metrics and lists. */
export interface ModelKey {
  versionId: string;
  /** The owning tenant (labels metrics). */
  tenantId?: string;
  name?: string;
  version?: string;
  /** Per-model overrides of the manager's batching defaults. */
  batching?: Partial<BatchingOptions>;
}

/** A version's plaintext files while it is loaded: the runtime opens `path`; `release` deletes them. */
export interface ModelFiles extends OpenRequest {
  /** The version's stored format (`runtimes/formats.ts`): which runtime opens the files. */
  format: string;
  release(): Promise<void>;
}

export interface LoadedModel {
  key: ModelKey;
  runtime: Runtime;
  signature: ModelSignature;
  memoryBytes: number;
  loadedAt: number;
  lastUsedAt: number;
}

export type { LanguageModelRuntime };

export interface ModelManagerOptions {
  /**
   * Writes the version's decrypted files into its private directory. The manager releases them once
   * the runtime is disposed (unload, eviction, a failed load), and never opens a version again
   * before its previous files are released.
   */
  openFiles(key: ModelKey): Promise<ModelFiles>;
  /**
   * Opens a version's files with the runtime of its format, placed where the format says (ONNX in
   * worker threads, GGUF in-process on llama.cpp's native threads). Tensor formats get a Batcher;
   * language models batch their sequences themselves and get none. Default: every format with one
   * instance and one thread (tests); the server passes its configured loaders and closes them.
   */
  loaders?: FormatLoaders;
  /** Replaces how a tensor version's files become a Runtime (tests hold inference to fill a queue). */
  loadRuntime?(model: ModelFiles, key: ModelKey): Promise<Runtime>;
  /** Replaces how a language-model version's files are opened (tests wrap the runtime). */
  loadLanguageModel?(model: ModelFiles, key: ModelKey): Promise<LanguageModelRuntime>;
  /** Sum of `Runtime.memoryBytes()` the manager keeps loaded before evicting least recently used models. */
  memoryBudgetBytes: number;
  /** Unload a model unused for this long; 0 keeps models until evicted. */
  idleUnloadMs: number;
  /** Wall clock in milliseconds; injectable so idle unloading is testable without waiting. */
  now?: () => number;
  /** Run one inference on zeros right after loading so the first real request does not pay for it. */
  warmup: boolean;
  batchingDefaults: BatchingOptions;
  metrics?: ServingMetricsSink;
}

/** Without configured loaders (tests, tools): one instance, one thread, one sequence. */
const minimalRuntimeSettings = {
  tensor: { instances: 1, intraOpThreads: 1 },
  language: { parallel: 1, maxWaiting: 0, threads: 1, contextLength: 512, maxContextLength: 4096 },
};

/** A per-model idle time set by a client (Ollama's `keep_alive`); Infinity never unloads it when idle. */
interface KeepAlive {
  keepAliveMs?: number;
}

interface TensorEntry extends LoadedModel, KeepAlive {
  kind: 'tensor';
  batcher: Batcher;
  files: ModelFiles;
  /** Calls inside `infer` right now, including the gap before the batcher sees them. */
  active: number;
}

interface LanguageEntry extends KeepAlive {
  kind: 'language';
  key: ModelKey;
  runtime: LanguageModelRuntime;
  files: ModelFiles;
  memoryBytes: number;
  loadedAt: number;
  lastUsedAt: number;
  active: number;
}

type Entry = TensorEntry | LanguageEntry;

/**
 * Resolves a model version to a loaded runtime: loads on first use (concurrent first uses share one
 * load), keeps the sum of model sizes under a budget by evicting the least recently used idle model,
 * unloads idle models, and routes inference through each version's Batcher.
 */
export class ModelManager {
  readonly #options: ModelManagerOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<Entry>>();
  /** Versions being unloaded: a new load of one waits until its old files are gone. */
  readonly #releasing = new Map<string, Promise<void>>();
  #sweepTimer: NodeJS.Timeout | undefined;
  readonly #loaders: FormatLoaders;
  /** Loaders the manager made itself (none were given), closed with it. */
  readonly #ownsLoaders: boolean;

  constructor(options: ModelManagerOptions) {
    if (!(options.memoryBudgetBytes > 0)) throw new RangeError('memoryBudgetBytes must be > 0');
    if (!(options.idleUnloadMs >= 0)) throw new RangeError('idleUnloadMs must be >= 0');
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#ownsLoaders = options.loaders === undefined;
    this.#loaders = options.loaders ?? createFormatLoaders(minimalRuntimeSettings, { info: () => undefined });
    if (options.idleUnloadMs > 0) {
      this.#sweepTimer = setInterval(() => void this.sweepIdle(), Math.min(options.idleUnloadMs, 30_000));
      this.#sweepTimer.unref();
    }
  }

  /** The loaded entry for a version, loading it if needed. */
  async acquire(key: ModelKey): Promise<LoadedModel> {
    return tensorEntry(await this.#acquireEntry(key));
  }

  /**
   * The loaded language model of a version, loading it if needed. Memory counted is the runtime's
   * `memoryBytes()` (weights and KV cache); idle unloading and LRU eviction apply, and a model with
   * generations running or waiting is never evicted.
   */
  async acquireLanguageModel(key: ModelKey): Promise<LanguageModelRuntime> {
    const entry = await this.#acquireEntry(key);
    if (entry.kind !== 'language') throw new AiaasError('MODEL_NOT_FOUND', 'This model version is not a language model');
    return entry.runtime;
  }

  /** Running and waiting generations of every loaded language model (metrics gauges). */
  languageModelLoad(): { key: ModelKey; running: number; waiting: number }[] {
    return [...this.#entries.values()].flatMap((entry) => (entry.kind === 'language' ? [{ key: entry.key, ...entry.runtime.load() }] : []));
  }

  /** Queues the request on the version's batcher; `options` names the caller (fair turns) and its disconnect signal. */
  infer(key: ModelKey, request: InferRequest, options: SubmitOptions = {}): Promise<InferResponse> {
    // A loaded version (nearly every request) is submitted to at once: no awaits before the queue.
    const loaded = this.#entries.get(key.versionId);
    if (loaded !== undefined && loaded.kind === 'tensor') {
      loaded.lastUsedAt = this.#now();
      return this.#submit(loaded, request, options);
    }
    return this.#inferOnceLoaded(key, request, options);
  }

  async #inferOnceLoaded(key: ModelKey, request: InferRequest, options: SubmitOptions): Promise<InferResponse> {
    let entry = tensorEntry(await this.#acquireEntry(key));
    // An unload or eviction may have removed the entry while we waited; its runtime is about to be
    // disposed, so submitting there would fail. Load a fresh copy instead.
    while (this.#entries.get(key.versionId) !== entry) entry = tensorEntry(await this.#acquireEntry(key));
    return await this.#submit(entry, request, options);
  }

  /** Counts the call as active (an active model is never evicted) until it settles. */
  #submit(entry: TensorEntry, request: InferRequest, options: SubmitOptions): Promise<InferResponse> {
    entry.active++;
    const settled = (): void => {
      entry.active--;
      entry.lastUsedAt = this.#now();
    };
    return entry.batcher.submit(request, options).then(
      (response) => {
        settled();
        return response;
      },
      (error: unknown) => {
        settled();
        throw error;
      },
    );
  }

  isLoaded(versionId: string): boolean {
    return this.#entries.has(versionId);
  }

  loaded(): { key: ModelKey; kind: 'tensor' | 'language'; memoryBytes: number; loadedAt: number; lastUsedAt: number }[] {
    return [...this.#entries.values()].map((entry) => ({
      key: entry.key,
      kind: entry.kind,
      memoryBytes: entry.memoryBytes,
      loadedAt: entry.loadedAt,
      lastUsedAt: entry.lastUsedAt,
    }));
  }

  /** Unloads a version after its queued requests finish. Resolves false if it was not loaded. */
  async unload(key: Pick<ModelKey, 'versionId'>): Promise<boolean> {
    const loading = this.#loading.get(key.versionId);
    if (loading !== undefined) await loading.catch(() => undefined);
    const entry = this.#entries.get(key.versionId);
    if (entry === undefined) return false;
    await this.#remove(entry);
    return true;
  }

  /**
   * Sets how long a loaded version may stay idle before it is unloaded, overriding `idleUnloadMs` for
   * it (Ollama's `keep_alive`): 0 unloads it as soon as it is idle, a negative value keeps it until
   * evicted. Not a pin: the memory budget can still evict it.
   */
  async keepAlive(versionId: string, milliseconds: number): Promise<void> {
    const entry = this.#entries.get(versionId);
    if (entry === undefined) return;
    entry.keepAliveMs = milliseconds < 0 ? Number.POSITIVE_INFINITY : milliseconds;
    // Called as a request finishes: the idle time counts from now.
    entry.lastUsedAt = this.#now();
    if (milliseconds === 0 && !isBusy(entry)) {
      await this.#remove(entry);
      return;
    }
    // Per-model idle times need sweeps even when the server-wide idle unload is off.
    if (this.#sweepTimer === undefined && Number.isFinite(entry.keepAliveMs)) {
      this.#sweepTimer = setInterval(() => void this.sweepIdle(), Math.max(50, Math.min(entry.keepAliveMs, 1000)));
      this.#sweepTimer.unref();
    }
  }

  /** When an idle version will be unloaded (its `keepAlive` or `idleUnloadMs` after last use); undefined: never. */
  expiresAt(versionId: string): number | undefined {
    const entry = this.#entries.get(versionId);
    if (entry === undefined) return undefined;
    const idleMs = this.#idleLimit(entry);
    return idleMs === undefined ? undefined : entry.lastUsedAt + idleMs;
  }

  #idleLimit(entry: Entry): number | undefined {
    if (entry.keepAliveMs !== undefined) return Number.isFinite(entry.keepAliveMs) ? entry.keepAliveMs : undefined;
    return this.#options.idleUnloadMs > 0 ? this.#options.idleUnloadMs : undefined;
  }

  /** Unloads models idle for at least their idle limit (`keepAlive`, else `idleUnloadMs`); returns their version ids. */
  async sweepIdle(): Promise<string[]> {
    const now = this.#now();
    const idle = [...this.#entries.values()].filter((entry) => {
      const limit = this.#idleLimit(entry);
      return limit !== undefined && entry.lastUsedAt <= now - limit && !isBusy(entry);
    });
    await Promise.all(idle.map((entry) => this.#remove(entry)));
    return idle.map((entry) => entry.key.versionId);
  }

  async close(): Promise<void> {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    await Promise.allSettled([...this.#loading.values()]);
    await Promise.all([...this.#entries.values()].map((entry) => this.#remove(entry)));
    await Promise.allSettled([...this.#releasing.values()]);
    if (this.#ownsLoaders) await this.#loaders.close();
  }

  /** The entry of a loaded version, loading it if needed; what it is (tensor or language) is its format's. */
  async #acquireEntry(key: ModelKey): Promise<Entry> {
    const existing = this.#entries.get(key.versionId);
    if (existing !== undefined) {
      existing.lastUsedAt = this.#now();
      return existing;
    }
    let loading = this.#loading.get(key.versionId);
    if (loading === undefined) {
      loading = this.#load(key).finally(() => this.#loading.delete(key.versionId));
      this.#loading.set(key.versionId, loading);
    }
    return await loading;
  }

  /** Opens the files with the runtime their stored format names. */
  async #open(files: ModelFiles, key: ModelKey): Promise<OpenedRuntime> {
    const labels = { ...(key.name === undefined ? {} : { name: key.name }), ...(key.version === undefined ? {} : { version: key.version }) };
    const format = formatNamed(files.format);
    if (format.capability === 'tensor' && this.#options.loadRuntime !== undefined) return { capability: 'tensor', runtime: await this.#options.loadRuntime(files, key) };
    if (format.capability === 'language' && this.#options.loadLanguageModel !== undefined) return { capability: 'language', runtime: await this.#options.loadLanguageModel(files, key) };
    return await this.#loaders.open(format.name, files, labels);
  }

  async #load(key: ModelKey): Promise<Entry> {
    // The previous copy's directory is the same one: let its removal finish before writing again.
    await this.#releasing.get(key.versionId);
    const files = await this.#options.openFiles(key);
    let opened: OpenedRuntime;
    try {
      opened = await this.#open(files, key);
    } catch (error) {
      await files.release();
      throw error;
    }
    const runtime = opened.runtime;
    const fail = async (error: AiaasError): Promise<never> => {
      try {
        await runtime.dispose();
      } finally {
        await files.release();
      }
      throw error;
    };
    // Tensor runtimes: the bytes one instance was measured to take (at upload, or at the first load
    // of a version stored before measuring) × instances; only where nothing could be measured (no
    // /proc) the old estimate, file size × instances. Language models: weights and KV cache.
    const memoryBytes = runtime.memoryBytes();
    if (memoryBytes > this.#options.memoryBudgetBytes) {
      await fail(
        new AiaasError(
          'MODEL_LOAD_FAILED',
          `model needs about ${memoryBytes} bytes${opened.capability === 'language' ? ' (weights and KV cache)' : ''}, more than the whole serving memory budget of ${this.#options.memoryBudgetBytes} bytes`,
        ),
      );
    }
    const now = this.#now();
    if (opened.capability === 'language') {
      const entry: LanguageEntry = { kind: 'language', key, runtime: opened.runtime, files, memoryBytes, loadedAt: now, lastUsedAt: now, active: 0 };
      this.#entries.set(key.versionId, entry);
      await this.#evictOverBudget(entry);
      this.#reportLoaded();
      return entry;
    }
    return await this.#addTensorEntry(key, opened.runtime, files, memoryBytes, fail);
  }

  async #addTensorEntry(key: ModelKey, runtime: Runtime, files: ModelFiles, memoryBytes: number, fail: (error: AiaasError) => Promise<never>): Promise<Entry> {
    const signature = runtime.signature();
    if (this.#options.warmup) {
      try {
        await runtime.infer(signature.inputs.map((spec) => zeroTensor(spec)));
      } catch (error) {
        // Runtime errors arrive cleaned of host paths (AiaasError); anything else is not shown to clients.
        const reason = AiaasError.isInstance(error) ? error.message : 'the runtime failed';
        await fail(new AiaasError('MODEL_LOAD_FAILED', `warmup inference failed: ${reason}`, { cause: error }));
      }
    }
    const labels = labelsOf(key);
    const batching = { ...this.#options.batchingDefaults, ...key.batching };
    const now = this.#now();
    const entry: TensorEntry = {
      kind: 'tensor',
      key,
      runtime,
      signature,
      memoryBytes,
      loadedAt: now,
      lastUsedAt: now,
      active: 0,
      files,
      batcher: new Batcher(runtime, { ...batching, labels, ...(this.#options.metrics === undefined ? {} : { metrics: this.#options.metrics }) }),
    };
    this.#entries.set(key.versionId, entry);
    await this.#evictOverBudget(entry);
    this.#reportLoaded();
    return entry;
  }

  /**
   * Evicts idle models until the budget holds, fairly across tenants: each tenant with a model loaded
   * is entitled to the budget divided by the number of such tenants. The victim is the least recently
   * used idle model of the tenant furthest over its share; a tenant at or under its share never loses
   * a model to another's load. Busy models are never evicted; when nothing may go, the budget is
   * exceeded until models go idle (as before, rather than failing the load).
   */
  async #evictOverBudget(keep: Entry): Promise<void> {
    const budget = this.#options.memoryBudgetBytes;
    while (this.#totalBytes() > budget) {
      const usage = new Map<string, number>();
      for (const entry of this.#entries.values()) usage.set(tenantOf(entry), (usage.get(tenantOf(entry)) ?? 0) + entry.memoryBytes);
      const share = budget / usage.size;
      let victim: Entry | undefined;
      let victimExcess = 0;
      for (const entry of this.#entries.values()) {
        if (entry === keep || isBusy(entry)) continue;
        const excess = usage.get(tenantOf(entry))! - share;
        if (excess <= 0) continue;
        const better = victim === undefined || excess > victimExcess || (excess === victimExcess && entry.lastUsedAt < victim.lastUsedAt);
        if (better) {
          victim = entry;
          victimExcess = excess;
        }
      }
      if (victim === undefined) return;
      await this.#remove(victim);
    }
  }

  async #remove(entry: Entry): Promise<void> {
    const versionId = entry.key.versionId;
    if (this.#entries.get(versionId) !== entry) return;
    // Removed from the map first so new requests load a fresh copy instead of queuing on this one;
    // that load waits for `#releasing`, set in this same tick.
    this.#entries.delete(versionId);
    this.#reportLoaded();
    const releasing = (async () => {
      try {
        if (entry.kind === 'tensor') await entry.batcher.flush();
        await entry.runtime.dispose();
      } finally {
        await entry.files.release();
      }
    })();
    const settled = releasing.catch(() => undefined);
    this.#releasing.set(versionId, settled);
    try {
      await releasing;
    } finally {
      if (this.#releasing.get(versionId) === settled) this.#releasing.delete(versionId);
    }
  }

  #totalBytes(): number {
    let total = 0;
    for (const entry of this.#entries.values()) total += entry.memoryBytes;
    return total;
  }

  #reportLoaded(): void {
    this.#options.metrics?.modelsLoaded(this.#entries.size, this.#totalBytes());
  }
}

/** Models registered without a tenant (tests, tools) share one pool. */
function tenantOf(entry: Entry): string {
  return entry.key.tenantId ?? '';
}

function isBusy(entry: Entry): boolean {
  if (entry.kind === 'language') {
    const load = entry.runtime.load();
    return entry.active > 0 || load.running > 0 || load.waiting > 0;
  }
  return entry.active > 0 || entry.batcher.pending > 0;
}

function tensorEntry(entry: Entry): TensorEntry {
  if (entry.kind !== 'tensor') throw new AiaasError('MODEL_NOT_FOUND', 'This model version is a language model; serve it through /v1 or /api');
  return entry;
}

function labelsOf(key: ModelKey): ModelLabels {
  return { ...(key.tenantId === undefined ? {} : { tenant: key.tenantId }), model: key.name ?? key.versionId, version: key.version ?? '' };
}

import type { TokenUsageIncrement, TokenUsageRecord, UsageRecord, UsageRepository } from '../storage/index.ts';
import { usageDay } from '../storage/index.ts';

/**
 * Counts inference requests per tenant, model and UTC day in memory and writes them in batches,
 * so serving does not pay a database write per request. Reads flush first, so they are exact.
 */
export class UsageCounter {
  readonly #repository: UsageRepository;
  readonly #now: () => Date;
  readonly #onFlushError: (error: unknown, unwritten: number) => void;
  #pending = new Map<string, { tenantId: string; modelName: string; day: string; count: number }>();
  #pendingTokens = new Map<string, { tenantId: string } & TokenUsageIncrement>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  /**
   * `onFlushError` hears of every failed flush (with how many counts wait for the next one); the
   * timer's flushes have no caller to reject to, so without it their failures would go unseen.
   */
  constructor(
    repository: UsageRepository,
    options: { now?: () => Date; flushIntervalMs?: number; onFlushError?: (error: unknown, unwritten: number) => void } = {},
  ) {
    this.#repository = repository;
    this.#now = options.now ?? (() => new Date());
    this.#onFlushError = options.onFlushError ?? (() => undefined);
    const interval = options.flushIntervalMs ?? 1000;
    if (interval > 0) {
      // A failed flush keeps its counts pending, so the next tick retries them.
      this.#timer = setInterval(() => void this.flush().catch(() => undefined), interval);
      this.#timer.unref();
    }
  }

  /** Counts waiting to be written. */
  get pendingRequests(): number {
    let total = 0;
    for (const entry of this.#pending.values()) total += entry.count;
    return total;
  }

  add(tenantId: string, modelName: string): void {
    this.#count({ tenantId, modelName, day: usageDay(this.#now()), count: 1 });
  }

  /** Counts one language-model generation (or embedding call) with its tokens. */
  addTokens(tenantId: string, entry: { keyId: string; modelName: string; version: number; promptTokens: number; completionTokens: number }): void {
    this.#countTokens({ tenantId, ...entry, day: usageDay(this.#now()), requests: 1 });
  }

  /**
   * Writes the pending counts; concurrent calls queue behind each other. A failed write rejects
   * this call only: its unwritten counts go back to pending for the next flush.
   */
  flush(): Promise<void> {
    const run = this.#flushing.then(async () => {
      const tokenEntries = [...this.#pendingTokens.values()];
      this.#pendingTokens = new Map();
      for (let index = 0; index < tokenEntries.length; index += 1) {
        const { tenantId, ...increment } = tokenEntries[index]!;
        try {
          await this.#repository.incrementTokens(tenantId, increment);
        } catch (error) {
          for (const unwritten of tokenEntries.slice(index)) this.#countTokens(unwritten);
          this.#onFlushError(error, this.pendingRequests);
          throw error;
        }
      }
      const batch = this.#pending;
      this.#pending = new Map();
      const entries = [...batch.values()];
      for (let index = 0; index < entries.length; index += 1) {
        const entry = entries[index]!;
        try {
          await this.#repository.increment(entry.tenantId, entry.modelName, entry.day, entry.count);
        } catch (error) {
          for (const unwritten of entries.slice(index)) this.#count(unwritten);
          this.#onFlushError(error, this.pendingRequests);
          throw error;
        }
      }
    });
    this.#flushing = run.catch(() => undefined);
    return run;
  }

  #count(entry: { tenantId: string; modelName: string; day: string; count: number }): void {
    const key = `${entry.tenantId}\u0000${entry.modelName}\u0000${entry.day}`;
    const pending = this.#pending.get(key);
    if (pending === undefined) this.#pending.set(key, entry);
    else pending.count += entry.count;
  }

  #countTokens(entry: { tenantId: string } & TokenUsageIncrement): void {
    const key = [entry.tenantId, entry.keyId, entry.modelName, entry.version, entry.day].join('\u0000');
    const pending = this.#pendingTokens.get(key);
    if (pending === undefined) this.#pendingTokens.set(key, { ...entry });
    else {
      pending.requests += entry.requests;
      pending.promptTokens += entry.promptTokens;
      pending.completionTokens += entry.completionTokens;
    }
  }

  async listTokens(tenantId: string, filter: { from?: string; to?: string; modelName?: string } = {}): Promise<TokenUsageRecord[]> {
    await this.flush();
    return this.#repository.listTokens(tenantId, filter);
  }

  async list(tenantId: string, filter: { from?: string; to?: string; modelName?: string } = {}): Promise<UsageRecord[]> {
    await this.flush();
    return this.#repository.list(tenantId, filter);
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
  }
}

import type { UsageRecord, UsageRepository } from '../storage/index.ts';
import { usageDay } from '../storage/index.ts';

/**
 * Counts inference requests per tenant, model and UTC day in memory and writes them in batches,
 * so serving does not pay a database write per request. Reads flush first, so they are exact.
 */
export class UsageCounter {
  readonly #repository: UsageRepository;
  readonly #now: () => Date;
  #pending = new Map<string, { tenantId: string; modelName: string; day: string; count: number }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(repository: UsageRepository, options: { now?: () => Date; flushIntervalMs?: number } = {}) {
    this.#repository = repository;
    this.#now = options.now ?? (() => new Date());
    const interval = options.flushIntervalMs ?? 1000;
    if (interval > 0) {
      this.#timer = setInterval(() => void this.flush().catch(() => undefined), interval);
      this.#timer.unref();
    }
  }

  add(tenantId: string, modelName: string): void {
    const day = usageDay(this.#now());
    const key = `${tenantId}\u0000${modelName}\u0000${day}`;
    const entry = this.#pending.get(key);
    if (entry === undefined) this.#pending.set(key, { tenantId, modelName, day, count: 1 });
    else entry.count += 1;
  }

  /** Writes the pending counts; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const batch = this.#pending;
      this.#pending = new Map();
      for (const entry of batch.values()) await this.#repository.increment(entry.tenantId, entry.modelName, entry.day, entry.count);
    });
    return this.#flushing;
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

/**
 * Stored bytes become byte-hours: once per UTC hour every live tenant's model versions (their
 * encrypted artifacts' sizes on disk) and datasets are measured, and each sample adds bytes × 1 h
 * to the ledger under the protocol `storage`. An hour is sampled once, whoever samples it first.
 */
import type { LedgerBucket, StoredModelVersion } from '../storage/repositories/usage-ledger.ts';
import { minuteOf, toLedgerUnits } from './ledger.ts';

export interface StorageSamplerStore {
  storedModelVersions(): Promise<StoredModelVersion[]>;
  storedDatasetBytes(): Promise<{ tenantId: string; bytes: number }[]>;
  addStorageSample(minute: string, buckets: readonly LedgerBucket[]): Promise<boolean>;
}

export interface StorageSamplerOptions {
  store: StorageSamplerStore;
  /** Bytes an artifact takes in the store; undefined when it is missing. */
  sizeOf(ref: string): Promise<number | undefined>;
  now?: () => Date;
  onError?: (error: unknown) => void;
}

const hourMs = 3_600_000;

export class StorageSampler {
  readonly #options: StorageSamplerOptions;
  readonly #now: () => Date;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();

  constructor(options: StorageSamplerOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Samples the current hour (unless it already was) and then each hour's start. A server down
   * across an hour boundary misses that hour's sample: byte-hours are a sample, not a meter.
   */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = (): void => {
      this.#running = this.sample().catch((error: unknown) => this.#options.onError?.(error));
      const now = this.#now().getTime();
      this.#timer = setTimeout(tick, hourMs - (now % hourMs) + 1000);
      this.#timer.unref();
    };
    tick();
  }

  /** Takes the sample of the hour `now` falls in; false when that hour was already sampled. */
  async sample(): Promise<boolean> {
    const now = this.#now();
    const hourStart = minuteOf(new Date(Math.floor(now.getTime() / hourMs) * hourMs));
    const buckets: LedgerBucket[] = [];
    const bucket = (tenantId: string, modelName: string, version: number, bytes: number): LedgerBucket => ({
      tenantId,
      keyId: '',
      modelName,
      version,
      protocol: 'storage',
      minute: hourStart,
      ...toLedgerUnits({ storedByteHours: bytes }),
    });
    for (const stored of await this.#options.store.storedModelVersions()) {
      let bytes = 0;
      for (const ref of stored.refs) bytes += (await this.#options.sizeOf(ref)) ?? 0;
      if (bytes > 0) buckets.push(bucket(stored.tenantId, stored.modelName, stored.version, bytes));
    }
    for (const { tenantId, bytes } of await this.#options.store.storedDatasetBytes()) if (bytes > 0) buckets.push(bucket(tenantId, '', 0, bytes));
    return this.#options.store.addStorageSample(hourStart, buckets);
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

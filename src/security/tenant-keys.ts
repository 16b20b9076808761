import { AiaasError } from '../errors.ts';
import { generateDataKey, unwrapDataKey, wrapDataKey } from './envelope.ts';
import type { WrappedDataKey } from './envelope.ts';
import type { MasterKeyRing } from './key-ring.ts';

export type StoredDataKey = ({ state: 'active' } & WrappedDataKey) | { state: 'destroyed' };
export type TenantWrappedDataKey = { tenantId: string } & WrappedDataKey;

/**
 * What TenantKeyService needs from the `tenant_keys` table. Glue for a SQL table:
 * a destroyed key can be a row whose wrapped_key is '' (or a destroyed_at column).
 */
export interface DataKeyStore {
  get(tenantId: string): Promise<StoredDataKey | undefined>;
  /**
   * Inserts unless a row (active or destroyed) exists, and returns what is stored
   * afterwards, e.g. `INSERT … ON CONFLICT DO NOTHING` then select. Two servers creating
   * a tenant's first key at once must both end up using the same one.
   */
  putIfAbsent(tenantId: string, key: WrappedDataKey): Promise<StoredDataKey>;
  /**
   * Compare-and-set: replaces the wrapped key only while the stored one still equals
   * `expected.wrappedKey`; returns whether it did. Without the condition, a rotation
   * racing a destroy could write a shredded key back.
   */
  replace(tenantId: string, expected: WrappedDataKey, next: WrappedDataKey): Promise<boolean>;
  /**
   * Overwrites the wrapped key irrecoverably and leaves a tombstone, so the tenant is not
   * silently handed a fresh key that would make old ciphertext look merely corrupt.
   * (For SQLite, enable `PRAGMA secure_delete` so the old bytes leave the file too.)
   */
  destroy(tenantId: string): Promise<void>;
  /** Every active wrapped key; destroyed tombstones carry no key and are skipped. */
  listAll(): AsyncIterable<TenantWrappedDataKey>;
}

export class InMemoryDataKeyStore implements DataKeyStore {
  readonly #rows = new Map<string, StoredDataKey>();

  async get(tenantId: string): Promise<StoredDataKey | undefined> {
    const row = this.#rows.get(tenantId);
    return row === undefined ? undefined : { ...row };
  }

  async putIfAbsent(tenantId: string, key: WrappedDataKey): Promise<StoredDataKey> {
    if (!this.#rows.has(tenantId)) this.#rows.set(tenantId, { state: 'active', ...key });
    return { ...this.#rows.get(tenantId)! };
  }

  async replace(tenantId: string, expected: WrappedDataKey, next: WrappedDataKey): Promise<boolean> {
    const row = this.#rows.get(tenantId);
    if (row?.state !== 'active' || row.wrappedKey !== expected.wrappedKey) return false;
    this.#rows.set(tenantId, { state: 'active', ...next });
    return true;
  }

  async destroy(tenantId: string): Promise<void> {
    this.#rows.set(tenantId, { state: 'destroyed' });
  }

  async *listAll(): AsyncIterable<TenantWrappedDataKey> {
    for (const [tenantId, row] of [...this.#rows]) {
      if (row.state === 'active') yield { tenantId, wrappedKey: row.wrappedKey, masterKeyVersion: row.masterKeyVersion };
    }
  }
}

/** What encryption needs from TenantKeyService; lets tests and callers substitute it. */
export interface DataKeyProvider {
  dataKeyFor(tenantId: string): Promise<Uint8Array>;
}

export interface MasterKeyRotationReport {
  currentVersion: number;
  rewrapped: number;
  alreadyCurrent: number;
  /** Keys destroyed or replaced by someone else while the rotation ran. */
  skipped: number;
}

export interface TenantKeyServiceOptions {
  store: DataKeyStore;
  ring: MasterKeyRing;
  /** Unwrapped keys kept in memory, least recently used evicted first. */
  maxCachedKeys?: number;
}

export class TenantKeyService implements DataKeyProvider {
  readonly #store: DataKeyStore;
  #ring: MasterKeyRing;
  readonly #maxCachedKeys: number;
  readonly #cache = new Map<string, Buffer>();
  // One lookup per tenant at a time: concurrent first requests must not each create a key.
  readonly #pending = new Map<string, Promise<Buffer>>();

  constructor(options: TenantKeyServiceOptions) {
    this.#store = options.store;
    this.#ring = options.ring;
    this.#maxCachedKeys = options.maxCachedKeys ?? 10_000;
    if (!Number.isSafeInteger(this.#maxCachedKeys) || this.#maxCachedKeys < 1) {
      throw new AiaasError('CONFIG_INVALID', 'maxCachedKeys must be a positive integer.');
    }
  }

  get ring(): MasterKeyRing {
    return this.#ring;
  }

  /** The tenant's data key, created and stored on first use. Throws KEY_DESTROYED after crypto-shredding. */
  async dataKeyFor(tenantId: string): Promise<Buffer> {
    if (tenantId === '') throw new AiaasError('INVALID_REQUEST', 'A tenant id is required.');
    const cached = this.#cache.get(tenantId);
    if (cached !== undefined) {
      this.#cache.delete(tenantId);
      this.#cache.set(tenantId, cached);
      return cached;
    }
    let pending = this.#pending.get(tenantId);
    if (pending === undefined) {
      pending = this.#load(tenantId);
      this.#pending.set(tenantId, pending);
      const settled = pending;
      pending.then(
        (key) => {
          // Only cache if no destroy or rotation forgot this lookup while it ran.
          if (this.#pending.get(tenantId) !== settled) return;
          this.#pending.delete(tenantId);
          this.#remember(tenantId, key);
        },
        () => {
          if (this.#pending.get(tenantId) === settled) this.#pending.delete(tenantId);
        },
      );
    }
    return pending;
  }

  async #load(tenantId: string): Promise<Buffer> {
    let stored = await this.#store.get(tenantId);
    if (stored === undefined) {
      const fresh = generateDataKey();
      stored = await this.#store.putIfAbsent(tenantId, wrapDataKey(this.#ring, tenantId, fresh));
      fresh.fill(0);
    }
    if (stored.state === 'destroyed') {
      throw new AiaasError('KEY_DESTROYED', `Tenant ${tenantId}'s data key was destroyed; its stored data cannot be decrypted.`, {
        details: { tenantId },
      });
    }
    return unwrapDataKey(this.#ring, tenantId, stored);
  }

  #remember(tenantId: string, key: Buffer): void {
    this.#cache.set(tenantId, key);
    while (this.#cache.size > this.#maxCachedKeys) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
  }

  /**
   * Switches to `newRing` and re-wraps every data key not yet under its current version.
   * Data is untouched: data keys keep their value. Safe to re-run after a partial failure;
   * `newRing` must still hold every version in use (see retirableVersions).
   */
  async rotateMasterKey(newRing: MasterKeyRing): Promise<MasterKeyRotationReport> {
    this.#ring = newRing;
    const currentVersion = newRing.current.version;
    const report: MasterKeyRotationReport = { currentVersion, rewrapped: 0, alreadyCurrent: 0, skipped: 0 };
    // Collected first: updating rows while a database cursor walks the same table is not portable.
    const keys: TenantWrappedDataKey[] = [];
    for await (const key of this.#store.listAll()) keys.push(key);
    for (const { tenantId, wrappedKey, masterKeyVersion } of keys) {
      if (masterKeyVersion === currentVersion) {
        report.alreadyCurrent += 1;
        continue;
      }
      const expected = { wrappedKey, masterKeyVersion };
      const dataKey = unwrapDataKey(newRing, tenantId, expected);
      const replaced = await this.#store.replace(tenantId, expected, wrapDataKey(newRing, tenantId, dataKey));
      dataKey.fill(0);
      if (replaced) report.rewrapped += 1;
      else report.skipped += 1;
    }
    return report;
  }

  /** Master versions in the ring, other than the current one, that no stored data key uses. */
  async retirableVersions(): Promise<number[]> {
    const inUse = new Set<number>();
    for await (const { masterKeyVersion } of this.#store.listAll()) inUse.add(masterKeyVersion);
    return this.#ring.versions.filter((version) => version !== this.#ring.current.version && !inUse.has(version));
  }

  /**
   * Crypto-shredding: destroys the tenant's wrapped key, so every artifact encrypted for
   * the tenant becomes unreadable, including copies in backups made after this call.
   * Other server processes drop their cached copy only on restart or `forget`.
   */
  async destroyTenantKey(tenantId: string): Promise<void> {
    await this.#store.destroy(tenantId);
    this.forget(tenantId);
  }

  /** Drops the in-memory copy of a tenant's key (zeroed so it does not linger in the heap). */
  forget(tenantId: string): void {
    this.#pending.delete(tenantId);
    const cached = this.#cache.get(tenantId);
    this.#cache.delete(tenantId);
    cached?.fill(0);
  }
}

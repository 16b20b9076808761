import { openBytes, sealBytes } from './envelope.ts';
import type { DataKeyProvider } from './tenant-keys.ts';

/** The part of storage's ArtifactStore that encryption needs; the full interface satisfies it. */
export interface ArtifactBytesStore {
  put(bytes: Uint8Array): Promise<string>;
  get(ref: string): Promise<Uint8Array>;
  has(ref: string): Promise<boolean>;
  delete(ref: string): Promise<void>;
}

/**
 * Encrypts each tenant's artifacts under the tenant's data key before they reach the
 * underlying store, so the disk or bucket only ever holds ciphertext. Refs name the
 * ciphertext; a fresh nonce per put means equal plaintexts get different refs, which
 * also keeps one tenant from learning that another stores the same file.
 *
 * Ownership of a ref is the repositories' job (rows carry tenant_id); the tenant id in
 * the AAD is the backstop: another tenant's ref fails with ARTIFACT_CORRUPT.
 */
export class EncryptedArtifactStore {
  readonly #store: ArtifactBytesStore;
  readonly #keys: DataKeyProvider;

  constructor(options: { store: ArtifactBytesStore; keys: DataKeyProvider }) {
    this.#store = options.store;
    this.#keys = options.keys;
  }

  async put(tenantId: string, plaintext: Uint8Array): Promise<string> {
    const dataKey = await this.#keys.dataKeyFor(tenantId);
    return this.#store.put(sealBytes(dataKey, tenantId, plaintext));
  }

  /** Throws ARTIFACT_CORRUPT on any alteration, KEY_DESTROYED after crypto-shredding. */
  async get(tenantId: string, ref: string): Promise<Uint8Array> {
    // A copy: TenantKeyService.forget zeroes its cached key in place, which must not turn a
    // read that was waiting on the store into a spurious ARTIFACT_CORRUPT.
    const dataKey = Buffer.from(await this.#keys.dataKeyFor(tenantId));
    try {
      const sealed = await this.#store.get(ref);
      return openBytes(dataKey, tenantId, sealed);
    } finally {
      dataKey.fill(0);
    }
  }

  has(ref: string): Promise<boolean> {
    return this.#store.has(ref);
  }

  delete(ref: string): Promise<void> {
    return this.#store.delete(ref);
  }
}

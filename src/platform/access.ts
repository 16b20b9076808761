/**
 * Tenants and API keys: creation (keys shown once), authentication of a presented key, and
 * tenant deletion by crypto-shredding. The HTTP layer adds headers, rate limits and roles on top.
 */
import crypto from 'node:crypto';
import { AiaasError, quoteForError } from '../errors.ts';
import { apiKeyPrefix, generateApiKey, hashApiKey, isWellFormedApiKey } from '../security/api-keys.ts';
import { isRole, roles, scopeWithin, type KeyScope, type Role } from '../security/roles.ts';
import type { TenantKeyService } from '../security/tenant-keys.ts';
import type { ApiKeyRecord, Repositories, TenantRecord } from '../storage/index.ts';
import { validateName } from './names.ts';

/** Who is calling: resolved from the API key on every authenticated request. */
export interface Principal {
  readonly tenantId: string;
  readonly tenantName: string;
  readonly keyId: string;
  readonly keyName: string;
  readonly role: Role;
  /** null = every model of the tenant. */
  readonly allowedModels: readonly string[] | null;
  /** The tenant created at bootstrap; its admins manage other tenants and the whole audit chain. */
  readonly isOperator: boolean;
  /** When the key stops working (ISO 8601); null = never. Keys it creates expire no later. */
  readonly expiresAt: string | null;
}

export interface CreatedApiKey {
  readonly record: ApiKeyRecord;
  /** The secret; returned once, never stored. */
  readonly key: string;
}

export interface NewKeyRequest {
  name: string;
  role: Role;
  allowedModels?: readonly string[] | undefined;
  expiresAt?: string | undefined;
  /**
   * The expiry of the key creating this one (null: it never expires). The new key may not outlive
   * it: without `expiresAt` it inherits it, and a later `expiresAt` is refused.
   */
  creatorExpiresAt?: string | null | undefined;
}

export const operatorTenantName = 'default';

export interface AccessServiceOptions {
  repositories: Repositories;
  serverSecret: Uint8Array;
  keys: TenantKeyService;
  now: () => Date;
  /** Milliseconds since the epoch, as `now` (default: from it); a clock that allocates no Date on the request path. */
  nowMs?: () => number;
  /** Called after a tenant's data key is destroyed, so caches (loaded models) can drop its data. */
  onTenantDeleted?: (tenantId: string) => Promise<void> | void;
  /**
   * How long a successful key lookup is reused without the database. Revocation and tenant deletion
   * through this service invalidate at once; the bound only matters for changes made by another
   * process. 0 disables the cache.
   */
  cacheMs?: number;
}

/** A stored key's scope; a key stored without a list reaches every model. */
export function scopeOf(record: ApiKeyRecord): KeyScope {
  return { role: record.role, allowedModels: record.allowedModels ?? null };
}

/** Custom bootstrap keys may be any 32+ printable characters; only a short prefix of them is displayable. */
export function isAcceptableCustomKey(key: string): boolean {
  return key.length >= 32 && key.length <= 512 && /^[\x21-\x7e]+$/.test(key);
}

export class AccessService {
  readonly #repositories: Repositories;
  readonly #serverSecret: Uint8Array;
  readonly #keys: TenantKeyService;
  readonly #now: () => Date;
  readonly #nowMs: () => number;
  /**
   * Per client connection, the key it last presented and its cache key: a keep-alive client sends the
   * same key request after request, and the salted hash was the largest single cost of a cached
   * authentication. Keyed by the connection, so a presented key is only ever compared with what the
   * same connection sent before (never with another client's key), and forgotten with it.
   */
  readonly #lastPresented = new WeakMap<object, { key: string; cacheKey: string }>();
  readonly #onTenantDeleted: AccessServiceOptions['onTenantDeleted'];
  #operatorTenantId: string | undefined;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, { principal: Principal; record: ApiKeyRecord; cachedAt: number }>();
  /**
   * The cache is keyed by a salted SHA-256 of the presented key, not by the stored HMAC: one hash
   * call instead of an HMAC (two hashes and a key schedule) on every request. The random salt,
   * never stored, keeps the cache's keys useless outside this process.
   */
  readonly #cacheSalt = crypto.randomBytes(16).toString('base64');
  // A lookup that overlapped a revocation must not cache what it read before it.
  #generation = 0;

  constructor(options: AccessServiceOptions) {
    this.#cacheMs = options.cacheMs ?? 2000;
    this.#repositories = options.repositories;
    this.#serverSecret = options.serverSecret;
    this.#keys = options.keys;
    this.#now = options.now;
    const now = options.now;
    this.#nowMs = options.nowMs ?? (() => now().getTime());
    this.#onTenantDeleted = options.onTenantDeleted;
  }

  get operatorTenantId(): string | undefined {
    return this.#operatorTenantId;
  }

  hashKey(key: string): string {
    return hashApiKey(this.#serverSecret, key);
  }

  /**
   * On an empty store creates the operator tenant and its first admin key: `bootstrapKey` when
   * given, else a generated one, which is returned so the caller can show it once.
   */
  async bootstrap(bootstrapKey?: string): Promise<{ tenant: TenantRecord; generatedKey?: string; created: boolean }> {
    const existing = await this.#repositories.tenants.getByName(operatorTenantName);
    if (existing !== undefined) {
      this.#operatorTenantId = existing.id;
      return { tenant: existing, created: false };
    }
    const anyTenant = (await this.#repositories.tenants.list({ includeDeleted: true }))[0];
    if (anyTenant !== undefined) {
      // A store populated by other means: the oldest tenant is the operator.
      this.#operatorTenantId = anyTenant.id;
      return { tenant: anyTenant, created: false };
    }
    const tenant = await this.#repositories.tenants.create({ name: operatorTenantName });
    this.#operatorTenantId = tenant.id;
    const created = await this.createKey(tenant.id, { name: 'bootstrap-admin', role: 'admin' }, bootstrapKey);
    return bootstrapKey === undefined ? { tenant, generatedKey: created.key, created: true } : { tenant, created: true };
  }

  async createKey(tenantId: string, request: NewKeyRequest, presetKey?: string): Promise<CreatedApiKey> {
    const name = validateName('key', request.name);
    if (!isRole(request.role)) {
      throw new AiaasError('INVALID_REQUEST', `Unknown role ${quoteForError(request.role)}; expected one of ${roles.join(', ')}`, {
        details: { field: 'role' },
      });
    }
    let allowedModels: string[] | undefined;
    if (request.allowedModels !== undefined) {
      if (!Array.isArray(request.allowedModels)) {
        throw new AiaasError('INVALID_REQUEST', 'allowedModels must be an array of model names', { details: { field: 'allowedModels' } });
      }
      allowedModels = request.allowedModels.map((model) => (model === '*' ? model : validateName('model', model)));
    }
    let expiresAt: string | undefined;
    if (request.expiresAt !== undefined) {
      const at = typeof request.expiresAt === 'string' ? new Date(request.expiresAt) : new Date(Number.NaN);
      if (Number.isNaN(at.getTime())) {
        throw new AiaasError('INVALID_REQUEST', 'expiresAt must be an ISO 8601 timestamp', { details: { field: 'expiresAt' } });
      }
      if (at.getTime() <= this.#now().getTime()) {
        throw new AiaasError('INVALID_REQUEST', 'expiresAt must be in the future', { details: { field: 'expiresAt' } });
      }
      expiresAt = at.toISOString();
    }
    const creatorExpiresAt = request.creatorExpiresAt ?? null;
    if (creatorExpiresAt !== null) {
      if (expiresAt === undefined) expiresAt = creatorExpiresAt;
      else if (Date.parse(expiresAt) > Date.parse(creatorExpiresAt)) {
        throw new AiaasError('INVALID_REQUEST', `expiresAt may not be later than the creating key's own expiry (${creatorExpiresAt})`, {
          details: { field: 'expiresAt', latest: creatorExpiresAt },
        });
      }
    }
    let key: string;
    let prefix: string;
    if (presetKey === undefined) {
      ({ key, prefix } = generateApiKey());
    } else {
      if (!isWellFormedApiKey(presetKey) && !isAcceptableCustomKey(presetKey)) {
        throw new AiaasError('CONFIG_INVALID', 'The bootstrap key (--bootstrap-key / AIAAS_BOOTSTRAP_KEY) must be 32-512 printable characters');
      }
      key = presetKey;
      prefix = isWellFormedApiKey(presetKey) ? apiKeyPrefix(presetKey) : `${presetKey.slice(0, 4)}…`;
    }
    const record = await this.#repositories.apiKeys.insert(tenantId, {
      name,
      prefix,
      keyHash: this.hashKey(key),
      role: request.role,
      allowedModels,
      expiresAt: expiresAt ?? null,
    });
    return { record, key };
  }

  async createTenant(name: string): Promise<{ tenant: TenantRecord; adminKey: CreatedApiKey }> {
    validateName('tenant', name);
    return this.#repositories.transaction(async (repositories) => {
      const tenant = await repositories.tenants.create({ name });
      const scoped = new AccessService({ repositories, serverSecret: this.#serverSecret, keys: this.#keys, now: this.#now });
      const adminKey = await scoped.createKey(tenant.id, { name: 'admin', role: 'admin' });
      return { tenant, adminKey };
    });
  }

  /**
   * Destroys the tenant's data key first (crypto-shredding: every artifact becomes unreadable),
   * then soft-deletes the tenant so its keys stop authenticating. The operator tenant cannot go.
   */
  async deleteTenant(tenantId: string): Promise<boolean> {
    const tenant = await this.#repositories.tenants.get(tenantId);
    if (tenant === undefined || tenant.deletedAt !== null) return false;
    if (tenantId === this.#operatorTenantId) {
      throw new AiaasError('CONFLICT', 'The operator tenant cannot be deleted', { details: { tenantId } });
    }
    await this.#keys.destroyTenantKey(tenantId);
    await this.#repositories.tenants.softDelete(tenantId);
    this.#forget((entry) => entry.principal.tenantId === tenantId);
    await this.#onTenantDeleted?.(tenantId);
    return true;
  }

  /**
   * The tenant's keys; with `manager`, only those within its scope (models and permissions both
   * subsets of its own), so a key restricted to some models never learns of wider keys.
   */
  async listKeys(tenantId: string, manager?: KeyScope): Promise<ApiKeyRecord[]> {
    const keys = await this.#repositories.apiKeys.list(tenantId);
    return manager === undefined ? keys : keys.filter((key) => scopeWithin(scopeOf(key), manager));
  }

  /**
   * Revokes a key of the tenant (effective on its next request). False when missing, another
   * tenant's, or (with `manager`) outside the manager's scope: all three look the same.
   */
  async revokeKey(tenantId: string, keyId: string, manager?: KeyScope): Promise<boolean> {
    const existing = await this.#repositories.apiKeys.get(tenantId, keyId);
    if (existing === undefined) return false;
    if (manager !== undefined && !scopeWithin(scopeOf(existing), manager)) return false;
    await this.#repositories.apiKeys.revoke(tenantId, keyId);
    this.#forget((entry) => entry.record.id === keyId);
    return true;
  }

  #forget(matches: (entry: { principal: Principal; record: ApiKeyRecord }) => boolean): void {
    this.#generation += 1;
    for (const [cacheKey, entry] of this.#cache) if (matches(entry)) this.#cache.delete(cacheKey);
  }

  /**
   * The principal of a presented key still in the cache (at most `cacheMs` old), without touching the
   * database; undefined when it must be looked up with `authenticate`. Throws UNAUTHENTICATED for a
   * cached key that has expired since. `connection` (the request's socket) lets a connection that
   * presents the same key again skip hashing it.
   */
  authenticateCached(key: string, connection?: object): { principal: Principal; record: ApiKeyRecord } | undefined {
    if (this.#cacheMs <= 0) return undefined;
    const cacheKey = this.#cacheKeyOf(key, connection);
    const cached = this.#cache.get(cacheKey);
    if (cached === undefined) return undefined;
    const now = this.#nowMs();
    if (!(now - cached.cachedAt >= 0 && now - cached.cachedAt < this.#cacheMs)) return undefined;
    if (cached.record.expiresAt !== null && Date.parse(cached.record.expiresAt) <= now) {
      this.#cache.delete(cacheKey);
      throw new AiaasError('UNAUTHENTICATED', 'This API key has expired');
    }
    return cached;
  }

  /** Resolves a presented key to its principal; UNAUTHENTICATED for unknown, revoked, expired or orphaned keys. */
  async authenticate(key: string): Promise<{ principal: Principal; record: ApiKeyRecord }> {
    const cached = this.authenticateCached(key);
    if (cached !== undefined) return cached;
    const now = this.#now().getTime();
    const generation = this.#generation;
    const resolved = await this.#lookup(this.hashKey(key));
    if (this.#cacheMs > 0 && generation === this.#generation) {
      if (this.#cache.size >= 10_000) this.#cache.clear();
      this.#cache.set(this.#cacheKeyOf(key), { ...resolved, cachedAt: now });
    }
    return resolved;
  }

  #cacheKeyOf(key: string, connection?: object): string {
    if (connection === undefined) return this.#hashForCache(key);
    const last = this.#lastPresented.get(connection);
    if (last !== undefined && last.key === key) return last.cacheKey;
    const cacheKey = this.#hashForCache(key);
    this.#lastPresented.set(connection, { key, cacheKey });
    return cacheKey;
  }

  #hashForCache(key: string): string {
    const salted = this.#cacheSalt + key;
    // crypto.hash (one call, no Hash object) arrived in Node 20.12; older 20.x take the long way.
    const oneShot = (crypto as { hash?: typeof crypto.hash }).hash;
    return oneShot === undefined ? crypto.createHash('sha256').update(salted).digest('base64') : oneShot('sha256', salted, 'base64');
  }

  async #lookup(hash: string): Promise<{ principal: Principal; record: ApiKeyRecord }> {
    const record = await this.#repositories.apiKeys.findByHash(hash);
    if (record === undefined) throw new AiaasError('UNAUTHENTICATED', 'Invalid API key');
    if (record.revokedAt !== null) throw new AiaasError('UNAUTHENTICATED', 'This API key was revoked');
    if (record.expiresAt !== null && Date.parse(record.expiresAt) <= this.#now().getTime()) {
      throw new AiaasError('UNAUTHENTICATED', 'This API key has expired');
    }
    const tenant = await this.#repositories.tenants.get(record.tenantId);
    if (tenant === undefined || tenant.deletedAt !== null) throw new AiaasError('UNAUTHENTICATED', 'Invalid API key');
    return {
      record,
      principal: {
        tenantId: tenant.id,
        tenantName: tenant.name,
        keyId: record.id,
        keyName: record.name,
        role: record.role,
        allowedModels: record.allowedModels ?? null,
        isOperator: tenant.id === this.#operatorTenantId,
        expiresAt: record.expiresAt,
      },
    };
  }
}

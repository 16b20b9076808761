/**
 * Offline administration on a data directory (the server may be stopped): master-key rotation
 * and audit verification. The CLI's `aiaas admin …` commands call these.
 */
import type { AiaasConfig } from '../config.ts';
import { AuditLogger } from '../http/audit.ts';
import type { ChainVerification } from '../security/audit-chain.ts';
import type { MasterKeyRing } from '../security/key-ring.ts';
import { TenantKeyService, type MasterKeyRotationReport } from '../security/tenant-keys.ts';
import { createRepositories, openDatabase } from '../storage/index.ts';
import { RepositoryDataKeyStore } from './data-key-store.ts';

export interface RotationResult extends MasterKeyRotationReport {
  /** Versions in `newRing` no data key uses any more: safe to drop from the configured ring. */
  retirableVersions: number[];
}

/**
 * Re-wraps every tenant data key under `newRing.current` (data is not re-encrypted). `newRing` must
 * still hold every version in use, typically `oldRing.withNewKey()`; configure the server with
 * `newRing.serialize()` afterwards. Safe to re-run after an interruption.
 */
export async function rotateMasterKey(config: AiaasConfig, newRing: MasterKeyRing): Promise<RotationResult> {
  const database = await openDatabase({ path: config.databasePath });
  try {
    const repositories = createRepositories(database.db);
    const keys = new TenantKeyService({ store: new RepositoryDataKeyStore(repositories.tenantKeys), ring: newRing });
    const report = await keys.rotateMasterKey(newRing);
    const retirableVersions = await keys.retirableVersions();
    await new AuditLogger(repositories.audit).record({
      tenantId: null,
      keyId: null,
      action: 'master-key.rotate',
      resource: 'master-key',
      outcome: 'success',
      ip: 'local',
      detail: { currentVersion: report.currentVersion, rewrapped: report.rewrapped, skipped: report.skipped },
    });
    return { ...report, retirableVersions };
  } finally {
    await database.close();
  }
}

/** Master key versions of `ring` that no data key uses (the current one never counts). */
export async function retirableMasterKeyVersions(config: AiaasConfig, ring: MasterKeyRing): Promise<number[]> {
  const database = await openDatabase({ path: config.databasePath });
  try {
    const repositories = createRepositories(database.db);
    return await new TenantKeyService({ store: new RepositoryDataKeyStore(repositories.tenantKeys), ring }).retirableVersions();
  } finally {
    await database.close();
  }
}

/** Walks the audit chain of a data directory. */
export async function verifyAuditLog(config: AiaasConfig): Promise<ChainVerification> {
  const database = await openDatabase({ path: config.databasePath });
  try {
    return await new AuditLogger(createRepositories(database.db).audit).verify();
  } finally {
    await database.close();
  }
}

export { generateMasterKey, MasterKeyRing } from '../security/key-ring.ts';
export { loadMasterKeyRingFor } from './context.ts';

/**
 * Offline administration on a data directory (the server may be stopped): master-key rotation
 * and audit verification. The CLI's `aiaas admin …` commands call these.
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { AiaasConfig } from '../config.ts';
import { AiaasError } from '../errors.ts';
import { AuditLogger } from '../http/audit.ts';
import type { ChainVerification } from '../security/audit-chain.ts';
import type { MasterKeyRing } from '../security/key-ring.ts';
import { TenantKeyService, type MasterKeyRotationReport } from '../security/tenant-keys.ts';
import { checkStorage, type StorageCheck } from '../storage/data-dir-check.ts';
import { createRepositories, openDatabase, type Schema } from '../storage/index.ts';
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

export interface DataDirectoryCheck extends StorageCheck {
  ok: boolean;
  dataDir: string;
  audit: ChainVerification;
}

/**
 * `aiaas admin check`: every artifact hash, `PRAGMA integrity_check`, the audit chain, orphan and
 * missing artifact files. Read-only, so it may run beside a live server; needs no master key.
 */
export async function checkDataDirectory(config: AiaasConfig, options: { now?: () => Date } = {}): Promise<DataDirectoryCheck> {
  let connection: BetterSqlite3.Database;
  try {
    connection = new BetterSqlite3(config.databasePath, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new AiaasError('CONFIG_INVALID', `Cannot open the database ${config.databasePath}: is ${config.dataDir} an aiaas data directory?`, { cause: error });
  }
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: connection }) });
  try {
    connection.pragma('busy_timeout = 5000');
    const storage = await checkStorage({ connection, artifactDir: join(config.dataDir, 'artifacts'), ...(options.now === undefined ? {} : { now: options.now }) });
    const audit = await new AuditLogger(createRepositories(db).audit).verify();
    const problems = [...storage.problems];
    if (!audit.ok) problems.push(`audit chain broken at position ${audit.position} (seq ${audit.seq}), ${audit.reason}: ${audit.message}`);
    return { ...storage, problems, ok: problems.length === 0, dataDir: config.dataDir, audit };
  } finally {
    // Closes the connection too.
    await db.destroy();
  }
}

export { generateMasterKey, MasterKeyRing } from '../security/key-ring.ts';
export { loadMasterKeyRingFor } from './context.ts';

/**
 * Offline administration on a data directory (the server may be stopped): master-key rotation
 * and audit verification. The CLI's `aiaas admin …` commands call these.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { pino, type Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';
import { AiaasError } from '../errors.ts';
import { AuditLogger } from '../http/audit.ts';
import type { ChainVerification } from '../security/audit-chain.ts';
import { verifyMasterKeyRing } from '../security/key-check.ts';
import type { MasterKeyRing } from '../security/key-ring.ts';
import { TenantKeyService, type MasterKeyRotationReport } from '../security/tenant-keys.ts';
import { rewrapSigningKey } from '../security/signing-key.ts';
import { checkStorage, type StorageCheck } from '../storage/data-dir-check.ts';
import { createRepositories, KeyStoreDatabase, openDatabase, type Repositories, type Schema } from '../storage/index.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { KeyStoreDataKeyStore } from './data-key-store.ts';
import { moveDataKeysToKeyStore } from './key-store-migration.ts';

export interface RotationResult extends MasterKeyRotationReport {
  /** Versions in `newRing` no data key uses any more: safe to drop from the configured ring. */
  retirableVersions: number[];
}

/**
 * Re-wraps every tenant data key under `newRing.current` (data is not re-encrypted). `newRing` must
 * still hold every version in use, typically `oldRing.withNewKey()`; configure the server with
 * `newRing.serialize()` afterwards. Safe to re-run after an interruption.
 */
export async function rotateMasterKey(config: AiaasConfig, newRing: MasterKeyRing, logger: Logger = pino({ level: 'silent' })): Promise<RotationResult> {
  return withKeyStore(config, 'admin rotate-master-key', logger, async ({ repositories, dataKeyStore, keyStore }) => {
    // The ring's old versions must match the data dir's check values; the new version's value is recorded here.
    await verifyMasterKeyRing(newRing, { checks: keyStore, wrappedKeys: dataKeyStore.listAll(), keyStorePath: config.keyStorePath });
    const keys = new TenantKeyService({ store: dataKeyStore, ring: newRing });
    const report = await keys.rotateMasterKey(newRing);
    // The provenance signing key is wrapped under the master key too: re-wrapped with the data keys.
    await rewrapSigningKey(newRing, config.dataDir);
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
  });
}

/** Master key versions of `ring` that no data key uses (the current one never counts). */
export async function retirableMasterKeyVersions(config: AiaasConfig, ring: MasterKeyRing, logger: Logger = pino({ level: 'silent' })): Promise<number[]> {
  return withKeyStore(config, 'admin retirable-master-key-versions', logger, ({ dataKeyStore }) =>
    new TenantKeyService({ store: dataKeyStore, ring }).retirableVersions(),
  );
}

interface OfflineKeyStore {
  repositories: Repositories;
  keyStore: KeyStoreDatabase;
  dataKeyStore: KeyStoreDataKeyStore;
}

/**
 * Runs `work` holding the data directory's lock (no server may run beside a key rotation), with
 * the database and the key store open and any data keys of an older data dir moved into the latter.
 */
async function withKeyStore<T>(config: AiaasConfig, command: string, logger: Logger, work: (handles: OfflineKeyStore) => Promise<T>): Promise<T> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(config.dataDir, command);
  try {
    const database = await openDatabase({ path: config.databasePath });
    try {
      const keyStore = KeyStoreDatabase.open({ path: config.keyStorePath });
      try {
        const repositories = createRepositories(database.db);
        await moveDataKeysToKeyStore({ db: database.db, legacyKeys: repositories.tenantKeys, keyStore, logger });
        return await work({ repositories, keyStore, dataKeyStore: new KeyStoreDataKeyStore(keyStore) });
      } finally {
        keyStore.close();
      }
    } finally {
      await database.close();
    }
  } finally {
    lock.release();
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

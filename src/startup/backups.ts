/**
 * Backups of a data directory, as the CLI (`aiaas backup …`) and the server (`POST
 * /api/v1/admin/backups`, the schedule) take them. What goes in: the database (a consistent
 * snapshot), the encrypted artifact files and the server secret wrapped under the master key. What
 * stays out: the key store (`keystore.db*`: destroying a tenant's key must reach every earlier
 * backup too), plaintext of loaded models (`plain/`), the insecure-dev master key, lock files.
 * The backup is built from an allow-list, so anything new in the data directory stays out too.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';
import { AiaasError } from '../errors.ts';
import type { AuditLogger } from '../http/audit.ts';
import type { MasterKeyRing } from '../security/key-ring.ts';
import { parseWrappedSecret, unwrapSecret, wrapSecret } from '../security/secret-wrap.ts';
import {
  createBackup,
  listBackups,
  pruneBackups,
  restoreBackup,
  snapshotDatabaseFile,
  type BackupListing,
  type BackupProgress,
  type BackupSummary,
  type DatabaseSnapshotter,
  type RestoreSummary,
} from '../storage/backup/index.ts';
import { writeDurably, isMissing } from '../storage/backup/files.ts';
import { serverSecretFileName, signingKeyFileName } from '../security/server-secrets.ts';

/** The server secret inside a backup, wrapped under the master key (never in clear). */
export const wrappedServerSecretName = 'server-secret.wrapped';
const serverSecretPurpose = 'server-secret';
/** Backups the server makes are named `aiaas-backup-<UTC time>`; retention touches only these. */
export const serverBackupPrefix = 'aiaas-backup-';

/** How a backup carries the server secret (manifest metadata `serverSecret`). */
export type ServerSecretCarriage = 'wrapped' | 'configured' | 'absent';

export interface BackupDataDirectoryOptions {
  /** Default: `VACUUM INTO` from a read-only connection to `config.databasePath`. */
  snapshotDatabase?: DatabaseSnapshotter;
  now?: () => Date;
  onProgress?: (event: BackupProgress) => void;
}

async function readServerSecretFile(config: AiaasConfig): Promise<string | undefined> {
  try {
    return (await readFile(join(config.dataDir, serverSecretFileName), 'utf8')).trim();
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Backs up `config`'s data directory into the new directory `out`, online. */
export async function backupDataDirectory(config: AiaasConfig, ring: MasterKeyRing, out: string, options: BackupDataDirectoryOptions = {}): Promise<BackupSummary> {
  const secret = config.serverSecret === undefined ? await readServerSecretFile(config) : undefined;
  const carriage: ServerSecretCarriage = config.serverSecret !== undefined ? 'configured' : secret === undefined ? 'absent' : 'wrapped';
  const extraFiles =
    secret === undefined
      ? []
      : [{ name: wrappedServerSecretName, bytes: `${JSON.stringify(wrapSecret(ring, serverSecretPurpose, Buffer.from(secret, 'utf8')), null, 2)}\n` }];
  // The provenance signing key is stored wrapped under the master key already: copied as it is.
  const signingKey = await readFile(join(config.dataDir, signingKeyFileName), 'utf8').catch((error: unknown) => {
    if (isMissing(error)) return undefined;
    throw error;
  });
  if (signingKey !== undefined) extraFiles.push({ name: signingKeyFileName, bytes: signingKey });
  return createBackup({
    out,
    snapshotDatabase: options.snapshotDatabase ?? snapshotDatabaseFile(config.databasePath),
    artifactDir: join(config.dataDir, 'artifacts'),
    extraFiles,
    metadata: { serverSecret: carriage, masterKeyVersion: ring.current.version, signingKey: signingKey !== undefined },
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
}

export interface RestoreDataDirectoryResult extends RestoreSummary {
  serverSecret: ServerSecretCarriage;
}

/**
 * Restores `backupDir` into the new data directory `dataDir`: database, artifacts, and the server
 * secret unwrapped with `ring` (which must still hold the master key version the backup names).
 * Tenant data keys are not in the backup: the restored server reads them from the live key store.
 */
export async function restoreDataDirectory(backupDir: string, dataDir: string, ring: MasterKeyRing | undefined): Promise<RestoreDataDirectoryResult> {
  let carriage: ServerSecretCarriage = 'absent';
  const summary = await restoreBackup({
    backupDir,
    dataDir,
    restoreExtras: async ({ stagingDir, manifest, readExtra }) => {
      if (manifest.metadata.signingKey === true) {
        await writeDurably(join(stagingDir, signingKeyFileName), await readExtra(signingKeyFileName), 0o600);
      }
      const recorded = manifest.metadata.serverSecret;
      carriage = recorded === 'wrapped' || recorded === 'configured' ? recorded : 'absent';
      if (carriage !== 'wrapped') return;
      if (ring === undefined) {
        throw new AiaasError('CONFIG_INVALID', 'This backup carries the server secret wrapped under the master key: configure the master key (AIAAS_MASTER_KEY or AIAAS_MASTER_KEY_FILE) to restore it.');
      }
      const wrapped = parseWrappedSecret((await readExtra(wrappedServerSecretName)).toString('utf8'), `${wrappedServerSecretName} in the backup`);
      const secret = unwrapSecret(ring, serverSecretPurpose, wrapped);
      await writeDurably(join(stagingDir, serverSecretFileName), `${secret.toString('utf8')}\n`, 0o600);
      secret.fill(0);
    },
  });
  return { ...summary, serverSecret: carriage };
}

/** `aiaas-backup-20261129T204000123Z`: sorts by time, safe in every file system. */
export function serverBackupName(at: Date): string {
  return `${serverBackupPrefix}${at.toISOString().replace(/[-:]/g, '').replace('.', '')}`;
}

export interface BackupServiceOptions {
  config: AiaasConfig;
  /** The live ring: read at each backup, so it follows a rotation. */
  ring: () => MasterKeyRing;
  snapshotDatabase: DatabaseSnapshotter;
  /** Defers artifact deletions while a backup runs (so a file its snapshot names cannot vanish); returns the release. */
  holdArtifactDeletes: () => () => Promise<void>;
  audit: AuditLogger;
  logger: Logger;
  now?: () => Date;
}

export interface ServerBackupResult {
  name: string;
  createdAt: string;
  tenants: number;
  artifacts: number;
  bytes: number;
  /** Older backups removed by retention after this one. */
  pruned: string[];
}

/**
 * The server's backups: one at a time, only into `backupDir`, named by the server (never a path a
 * client sends), with retention (`backupKeep`) and an optional schedule (`backupIntervalSeconds`).
 */
export class BackupService {
  readonly #options: BackupServiceOptions;
  readonly #now: () => Date;
  #running: Promise<ServerBackupResult> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: BackupServiceOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  get backupDir(): string | undefined {
    return this.#options.config.backupDir;
  }

  #requireDir(): string {
    const dir = this.#options.config.backupDir;
    if (dir === undefined) {
      throw new AiaasError('BACKUP_NOT_CONFIGURED', 'This server has no backup directory: start it with --backup-dir DIR (AIAAS_BACKUP_DIR)');
    }
    return dir;
  }

  /** Takes a backup now; BACKUP_IN_PROGRESS while another one runs. */
  async create(): Promise<ServerBackupResult> {
    const dir = this.#requireDir();
    if (this.#running !== undefined) throw new AiaasError('BACKUP_IN_PROGRESS', 'A backup is already running; try again when it has finished');
    const running = (async () => {
      const name = serverBackupName(this.#now());
      const release = this.#options.holdArtifactDeletes();
      let summary: BackupSummary;
      try {
        summary = await backupDataDirectory(this.#options.config, this.#options.ring(), join(dir, name), {
          snapshotDatabase: this.#options.snapshotDatabase,
          now: this.#now,
        });
      } finally {
        await release();
      }
      const pruned = await pruneBackups(dir, { keep: this.#options.config.backupKeep, prefix: serverBackupPrefix, except: summary.path });
      const { manifest } = summary;
      return { name, createdAt: manifest.createdAt, tenants: manifest.counts.tenants, artifacts: manifest.counts.artifacts, bytes: manifest.counts.bytes, pruned };
    })();
    this.#running = running;
    try {
      return await running;
    } finally {
      this.#running = undefined;
    }
  }

  async list(): Promise<BackupListing[]> {
    return listBackups(this.#requireDir());
  }

  /** One scheduled run: a backup, then retention; failures are logged and audited, never thrown. */
  async runScheduled(): Promise<ServerBackupResult | undefined> {
    const { logger, audit } = this.#options;
    try {
      const result = await this.create();
      logger.info({ backup: result.name, artifacts: result.artifacts, bytes: result.bytes, pruned: result.pruned }, 'scheduled backup written');
      await audit.record({
        tenantId: null,
        keyId: null,
        action: 'backup.create',
        resource: `backup:${result.name}`,
        outcome: 'success',
        ip: 'local',
        detail: { trigger: 'schedule', artifacts: result.artifacts, bytes: result.bytes, pruned: result.pruned },
      });
      return result;
    } catch (error) {
      if (AiaasError.isInstance(error) && error.code === 'BACKUP_IN_PROGRESS') return undefined;
      logger.error({ err: error }, 'scheduled backup failed');
      await audit
        .record({
          tenantId: null,
          keyId: null,
          action: 'backup.create',
          resource: 'backup',
          outcome: 'error',
          ip: 'local',
          detail: { trigger: 'schedule', code: AiaasError.isInstance(error) ? error.code : 'INTERNAL' },
        })
        .catch(() => undefined);
      return undefined;
    }
  }

  /** Starts the schedule when `backupIntervalSeconds` > 0; the first backup runs one interval after start. */
  start(): void {
    const seconds = this.#options.config.backupIntervalSeconds;
    if (seconds <= 0 || this.#timer !== undefined || this.#closed) return;
    this.#requireDir();
    this.#timer = setInterval(() => void this.runScheduled(), seconds * 1000);
    this.#timer.unref();
  }

  /** Stops the schedule and waits for a running backup to finish. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}

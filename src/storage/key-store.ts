import { chmodSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { AiaasError } from '../errors.ts';

/*
 * The key store: tenants' wrapped data keys and the master key-check values, in their own SQLite
 * file beside (never inside) the main database. Data backups copy the database and artifacts but
 * never this file, so destroying a tenant's key here also makes every earlier backup of that
 * tenant's data unreadable: the way KMS-backed systems shred.
 *
 * Why a rollback journal and not WAL: a WAL keeps old page images (the wrapped key among them)
 * in the -wal file until a checkpoint. With `journal_mode = DELETE` the file is changed in place,
 * `secure_delete` zeroes the freed cell, and the journal holding the pre-image is unlinked when the
 * transaction commits. The store is a few KB written on tenant creation and deletion only, so
 * FULL sync and the extra fsyncs cost nothing that matters.
 */

export interface KeyStoreRecord {
  readonly tenantId: string;
  /** base64 of the wrapped key; '' for a destroyed key (a tombstone). */
  readonly wrappedKey: string;
  /** 0 for a tombstone. */
  readonly masterKeyVersion: number;
  readonly createdAt: string;
  readonly destroyedAt: string | null;
}

export interface KeyCheckRecord {
  readonly masterKeyVersion: number;
  /** hex; see src/security/key-check.ts. */
  readonly checkValue: string;
}

interface DataKeyRow {
  tenant_id: string;
  wrapped_key: string;
  master_key_version: number;
  created_at: string;
  destroyed_at: string | null;
}

function toRecord(row: DataKeyRow): KeyStoreRecord {
  return {
    tenantId: row.tenant_id,
    wrappedKey: row.wrapped_key,
    masterKeyVersion: row.master_key_version,
    createdAt: row.created_at,
    destroyedAt: row.destroyed_at,
  };
}

export interface OpenKeyStoreOptions {
  readonly path: string;
  readonly now?: () => Date;
  readonly busyTimeoutMs?: number;
}

export class KeyStoreDatabase {
  readonly path: string;
  readonly #connection: BetterSqlite3.Database;
  readonly #now: () => Date;

  private constructor(path: string, connection: BetterSqlite3.Database, now: () => Date) {
    this.path = path;
    this.#connection = connection;
    this.#now = now;
  }

  static open(options: OpenKeyStoreOptions): KeyStoreDatabase {
    let connection: BetterSqlite3.Database;
    try {
      connection = new BetterSqlite3(options.path);
    } catch (error) {
      throw new AiaasError('CONFIG_INVALID', `Cannot open the key store at ${options.path} (--key-store, AIAAS_KEY_STORE)`, { cause: error });
    }
    try {
      connection.pragma('journal_mode = DELETE');
      connection.pragma('synchronous = FULL');
      connection.pragma('secure_delete = ON');
      connection.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
      connection.exec(`
        CREATE TABLE IF NOT EXISTS data_keys (
          tenant_id TEXT PRIMARY KEY,
          wrapped_key TEXT NOT NULL,
          master_key_version INTEGER NOT NULL,
          created_at TEXT NOT NULL,
          destroyed_at TEXT
        );
        CREATE TABLE IF NOT EXISTS key_checks (
          master_key_version INTEGER PRIMARY KEY,
          check_value TEXT NOT NULL,
          created_at TEXT NOT NULL
        );
      `);
      // Only wrapped keys live here, but a wrapped key plus the master key is the tenant's data.
      chmodSync(options.path, 0o600);
    } catch (error) {
      connection.close();
      throw new AiaasError('CONFIG_INVALID', `Cannot use the key store at ${options.path} (--key-store, AIAAS_KEY_STORE)`, { cause: error });
    }
    return new KeyStoreDatabase(options.path, connection, options.now ?? (() => new Date()));
  }

  get(tenantId: string): KeyStoreRecord | undefined {
    const row = this.#connection.prepare('SELECT * FROM data_keys WHERE tenant_id = ?').get(tenantId) as DataKeyRow | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Inserts unless the tenant has a row (active or tombstone); returns whether it inserted. */
  insertIfAbsent(tenantId: string, key: { wrappedKey: string; masterKeyVersion: number }, createdAt?: string): boolean {
    const result = this.#connection
      .prepare('INSERT INTO data_keys (tenant_id, wrapped_key, master_key_version, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING')
      .run(tenantId, key.wrappedKey, key.masterKeyVersion, createdAt ?? this.#now().toISOString());
    return result.changes > 0;
  }

  /** Compare-and-set on the wrapped key; returns whether a row changed. */
  replace(tenantId: string, expectedWrappedKey: string, next: { wrappedKey: string; masterKeyVersion: number }): boolean {
    const result = this.#connection
      .prepare("UPDATE data_keys SET wrapped_key = ?, master_key_version = ? WHERE tenant_id = ? AND wrapped_key = ? AND wrapped_key <> ''")
      .run(next.wrappedKey, next.masterKeyVersion, tenantId, expectedWrappedKey);
    return result.changes > 0;
  }

  /**
   * Deletes the row (secure_delete zeroes its bytes in the file) and leaves a tombstone without
   * key material, so the tenant is never silently handed a fresh key.
   */
  destroy(tenantId: string): void {
    const now = this.#now().toISOString();
    this.#connection.transaction(() => {
      const existing = this.get(tenantId);
      this.#connection.prepare('DELETE FROM data_keys WHERE tenant_id = ?').run(tenantId);
      this.#connection
        .prepare("INSERT INTO data_keys (tenant_id, wrapped_key, master_key_version, created_at, destroyed_at) VALUES (?, '', 0, ?, ?)")
        .run(tenantId, existing?.createdAt ?? now, now);
    })();
  }

  /** Every row, tombstones included, ordered by tenant. */
  listAll(): KeyStoreRecord[] {
    return (this.#connection.prepare('SELECT * FROM data_keys ORDER BY tenant_id').all() as DataKeyRow[]).map(toRecord);
  }

  listChecks(): KeyCheckRecord[] {
    const rows = this.#connection.prepare('SELECT master_key_version, check_value FROM key_checks ORDER BY master_key_version').all() as {
      master_key_version: number;
      check_value: string;
    }[];
    return rows.map((row) => ({ masterKeyVersion: row.master_key_version, checkValue: row.check_value }));
  }

  /** Records a version's check value unless one exists; returns the stored value. */
  putCheckIfAbsent(masterKeyVersion: number, checkValue: string): string {
    this.#connection
      .prepare('INSERT INTO key_checks (master_key_version, check_value, created_at) VALUES (?, ?, ?) ON CONFLICT (master_key_version) DO NOTHING')
      .run(masterKeyVersion, checkValue, this.#now().toISOString());
    const row = this.#connection.prepare('SELECT check_value FROM key_checks WHERE master_key_version = ?').get(masterKeyVersion) as { check_value: string };
    return row.check_value;
  }

  close(): void {
    if (this.#connection.open) this.#connection.close();
  }
}

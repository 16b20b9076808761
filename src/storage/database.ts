import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { AiaasError } from '../errors.ts';
import { migrateToLatest } from './migrations.ts';
import type { Schema } from './schema.ts';

/** Pages copied per event-loop turn by `backupTo` (4 KiB each): small enough that requests keep flowing. */
const backupPagesPerStep = 256;

export interface OpenDatabaseOptions {
  /** File path, or `':memory:'` for a private throwaway database (tests). */
  readonly path: string;
  /** How long a writer waits for another process's lock before SQLITE_BUSY. */
  readonly busyTimeoutMs?: number;
  readonly now?: () => Date;
}

export interface Database {
  readonly db: Kysely<Schema>;
  /** Names of migrations applied while opening (empty when already current). */
  readonly appliedMigrations: readonly string[];
  /**
   * Writes a consistent copy to `destination` with SQLite's online backup API, a few pages per
   * event-loop turn; writes made through this connection meanwhile reach the copy too.
   */
  backupTo(destination: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens (creating if needed) the SQLite database and brings its schema up to date.
 * Open one per process and share it: better-sqlite3 blocks its thread while
 * waiting for a lock, so two connections in one thread can stall each other
 * for the whole busy timeout when a transaction spans an await.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  let connection: BetterSqlite3.Database;
  try {
    connection = new BetterSqlite3(options.path);
  } catch (error) {
    throw new AiaasError('CONFIG_INVALID', `Cannot open database at ${options.path}`, { cause: error });
  }
  // WAL lets readers proceed while a writer commits; NORMAL sync is durable
  // across application crashes in WAL mode and much faster than FULL.
  connection.pragma('journal_mode = WAL');
  connection.pragma('synchronous = NORMAL');
  connection.pragma('foreign_keys = ON');
  connection.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);

  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: connection }) });
  let appliedMigrations: string[];
  try {
    appliedMigrations = await migrateToLatest(db, {
      context: { dialect: 'sqlite' },
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return {
    db,
    appliedMigrations,
    backupTo: async (destination) => {
      await connection.backup(destination, { progress: () => backupPagesPerStep });
    },
    close: () => db.destroy(),
  };
}

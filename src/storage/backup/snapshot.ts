/** Consistent copies of the live SQLite database, and what a backup reads from such a copy. */
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { AiaasError } from '../../errors.ts';
import { listArtifactReferences, type ArtifactReference } from '../artifact-references.ts';

/**
 * Writes a consistent copy of the live database to `destination` (a file that does not exist yet).
 * The server passes `Database.backupTo` (SQLite's online backup API on its own connection).
 */
export type DatabaseSnapshotter = (destination: string) => Promise<void>;

/**
 * For a process other than the server (`aiaas backup create`): `VACUUM INTO` on a read-only
 * connection runs in one read transaction, so the copy is the database as of one commit, while the
 * server keeps writing (WAL). It blocks only this process. The copy has no free pages, so bytes
 * of deleted rows do not travel into backups.
 */
export function snapshotDatabaseFile(databasePath: string): DatabaseSnapshotter {
  return async (destination) => {
    let connection: BetterSqlite3.Database;
    try {
      connection = new BetterSqlite3(databasePath, { readonly: true, fileMustExist: true });
    } catch (error) {
      throw new AiaasError('CONFIG_INVALID', `Cannot open the database ${databasePath} to back it up`, { cause: error });
    }
    try {
      connection.pragma('busy_timeout = 5000');
      connection.prepare('VACUUM INTO ?').run(destination);
    } finally {
      connection.close();
    }
  };
}

export interface SnapshotFacts {
  /** `PRAGMA integrity_check` rows; `['ok']` when sound. */
  integrity: string[];
  foreignKeyViolations: number;
  migrations: string[];
  tenants: number;
  references: ArtifactReference[];
}

/** Opens a copy read-only and collects what backups and checks need to know about it. */
export function inspectDatabase(path: string): SnapshotFacts {
  const connection = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    connection.pragma('busy_timeout = 5000');
    return inspectConnection(connection);
  } finally {
    connection.close();
  }
}

export function inspectConnection(connection: BetterSqlite3.Database): SnapshotFacts {
  const integrity = (connection.pragma('integrity_check') as { integrity_check: string }[]).map((row) => row.integrity_check);
  if (integrity.length !== 1 || integrity[0] !== 'ok') return { integrity, foreignKeyViolations: 0, migrations: [], tenants: 0, references: [] };
  const foreignKeyViolations = (connection.pragma('foreign_key_check') as unknown[]).length;
  return { integrity, foreignKeyViolations, ...readContents(connection) };
}

/** What the copy holds: its migrations, live tenants and artifact references. */
function readContents(connection: BetterSqlite3.Database): Pick<SnapshotFacts, 'migrations' | 'tenants' | 'references'> {
  const migrations = (connection.prepare('SELECT name FROM migrations ORDER BY name').all() as { name: string }[]).map((row) => row.name);
  const tenants = (connection.prepare('SELECT count(*) AS count FROM tenants WHERE deleted_at IS NULL').get() as { count: number }).count;
  return { migrations, tenants, references: listArtifactReferences(connection) };
}

/**
 * Turns a fresh snapshot into a self-contained file: rollback journal instead of WAL (so opening
 * it read-only creates no `-wal`/`-shm` files beside it) and no free pages (VACUUM), then inspects it.
 */
export function finishSnapshot(path: string): SnapshotFacts {
  const connection = new BetterSqlite3(path, { fileMustExist: true });
  try {
    connection.pragma('journal_mode = DELETE');
    connection.exec('VACUUM');
    return inspectConnection(connection);
  } finally {
    connection.close();
  }
}

const finishWorkerScript = fileURLToPath(new URL('./finish-snapshot-worker.mjs', import.meta.url));

type FinishWorkerReply = { ok: true; integrity: string[]; foreignKeyViolations: number } | { ok: false; message: string; code?: string };

/**
 * finishSnapshot for the server: the VACUUM and integrity_check of a large database stall a thread
 * for seconds, so they run on a worker thread (its own SQLite connection to the copy) while the
 * event loop keeps answering requests; only the reading of the copy's contents stays here.
 */
export async function finishSnapshotOffThread(path: string): Promise<SnapshotFacts> {
  const reply = await new Promise<FinishWorkerReply>((resolve, reject) => {
    const worker = new Worker(finishWorkerScript, { workerData: { path } });
    let answered = false;
    worker.once('message', (message: FinishWorkerReply) => {
      answered = true;
      resolve(message);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`the snapshot worker exited with code ${code} before answering`));
    });
  });
  if (!reply.ok) throw new AiaasError('INTERNAL', `Could not finish the database snapshot: ${reply.message}`, { details: reply.code === undefined ? {} : { sqliteCode: reply.code } });
  const { integrity, foreignKeyViolations } = reply;
  if (integrity.length !== 1 || integrity[0] !== 'ok') return { integrity, foreignKeyViolations: 0, migrations: [], tenants: 0, references: [] };
  const connection = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return { integrity, foreignKeyViolations, ...readContents(connection) };
  } finally {
    connection.close();
  }
}

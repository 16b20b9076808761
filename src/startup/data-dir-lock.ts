import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { AiaasError } from '../errors.ts';

/*
 * One aiaas process per data directory. The lock is SQLite's own exclusive lock (POSIX fcntl on
 * Unix) on `<data-dir>/aiaas.lock`, held by a connection in `locking_mode = EXCLUSIVE` for as long
 * as the process keeps it open: the kernel releases it when the process dies, even by kill -9, so
 * there is no stale-lock guessing and no pid-reuse race; SQLite's per-inode bookkeeping also makes
 * a second lock attempt inside the same process fail. The holder's pid and start time go to
 * `aiaas.lock.owner`, only so the refusal can name who holds it.
 */
export const lockFileName = 'aiaas.lock';
export const lockOwnerFileName = 'aiaas.lock.owner';

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

function describeOwner(dataDir: string): string {
  try {
    const owner = JSON.parse(readFileSync(join(dataDir, lockOwnerFileName), 'utf8')) as { pid?: unknown; startedAt?: unknown; command?: unknown };
    const pid = typeof owner.pid === 'number' ? owner.pid : 'unknown';
    const what = typeof owner.command === 'string' ? ` (${owner.command})` : '';
    const since = typeof owner.startedAt === 'string' ? `, started ${owner.startedAt}` : '';
    return `process ${pid}${what}${since}`;
  } catch {
    return 'another process';
  }
}

/**
 * Takes the data directory's lock or throws DATA_DIR_LOCKED naming the holder's pid. `command`
 * says who holds it (`serve`, `admin rotate-master-key`) in the next refusal's message.
 */
export function lockDataDir(dataDir: string, command: string): DataDirLock {
  const path = join(dataDir, lockFileName);
  let connection: BetterSqlite3.Database;
  try {
    connection = new BetterSqlite3(path, { timeout: 0 });
  } catch (error) {
    throw new AiaasError('CONFIG_INVALID', `Cannot open the data directory lock ${path}`, { cause: error });
  }
  try {
    connection.pragma('locking_mode = EXCLUSIVE');
    // Nothing here needs crash recovery; an in-memory journal leaves no -journal file beside the lock.
    connection.pragma('journal_mode = MEMORY');
    // The first write takes the exclusive lock; in EXCLUSIVE locking mode it is kept until close.
    connection.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); COMMIT;');
  } catch (error) {
    connection.close();
    const code = (error as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new AiaasError(
        'DATA_DIR_LOCKED',
        `The data directory ${dataDir} is in use by ${describeOwner(dataDir)}. Only one aiaas process may use a data directory at a time: ` +
          `stop it first, or give this one its own --data-dir (AIAAS_DATA_DIR).`,
        { details: { dataDir, lockFile: path } },
      );
    }
    throw new AiaasError('CONFIG_INVALID', `Cannot take the data directory lock ${path}`, { cause: error });
  }
  const ownerPath = join(dataDir, lockOwnerFileName);
  writeFileSync(ownerPath, `${JSON.stringify({ pid: process.pid, command, startedAt: new Date().toISOString() })}\n`, { mode: 0o600 });
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      rmSync(ownerPath, { force: true });
      connection.close();
    },
  };
}

// The heavy part of finishing a backup's database copy, on a worker thread so the server's event
// loop keeps answering: switch the copy to a rollback journal, VACUUM it, run integrity_check and
// foreign_key_check. Plain JavaScript so it runs under bare node whatever loader the parent uses.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';

const { path } = workerData;
try {
  const connection = new BetterSqlite3(path, { fileMustExist: true });
  try {
    connection.pragma('busy_timeout = 5000');
    connection.pragma('journal_mode = DELETE');
    connection.exec('VACUUM');
    const integrity = connection.pragma('integrity_check').map((row) => row.integrity_check);
    const sound = integrity.length === 1 && integrity[0] === 'ok';
    const foreignKeyViolations = sound ? connection.pragma('foreign_key_check').length : 0;
    parentPort.postMessage({ ok: true, integrity, foreignKeyViolations });
  } finally {
    connection.close();
  }
} catch (error) {
  parentPort.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error), code: error?.code });
}

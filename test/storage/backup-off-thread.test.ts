/**
 * The server's backup finishes its database copy (VACUUM, integrity_check) on a worker thread: the
 * event loop keeps answering /healthz while that work runs. The copy is held busy by a lock this
 * test takes, so the finishing provably runs while the request is answered (order, not time).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishSnapshotOffThread } from '../../src/storage/backup/snapshot.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { startTestServer, type TestServer } from '../http/helpers.ts';

let server: TestServer;
let directory: string;

beforeAll(async () => {
  server = await startTestServer();
  directory = await mkdtemp(join(tmpdir(), 'aiaas-backup-thread-'));
});
afterAll(async () => {
  await server?.close();
  await rm(directory, { recursive: true, force: true });
});

describe('finishing a backup snapshot', () => {
  it('runs off the event loop: /healthz answers while the copy is still being finished', async () => {
    const path = join(directory, 'copy.sqlite');
    const database = await openDatabase({ path });
    await database.close();
    const filler = new BetterSqlite3(path);
    filler.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, text TEXT)');
    const insert = filler.prepare('INSERT INTO filler (text) VALUES (?)');
    filler.transaction(() => {
      for (let row = 0; row < 20_000; row++) insert.run(`row ${row} `.repeat(20));
    })();
    // Held until the request has been answered: the finishing cannot complete before that.
    filler.exec('BEGIN EXCLUSIVE');

    let finished = false;
    const finishing = finishSnapshotOffThread(path).finally(() => (finished = true));
    const health = await server.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    expect(finished).toBe(false);

    filler.exec('COMMIT');
    filler.close();
    const facts = await finishing;
    expect(facts.integrity).toEqual(['ok']);
    expect(facts.foreignKeyViolations).toBe(0);
    expect(facts.migrations.length).toBeGreaterThan(0);
    // The copy is self-contained: a rollback journal, not WAL.
    const reopened = new BetterSqlite3(path, { readonly: true });
    expect(reopened.pragma('journal_mode', { simple: true })).toBe('delete');
    expect((reopened.prepare('SELECT count(*) AS count FROM filler').get() as { count: number }).count).toBe(20_000);
    reopened.close();
  }, 60_000);
});

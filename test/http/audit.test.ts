import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, createKey, startTestServer, type TestServer } from './helpers.ts';

interface Row {
  seq: number;
  tenant_id: string | null;
  key_id: string | null;
  action: string;
  resource: string;
  outcome: string;
  ip: string;
  at: string;
  detail_json: string;
  prev_hash: string;
  hash: string;
  model_name: string | null;
}

let server: TestServer;
let snapshot: Row[];

const db = () => server.context.database.db;
const verify = async () => (await call(server.app, server.adminKey, 'GET', '/api/v1/audit/verify')).json();

async function restore(): Promise<void> {
  await sql`delete from audit_log`.execute(db());
  for (const row of snapshot) {
    await sql`insert into audit_log (seq, tenant_id, key_id, action, resource, outcome, ip, at, detail_json, prev_hash, hash, model_name)
      values (${row.seq}, ${row.tenant_id}, ${row.key_id}, ${row.action}, ${row.resource}, ${row.outcome}, ${row.ip}, ${row.at}, ${row.detail_json}, ${row.prev_hash}, ${row.hash}, ${row.model_name})`.execute(db());
  }
}

beforeAll(async () => {
  server = await startTestServer();
  // Six audited actions: successes, a denial and a failure.
  const viewer = await createKey(server, server.adminKey, 'viewer');
  await call(server.app, viewer.key, 'POST', '/api/v1/keys', { name: 'denied', role: 'admin' });
  await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'audited' });
  await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/never');
  await call(server.app, server.adminKey, 'DELETE', `/api/v1/keys/${viewer.id}`);
  await call(server.app, server.adminKey, 'GET', '/api/v1/keys');
  snapshot = (await sql<Row>`select * from audit_log order by seq`.execute(db())).rows;
});
afterAll(async () => server.close());
beforeEach(restore);

describe('audit log', () => {
  it('records who, what, where and the outcome of mutating and admin-read requests', async () => {
    const entries = (await call(server.app, server.adminKey, 'GET', '/api/v1/audit')).json().entries;
    expect(entries.slice(0, 6).map((entry: { action: string; outcome: string }) => [entry.action, entry.outcome])).toEqual([
      ['key.create', 'success'],
      ['key.create', 'denied'],
      ['model.create', 'success'],
      ['model.delete', 'error'],
      ['key.revoke', 'success'],
      ['key.list', 'success'],
    ]);
    expect(entries[0]).toMatchObject({ tenantId: server.context.bootstrap.tenantId, ip: '127.0.0.1', resource: expect.stringMatching(/^key:key_/) });
    expect(entries[0].detail).toMatchObject({ method: 'POST', status: 201, role: 'viewer' });
    expect(entries[1].keyId).not.toBe(entries[0].keyId);
    // Inference and plain reads are not logged one by one.
    expect(entries.some((entry: { action: string }) => entry.action.startsWith('model.read'))).toBe(false);
  });

  it('verifies an intact chain', async () => {
    expect(await verify()).toEqual({ ok: true, count: snapshot.length });
  });

  it('reports an altered entry at its position', async () => {
    await sql`update audit_log set outcome = 'success' where seq = 2`.execute(db());
    expect(await verify()).toMatchObject({ ok: false, position: 2, seq: 2, reason: 'altered' });
  });

  it('reports an altered detail at its position', async () => {
    await sql`update audit_log set detail_json = '{"status":200}' where seq = 4`.execute(db());
    expect(await verify()).toMatchObject({ ok: false, position: 4, seq: 4, reason: 'altered' });
  });

  it('reports a deleted entry at the position right after the hole', async () => {
    await sql`delete from audit_log where seq = 3`.execute(db());
    expect(await verify()).toMatchObject({ ok: false, position: 3, seq: 4, reason: 'deleted' });
  });

  it('reports a reordered entry at its position', async () => {
    // Entry 3 moved to the end of the log.
    await sql`update audit_log set seq = 1000 where seq = 3`.execute(db());
    expect(await verify()).toMatchObject({ ok: false, position: 3, seq: 4, reason: 'reordered' });
  });

  it('exports JSON lines that carry the chain hashes', async () => {
    const exported = await call(server.app, server.adminKey, 'GET', '/api/v1/audit/export');
    const lines = exported.body.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThanOrEqual(snapshot.length);
    expect(lines[1].prevHash).toBe(lines[0].hash);
  });
});

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { verifyBackup } from '../../src/storage/backup/index.ts';
import { call, createKey, createTenant, irisLikeCsv, startTestServer, type TestServer } from './helpers.ts';

let server: TestServer;
let backupDir: string;

beforeAll(async () => {
  backupDir = await mkdtemp(join(tmpdir(), 'aiaas-backups-'));
  server = await startTestServer({ backupDir, backupKeep: 2 });
  const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' });
  expect(dataset.statusCode).toBe(201);
});

afterAll(async () => {
  await server.close();
  await rm(backupDir, { recursive: true, force: true });
});

describe('POST /api/v1/admin/backups', () => {
  it('backs the server up into its backupDir, under a name it chooses, and lists it', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/admin/backups');
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({ tenants: 1, artifacts: 1, pruned: [] });
    expect(body.name).toMatch(/^aiaas-backup-\d{8}T\d{9}Z$/);
    expect(await readdir(backupDir)).toEqual([body.name]);
    expect((await verifyBackup(join(backupDir, body.name))).problems).toEqual([]);

    const listed = await call(server.app, server.adminKey, 'GET', '/api/v1/admin/backups');
    expect(listed.statusCode).toBe(200);
    expect(listed.json().backups).toEqual([
      { name: body.name, state: 'complete', createdAt: body.createdAt, tenants: 1, artifacts: 1, bytes: body.bytes, problem: null },
    ]);
    expect(listed.body).not.toContain(backupDir);
  });

  it('never writes where the client asks', async () => {
    const elsewhere = join(tmpdir(), `aiaas-not-here-${process.pid}`);
    for (const body of [{ out: elsewhere }, { path: elsewhere }, [elsewhere]]) {
      const response = await call(server.app, server.adminKey, 'POST', '/api/v1/admin/backups', body);
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe('INVALID_REQUEST');
    }
    const query = await call(server.app, server.adminKey, 'POST', `/api/v1/admin/backups?dir=${encodeURIComponent(elsewhere)}`);
    expect(query.statusCode).toBe(400);
    await expect(stat(elsewhere)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is reserved to unrestricted admins of the operator tenant', async () => {
    const tenant = await createTenant(server, 'customer');
    const developer = await createKey(server, server.adminKey, 'developer');
    const restricted = await createKey(server, server.adminKey, 'admin', { allowedModels: ['iris'] });
    for (const key of [tenant.adminKey, developer.key, restricted.key]) {
      for (const method of ['POST', 'GET'] as const) {
        const response = await call(server.app, key, method, '/api/v1/admin/backups');
        expect(response.statusCode, `${method} ${response.body}`).toBe(403);
      }
    }
    expect((await call(server.app, undefined, 'POST', '/api/v1/admin/backups')).statusCode).toBe(401);
  });

  it('runs one backup at a time', async () => {
    const responses = await Promise.all([1, 2].map(() => call(server.app, server.adminKey, 'POST', '/api/v1/admin/backups')));
    expect(responses.map((response) => response.statusCode).sort()).toEqual([201, 409]);
    expect(responses.find((response) => response.statusCode === 409)!.json().error.code).toBe('BACKUP_IN_PROGRESS');
  });

  it('keeps the newest backupKeep backups and audits scheduled runs', async () => {
    const scheduled = await server.context.backups.runScheduled();
    expect(scheduled).toBeDefined();
    const names = (await readdir(backupDir)).sort();
    expect(names).toHaveLength(2);
    expect(names.at(-1)).toBe(scheduled!.name);
    expect(scheduled!.pruned).toHaveLength(1);
    expect(names).not.toContain(scheduled!.pruned[0]);

    const audit = await call(server.app, server.adminKey, 'GET', '/api/v1/audit?limit=1000');
    const entries = audit.json().entries as { action: string; resource: string; detail: { trigger?: string } }[];
    expect(entries.filter((entry) => entry.action === 'backup.create' && entry.detail.trigger === 'schedule').map((entry) => entry.resource)).toEqual([
      `backup:${scheduled!.name}`,
    ]);
    expect(entries.filter((entry) => entry.action === 'backup.create' && entry.detail.trigger === undefined).length).toBeGreaterThanOrEqual(2);
  });
});

describe('without a backupDir', () => {
  it('answers 409 BACKUP_NOT_CONFIGURED', async () => {
    const plain = await startTestServer();
    try {
      const response = await call(plain.app, plain.adminKey, 'POST', '/api/v1/admin/backups');
      expect(response.statusCode).toBe(409);
      expect(response.json().error.code).toBe('BACKUP_NOT_CONFIGURED');
    } finally {
      await plain.close();
    }
  });
});

describe('backup settings', () => {
  it('need a backupDir for a schedule, outside the data directory', () => {
    expect(() => loadConfig({ flags: { dataDir: '/srv/aiaas', backupIntervalSeconds: 3600 }, env: {} })).toThrow(/backupDir/);
    expect(() => loadConfig({ flags: { dataDir: '/srv/aiaas', backupDir: '/srv/aiaas/backups' }, env: {} })).toThrow(/must be outside dataDir/);
    expect(() => loadConfig({ flags: { dataDir: '/srv/aiaas', backupDir: '/srv/aiaas' }, env: {} })).toThrow(/must be outside dataDir/);
    const config = loadConfig({ flags: {}, env: { AIAAS_DATA_DIR: '/srv/aiaas', AIAAS_BACKUP_DIR: '/srv/aiaas-backups', AIAAS_BACKUP_INTERVAL_SECONDS: '3600', AIAAS_BACKUP_KEEP: '3' } });
    expect(config).toMatchObject({ backupDir: '/srv/aiaas-backups', backupIntervalSeconds: 3600, backupKeep: 3 });
    expect(() => loadConfig({ flags: { backupKeep: 0 }, env: {} })).toThrow(/backupKeep/);
  });
});

import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/storage/repositories/audit.ts';
import { ledgerUnitColumns, type LedgerBucket } from '../../src/storage/repositories/usage-ledger.ts';
import { openTestStorage, type TestStorage } from './helpers.ts';

let storage: TestStorage;
beforeEach(async () => {
  storage = await openTestStorage();
});
afterEach(async () => {
  await storage.database.close();
});

describe('TenantRepository', () => {
  it('creates, lists and soft-deletes tenants', async () => {
    const { tenants } = storage.repositories;
    await expect(tenants.create({ name: 'acme' })).rejects.toMatchObject({ code: 'CONFLICT' });
    storage.clock.advance(1000);
    expect(await tenants.softDelete(storage.tenantB)).toBe(true);
    expect(await tenants.softDelete(storage.tenantB)).toBe(false);
    expect((await tenants.list()).map((tenant) => tenant.name)).toEqual(['acme']);
    expect((await tenants.list({ includeDeleted: true })).map((tenant) => tenant.name)).toEqual(['acme', 'globex']);
    expect((await tenants.get(storage.tenantB))?.deletedAt).toBe('2025-01-01T00:00:01.001Z');
  });
});

describe('TenantKeyRepository', () => {
  it('stores one wrapped key per tenant and re-wraps it with a version check', async () => {
    const { tenantKeys } = storage.repositories;
    await tenantKeys.put(storage.tenantA, { wrappedKey: 'd3JhcHBlZC0x', masterKeyVersion: 1 });
    await tenantKeys.put(storage.tenantB, { wrappedKey: 'd3JhcHBlZC0y', masterKeyVersion: 1 });
    await expect(tenantKeys.put(storage.tenantA, { wrappedKey: 'eA==', masterKeyVersion: 1 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect(await tenantKeys.update(storage.tenantA, { wrappedKey: 'bmV3', masterKeyVersion: 2, expectedMasterKeyVersion: 1 })).toBe(true);
    expect(await tenantKeys.update(storage.tenantA, { wrappedKey: 'c3RhbGU=', masterKeyVersion: 2, expectedMasterKeyVersion: 1 })).toBe(false);
    expect(await tenantKeys.get(storage.tenantA)).toMatchObject({ wrappedKey: 'bmV3', masterKeyVersion: 2 });
    expect((await tenantKeys.listAll()).map((key) => key.masterKeyVersion).sort()).toEqual([1, 2]);
  });
});

describe('ApiKeyRepository', () => {
  it('finds a key by hash across tenants, lists per tenant, revokes and touches tenant-scoped', async () => {
    const { apiKeys } = storage.repositories;
    const key = await apiKeys.insert(storage.tenantA, {
      name: 'ci',
      prefix: 'aiaas_ab12',
      keyHash: 'f'.repeat(64),
      role: 'inference',
      allowedModels: ['iris'],
    });
    expect(await apiKeys.findByHash('f'.repeat(64))).toMatchObject({ id: key.id, tenantId: storage.tenantA, allowedModels: ['iris'] });
    expect(await apiKeys.findByHash('0'.repeat(64))).toBeUndefined();
    expect(await apiKeys.list(storage.tenantB)).toEqual([]);
    expect(await apiKeys.get(storage.tenantB, key.id)).toBeUndefined();

    expect(await apiKeys.revoke(storage.tenantB, key.id)).toBe(false);
    await apiKeys.touchLastUsed(storage.tenantB, key.id, new Date('2025-02-01T00:00:00.000Z'));
    expect(await apiKeys.get(storage.tenantA, key.id)).toMatchObject({ revokedAt: null, lastUsedAt: null });

    await apiKeys.touchLastUsed(storage.tenantA, key.id, new Date('2025-02-01T00:00:00.000Z'));
    expect(await apiKeys.revoke(storage.tenantA, key.id)).toBe(true);
    expect(await apiKeys.get(storage.tenantA, key.id)).toMatchObject({
      revokedAt: '2025-01-01T00:00:00.001Z',
      lastUsedAt: '2025-02-01T00:00:00.000Z',
    });
    await expect(
      apiKeys.insert(storage.tenantB, { name: 'dup', prefix: 'x', keyHash: 'f'.repeat(64), role: 'admin' }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

describe('AuditRepository', () => {
  const entry = (prevHash: string, hash: string): AuditEntry => ({
    tenantId: null,
    keyId: null,
    action: 'model.create',
    resource: 'models/iris',
    outcome: 'success',
    ip: '127.0.0.1',
    at: '2025-01-01T00:00:00.000Z',
    detailJson: '{"b":1,"a":2}',
    prevHash,
    hash,
  });

  it('chains entries through appendWith and returns them in seq order, byte-exact', async () => {
    const { audit } = storage.repositories;
    expect(await audit.last()).toBeUndefined();
    const genesis = '0'.repeat(64);
    await Promise.all(
      Array.from({ length: 5 }, () =>
        audit.appendWith((previous) => {
          const prevHash = previous?.hash ?? genesis;
          return entry(prevHash, `h${(previous?.seq ?? 0) + 1}`);
        }),
      ),
    );
    const chain = await audit.listAll();
    expect(chain.map((record) => record.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(chain.map((record) => record.prevHash)).toEqual([genesis, 'h1', 'h2', 'h3', 'h4']);
    expect(chain[0]?.detailJson).toBe('{"b":1,"a":2}');
    expect((await audit.last())?.hash).toBe('h5');
    expect(await audit.listAll({ afterSeq: 3 })).toHaveLength(2);
  });

  it('stores appendWith entries at the seq after the tail even when the database sequence has a gap', async () => {
    const { audit } = storage.repositories;
    const genesis = '0'.repeat(64);
    await audit.appendWith(() => entry(genesis, 'h1'));
    // What a PostgreSQL identity looks like after a rolled-back insert consumed values.
    await sql`update sqlite_sequence set seq = seq + 5 where name = 'audit_log'`.execute(storage.database.db);
    await audit.appendWith((previous) => entry(previous!.hash, 'h2'));
    expect((await audit.listAll()).map((record) => record.seq)).toEqual([1, 2]);
  });

  it('refuses a second entry on the same predecessor, so the chain cannot fork', async () => {
    const { audit } = storage.repositories;
    await audit.append(entry('0'.repeat(64), 'h1'));
    await expect(audit.append(entry('0'.repeat(64), 'h1-fork'))).rejects.toThrow();
    expect(await audit.listAll()).toHaveLength(1);
  });

  it('lists one tenant’s entries', async () => {
    const { audit } = storage.repositories;
    await audit.append({ ...entry('0', 'h1'), tenantId: storage.tenantA });
    await audit.append({ ...entry('h1', 'h2'), tenantId: storage.tenantB });
    expect((await audit.list(storage.tenantA)).map((record) => record.hash)).toEqual(['h1']);
  });
});

describe('UsageLedgerRepository', () => {
  const bucket = (tenantId: string, minute: string, units: Partial<LedgerBucket>): LedgerBucket => ({
    ...(Object.fromEntries(ledgerUnitColumns.map((column) => [column, 0])) as Record<(typeof ledgerUnitColumns)[number], number>),
    tenantId,
    keyId: 'key-1',
    modelName: 'iris',
    version: 1,
    protocol: 'v2',
    minute,
    ...units,
  });

  it('adds increments to minute rows and sums them per tenant, group and range', async () => {
    const { usageLedger } = storage.repositories;
    await usageLedger.add([bucket(storage.tenantA, '2025-03-04T23:59', { requests: 1, items: 2 }), bucket(storage.tenantB, '2025-03-04T23:59', { requests: 7 })]);
    await usageLedger.add([bucket(storage.tenantA, '2025-03-04T23:59', { requests: 4, items: 4 }), bucket(storage.tenantA, '2025-03-05T00:00', { requests: 1, protocol: 'tfserving' })]);
    expect(await usageLedger.query(storage.tenantA, { groupBy: ['model', 'day'] })).toEqual([
      expect.objectContaining({ modelName: 'iris', period: '2025-03-04', requests: 5, items: 6 }),
      expect.objectContaining({ modelName: 'iris', period: '2025-03-05', requests: 1, items: 0 }),
    ]);
    expect(await usageLedger.query(storage.tenantA, { groupBy: ['protocol'], fromMinute: '2025-03-05T00:00' })).toEqual([expect.objectContaining({ protocol: 'tfserving', requests: 1 })]);
    expect(await usageLedger.query(storage.tenantA, { groupBy: [], toMinute: '2025-03-05T00:00' })).toEqual([expect.objectContaining({ requests: 5 })]);
    expect(await usageLedger.query(storage.tenantA, { groupBy: [], models: [] })).toEqual([]);
  });

  it('writes a batch in one transaction: a failing bucket leaves none of them', async () => {
    const { usageLedger } = storage.repositories;
    await expect(usageLedger.add([bucket(storage.tenantA, '2025-03-04T10:00', { requests: 1 }), bucket('no-such-tenant', '2025-03-04T10:00', { requests: 1 })])).rejects.toThrow();
    expect(await usageLedger.query(storage.tenantA, { groupBy: [] })).toEqual([]);
  });
});

describe('Repositories.transaction', () => {
  it('rolls back every write when the work throws', async () => {
    const { repositories } = storage;
    // Loaded first, as Repositories.transaction requires of work that seals text: the keys live in
    // this same one-connection database, which the transaction holds.
    await storage.keys.dataKeyFor(storage.tenantA);
    await expect(
      repositories.transaction(async (inside) => {
        const model = await inside.models.create(storage.tenantA, { name: 'rolled-back' });
        await inside.models.addVersion(storage.tenantA, model.id, { source: 'upload', onnxRef: 'sha256:' + 'a'.repeat(64), signature: {} });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await repositories.models.getByName(storage.tenantA, 'rolled-back')).toBeUndefined();
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSystemArtifactStore } from '../../src/storage/artifact-store.ts';
import type { NewDataset } from '../../src/storage/repositories/datasets.ts';
import { openTestStorage, type TestStorage } from './helpers.ts';

const scratch = mkdtempSync(join(tmpdir(), 'aiaas-datasets-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const dataset = (name: string, artifactRef = 'sha256:' + 'd'.repeat(64)): NewDataset => ({
  name,
  format: 'csv',
  artifactRef,
  schema: { columns: ['a', 'b', 'label'] },
  rowCount: 150,
  bytes: 4096,
});

let storage: TestStorage;
beforeEach(async () => {
  storage = await openTestStorage();
});
afterEach(async () => {
  await storage.database.close();
});

describe('DatasetRepository', () => {
  it('round-trips a dataset and hides it from other tenants by id and name', async () => {
    const { datasets } = storage.repositories;
    const created = await datasets.create(storage.tenantA, dataset('iris'));
    expect(created).toMatchObject({ tenantId: storage.tenantA, rowCount: 150, bytes: 4096, labelsArtifactRef: null });
    expect(await datasets.get(storage.tenantA, created.id)).toEqual(created);
    expect(await datasets.getByName(storage.tenantA, 'iris')).toEqual(created);
    expect(await datasets.get(storage.tenantB, created.id)).toBeUndefined();
    expect(await datasets.getByName(storage.tenantB, 'iris')).toBeUndefined();
    expect(await datasets.list(storage.tenantB)).toEqual([]);
    expect(await datasets.delete(storage.tenantB, created.id)).toBeUndefined();
    expect(await datasets.get(storage.tenantA, created.id)).toBeDefined();
  });

  it('rejects a duplicate name within a tenant only', async () => {
    const { datasets } = storage.repositories;
    await datasets.create(storage.tenantA, dataset('iris'));
    await datasets.create(storage.tenantB, dataset('iris'));
    await expect(datasets.create(storage.tenantA, dataset('iris'))).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('lists in creation order with paging and deletes', async () => {
    const { datasets } = storage.repositories;
    for (const name of ['one', 'two', 'three']) {
      await datasets.create(storage.tenantA, dataset(name));
      storage.clock.advance(1);
    }
    expect((await datasets.list(storage.tenantA)).map((row) => row.name)).toEqual(['one', 'two', 'three']);
    expect((await datasets.list(storage.tenantA, { limit: 1, offset: 1 })).map((row) => row.name)).toEqual(['two']);
    const two = await datasets.getByName(storage.tenantA, 'two');
    expect((await datasets.delete(storage.tenantA, two?.id ?? ''))?.name).toBe('two');
    expect(await datasets.isArtifactReferenced('sha256:' + 'd'.repeat(64))).toBe(true);
    expect(await datasets.isArtifactReferenced('sha256:' + 'e'.repeat(64))).toBe(false);
  });

  it('writes no row when storing the artifact fails (artifact first, row second)', async () => {
    const { datasets } = storage.repositories;
    const brokenRoot = join(scratch, 'not-a-directory');
    writeFileSync(brokenRoot, 'occupied');
    const store = new FileSystemArtifactStore(brokenRoot);
    const upload = async (): Promise<void> => {
      const ref = await store.put(new TextEncoder().encode('a,b,label\n1,2,0\n'));
      await datasets.create(storage.tenantA, dataset('uploaded', ref));
    };
    await expect(upload()).rejects.toThrow();
    expect(await datasets.getByName(storage.tenantA, 'uploaded')).toBeUndefined();
    expect(await datasets.list(storage.tenantA)).toEqual([]);
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import type { NewModelVersion } from '../../src/storage/repositories/models.ts';
import { openTestStorage, type TestStorage } from './helpers.ts';

const upload = (onnxRef = 'sha256:' + 'a'.repeat(64)): NewModelVersion => ({
  source: 'upload',
  onnxRef,
  signature: { inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 4] }] },
});

let storage: TestStorage;
beforeEach(async () => {
  storage = await openTestStorage();
});
afterEach(async () => {
  await storage.database.close();
});

describe('ModelRepository: models', () => {
  it('hides one tenant’s model from another by id and by name', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris', description: 'flowers' });
    expect(await models.get(storage.tenantA, model.id)).toMatchObject({ name: 'iris', description: 'flowers' });
    expect(await models.get(storage.tenantB, model.id)).toBeUndefined();
    expect(await models.getByName(storage.tenantB, 'iris')).toBeUndefined();
    expect(await models.list(storage.tenantB)).toEqual([]);
    expect(await models.delete(storage.tenantB, model.id)).toBeUndefined();
    expect(await models.get(storage.tenantA, model.id)).toBeDefined();
  });

  it('lets two tenants use the same model name but not one tenant twice', async () => {
    const { models } = storage.repositories;
    await models.create(storage.tenantA, { name: 'iris' });
    await models.create(storage.tenantB, { name: 'iris' });
    await expect(models.create(storage.tenantA, { name: 'iris' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('updates batching overrides and clears them with null', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    expect(model.batching).toBeUndefined();
    expect((await models.update(storage.tenantA, model.id, { batching: { maxBatchSize: 8 } }))?.batching).toEqual({
      maxBatchSize: 8,
    });
    expect((await models.update(storage.tenantA, model.id, { batching: null }))?.batching).toBeUndefined();
    expect(await models.update(storage.tenantB, model.id, { description: 'hijack' })).toBeUndefined();
    expect((await models.get(storage.tenantA, model.id))?.description).toBe('');
  });

  it('deletes a model with its versions and aliases', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.setAlias(storage.tenantA, model.id, 'production', 2);
    const removed = await models.delete(storage.tenantA, model.id);
    expect(removed?.map((version) => version.version)).toEqual([1, 2]);
    expect(await models.getByName(storage.tenantA, 'iris')).toBeUndefined();
    const again = await models.create(storage.tenantA, { name: 'iris' });
    expect((await models.addVersion(storage.tenantA, again.id, upload())).version).toBe(1);
  });
});

describe('ModelRepository: versions', () => {
  it('numbers versions 1, 2, 3 per model, independently across models', async () => {
    const { models } = storage.repositories;
    const iris = await models.create(storage.tenantA, { name: 'iris' });
    const mnist = await models.create(storage.tenantA, { name: 'mnist' });
    const numbers = [];
    for (let index = 0; index < 3; index += 1) numbers.push((await models.addVersion(storage.tenantA, iris.id, upload())).version);
    expect(numbers).toEqual([1, 2, 3]);
    expect((await models.addVersion(storage.tenantA, mnist.id, upload())).version).toBe(1);
    expect((await models.listVersions(storage.tenantA, iris.id)).map((version) => version.version)).toEqual([1, 2, 3]);
  });

  it('allocates distinct numbers to concurrent addVersion calls', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    const versions = await Promise.all(Array.from({ length: 10 }, () => models.addVersion(storage.tenantA, model.id, upload())));
    expect(versions.map((version) => version.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('keeps numbering after the highest even when a lower version was deleted', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.deleteVersion(storage.tenantA, model.id, 1);
    expect((await models.addVersion(storage.tenantA, model.id, upload())).version).toBe(3);
  });

  it('round-trips version fields', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    const created = await models.addVersion(storage.tenantA, model.id, {
      source: 'job',
      onnxRef: 'sha256:' + 'b'.repeat(64),
      savedModelRefs: { spec: 'sha256:' + 'c'.repeat(64) },
      signature: { inputs: [] },
      metrics: { accuracy: 0.97 },
      jobId: 'job_1',
    });
    expect(await models.getVersion(storage.tenantA, model.id, 1)).toEqual(created);
    expect(await models.getVersionById(storage.tenantA, created.id)).toEqual(created);
    expect(created).toMatchObject({ source: 'job', metrics: { accuracy: 0.97 }, jobId: 'job_1' });
  });

  it('refuses to add a version to another tenant’s model', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    await expect(models.addVersion(storage.tenantB, model.id, upload())).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    expect(await models.getVersionById(storage.tenantB, (await models.addVersion(storage.tenantA, model.id, upload())).id)).toBeUndefined();
    expect(await models.listVersions(storage.tenantB, model.id)).toEqual([]);
  });
});

describe('ModelRepository: aliases and resolve', () => {
  it('moves an alias atomically and resolves numbers, aliases and latest', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    for (let index = 0; index < 3; index += 1) await models.addVersion(storage.tenantA, model.id, upload());
    await models.setAlias(storage.tenantA, model.id, 'production', 1);
    storage.clock.advance(1000);
    const moved = await models.setAlias(storage.tenantA, model.id, 'production', 2);
    expect(moved).toMatchObject({ name: 'production', version: 2, updatedAt: '2025-01-01T00:00:01.001Z' });
    expect(await models.listAliases(storage.tenantA, model.id)).toHaveLength(1);

    const versionOf = async (selector?: string): Promise<number | undefined> =>
      (await models.resolve(storage.tenantA, 'iris', selector))?.version.version;
    expect(await versionOf('production')).toBe(2);
    expect(await versionOf('1')).toBe(1);
    expect(await versionOf('latest')).toBe(3);
    expect(await versionOf(undefined)).toBe(3);
    expect(await versionOf('7')).toBeUndefined();
    expect(await versionOf('staging')).toBeUndefined();
    expect(await models.resolve(storage.tenantA, 'nope')).toBeUndefined();
    expect(await models.resolve(storage.tenantB, 'iris', 'production')).toBeUndefined();
  });

  it('guards a version an alias points to, until the alias moves', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.setAlias(storage.tenantA, model.id, 'production', 1);

    const error = await models.deleteVersion(storage.tenantA, model.id, 1).catch((caught: unknown) => caught);
    expect(AiaasError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'ALIAS_IN_USE', status: 409, details: { aliases: ['production'] } });
    expect(await models.getVersion(storage.tenantA, model.id, 1)).toBeDefined();

    await models.setAlias(storage.tenantA, model.id, 'production', 2);
    expect((await models.deleteVersion(storage.tenantA, model.id, 1))?.version).toBe(1);
    expect(await models.getVersion(storage.tenantA, model.id, 1)).toBeUndefined();
    expect(await models.deleteVersion(storage.tenantA, model.id, 1)).toBeUndefined();
  });

  it('rejects alias names that would shadow version numbers or latest, and missing targets', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    await models.addVersion(storage.tenantA, model.id, upload());
    for (const bad of ['3', 'latest', '']) {
      await expect(models.setAlias(storage.tenantA, model.id, bad, 1)).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    }
    await expect(models.setAlias(storage.tenantA, model.id, 'prod', 9)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
    await expect(models.setAlias(storage.tenantB, model.id, 'prod', 1)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
  });

  it('deletes aliases tenant-scoped', async () => {
    const { models } = storage.repositories;
    const model = await models.create(storage.tenantA, { name: 'iris' });
    await models.addVersion(storage.tenantA, model.id, upload());
    await models.setAlias(storage.tenantA, model.id, 'prod', 1);
    expect(await models.deleteAlias(storage.tenantB, model.id, 'prod')).toBe(false);
    expect(await models.deleteAlias(storage.tenantA, model.id, 'prod')).toBe(true);
    expect(await models.getAlias(storage.tenantA, model.id, 'prod')).toBeUndefined();
  });
});

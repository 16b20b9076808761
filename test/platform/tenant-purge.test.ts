import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { purgeTenantContent } from '../../src/platform/tenant-purge.ts';
import { createRepositories, FileSystemArtifactStore, openDatabase } from '../../src/storage/index.ts';
import { textCipherFor } from '../storage/helpers.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('purgeTenantContent', () => {
  it('removes the tenant\'s artifact files, rows and plaintext directory, but keeps a file another tenant points to', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-purge-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const database = await openDatabase({ path: join(dataDir, 'aiaas.db') });
    cleanups.push(() => database.close());
    const repositories = createRepositories(database.db, { textCipher: textCipherFor(database.db) });
    const artifacts = await FileSystemArtifactStore.open(join(dataDir, 'artifacts'));
    const doomed = await repositories.tenants.create({ name: 'doomed' });
    const other = await repositories.tenants.create({ name: 'other' });
    const own = await artifacts.put(Buffer.from('only the doomed tenant'));
    const labels = await artifacts.put(Buffer.from('doomed labels'));
    const shared = await artifacts.put(Buffer.from('both tenants point here'));
    const dataset = (name: string, artifactRef: string, labelsArtifactRef: string | null = null) => ({
      name,
      format: 'csv' as const,
      artifactRef,
      labelsArtifactRef,
      schema: {},
      rowCount: 1,
      bytes: 1,
    });
    await repositories.datasets.create(doomed.id, dataset('a', own, labels));
    await repositories.datasets.create(doomed.id, dataset('b', shared));
    await repositories.datasets.create(other.id, dataset('c', shared));
    await mkdir(join(dataDir, 'plain', doomed.id, 'v1'), { recursive: true });
    await writeFile(join(dataDir, 'plain', doomed.id, 'v1', 'model.onnx'), 'plaintext');
    let scrubbed = 0;

    const report = await purgeTenantContent(doomed.id, { repositories, artifacts, dataDir, scrubDatabase: async () => void (scrubbed += 1) });
    expect(report).toEqual({ artifactsDeleted: 2, artifactsKept: 1 });
    expect(await artifacts.has(own as `sha256:${string}`)).toBe(false);
    expect(await artifacts.has(labels as `sha256:${string}`)).toBe(false);
    expect(await artifacts.has(shared as `sha256:${string}`)).toBe(true);
    expect((await repositories.tenantContent.artifactRefs(doomed.id))).toEqual([]);
    expect(await repositories.tenantContent.artifactRefs(other.id)).toEqual([shared]);
    await expect(stat(join(dataDir, 'plain', doomed.id))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(scrubbed).toBe(1);
    // Absent plaintext directory and a second run are both fine.
    expect(await purgeTenantContent(doomed.id, { repositories, artifacts, dataDir, scrubDatabase: async () => undefined })).toEqual({ artifactsDeleted: 0, artifactsKept: 0 });
    await expect(purgeTenantContent('../etc', { repositories, artifacts, dataDir, scrubDatabase: async () => undefined })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });
});

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDataDirectory, restoreDataDirectory, wrappedServerSecretName } from '../../src/startup/backups.ts';
import { MasterKeyRing } from '../../src/security/key-ring.ts';
import { manifestFileName, partialSuffix, verifyBackup, type BackupManifest } from '../../src/storage/backup/index.ts';
import { sealManifest, manifestText } from '../../src/storage/backup/manifest.ts';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

let server: TestServer;
let scratch: string;
let ring: MasterKeyRing;
let datasetId: string;

async function filesBelow(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(root, join(entry.parentPath, entry.name))).sort();
}

/** A fresh backup of the live server's data directory, with the server's own online snapshot. */
async function backup(name: string): Promise<string> {
  const out = join(scratch, name);
  await backupDataDirectory(server.config, ring, out, { snapshotDatabase: (destination) => server.context.database.backupTo(destination) });
  return out;
}

async function readManifest(dir: string): Promise<BackupManifest> {
  return JSON.parse(await readFile(join(dir, manifestFileName), 'utf8')) as BackupManifest;
}

/** Rewrites the manifest with a correct checksum, so only the check under test can catch the change. */
async function rewriteManifest(dir: string, change: (manifest: BackupManifest) => void): Promise<void> {
  const manifest = await readManifest(dir);
  change(manifest);
  const { checksum: _checksum, ...body } = manifest;
  await writeFile(join(dir, manifestFileName), manifestText(sealManifest(body)));
}

beforeAll(async () => {
  server = await startTestServer();
  scratch = await mkdtemp(join(tmpdir(), 'aiaas-backup-'));
  ring = server.context.keys.ring;
  const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' });
  expect(dataset.statusCode).toBe(201);
  datasetId = dataset.json().dataset.id;
  expect((await uploadOnnxModel(server, server.adminKey, 'blobs', classifierModel().exportOnnx())).statusCode).toBe(201);
  // Things a backup must leave out, planted where later work puts them.
  await writeFile(join(server.dataDir, 'keystore.db'), 'WRAPPED-DATA-KEYS');
  await writeFile(join(server.dataDir, 'keystore.db-wal'), 'WRAPPED-DATA-KEYS');
  await mkdir(join(server.dataDir, 'plain', 'tenant', 'version'), { recursive: true });
  await writeFile(join(server.dataDir, 'plain', 'tenant', 'version', 'model.onnx'), 'PLAINTEXT-MODEL');
  await writeFile(join(server.dataDir, 'insecure-dev-master-key'), 'MASTER');
});

afterAll(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('backupDataDirectory', () => {
  it('writes the database, the artifacts, the wrapped server secret and signing key and a manifest, and nothing else', async () => {
    const out = await backup('complete');
    const files = await filesBelow(out);
    const artifacts = files.filter((file) => file.startsWith('artifacts/'));
    expect(artifacts).toHaveLength(2);
    expect(files).toEqual(['aiaas.db', ...artifacts, manifestFileName, wrappedServerSecretName, 'signing-key'].sort());
    // Copied as stored: wrapped under the master key, never in clear.
    expect(JSON.parse(await readFile(join(out, 'signing-key'), 'utf8'))).toMatchObject({ format: 'aiaas-wrapped-secret', purpose: 'provenance signing key' });
    expect((await stat(out)).mode & 0o777).toBe(0o700);

    const manifest = await readManifest(out);
    expect(manifest.files.map((file) => file.path)).toEqual(files.filter((file) => file !== manifestFileName));
    expect(manifest.counts).toMatchObject({ tenants: 1, artifacts: 2 });
    expect(manifest.metadata).toEqual({ serverSecret: 'wrapped', masterKeyVersion: 1, signingKey: true });
    // Artifacts are copied byte for byte: their names are the SHA-256 of the bytes.
    for (const path of artifacts) {
      const copy = await readFile(join(out, path));
      expect(Buffer.compare(copy, await readFile(join(server.dataDir, path)))).toBe(0);
      expect(manifest.files.find((file) => file.path === path)?.sha256).toBe(path.split('/').at(-1));
    }

    const secret = (await readFile(join(server.dataDir, 'server-secret'), 'utf8')).trim();
    for (const file of files) {
      const bytes = await readFile(join(out, file));
      expect(bytes.includes(Buffer.from(secret)), `${file} holds the server secret in clear`).toBe(false);
      for (const needle of ['WRAPPED-DATA-KEYS', 'PLAINTEXT-MODEL', 'MASTER']) expect(bytes.includes(Buffer.from(needle)), `${file} holds ${needle}`).toBe(false);
    }

    // The database copy is self-contained (no WAL) and holds the live rows.
    const copy = new BetterSqlite3(join(out, 'aiaas.db'), { readonly: true });
    expect(copy.pragma('journal_mode', { simple: true })).toBe('delete');
    expect((copy.prepare('SELECT id FROM datasets').all() as { id: string }[]).map((row) => row.id)).toEqual([datasetId]);
    copy.close();
    expect(await verifyBackup(out)).toMatchObject({ ok: true, problems: [], checkedFiles: files.length - 1 });
  });

  it('refuses to write into an existing directory', async () => {
    const out = join(scratch, 'existing');
    await mkdir(out);
    await expect(backupDataDirectory(server.config, ring, out)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
  });

  it('takes the snapshot again when an artifact it references is deleted before it is copied', async () => {
    let snapshots = 0;
    const out = join(scratch, 'raced');
    await backupDataDirectory(server.config, ring, out, {
      snapshotDatabase: async (destination) => {
        snapshots += 1;
        if (snapshots > 1) return server.context.database.backupTo(destination);
        // Uploaded after the bulk copy, so only the snapshot knows it; deleted (row, then file)
        // before its file is copied.
        const late = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=late', irisLikeCsv(), { 'content-type': 'text/csv' });
        expect(late.statusCode).toBe(201);
        await server.context.database.backupTo(destination);
        expect((await call(server.app, server.adminKey, 'DELETE', `/api/v1/datasets/${late.json().dataset.id}`)).statusCode).toBe(204);
      },
    });
    expect(snapshots).toBe(2);
    const result = await verifyBackup(out);
    expect(result.problems).toEqual([]);
    const copy = new BetterSqlite3(join(out, 'aiaas.db'), { readonly: true });
    expect((copy.prepare('SELECT id FROM datasets').all() as { id: string }[]).map((row) => row.id)).toEqual([datasetId]);
    copy.close();
    expect(result.manifest?.counts.artifacts).toBe(2);
  });
});

describe('verifyBackup', () => {
  it('rejects a backup without its manifest, or one still named *.partial', async () => {
    const out = await backup('no-manifest');
    await unlink(join(out, manifestFileName));
    expect((await verifyBackup(out)).problems).toEqual([`${manifestFileName} is missing: the backup never completed`]);

    const partial = await backup('renamed');
    await rename(partial, `${partial}${partialSuffix}`);
    const result = await verifyBackup(`${partial}${partialSuffix}`);
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toMatch(/interrupted backup/);
  });

  it('rejects a torn or edited manifest', async () => {
    const out = await backup('torn');
    const text = await readFile(join(out, manifestFileName), 'utf8');
    await writeFile(join(out, manifestFileName), text.slice(0, text.length / 2));
    expect((await verifyBackup(out)).problems[0]).toMatch(/not valid JSON/);
    await writeFile(join(out, manifestFileName), text.replace(/"tenants": 1/, '"tenants": 2'));
    expect((await verifyBackup(out)).problems).toEqual([`${manifestFileName} does not match its own checksum: it was altered or written incompletely`]);
  });

  it('names an altered, a truncated, a missing and an unlisted file', async () => {
    const out = await backup('damaged');
    const manifest = await readManifest(out);
    const [first, second] = manifest.files.filter((file) => file.path.startsWith('artifacts/'));
    const firstBytes = await readFile(join(out, first!.path));
    firstBytes[100] ^= 1;
    await writeFile(join(out, first!.path), firstBytes);
    await writeFile(join(out, wrappedServerSecretName), (await readFile(join(out, wrappedServerSecretName))).subarray(0, 10));
    await unlink(join(out, second!.path));
    await writeFile(join(out, 'stray.txt'), 'x');
    const result = await verifyBackup(out);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual(
      expect.arrayContaining([
        `${first!.path} does not match its SHA-256 in the manifest: it was altered`,
        expect.stringMatching(new RegExp(`^${wrappedServerSecretName} has 10 bytes; the manifest says \\d+$`)),
        `${second!.path} is missing`,
        'stray.txt is in the backup directory but not in the manifest',
      ]),
    );
  });

  it('finds an artifact the database references but the manifest left out', async () => {
    const out = await backup('incomplete');
    const manifest = await readManifest(out);
    const dropped = manifest.files.find((file) => file.path.startsWith('artifacts/'))!;
    await unlink(join(out, dropped.path));
    await rewriteManifest(out, (body) => {
      body.files = body.files.filter((file) => file.path !== dropped.path);
    });
    const result = await verifyBackup(out);
    expect(result.problems).toEqual([expect.stringMatching(new RegExp(`^the database references sha256:${dropped.sha256} \\((datasets|model_versions)\\.\\w+ of \\w+\\), which the backup does not hold$`))]);
  });

  it('runs PRAGMA integrity_check on the database copy', async () => {
    const out = await backup('corrupt-db');
    const path = join(out, 'aiaas.db');
    const bytes = await readFile(path);
    // Page 2 onwards holds b-tree pages; scribbling over one breaks the tree, not the header.
    bytes.fill(0x5a, 4096 + 8, 4096 * 2);
    await writeFile(path, bytes);
    await rewriteManifest(out, (body) => {
      const entry = body.files.find((file) => file.path === 'aiaas.db')!;
      entry.sha256 = createHashHex(bytes);
    });
    const result = await verifyBackup(out);
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/aiaas\.db (fails PRAGMA integrity_check|cannot be opened as a SQLite database)/);
  });

  it('refuses manifest paths that leave the backup directory', async () => {
    const out = await backup('escape');
    await rewriteManifest(out, (body) => {
      body.files.push({ path: '../../etc/passwd', bytes: 1, sha256: '0'.repeat(64) });
    });
    expect((await verifyBackup(out)).problems).toEqual(['manifest lists the path "../../etc/passwd", which a backup never holds']);
  });
});

describe('restoreDataDirectory', () => {
  it('refuses a non-empty target and an incomplete backup, and restores into an empty directory', async () => {
    const out = await backup('to-restore');
    const occupied = join(scratch, 'occupied');
    await mkdir(occupied);
    await writeFile(join(occupied, 'aiaas.db'), 'live data');
    await expect(restoreDataDirectory(out, occupied, ring)).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    expect(await readFile(join(occupied, 'aiaas.db'), 'utf8')).toBe('live data');

    const broken = await backup('broken');
    await unlink(join(broken, manifestFileName));
    await expect(restoreDataDirectory(broken, join(scratch, 'never'), ring)).rejects.toMatchObject({ code: 'BACKUP_INVALID' });
    await expect(stat(join(scratch, 'never'))).rejects.toMatchObject({ code: 'ENOENT' });

    const empty = join(scratch, 'empty');
    await mkdir(empty);
    const restored = await restoreDataDirectory(out, empty, ring);
    expect(restored).toMatchObject({ dataDir: empty, artifacts: 2, serverSecret: 'wrapped' });
    const files = await filesBelow(empty);
    expect(files.filter((file) => !file.startsWith('artifacts/'))).toEqual(['aiaas.db', 'server-secret', 'signing-key']);
    expect(await readFile(join(empty, 'signing-key'), 'utf8')).toBe(await readFile(join(server.dataDir, 'signing-key'), 'utf8'));
    expect(await readFile(join(empty, 'server-secret'), 'utf8')).toBe(await readFile(join(server.dataDir, 'server-secret'), 'utf8'));
    expect((await stat(join(empty, 'server-secret'))).mode & 0o777).toBe(0o600);
    expect((await stat(empty)).mode & 0o777).toBe(0o700);
  });

  it('needs the master key version the server secret was wrapped under', async () => {
    const out = await backup('other-key');
    const otherRing = new MasterKeyRing([{ version: 1, key: Buffer.alloc(32, 7) }]);
    await expect(restoreDataDirectory(out, join(scratch, 'wrong-key'), otherRing)).rejects.toMatchObject({ code: 'DATA_KEY_UNWRAP_FAILED' });
    await expect(stat(join(scratch, 'wrong-key'))).rejects.toMatchObject({ code: 'ENOENT' });
    const later = new MasterKeyRing([{ version: 2, key: Buffer.alloc(32, 7) }]);
    await expect(restoreDataDirectory(out, join(scratch, 'retired-key'), later)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    // A rotated ring that still holds version 1 restores it.
    const restored = await restoreDataDirectory(out, join(scratch, 'rotated'), ring.withNewKey());
    expect(restored.serverSecret).toBe('wrapped');
  });
});

function createHashHex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('FileSystemArtifactStore.holdDeletes', () => {
  it('defers deletes until the last hold is released', async () => {
    const store = server.context.artifactStore;
    const ref = await store.put(Buffer.from('superseded checkpoint'));
    const first = store.holdDeletes();
    const second = store.holdDeletes();
    await store.delete(ref);
    expect(await store.has(ref)).toBe(true);
    await first();
    expect(await store.has(ref)).toBe(true);
    await second();
    expect(await store.has(ref)).toBe(false);
  });
});

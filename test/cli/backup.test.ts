import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';
import { captureIo } from './helpers.ts';

let server: TestServer;
let scratch: string;
let backupDir: string;
let url: string;
let env: NodeJS.ProcessEnv;

async function run(argv: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const io = captureIo({ env: { ...env, ...extraEnv }, cwd: scratch });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

/** The artifact files of a data directory, as `ab/cd/<hex>` paths. */
async function artifactPaths(dataDir: string): Promise<string[]> {
  const entries = await readdir(join(dataDir, 'artifacts'), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile() && /^[0-9a-f]{64}$/.test(entry.name)).map((entry) => join(entry.parentPath, entry.name)).sort();
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'aiaas-cli-backup-'));
  backupDir = join(scratch, 'server-backups');
  server = await startTestServer({ backupDir });
  env = { AIAAS_MASTER_KEY: server.config.masterKey };
  expect((await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' })).statusCode).toBe(201);
  expect((await uploadOnnxModel(server, server.adminKey, 'blobs', classifierModel().exportOnnx())).statusCode).toBe(201);
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('aiaas backup', () => {
  it('creates, verifies, lists and restores a backup of a live data directory', async () => {
    const created = await run(['backup', 'create', '--out', 'nightly', '--data-dir', server.dataDir]);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/^backup written to .*nightly: 1 tenants, 2 artifacts, /);
    expect(created.err).toContain('database snapshot taken');

    const verified = await run(['backup', 'verify', 'nightly']);
    expect(verified.code, verified.err).toBe(0);
    // database, two artifacts, the wrapped server secret and the wrapped provenance signing key
    expect(verified.out).toMatch(/^backup intact: 5 files verified \(1 tenants, 2 artifacts/);

    const listed = await run(['backup', 'list', '--dir', '.', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.out)).toEqual([expect.objectContaining({ name: 'nightly', state: 'complete', tenants: 1, artifacts: 2 })]);

    const restored = await run(['backup', 'restore', 'nightly', '--data-dir', 'restored']);
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toMatch(/into .*restored: 1 tenants, 2 artifacts/);
    expect((await artifactPaths(join(scratch, 'restored'))).map((path) => path.split('/').at(-1))).toEqual(
      (await artifactPaths(server.dataDir)).map((path) => path.split('/').at(-1)),
    );
    const checked = await run(['admin', 'check', '--data-dir', 'restored']);
    expect(checked.code, checked.err).toBe(0);

    const again = await run(['backup', 'restore', 'nightly', '--data-dir', 'restored']);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^error TARGET_NOT_EMPTY: .*restored is not empty/);
  });

  it('reports every problem of a damaged backup and exits 1', async () => {
    expect((await run(['backup', 'create', '--out', 'damaged', '--data-dir', server.dataDir])).code).toBe(0);
    await unlink(join(scratch, 'damaged', 'manifest.json'));
    const result = await run(['backup', 'verify', 'damaged']);
    expect(result.code).toBe(1);
    expect(result.err).toContain('  problem: manifest.json is missing: the backup never completed\n');
    expect(result.err).toMatch(/error BACKUP_INVALID: .*damaged is not a complete, intact backup \(1 problem\)/);
    const restore = await run(['backup', 'restore', 'damaged', '--data-dir', 'from-damaged']);
    expect(restore.code).toBe(1);
    expect(restore.err).toMatch(/^error BACKUP_INVALID/);
  });

  it('asks the server to back itself up when no --out is given', async () => {
    const created = await run(['backup', 'create', '--server', url, '--api-key', server.adminKey]);
    expect(created.code, created.err).toBe(0);
    const name = /^backup (aiaas-backup-\S+) written by the server/.exec(created.out)?.[1];
    expect(name).toBeDefined();
    expect(await readdir(backupDir)).toEqual([name]);
    const listed = await run(['backup', 'list', '--server', url, '--api-key', server.adminKey]);
    expect(listed.out).toMatch(new RegExp(`^NAME +STATE +TAKEN +TENANTS +ARTIFACTS +SIZE\\n${name} +complete `));
  });

  it('needs --data-dir to restore', async () => {
    const result = await run(['backup', 'restore', 'nightly']);
    expect(result.code).toBe(2);
    expect(result.err).toContain('missing --data-dir');
  });
});

describe('aiaas admin check', () => {
  it('passes a sound live data directory, then names each problem after tampering', async () => {
    const sound = await run(['admin', 'check', '--data-dir', server.dataDir]);
    expect(sound.code, sound.err).toBe(0);
    expect(sound.out).toMatch(/is sound: 2 artifacts .* match their hashes, database integrity ok, audit chain intact \(\d+ entries\), no orphan or missing files/);

    const [first, second] = await artifactPaths(server.dataDir);
    const corrupted = await readFile(first!);
    corrupted[corrupted.length - 1] ^= 0xff;
    await writeFile(first!, corrupted);
    await unlink(second!);
    const orphanBytes = Buffer.from('left behind');
    const orphanHex = createHash('sha256').update(orphanBytes).digest('hex');
    const orphanPath = join(server.dataDir, 'artifacts', orphanHex.slice(0, 2), orphanHex.slice(2, 4), orphanHex);
    await mkdir(join(orphanPath, '..'), { recursive: true });
    await writeFile(orphanPath, orphanBytes);
    const old = new Date(Date.now() - 3600_000);
    await utimes(orphanPath, old, old);
    const freshHex = createHash('sha256').update('in flight').digest('hex');
    await mkdir(join(server.dataDir, 'artifacts', freshHex.slice(0, 2), freshHex.slice(2, 4)), { recursive: true });
    // Written just now and not referenced: an upload between its file and its row, not a problem.
    await writeFile(join(server.dataDir, 'artifacts', freshHex.slice(0, 2), freshHex.slice(2, 4), freshHex), 'in flight');
    await mkdir(join(server.dataDir, 'artifacts', 'zz'));
    const database = new BetterSqlite3(server.config.databasePath);
    database.prepare("UPDATE audit_log SET detail_json = '{}' WHERE seq = 2").run();
    database.close();

    const result = await run(['admin', 'check', '--data-dir', server.dataDir]);
    expect(result.code).toBe(1);
    const firstRef = `sha256:${first!.split('/').at(-1)}`;
    const secondRef = `sha256:${second!.split('/').at(-1)}`;
    const lines = result.err.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^  problem: artifact ${firstRef} is corrupt: its bytes hash to sha256:[0-9a-f]{64}$`)),
        expect.stringMatching(new RegExp(`^  problem: missing artifact ${secondRef}: referenced by (datasets|model_versions)\\.\\w+ of \\w+, not on disk$`)),
        `  problem: orphan artifact sha256:${orphanHex}: on disk, but no row references it`,
        '  problem: unexpected entry artifacts/zz: not written by the artifact store',
        expect.stringMatching(/^  problem: audit chain broken at position 2 \(seq 2\), altered: /),
        expect.stringMatching(new RegExp(`^  warning: artifact sha256:${freshHex} is not referenced yet \\(written \\d+ s ago: an upload in progress\\?\\)$`)),
      ]),
    );
    expect(lines.filter((line) => line.startsWith('  problem: '))).toHaveLength(5);
    expect(result.err).toMatch(/error DATA_DIR_CHECK_FAILED: .*: 5 problems found/);
  });
});

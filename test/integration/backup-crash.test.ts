import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backupDataDirectory } from '../../src/startup/backups.ts';
import { listBackups, partialSuffix, verifyBackup } from '../../src/storage/backup/index.ts';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

const root = new URL('../..', import.meta.url).pathname;
const children: ChildProcess[] = [];
let server: TestServer | undefined;
let scratch = '';

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await server?.close();
  if (scratch !== '') await rm(scratch, { recursive: true, force: true });
});

describe('a backup killed with SIGKILL', () => {
  it('leaves only a directory that verify rejects, and the next backup succeeds', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'aiaas-backup-crash-'));
    server = await startTestServer();
    for (const name of ['a', 'b', 'c']) {
      expect((await call(server.app, server.adminKey, 'POST', `/api/v1/datasets?name=${name}`, irisLikeCsv(), { 'content-type': 'text/csv' })).statusCode).toBe(201);
    }
    expect((await uploadOnnxModel(server, server.adminKey, 'blobs', classifierModel().exportOnnx())).statusCode).toBe(201);

    // A named pipe among the artifacts: the backup's read of it blocks until a writer appears, which
    // none ever does. That holds the child in the middle of its artifact copy for as long as this
    // test likes, so the kill lands mid-backup by construction, not by timing.
    const hex = '8'.repeat(64);
    const pipeDirectory = join(server.dataDir, 'artifacts', '88', '88');
    await mkdir(pipeDirectory, { recursive: true });
    execFileSync('mkfifo', [join(pipeDirectory, hex)]);

    const out = join(scratch, 'backups', 'crashed');
    const child = spawn(process.execPath, ['bin/aiaas.js', 'backup', 'create', '--out', out, '--data-dir', server.dataDir], {
      cwd: root,
      env: { ...process.env, AIAAS_MASTER_KEY: server.config.masterKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('copying 5 artifacts')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => reject(new Error(`backup exited (${code ?? signal}) before it was killed: ${output}`)));
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // Nothing under the final name; the leftover is rejected however it is named.
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    const leftover = `${out}${partialSuffix}`;
    // Killed while copying artifacts (the fifo blocks wherever it falls in the listing): at most
    // some artifacts, never a database copy or a manifest.
    expect((await readdir(leftover)).filter((entry) => entry !== 'artifacts')).toEqual([]);
    const asLeft = await verifyBackup(leftover);
    expect(asLeft.ok).toBe(false);
    expect(asLeft.problems).toEqual([expect.stringMatching(/is an interrupted backup/), 'manifest.json is missing: the backup never completed']);
    const renamed = join(scratch, 'renamed-by-hand');
    await cp(leftover, renamed, { recursive: true });
    expect((await verifyBackup(renamed)).problems).toEqual(['manifest.json is missing: the backup never completed']);
    expect(await listBackups(join(scratch, 'backups'))).toEqual([expect.objectContaining({ name: `crashed${partialSuffix}`, state: 'incomplete' })]);

    // Once the pipe is gone, a backup into the same place replaces the leftover and completes.
    await rm(join(pipeDirectory, hex));
    await backupDataDirectory(server.config, server.context.keys.ring, out);
    await expect(stat(leftover)).rejects.toMatchObject({ code: 'ENOENT' });
    const complete = await verifyBackup(out);
    expect(complete.problems).toEqual([]);
    expect(complete.manifest?.counts.artifacts).toBe(4);
  });
});

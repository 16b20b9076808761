import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/storage/database.ts';
import { createRepositories } from '../../src/storage/repositories/index.ts';
import { contend, type ContendResult } from './fixtures/contend.ts';
import { textCipherFor } from './helpers.ts';

const scratch = mkdtempSync(join(tmpdir(), 'aiaas-shared-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/*
 * A real second process, not a second connection in this one: better-sqlite3
 * blocks the thread while it waits for a lock, so two connections in one thread
 * deadlock until busy_timeout whenever a transaction spans an await. Hence the
 * rule: one Database per process.
 */
describe('two processes on one database file', () => {
  it('never hand the same job to two workers and never reuse a version number', async () => {
    const path = join(scratch, 'shared.sqlite');
    const database = await openDatabase({ path });
    try {
      const repositories = createRepositories(database.db, { textCipher: textCipherFor(database.db) });
      const tenant = await repositories.tenants.create({ name: 'acme' });
      const model = await repositories.models.create(tenant.id, { name: 'iris' });
      for (let index = 0; index < 16; index += 1) {
        await repositories.jobs.create(tenant.id, { modelName: `m${index}`, spec: {}, settings: {}, datasetId: 'ds', totalEpochs: 1 });
      }
      const rounds = 10;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'contender.ts'), path, tenant.id, model.id, 'child', String(rounds)],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      // The child opens its database first; give it a moment, then start both sides together.
      await new Promise((resolve) => setTimeout(resolve, 50));
      child.stdin.end('go\n');
      const mine = await contend(repositories, { tenantId: tenant.id, modelId: model.id, owner: 'parent', rounds });
      expect(await exited).toBe(0);
      const theirs = JSON.parse(stdout) as ContendResult;

      const claimed = [...mine.claimed, ...theirs.claimed];
      expect(claimed).toHaveLength(16);
      expect(new Set(claimed).size).toBe(16);
      const versions = [...mine.versions, ...theirs.versions].sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 2 * rounds }, (_, index) => index + 1));
    } finally {
      await database.close();
    }
  });
});

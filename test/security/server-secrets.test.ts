import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateMasterKey, MasterKeyRing } from '../../src/security/key-ring.ts';
import { unwrapServerSecrets, wrapServerSecrets } from '../../src/security/server-secrets.ts';

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

async function directory(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'aiaas-secrets-'));
  directories.push(path);
  return path;
}

describe('server secrets wrapped for backups', () => {
  it('round-trips server-secret under the master key, holds no plaintext, and never overwrites', async () => {
    const source = await directory();
    const secret = 'server-secret-value-0123456789abcdefghijklmnop';
    await writeFile(join(source, 'server-secret'), `${secret}\n`, { mode: 0o600 });
    await writeFile(join(source, 'insecure-dev-master-key'), 'must never travel');
    const ring = MasterKeyRing.parse(generateMasterKey()).withNewKey();

    const wrapped = await wrapServerSecrets(ring, source);
    expect(wrapped).toMatchObject({ format: 'aiaas-server-secrets-1', masterKeyVersion: 2 });
    expect(wrapped.secrets.map((entry) => entry.name)).toEqual(['server-secret']);
    expect(JSON.stringify(wrapped)).not.toContain(secret);
    expect(Buffer.from(wrapped.secrets[0]!.sealed, 'base64').includes(Buffer.from(secret))).toBe(false);

    const target = await directory();
    expect(await unwrapServerSecrets(ring, JSON.parse(JSON.stringify(wrapped)), target)).toEqual(['server-secret']);
    expect(await readFile(join(target, 'server-secret'), 'utf8')).toBe(`${secret}\n`);
    expect((await stat(join(target, 'server-secret'))).mode & 0o777).toBe(0o600);
    await expect(unwrapServerSecrets(ring, wrapped, target)).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('refuses a wrong master key or an altered secret without writing anything', async () => {
    const source = await directory();
    await writeFile(join(source, 'server-secret'), 'x'.repeat(44));
    const ring = MasterKeyRing.parse(generateMasterKey());
    const wrapped = await wrapServerSecrets(ring, source);
    const target = await directory();
    await expect(unwrapServerSecrets(MasterKeyRing.parse(generateMasterKey()), wrapped, target)).rejects.toMatchObject({ code: 'MASTER_KEY_MISMATCH' });
    const sealed = Buffer.from(wrapped.secrets[0]!.sealed, 'base64');
    sealed[20] = sealed[20]! ^ 1;
    const altered = { ...wrapped, secrets: [{ name: 'server-secret', sealed: sealed.toString('base64') }] };
    await expect(unwrapServerSecrets(ring, altered, target)).rejects.toMatchObject({ code: 'MASTER_KEY_MISMATCH' });
    await expect(stat(join(target, 'server-secret'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config.ts';
import { generateMasterKey, MasterKeyRing } from '../../src/security/key-ring.ts';
import { keyCheckValue } from '../../src/security/key-check.ts';
import { rotateMasterKey } from '../../src/startup/admin.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { KeyStoreDatabase } from '../../src/storage/index.ts';
import { captureIo } from '../cli/helpers.ts';

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

async function dataDir(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'aiaas-key-check-'));
  directories.push(directory);
  return directory;
}

function configFor(directory: string, masterKey: string) {
  return loadConfig({ flags: { dataDir: directory, masterKey, logLevel: 'silent', warmup: false }, env: {} });
}

/** Starts a context, stores a data key for a new tenant, and stops. Returns the tenant id. */
async function withOneTenant(directory: string, masterKey: string, name = 'acme'): Promise<string> {
  const context = await createServerContext(configFor(directory, masterKey), { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  try {
    const { tenant } = await context.access.createTenant(name);
    await context.artifacts.put(tenant.id, Buffer.from('some tenant bytes'));
    return tenant.id;
  } finally {
    await context.close();
  }
}

function keyStoreRows(directory: string) {
  const keyStore = KeyStoreDatabase.open({ path: join(directory, 'keystore.db') });
  try {
    return { keys: keyStore.listAll(), checks: keyStore.listChecks() };
  } finally {
    keyStore.close();
  }
}

describe('a wrong master key refuses to start', () => {
  it('records a key-check value on first start and refuses another key before wrapping anything', async () => {
    const directory = await dataDir();
    const right = generateMasterKey();
    await withOneTenant(directory, right);
    const before = keyStoreRows(directory);
    expect(before.checks).toEqual([{ masterKeyVersion: 1, checkValue: keyCheckValue(MasterKeyRing.parse(right).current) }]);

    const start = createServerContext(configFor(directory, generateMasterKey()), { logger: pino({ level: 'silent' }) });
    await expect(start).rejects.toMatchObject({ code: 'MASTER_KEY_MISMATCH' });
    await expect(start).rejects.toThrow(/--master-key \(AIAAS_MASTER_KEY\)/);
    // Nothing was wrapped under the wrong key, and the directory is free again.
    expect(keyStoreRows(directory)).toEqual(before);
    await withOneTenant(directory, right, 'second');
  });

  it('proves an older data dir (no check value yet) by unwrapping one of its data keys', async () => {
    const directory = await dataDir();
    const right = generateMasterKey();
    const tenantId = await withOneTenant(directory, right);
    // What an older data dir looks like: data keys, no check values.
    const BetterSqlite3 = (await import('better-sqlite3')).default;
    const raw = new BetterSqlite3(join(directory, 'keystore.db'));
    raw.exec('DELETE FROM key_checks');
    raw.close();

    await expect(createServerContext(configFor(directory, generateMasterKey()), { logger: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'MASTER_KEY_MISMATCH',
    });
    expect(keyStoreRows(directory).checks).toEqual([]);
    const context = await createServerContext(configFor(directory, right), { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
    try {
      expect(await context.keys.dataKeyFor(tenantId)).toHaveLength(32);
      expect(context.keyStore.listChecks()).toHaveLength(1);
    } finally {
      await context.close();
    }
  });

  it('aiaas serve exits non-zero naming the setting; rotation keeps the check values in step', async () => {
    const directory = await dataDir();
    const right = generateMasterKey();
    await withOneTenant(directory, right);
    const io = captureIo({ env: { AIAAS_MASTER_KEY: generateMasterKey(), AIAAS_LOG_LEVEL: 'silent' } });
    expect(await main(['serve', '--port', '0', '--data-dir', directory], io)).not.toBe(0);
    expect(io.err()).toMatch(/MASTER_KEY_MISMATCH/);
    expect(io.err()).toMatch(/AIAAS_MASTER_KEY/);

    const rotated = MasterKeyRing.parse(right).withNewKey();
    // A rotation from a wrong old key is refused as well.
    await expect(rotateMasterKey(configFor(directory, right), MasterKeyRing.parse(generateMasterKey()).withNewKey())).rejects.toMatchObject({
      code: 'MASTER_KEY_MISMATCH',
    });
    expect((await rotateMasterKey(configFor(directory, right), rotated)).rewrapped).toBe(1);
    expect(keyStoreRows(directory).checks.map((check) => check.masterKeyVersion)).toEqual([1, 2]);
    const onlyNew = rotated.without(1);
    const context = await createServerContext(configFor(directory, onlyNew.serialize()), { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
    await context.close();
    // Version 2 replaced by another key: refused, even though version 1 is gone from the ring.
    const wrongNew = new MasterKeyRing([{ version: 2, key: MasterKeyRing.parse(generateMasterKey()).current.key }]);
    await expect(createServerContext(configFor(directory, wrongNew.serialize()), { logger: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'MASTER_KEY_MISMATCH',
    });
  });
});

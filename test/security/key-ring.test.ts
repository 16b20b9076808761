import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { generateMasterKey, loadMasterKeyRing, MasterKeyRing } from '../../src/security/key-ring.ts';

function configFailure(action: () => unknown): AiaasError {
  try {
    action();
  } catch (error) {
    if (AiaasError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

describe('MasterKeyRing', () => {
  const one = generateMasterKey();
  const two = generateMasterKey();

  it('parses a single key as version 1', () => {
    const ring = MasterKeyRing.parse(`  ${one}\n`);
    expect(ring.versions).toEqual([1]);
    expect(ring.current.version).toBe(1);
    expect(ring.current.key.equals(Buffer.from(one, 'base64'))).toBe(true);
  });

  it('parses a versioned list; the highest version is current', () => {
    const ring = MasterKeyRing.parse(`2:${two}, 1:${one}`);
    expect(ring.versions).toEqual([1, 2]);
    expect(ring.current.version).toBe(2);
    expect(ring.get(1)!.key.equals(Buffer.from(one, 'base64'))).toBe(true);
    expect(MasterKeyRing.parse(ring.serialize()).serialize()).toBe(ring.serialize());
  });

  it('parses JSON forms', () => {
    expect(MasterKeyRing.parse(JSON.stringify({ keys: [{ version: 1, key: one }, { version: 3, key: two }] })).versions).toEqual([1, 3]);
    expect(MasterKeyRing.parse(JSON.stringify({ 1: one, 2: two })).current.version).toBe(2);
  });

  it('rejects bad keys with CONFIG_INVALID explaining how to make one', () => {
    const short = randomBytes(16).toString('base64');
    for (const text of ['', 'not base64 !!!', short, `1:${one},1:${two}`, `0:${one}`, `x:${one}`, '{"keys": 3}', '{broken']) {
      const error = configFailure(() => MasterKeyRing.parse(text));
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain('gen-master-key');
      expect(error.message).toContain("randomBytes(32).toString('base64')");
    }
  });

  it('never prints key material', () => {
    const ring = MasterKeyRing.parse(`1:${one},2:${two}`);
    expect(inspect(ring)).not.toContain(one);
    expect(JSON.stringify(ring)).not.toContain(two);
    expect(configFailure(() => MasterKeyRing.parse(`1:${one},1:${one}`)).message).not.toContain(one);
  });

  it('adds and retires versions, never the current one', () => {
    const ring = MasterKeyRing.parse(one).withNewKey();
    expect(ring.versions).toEqual([1, 2]);
    expect(ring.without(1).versions).toEqual([2]);
    expect(configFailure(() => ring.without(2)).code).toBe('CONFIG_INVALID');
  });
});

describe('loadMasterKeyRing', () => {
  const key = generateMasterKey();

  it('reads AIAAS_MASTER_KEY or a key file', () => {
    expect(loadMasterKeyRing({ masterKey: key }).current.version).toBe(1);
    const files: Record<string, string> = { '/etc/aiaas/master.key': `1:${key}\n2:${generateMasterKey()}\n` };
    const ring = loadMasterKeyRing({ masterKeyFile: '/etc/aiaas/master.key' }, (path) => {
      const text = files[path];
      if (text === undefined) throw new Error('ENOENT');
      return text;
    });
    expect(ring.versions).toEqual([1, 2]);
  });

  it('explains how to create a key when none is configured or the file is missing', () => {
    const missing = configFailure(() => loadMasterKeyRing({}));
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toContain('AIAAS_MASTER_KEY');
    expect(missing.message).toContain('aiaas admin gen-master-key');
    const unreadable = configFailure(() =>
      loadMasterKeyRing({ masterKeyFile: '/nope' }, () => {
        throw new Error('ENOENT');
      }),
    );
    expect(unreadable.message).toContain('/nope');
    expect(configFailure(() => loadMasterKeyRing({ masterKey: key, masterKeyFile: '/x' })).code).toBe('CONFIG_INVALID');
  });
});

import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { EncryptedArtifactStore } from '../../src/security/encrypted-artifact-store.ts';
import { generateDataKey, unwrapDataKey, wrapDataKey } from '../../src/security/envelope.ts';
import { MasterKeyRing, generateMasterKey } from '../../src/security/key-ring.ts';
import { InMemoryDataKeyStore, TenantKeyService } from '../../src/security/tenant-keys.ts';
import { InMemoryArtifactStore } from './in-memory-artifact-store.ts';

async function failureCode(action: () => unknown): Promise<string> {
  try {
    await action();
  } catch (error) {
    return AiaasError.isInstance(error) ? error.code : `not an AiaasError: ${String(error)}`;
  }
  return 'no error';
}

function setup(ring = MasterKeyRing.parse(generateMasterKey())) {
  const keyStore = new InMemoryDataKeyStore();
  const keys = new TenantKeyService({ store: keyStore, ring });
  const bytes = new InMemoryArtifactStore();
  const artifacts = new EncryptedArtifactStore({ store: bytes, keys });
  return { keyStore, keys, bytes, artifacts };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

const payload = new TextEncoder().encode('model weights: the quick brown fox jumps over the lazy dog '.repeat(20));

describe('data key wrapping', () => {
  it('round-trips and records the master version', () => {
    const ring = MasterKeyRing.parse(`3:${generateMasterKey()}`);
    const dataKey = generateDataKey();
    const wrapped = wrapDataKey(ring, 'tenant-a', dataKey);
    expect(wrapped.masterKeyVersion).toBe(3);
    expect(Buffer.from(wrapped.wrappedKey, 'base64').includes(dataKey)).toBe(false);
    expect(unwrapDataKey(ring, 'tenant-a', wrapped).equals(dataKey)).toBe(true);
  });

  it('fails with the wrong master key, another tenant id, a tampered blob or a missing version', async () => {
    const ring = MasterKeyRing.parse(generateMasterKey());
    const wrapped = wrapDataKey(ring, 'tenant-a', generateDataKey());
    const impostor = MasterKeyRing.parse(generateMasterKey());
    expect(await failureCode(() => unwrapDataKey(impostor, 'tenant-a', wrapped))).toBe('DATA_KEY_UNWRAP_FAILED');
    expect(await failureCode(() => unwrapDataKey(ring, 'tenant-b', wrapped))).toBe('DATA_KEY_UNWRAP_FAILED');
    const blob = Buffer.from(wrapped.wrappedKey, 'base64');
    blob[blob.length - 20]! ^= 1;
    expect(await failureCode(() => unwrapDataKey(ring, 'tenant-a', { ...wrapped, wrappedKey: blob.toString('base64') }))).toBe(
      'DATA_KEY_UNWRAP_FAILED',
    );
    const laterRing = MasterKeyRing.parse(`2:${generateMasterKey()}`);
    expect(await failureCode(() => unwrapDataKey(laterRing, 'tenant-a', wrapped))).toBe('CONFIG_INVALID');
  });
});

describe('TenantKeyService', () => {
  it('creates a key on first use, stores it wrapped, and reuses it', async () => {
    const { keys, keyStore } = setup();
    const [first, concurrent] = await Promise.all([keys.dataKeyFor('tenant-a'), keys.dataKeyFor('tenant-a')]);
    expect(first.equals(concurrent)).toBe(true);
    expect((await keys.dataKeyFor('tenant-a')).equals(first)).toBe(true);
    expect((await keys.dataKeyFor('tenant-b')).equals(first)).toBe(false);
    const stored = await keyStore.get('tenant-a');
    expect(stored?.state).toBe('active');
    // A second server (fresh cache) unwraps the same key from the store.
    const otherServer = new TenantKeyService({ store: keyStore, ring: keys.ring });
    expect((await otherServer.dataKeyFor('tenant-a')).equals(first)).toBe(true);
  });

  it('two servers creating the same tenant key at once agree on one key', async () => {
    const store = new InMemoryDataKeyStore();
    const ring = MasterKeyRing.parse(generateMasterKey());
    const servers = [new TenantKeyService({ store, ring }), new TenantKeyService({ store, ring })];
    const [a, b] = await Promise.all(servers.map((server) => server.dataKeyFor('tenant-new')));
    expect(a!.equals(b!)).toBe(true);
  });

  it('rotation re-wraps every key, keeps all data readable, and frees the old version', async () => {
    const ring = MasterKeyRing.parse(generateMasterKey());
    const { keys, keyStore, bytes, artifacts } = setup(ring);
    const refs = new Map<string, string>();
    for (const tenant of ['tenant-a', 'tenant-b', 'tenant-c']) refs.set(tenant, await artifacts.put(tenant, payload));
    const storedBefore = new Map(bytes.bytes);
    expect(await keys.retirableVersions()).toEqual([]);

    const rotated = ring.withNewKey();
    expect(await keys.retirableVersions()).toEqual([]);
    const report = await keys.rotateMasterKey(rotated);
    expect(report).toEqual({ currentVersion: 2, rewrapped: 3, alreadyCurrent: 0, skipped: 0 });
    for await (const key of keyStore.listAll()) expect(key.masterKeyVersion).toBe(2);
    expect(await keys.retirableVersions()).toEqual([1]);
    expect(bytes.bytes).toEqual(storedBefore); // data untouched

    // A server restarted with only the new master key reads everything.
    const restarted = new TenantKeyService({ store: keyStore, ring: rotated.without(1) });
    const restartedArtifacts = new EncryptedArtifactStore({ store: bytes, keys: restarted });
    for (const [tenant, ref] of refs) expect(sameBytes(await restartedArtifacts.get(tenant, ref), payload)).toBe(true);
    expect((await keys.rotateMasterKey(rotated)).alreadyCurrent).toBe(3);
  });

  it('after destroyTenantKey nothing of that tenant decrypts, other tenants are unaffected', async () => {
    const { keys, keyStore, bytes, artifacts } = setup();
    const refA = await artifacts.put('tenant-a', payload);
    const refB = await artifacts.put('tenant-b', payload);
    const keyA = await keys.dataKeyFor('tenant-a');
    await keys.destroyTenantKey('tenant-a');

    expect(keyA.every((byte) => byte === 0)).toBe(true); // the cached copy was zeroed
    expect(await failureCode(() => artifacts.get('tenant-a', refA))).toBe('KEY_DESTROYED');
    expect(await failureCode(() => artifacts.put('tenant-a', payload))).toBe('KEY_DESTROYED');
    const otherServer = new EncryptedArtifactStore({ store: bytes, keys: new TenantKeyService({ store: keyStore, ring: keys.ring }) });
    expect(await failureCode(() => otherServer.get('tenant-a', refA))).toBe('KEY_DESTROYED');
    expect(sameBytes(await artifacts.get('tenant-b', refB), payload)).toBe(true);
    // Rotation neither fails on nor resurrects the destroyed key.
    expect((await keys.rotateMasterKey(keys.ring.withNewKey())).rewrapped).toBe(1);
    expect((await keyStore.get('tenant-a'))?.state).toBe('destroyed');
  });
});

describe('EncryptedArtifactStore', () => {
  it('round-trips and stores only ciphertext in the agreed layout', async () => {
    const { bytes, artifacts } = setup();
    const ref = await artifacts.put('tenant-a', payload);
    expect(ref).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(sameBytes(await artifacts.get('tenant-a', ref), payload)).toBe(true);

    const stored = Buffer.from(bytes.bytes.get(ref)!);
    expect(stored.subarray(0, 4).toString('ascii')).toBe('AIAE');
    expect(stored[4]).toBe(1);
    expect(stored.length).toBe(4 + 1 + 12 + payload.length + 16);
    const text = stored.toString('latin1');
    for (const fragment of ['quick', 'brown fox', 'model weights', 'lazy dog']) expect(text).not.toContain(fragment);
    // Fresh nonce per put: the same plaintext is stored twice under different refs.
    expect(await artifacts.put('tenant-a', payload)).not.toBe(ref);
    expect(sameBytes(await artifacts.get('tenant-a', await artifacts.put('tenant-a', new Uint8Array())), new Uint8Array())).toBe(true);
  });

  it('detects any flipped byte, in header, nonce, body or tag', async () => {
    const { bytes, artifacts } = setup();
    const ref = await artifacts.put('tenant-a', payload);
    const original = bytes.bytes.get(ref)!;
    for (const offset of [0, 4, 5, 16, 17, 100, original.length - 17, original.length - 1]) {
      const tampered = Uint8Array.from(original);
      tampered[offset]! ^= 0x01;
      bytes.bytes.set(ref, tampered);
      expect(await failureCode(() => artifacts.get('tenant-a', ref)), `offset ${offset}`).toBe('ARTIFACT_CORRUPT');
    }
    bytes.bytes.set(ref, original.subarray(0, 20));
    expect(await failureCode(() => artifacts.get('tenant-a', ref))).toBe('ARTIFACT_CORRUPT');
  });

  it('finishes a read that was waiting on the store when the cached key is forgotten', async () => {
    const { keys, bytes, artifacts } = setup();
    const ref = await artifacts.put('tenant-a', payload);
    const storeGet = bytes.get.bind(bytes);
    bytes.get = async (wanted) => {
      keys.forget('tenant-a');
      return storeGet(wanted);
    };
    expect(sameBytes(await artifacts.get('tenant-a', ref), payload)).toBe(true);
  });

  it("refuses another tenant's artifact", async () => {
    const { artifacts } = setup();
    const ref = await artifacts.put('tenant-a', payload);
    expect(await failureCode(() => artifacts.get('tenant-b', ref))).toBe('ARTIFACT_CORRUPT');
  });
});

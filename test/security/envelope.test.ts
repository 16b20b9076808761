import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { EncryptedArtifactStore } from '../../src/security/encrypted-artifact-store.ts';
import { generateDataKey, unwrapDataKey, wrapDataKey } from '../../src/security/envelope.ts';
import { MasterKeyRing, generateMasterKey } from '../../src/security/key-ring.ts';
import { InMemoryDataKeyStore, TenantKeyService } from '../../src/security/tenant-keys.ts';
import { InMemoryArtifactStore } from './in-memory-artifact-store.ts';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { sealBytes } from '../../src/security/envelope.ts';

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
    // The stream format (stream-aead.ts): 48-byte header, one segment (ciphertext + 16-byte tag).
    expect(stored.subarray(0, 4).toString('ascii')).toBe('AIAS');
    expect(stored[4]).toBe(1);
    expect(stored.readUInt32BE(5)).toBe(64 * 1024);
    expect(stored.length).toBe(48 + payload.length + 16);
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
    for (const offset of [0, 4, 5, 16, 47, 48, 100, original.length - 17, original.length - 1]) {
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

describe('EncryptedArtifactStore streaming', () => {
  async function readAll(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }

  async function* chunksOf(bytes: Uint8Array, size: number) {
    for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.subarray(offset, offset + size);
  }

  it('puts a stream and reads it back as a stream, as a buffer and into a file', async () => {
    const { artifacts } = setup();
    const plaintext = randomBytes(64 * 1024 * 3 + 500);
    const { ref, bytes } = await artifacts.putStream('tenant-a', chunksOf(plaintext, 10_000));
    expect(bytes).toBe(plaintext.length);
    expect((await readAll(await artifacts.getStream('tenant-a', ref))).equals(plaintext)).toBe(true);
    expect(sameBytes(await artifacts.get('tenant-a', ref), plaintext)).toBe(true);
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-decrypt-'));
    try {
      const path = join(directory, 'model.onnx');
      expect(await artifacts.decryptToFile('tenant-a', ref, path)).toEqual({ bytes: plaintext.length });
      expect((await readFile(path)).equals(plaintext)).toBe(true);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('stops a stream over its limit with PAYLOAD_TOO_LARGE and stores nothing', async () => {
    const { bytes, artifacts } = setup();
    expect(await failureCode(() => artifacts.putStream('tenant-a', chunksOf(randomBytes(5000), 1000), { maxBytes: 4096 }))).toBe('PAYLOAD_TOO_LARGE');
    expect(bytes.bytes.size).toBe(0);
    expect((await artifacts.putStream('tenant-a', chunksOf(randomBytes(4096), 1000), { maxBytes: 4096 })).bytes).toBe(4096);
  });

  it('refuses tampered segments, truncation, appended bytes and another tenant on every read path; decryptToFile leaves no file', async () => {
    const { bytes, artifacts } = setup();
    const plaintext = randomBytes(64 * 1024 * 2 + 10);
    const { ref } = await artifacts.putStream('tenant-a', chunksOf(plaintext, 64 * 1024));
    const original = bytes.bytes.get(ref)!;
    const sealedSegment = 64 * 1024 + 16;
    const variants: Record<string, Uint8Array> = {
      flippedMiddleSegment: (() => {
        const copy = Uint8Array.from(original);
        copy[48 + sealedSegment + 7]! ^= 1;
        return copy;
      })(),
      truncatedAtBoundary: original.subarray(0, 48 + 2 * sealedSegment),
      withoutLastSegment: original.subarray(0, 48 + sealedSegment),
      appended: Buffer.concat([original, original.subarray(48, 48 + sealedSegment)]),
      swapped: Buffer.concat([original.subarray(0, 48), original.subarray(48 + sealedSegment, 48 + 2 * sealedSegment), original.subarray(48, 48 + sealedSegment), original.subarray(48 + 2 * sealedSegment)]),
    };
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-decrypt-'));
    try {
      for (const [name, tampered] of Object.entries(variants)) {
        bytes.bytes.set(ref, tampered);
        expect(await failureCode(() => artifacts.get('tenant-a', ref)), name).toBe('ARTIFACT_CORRUPT');
        expect(await failureCode(async () => readAll(await artifacts.getStream('tenant-a', ref))), name).toBe('ARTIFACT_CORRUPT');
        expect(await failureCode(() => artifacts.decryptToFile('tenant-a', ref, join(directory, name))), name).toBe('ARTIFACT_CORRUPT');
      }
      expect(await readdir(directory)).toEqual([]);
      bytes.bytes.set(ref, original);
      expect(await failureCode(async () => readAll(await artifacts.getStream('tenant-b', ref)))).toBe('ARTIFACT_CORRUPT');
      expect(await failureCode(() => artifacts.decryptToFile('tenant-b', ref, join(directory, 'moved')))).toBe('ARTIFACT_CORRUPT');
      expect(await readdir(directory)).toEqual([]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('reads single-blob artifacts written before streaming, and re-encrypts them reproducibly', async () => {
    const { keys, bytes, artifacts } = setup();
    const legacyRef = await bytes.put(sealBytes(await keys.dataKeyFor('tenant-a'), 'tenant-a', payload));
    expect(await artifacts.formatOf(legacyRef)).toBe('single-blob');
    expect(sameBytes(await artifacts.get('tenant-a', legacyRef), payload)).toBe(true);
    expect((await readAll(await artifacts.getStream('tenant-a', legacyRef))).equals(Buffer.from(payload))).toBe(true);
    expect(await failureCode(() => artifacts.get('tenant-b', legacyRef))).toBe('ARTIFACT_CORRUPT');

    const newRef = await artifacts.reencryptSingleBlob('tenant-a', legacyRef);
    expect(await artifacts.formatOf(newRef)).toBe('stream');
    expect(sameBytes(await artifacts.get('tenant-a', newRef), payload)).toBe(true);
    // A migration that crashed and runs again writes the very same artifact.
    expect(await artifacts.reencryptSingleBlob('tenant-a', legacyRef)).toBe(newRef);
  });
});

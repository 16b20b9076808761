import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { artifactRefOf, type ArtifactRef, type ArtifactStore } from '../../src/storage/artifact-store.ts';

/**
 * Behaviour every ArtifactStore must show, whatever keeps the bytes.
 * Implementation-specific failure modes (flipped bytes on disk, crash leftovers)
 * are tested beside each implementation.
 */
export function runArtifactStoreContract(options: { name: string; newStore: () => Promise<ArtifactStore> }): void {
  describe(`ArtifactStore contract: ${options.name}`, () => {
    const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

    it('returns a sha256 ref of the stored bytes and reads them back', async () => {
      const store = await options.newStore();
      const bytes = bytesOf('hello artifact');
      const ref = await store.put(bytes);
      expect(ref).toBe(artifactRefOf(bytes));
      expect(ref).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(Array.from(await store.get(ref))).toEqual(Array.from(bytes));
      expect(await store.has(ref)).toBe(true);
    });

    it('stores empty and binary content faithfully', async () => {
      const store = await options.newStore();
      const binary = new Uint8Array(256).map((_, index) => index);
      const empty = new Uint8Array(0);
      expect(Array.from(await store.get(await store.put(binary)))).toEqual(Array.from(binary));
      expect((await store.get(await store.put(empty))).byteLength).toBe(0);
    });

    it('reads a view, not the whole buffer, when given a subarray', async () => {
      const store = await options.newStore();
      const backing = bytesOf('xxxxPAYLOADyyyy');
      const ref = await store.put(backing.subarray(4, 11));
      expect(new TextDecoder().decode(await store.get(ref))).toBe('PAYLOAD');
    });

    it('is idempotent for identical bytes', async () => {
      const store = await options.newStore();
      const first = await store.put(bytesOf('same'));
      const second = await store.put(bytesOf('same'));
      expect(second).toBe(first);
      const listed: ArtifactRef[] = [];
      for await (const ref of store.list()) listed.push(ref);
      expect(listed).toEqual([first]);
    });

    it('lists every stored artifact once', async () => {
      const store = await options.newStore();
      const refs = await Promise.all(['a', 'b', 'c', 'd'].map((text) => store.put(bytesOf(text))));
      const listed: ArtifactRef[] = [];
      for await (const ref of store.list()) listed.push(ref);
      expect(listed.sort()).toEqual([...refs].sort());
    });

    it('reports a missing artifact as NOT_FOUND, and has() as false', async () => {
      const store = await options.newStore();
      const ref = artifactRefOf(bytesOf('never stored'));
      expect(await store.has(ref)).toBe(false);
      const error = await store.get(ref).catch((caught: unknown) => caught);
      expect(AiaasError.isInstance(error) && error.code).toBe('NOT_FOUND');
    });

    it('deletes, and deleting twice is fine', async () => {
      const store = await options.newStore();
      const ref = await store.put(bytesOf('short-lived'));
      await store.delete(ref);
      await store.delete(ref);
      expect(await store.has(ref)).toBe(false);
      await expect(store.get(ref)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('rejects malformed refs instead of touching arbitrary paths', async () => {
      const store = await options.newStore();
      for (const bad of ['sha256:../../etc/passwd', 'md5:abc', `sha256:${'A'.repeat(64)}`]) {
        await expect(store.get(bad as ArtifactRef)).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
      }
    });

    it('streams in and out: putStream gives the same ref as put, getStream the same bytes', async () => {
      const store = await options.newStore();
      const bytes = new Uint8Array(300_000).map((_, index) => (index * 31) % 256);
      async function* chunks() {
        for (let offset = 0; offset < bytes.byteLength; offset += 70_001) yield bytes.subarray(offset, offset + 70_001);
      }
      const streamed = await store.putStream(chunks());
      expect(streamed).toEqual({ ref: artifactRefOf(bytes), bytes: bytes.byteLength });
      expect(await store.put(bytes)).toBe(streamed.ref);
      const read: Buffer[] = [];
      for await (const chunk of await store.getStream(streamed.ref)) read.push(Buffer.from(chunk as Uint8Array));
      expect(Buffer.concat(read).equals(Buffer.from(bytes))).toBe(true);
      await expect(store.getStream(artifactRefOf(bytesOf('absent')))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('stores nothing when the streamed source fails', async () => {
      const store = await options.newStore();
      async function* failing() {
        yield bytesOf('partial');
        throw new Error('client went away');
      }
      await expect(store.putStream(failing())).rejects.toThrow('client went away');
      const listed: ArtifactRef[] = [];
      for await (const ref of store.list()) listed.push(ref);
      expect(listed).toEqual([]);
    });

    it('keeps concurrent puts of the same bytes consistent', async () => {
      const store = await options.newStore();
      const bytes = new Uint8Array(64 * 1024).fill(7);
      const refs = await Promise.all(Array.from({ length: 8 }, () => store.put(bytes)));
      expect(new Set(refs).size).toBe(1);
      const [ref] = refs;
      if (ref === undefined) throw new Error('no ref');
      expect((await store.get(ref)).byteLength).toBe(bytes.byteLength);
    });
  });
}

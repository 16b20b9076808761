import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AiaasError } from '../../src/errors.ts';
import type { ArtifactBytesStore } from '../../src/security/encrypted-artifact-store.ts';

/**
 * A content-addressed store for tests. It does not re-check hashes on get, so tests can
 * tamper with `bytes` and see the encryption layer's own integrity check fire.
 */
export class InMemoryArtifactStore implements ArtifactBytesStore {
  readonly bytes = new Map<string, Uint8Array>();

  async put(bytes: Uint8Array): Promise<string> {
    const ref = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    this.bytes.set(ref, Uint8Array.from(bytes));
    return ref;
  }

  async putStream(source: AsyncIterable<Uint8Array>): Promise<{ ref: string; bytes: number }> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of source) chunks.push(Uint8Array.from(chunk));
    const whole = Buffer.concat(chunks);
    return { ref: await this.put(whole), bytes: whole.length };
  }

  async get(ref: string): Promise<Uint8Array> {
    const stored = this.bytes.get(ref);
    if (stored === undefined) throw new AiaasError('NOT_FOUND', `No artifact ${ref}.`);
    return Uint8Array.from(stored);
  }

  async getStream(ref: string): Promise<Readable> {
    const stored = await this.get(ref);
    // Small chunks, so readers meet segment boundaries in the middle of chunks.
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < stored.byteLength; offset += 1000) chunks.push(Buffer.from(stored.subarray(offset, offset + 1000)));
    return Readable.from(chunks);
  }

  async has(ref: string): Promise<boolean> {
    return this.bytes.has(ref);
  }

  async delete(ref: string): Promise<void> {
    this.bytes.delete(ref);
  }

  async *list(): AsyncIterable<string> {
    yield* this.bytes.keys();
  }
}

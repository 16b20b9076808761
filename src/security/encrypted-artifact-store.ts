import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline as pipelineCallback, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AiaasError } from '../errors.ts';
import { isSingleBlobSealed, openBytes } from './envelope.ts';
import { createDecryptStream, createEncryptStream, isStreamSealed, openStreamBytes, sealStreamBytes } from './stream-aead.ts';
import type { DataKeyProvider } from './tenant-keys.ts';

/** The part of storage's ArtifactStore that encryption needs; the full interface satisfies it. */
export interface ArtifactBytesStore {
  put(bytes: Uint8Array): Promise<string>;
  putStream(source: AsyncIterable<Uint8Array>): Promise<{ ref: string; bytes: number }>;
  get(ref: string): Promise<Uint8Array>;
  getStream(ref: string): Promise<Readable>;
  has(ref: string): Promise<boolean>;
  delete(ref: string): Promise<void>;
}

/** How a stored artifact is encrypted, told by its first bytes. */
export type ArtifactFormat = 'stream' | 'single-blob';

export interface PutStreamOptions {
  /** Plaintext bytes allowed; beyond them the put fails with PAYLOAD_TOO_LARGE and stores nothing. */
  maxBytes?: number;
  /** Names what was too large in the error message ("model.onnx"). */
  what?: string;
}

function formatOf(prefix: Uint8Array): ArtifactFormat {
  if (isStreamSealed(prefix)) return 'stream';
  if (isSingleBlobSealed(prefix)) return 'single-blob';
  throw new AiaasError('ARTIFACT_CORRUPT', 'The stored artifact is not an aiaas encrypted artifact.');
}

/** Yields the source's bytes, failing with PAYLOAD_TOO_LARGE as soon as they exceed `maxBytes`. */
async function* limited(source: AsyncIterable<Uint8Array>, maxBytes: number, what: string): AsyncIterable<Uint8Array> {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      throw new AiaasError('PAYLOAD_TOO_LARGE', `${what} is larger than the limit of ${maxBytes} bytes`, { details: { limit: maxBytes } });
    }
    yield chunk;
  }
}

/**
 * Encrypts each tenant's artifacts under the tenant's data key before they reach the underlying
 * store, so the disk or bucket only ever holds ciphertext, in the segmented stream format of
 * stream-aead.ts: a multi-gigabyte model is written and read with memory bounded by a segment.
 * Refs name the ciphertext; a fresh salt per put means equal plaintexts get different refs, which
 * also keeps one tenant from learning that another stores the same file.
 *
 * Artifacts written before the stream format (single AES-GCM blobs) are still read; startup
 * re-encrypts them (`reencryptSingleBlob`, driven by startup/artifact-format-migration.ts).
 *
 * Ownership of a ref is the repositories' job (rows carry tenant_id); the tenant id bound into the
 * key derivation is the backstop: another tenant's ref fails with ARTIFACT_CORRUPT.
 */
export class EncryptedArtifactStore {
  readonly #store: ArtifactBytesStore;
  readonly #keys: DataKeyProvider;

  constructor(options: { store: ArtifactBytesStore; keys: DataKeyProvider }) {
    this.#store = options.store;
    this.#keys = options.keys;
  }

  /** A copy: TenantKeyService.forget zeroes its cached key in place, which must not break a read under way. */
  async #dataKey(tenantId: string): Promise<Buffer> {
    return Buffer.from(await this.#keys.dataKeyFor(tenantId));
  }

  /** Small artifacts (datasets, specs, checkpoints), held in memory: the same format as putStream. */
  async put(tenantId: string, plaintext: Uint8Array): Promise<string> {
    const dataKey = await this.#dataKey(tenantId);
    try {
      return await this.#store.put(sealStreamBytes(dataKey, tenantId, plaintext));
    } finally {
      dataKey.fill(0);
    }
  }

  /**
   * Encrypts and stores what `source` yields, segment by segment, never holding it whole.
   * Returns the ref and the plaintext size. On any failure (the source's, the limit's) nothing is stored.
   */
  async putStream(tenantId: string, source: AsyncIterable<Uint8Array>, options: PutStreamOptions = {}): Promise<{ ref: string; bytes: number }> {
    const dataKey = await this.#dataKey(tenantId);
    let encrypt;
    try {
      encrypt = createEncryptStream(dataKey, tenantId);
    } finally {
      dataKey.fill(0);
    }
    let plaintextBytes = 0;
    async function* counted(input: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
      for await (const chunk of input) {
        plaintextBytes += chunk.byteLength;
        yield chunk;
      }
    }
    const input = options.maxBytes === undefined ? source : limited(source, options.maxBytes, options.what ?? 'The upload');
    let storing: Promise<{ ref: string; bytes: number }> | undefined;
    try {
      await pipeline(counted(input), encrypt, async (sealed: AsyncIterable<Uint8Array>) => {
        storing = this.#store.putStream(sealed);
        await storing;
      });
    } catch (error) {
      // pipeline rejects at the first error; the store may still be removing its temporary file.
      await storing?.catch(() => undefined);
      throw error;
    }
    if (storing === undefined) throw new AiaasError('INTERNAL', 'The artifact stream ended without being stored');
    return { ref: (await storing).ref, bytes: plaintextBytes };
  }

  /** Throws ARTIFACT_CORRUPT on any alteration, KEY_DESTROYED after crypto-shredding. Holds the artifact in memory. */
  async get(tenantId: string, ref: string): Promise<Uint8Array> {
    const dataKey = await this.#dataKey(tenantId);
    try {
      const sealed = await this.#store.get(ref);
      return formatOf(sealed) === 'stream' ? openStreamBytes(dataKey, tenantId, sealed) : openBytes(dataKey, tenantId, sealed);
    } finally {
      dataKey.fill(0);
    }
  }

  /**
   * The plaintext as a stream with bounded memory. Each segment is authenticated before it is
   * emitted, but truncation is only detected at the end: treat the bytes as untrusted until the
   * stream ends without an error (ARTIFACT_CORRUPT).
   */
  async getStream(tenantId: string, ref: string): Promise<Readable> {
    const dataKey = await this.#dataKey(tenantId);
    let raw: Readable;
    try {
      raw = await this.#store.getStream(ref);
    } catch (error) {
      dataKey.fill(0);
      throw error;
    }
    async function* plaintext(): AsyncIterable<Uint8Array> {
      try {
        const iterator = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        const head: Buffer[] = [];
        let headLength = 0;
        let ended = false;
        while (headLength < 4) {
          const next = await iterator.next();
          if (next.done === true) {
            ended = true;
            break;
          }
          head.push(next.value);
          headLength += next.value.length;
        }
        const format = formatOf(Buffer.concat(head));
        async function* rest(): AsyncIterable<Buffer> {
          yield* head;
          if (ended) return;
          for (;;) {
            const next = await iterator.next();
            if (next.done === true) return;
            yield next.value;
          }
        }
        if (format === 'single-blob') {
          // Written whole before streaming existed (and bounded by the old upload limits), so read whole.
          const chunks: Buffer[] = [];
          for await (const chunk of rest()) chunks.push(chunk);
          yield openBytes(dataKey, tenantId, Buffer.concat(chunks));
          return;
        }
        const decrypt = createDecryptStream(dataKey, tenantId);
        dataKey.fill(0);
        // pipeline, not pipe: an error of the stored stream (a failed hash check) must reach the reader.
        pipelineCallback(Readable.from(rest()), decrypt, () => undefined);
        yield* decrypt;
      } finally {
        dataKey.fill(0);
        raw.destroy();
      }
    }
    return Readable.from(plaintext(), { objectMode: false });
  }

  /**
   * Decrypts an artifact into `path` (0600; an existing file is replaced atomically) with bounded memory. The
   * bytes go to a temporary name beside it and are renamed only once every segment authenticated,
   * so `path` never holds a truncated or altered file. Returns the plaintext size.
   */
  async decryptToFile(tenantId: string, ref: string, path: string): Promise<{ bytes: number }> {
    const temporary = join(dirname(path), `.tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
    let bytes = 0;
    try {
      const source = await this.getStream(tenantId, ref);
      const handle = await open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          let written = 0;
          while (written < chunk.byteLength) written += (await handle.write(chunk, written)).bytesWritten;
          bytes += chunk.byteLength;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
      return { bytes };
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  /** The artifact's encryption format, from its first bytes. */
  async formatOf(ref: string): Promise<ArtifactFormat> {
    const raw = await this.#store.getStream(ref);
    try {
      const head: Buffer[] = [];
      let length = 0;
      for await (const chunk of raw as AsyncIterable<Buffer>) {
        head.push(chunk);
        length += chunk.length;
        if (length >= 4) break;
      }
      return formatOf(Buffer.concat(head));
    } finally {
      raw.destroy();
    }
  }

  /**
   * Re-encrypts a single-blob artifact in the stream format and returns the new ref (the old one
   * stays until the caller deletes it, after pointing its rows at the new one). The output is a
   * function of the old ref, so a migration that crashed and runs again writes the same file.
   */
  async reencryptSingleBlob(tenantId: string, ref: string): Promise<string> {
    const dataKey = await this.#dataKey(tenantId);
    try {
      const sealed = await this.#store.get(ref);
      if (formatOf(sealed) !== 'single-blob') throw new AiaasError('INTERNAL', `Artifact ${ref} is not in the single-blob format`);
      const plaintext = openBytes(dataKey, tenantId, sealed);
      return await this.#store.put(sealStreamBytes(dataKey, tenantId, plaintext, { deterministicSeed: Buffer.from(ref, 'utf8') }));
    } finally {
      dataKey.fill(0);
    }
  }

  has(ref: string): Promise<boolean> {
    return this.#store.has(ref);
  }

  delete(ref: string): Promise<void> {
    return this.#store.delete(ref);
  }
}

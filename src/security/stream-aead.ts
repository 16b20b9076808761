/**
 * Streaming authenticated encryption for artifacts of any size, after Tink's AES-GCM-HKDF streaming
 * AEAD and age's STREAM construction: the plaintext is cut into fixed segments (64 KiB), each sealed
 * with AES-256-GCM on its own, so files of many gigabytes are encrypted and decrypted with memory
 * bounded by one segment.
 *
 * Layout (all integers big-endian):
 *
 *   header  'AIAS' | format 1 (1 byte) | plaintext segment size (uint32) | salt (32) | nonce prefix (7)
 *   then    segment 0 | segment 1 | ... | last segment      each = GCM ciphertext | tag (16)
 *
 * - Every segment but the last holds exactly `segment size` plaintext bytes; the last holds 0 to
 *   `segment size` (an empty file is one empty last segment: just a tag).
 * - Per-file key = HKDF-SHA256(ikm = tenant data key, salt, info = purpose label ‖ 0 ‖ tenant id):
 *   a file moved to another tenant's name decrypts under a different key and fails.
 * - Nonce of segment i = nonce prefix (7) ‖ i (uint32) ‖ last-segment flag (1 byte, 0 or 1): a
 *   reordered or swapped segment fails (wrong counter), a stream cut at a segment boundary fails
 *   (its final segment was sealed as "not last"), and bytes appended after the last segment fail
 *   (the real last segment is then opened as "not last").
 * - Each segment authenticates the header as associated data, so the format byte and segment size
 *   cannot be changed either.
 *
 * A decrypting stream emits each segment's plaintext once that segment is authenticated, before the
 * end of the file is seen: a consumer must treat the data as untrusted until the stream ends without
 * an error (decryptToFile writes to a temporary name and renames only then).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AiaasError } from '../errors.ts';

export const streamMagic = Buffer.from('AIAS', 'ascii');
const streamFormat = 1;
export const defaultSegmentSize = 64 * 1024;
/** Refused above this when reading a header: a decryptor buffers one segment before it can authenticate it. */
const maximumSegmentSize = 1024 * 1024;
const minimumSegmentSize = 16;
const saltLength = 32;
const noncePrefixLength = 7;
const tagLength = 16;
export const streamHeaderLength = streamMagic.length + 1 + 4 + saltLength + noncePrefixLength;
const purposeLabel = 'aiaas/artifact-stream/v1';
const maximumSegments = 2 ** 32;

export interface StreamSealOptions {
  /** Plaintext bytes per segment; tests use small ones. Default 64 KiB. */
  segmentSize?: number;
  /**
   * Derives the salt and nonce prefix from this seed (keyed by the data key) instead of random bytes,
   * so that sealing the same plaintext twice gives the same bytes. Only for re-encrypting a plaintext
   * that the seed already fixes (the migration of an old artifact, seeded with its ref): with a seed
   * reused for a different plaintext, the nonces would repeat under one key.
   */
  deterministicSeed?: Uint8Array;
}

function corrupt(message: string, cause?: unknown): AiaasError {
  return new AiaasError('ARTIFACT_CORRUPT', message, cause === undefined ? {} : { cause });
}

/** True when the bytes start like a streamed artifact (a cheap format sniff, not a check). */
export function isStreamSealed(prefix: Uint8Array): boolean {
  return prefix.byteLength >= streamMagic.length && Buffer.from(prefix.buffer, prefix.byteOffset, streamMagic.length).equals(streamMagic);
}

/** Stored size of `plaintextLength` bytes: header, segments, one tag each. */
export function streamSealedLength(plaintextLength: number, segmentSize = defaultSegmentSize): number {
  const segments = Math.max(1, Math.ceil(plaintextLength / segmentSize));
  return streamHeaderLength + plaintextLength + segments * tagLength;
}

/** One file's key, nonce prefix and header; seals or opens segment `index`. */
class SegmentCipher {
  readonly header: Buffer;
  readonly segmentSize: number;
  readonly #key: Buffer;
  readonly #noncePrefix: Buffer;

  constructor(dataKey: Uint8Array, tenantId: string, header: Buffer) {
    this.header = header;
    this.segmentSize = header.readUInt32BE(streamMagic.length + 1);
    const salt = header.subarray(streamMagic.length + 5, streamMagic.length + 5 + saltLength);
    this.#noncePrefix = header.subarray(streamHeaderLength - noncePrefixLength);
    const info = Buffer.concat([Buffer.from(purposeLabel, 'utf8'), Buffer.of(0), Buffer.from(tenantId, 'utf8')]);
    this.#key = Buffer.from(hkdfSync('sha256', dataKey, salt, info, 32));
  }

  static create(dataKey: Uint8Array, tenantId: string, options: StreamSealOptions): SegmentCipher {
    const segmentSize = options.segmentSize ?? defaultSegmentSize;
    if (!Number.isInteger(segmentSize) || segmentSize < minimumSegmentSize || segmentSize > maximumSegmentSize) {
      throw new RangeError(`segmentSize must be an integer in [${minimumSegmentSize}, ${maximumSegmentSize}]`);
    }
    let salt: Buffer;
    let noncePrefix: Buffer;
    if (options.deterministicSeed === undefined) {
      salt = randomBytes(saltLength);
      noncePrefix = randomBytes(noncePrefixLength);
    } else {
      const derive = (label: string) => createHmac('sha256', dataKey).update(label).update(options.deterministicSeed!).digest();
      salt = derive('aiaas/stream-salt');
      noncePrefix = derive('aiaas/stream-nonce-prefix').subarray(0, noncePrefixLength);
    }
    const header = Buffer.alloc(streamHeaderLength);
    streamMagic.copy(header, 0);
    header.writeUInt8(streamFormat, streamMagic.length);
    header.writeUInt32BE(segmentSize, streamMagic.length + 1);
    salt.copy(header, streamMagic.length + 5);
    noncePrefix.copy(header, streamHeaderLength - noncePrefixLength);
    return new SegmentCipher(dataKey, tenantId, header);
  }

  /** Validates a stored header before anything is derived from it. */
  static read(dataKey: Uint8Array, tenantId: string, header: Buffer): SegmentCipher {
    if (!isStreamSealed(header)) throw corrupt('The stored artifact is not a streamed aiaas artifact.');
    const format = header.readUInt8(streamMagic.length);
    if (format !== streamFormat) throw corrupt(`The stored artifact has unknown stream format ${format}.`);
    const segmentSize = header.readUInt32BE(streamMagic.length + 1);
    if (segmentSize < minimumSegmentSize || segmentSize > maximumSegmentSize) {
      throw corrupt(`The stored artifact declares a segment size of ${segmentSize} bytes, outside what aiaas writes.`);
    }
    return new SegmentCipher(dataKey, tenantId, Buffer.from(header));
  }

  #nonce(index: number, last: boolean): Buffer {
    if (index >= maximumSegments) throw new RangeError('An artifact stream has at most 2^32 segments.');
    const nonce = Buffer.alloc(noncePrefixLength + 5);
    this.#noncePrefix.copy(nonce, 0);
    nonce.writeUInt32BE(index, noncePrefixLength);
    nonce.writeUInt8(last ? 1 : 0, noncePrefixLength + 4);
    return nonce;
  }

  seal(index: number, last: boolean, plaintext: Uint8Array): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.#key, this.#nonce(index, last), { authTagLength: tagLength });
    cipher.setAAD(this.header);
    return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  }

  open(index: number, last: boolean, segment: Uint8Array): Buffer {
    if (segment.byteLength < tagLength) throw corrupt('The stored artifact ends inside a segment tag: it was truncated.');
    const view = Buffer.from(segment.buffer, segment.byteOffset, segment.byteLength);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, this.#nonce(index, last), { authTagLength: tagLength });
      decipher.setAAD(this.header);
      decipher.setAuthTag(view.subarray(view.length - tagLength));
      return Buffer.concat([decipher.update(view.subarray(0, view.length - tagLength)), decipher.final()]);
    } catch (error) {
      throw corrupt(
        `Segment ${index} of the stored artifact failed authentication: the file was altered, truncated, extended or reordered, or it belongs to another tenant.`,
        error,
      );
    }
  }

  destroy(): void {
    this.#key.fill(0);
  }
}

/** Bytes written in chunks, read back in slices of a fixed size, with little copying. */
class ChunkQueue {
  #chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Removes and returns the first `count` bytes (count <= length). */
  take(count: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= count) {
      // The common case for large writes: a slice of one chunk, no copy.
      const taken = first.subarray(0, count);
      if (first.length === count) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(count);
      this.length -= count;
      return taken;
    }
    const taken = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.length, count - filled);
      chunk.copy(taken, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    this.length -= count;
    return taken;
  }
}

function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('Artifact streams carry bytes only.');
}

/**
 * Plaintext in, sealed stream out. A segment is sealed once more bytes follow it (only then is it
 * known not to be the last), so at most one segment plus one incoming chunk is held.
 */
export function createEncryptStream(dataKey: Uint8Array, tenantId: string, options: StreamSealOptions = {}): Transform {
  const cipher = SegmentCipher.create(dataKey, tenantId, options);
  const pending = new ChunkQueue();
  let index = 0;
  let headerSent = false;
  const sendHeader = (stream: Transform) => {
    if (!headerSent) stream.push(cipher.header);
    headerSent = true;
  };
  return new Transform({
    transform(this: Transform, chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        sendHeader(this);
        pending.push(asBuffer(chunk));
        while (pending.length > cipher.segmentSize) this.push(cipher.seal(index++, false, pending.take(cipher.segmentSize)));
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(this: Transform, callback: TransformCallback) {
      try {
        sendHeader(this);
        this.push(cipher.seal(index, true, pending.take(pending.length)));
        cipher.destroy();
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
}

/**
 * Sealed stream in, plaintext out; fails with ARTIFACT_CORRUPT at the first segment that does not
 * authenticate, or at the end when the last segment is missing.
 */
export function createDecryptStream(dataKey: Uint8Array, tenantId: string): Transform {
  // A copy: the caller may zero its key (tenant deletion) while this stream is still being read.
  const key = Buffer.from(dataKey);
  const pending = new ChunkQueue();
  let cipher: SegmentCipher | undefined;
  let index = 0;
  return new Transform({
    transform(this: Transform, chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        pending.push(asBuffer(chunk));
        if (cipher === undefined) {
          if (pending.length < streamHeaderLength) return callback();
          cipher = SegmentCipher.read(key, tenantId, pending.take(streamHeaderLength));
          key.fill(0);
        }
        const sealedSegment = cipher.segmentSize + tagLength;
        while (pending.length > sealedSegment) this.push(cipher.open(index++, false, pending.take(sealedSegment)));
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
    flush(this: Transform, callback: TransformCallback) {
      try {
        if (cipher === undefined) throw corrupt('The stored artifact is shorter than its header: it was truncated.');
        this.push(cipher.open(index, true, pending.take(pending.length)));
        cipher.destroy();
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
}

/** The whole-buffer form of the stream format, for small artifacts (datasets, specs, checkpoints). */
export function sealStreamBytes(dataKey: Uint8Array, tenantId: string, plaintext: Uint8Array, options: StreamSealOptions = {}): Buffer {
  const cipher = SegmentCipher.create(dataKey, tenantId, options);
  try {
    const parts: Buffer[] = [cipher.header];
    const size = cipher.segmentSize;
    let offset = 0;
    let index = 0;
    while (plaintext.byteLength - offset > size) {
      parts.push(cipher.seal(index++, false, plaintext.subarray(offset, offset + size)));
      offset += size;
    }
    parts.push(cipher.seal(index, true, plaintext.subarray(offset)));
    return Buffer.concat(parts);
  } finally {
    cipher.destroy();
  }
}

/** Decrypts a whole sealed stream held in memory, or throws ARTIFACT_CORRUPT. */
export function openStreamBytes(dataKey: Uint8Array, tenantId: string, sealed: Uint8Array): Buffer {
  const blob = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (blob.length < streamHeaderLength) throw corrupt('The stored artifact is shorter than its header: it was truncated.');
  const cipher = SegmentCipher.read(dataKey, tenantId, blob.subarray(0, streamHeaderLength));
  try {
    const sealedSegment = cipher.segmentSize + tagLength;
    const parts: Buffer[] = [];
    let offset = streamHeaderLength;
    let index = 0;
    while (blob.length - offset > sealedSegment) {
      parts.push(cipher.open(index++, false, blob.subarray(offset, offset + sealedSegment)));
      offset += sealedSegment;
    }
    parts.push(cipher.open(index, true, blob.subarray(offset)));
    return Buffer.concat(parts);
  } finally {
    cipher.destroy();
  }
}

import { gunzipSync } from 'node:zlib';
import { AiaasError } from '../errors.ts';

/**
 * Decompressed size cap. Uploads come from users, and a few kilobytes of gzip can expand to
 * gigabytes; zlib stops at this limit instead of exhausting memory.
 */
export const defaultMaxDecompressedBytes = 1024 * 1024 * 1024;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Returns the bytes unchanged, or gunzipped when they start with the gzip magic (the name is not trusted). */
export function gunzipIfCompressed(
  bytes: Uint8Array,
  fileName: string,
  maxDecompressedBytes: number = defaultMaxDecompressedBytes,
): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    const output = gunzipSync(bytes, { maxOutputLength: maxDecompressedBytes });
    return new Uint8Array(output.buffer, output.byteOffset, output.byteLength);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw new AiaasError(
        'PAYLOAD_TOO_LARGE',
        `${fileName}: gzip data expands beyond the ${maxDecompressedBytes}-byte limit`,
        { details: { file: fileName, limit: maxDecompressedBytes }, cause: error },
      );
    }
    throw new AiaasError('INVALID_DATA', `${fileName}: corrupt gzip data (${(error as Error).message})`, {
      details: { file: fileName },
      cause: error,
    });
  }
}

/** UTF-8 text of possibly-gzipped bytes, without a leading byte-order mark. */
export function decodeText(bytes: Uint8Array, fileName: string, maxDecompressedBytes?: number): string {
  const plain = gunzipIfCompressed(bytes, fileName, maxDecompressedBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch (error) {
    throw new AiaasError('INVALID_DATA', `${fileName}: not valid UTF-8 text`, { details: { file: fileName }, cause: error });
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Append-only Float32 storage for loaders that do not know the row count up front. */
export class GrowableFloat32Array {
  private storage: Float32Array;
  length = 0;

  constructor(initialCapacity = 1024) {
    this.storage = new Float32Array(Math.max(16, initialCapacity));
  }

  push(value: number): void {
    if (this.length === this.storage.length) this.grow(this.length + 1);
    this.storage[this.length++] = value;
  }

  pushAll(values: ArrayLike<number>): void {
    if (this.length + values.length > this.storage.length) this.grow(this.length + values.length);
    for (let index = 0; index < values.length; index++) this.storage[this.length++] = values[index] as number;
  }

  /** The filled part, trimmed to an exact-size copy so the unused capacity can be freed. */
  toArray(): Float32Array {
    return this.storage.slice(0, this.length);
  }

  private grow(minimum: number): void {
    const next = new Float32Array(Math.max(minimum, this.storage.length * 2));
    next.set(this.storage.subarray(0, this.length));
    this.storage = next;
  }
}

/**
 * A minimal protobuf wire-format reader, the counterpart of `protobuf-writer.ts`: just enough to walk
 * an ONNX ModelProto that arrived from a client. Every read is bounds-checked and every failure is
 * a `ProtobufDecodeError` naming the byte offset, so hostile bytes end in a clean refusal rather
 * than a crash. Payloads are returned as views (`subarray`), never copied.
 */

export class ProtobufDecodeError extends Error {
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = 'ProtobufDecodeError';
    this.offset = offset;
  }
}

export const WireType = { VARINT: 0, FIXED64: 1, LENGTH_DELIMITED: 2, FIXED32: 5 } as const;

/** One field of a message. Varints keep their low 32 bits exactly, which is all an int32 or enum reads. */
export type ProtobufField =
  | { field: number; wireType: 0; offset: number; low32: number; fitsIn32Bits: boolean }
  | { field: number; wireType: 1 | 5; offset: number }
  | { field: number; wireType: 2; offset: number; bytes: Uint8Array; bytesOffset: number };

/**
 * Iterates the fields of one message. `baseOffset` is where `message` starts in the whole file, so
 * error offsets point into the file the client sent.
 */
export class ProtobufReader {
  readonly #bytes: Uint8Array;
  readonly #baseOffset: number;
  #position = 0;

  constructor(message: Uint8Array, baseOffset = 0) {
    this.#bytes = message;
    this.#baseOffset = baseOffset;
  }

  /** The next field, or undefined at the end of the message. */
  next(): ProtobufField | undefined {
    if (this.#position >= this.#bytes.length) return undefined;
    const offset = this.#baseOffset + this.#position;
    const key = this.#varint();
    if (!key.fitsIn32Bits) throw new ProtobufDecodeError('field key out of range', offset);
    const field = key.low32 >>> 3;
    const wireType = key.low32 & 7;
    // Field 0 is invalid; 2^29-1 is the largest field number protobuf allows.
    if (field === 0 || field > 0x1fffffff) throw new ProtobufDecodeError(`invalid field number ${field}`, offset);
    switch (wireType) {
      case WireType.VARINT: {
        const value = this.#varint();
        return { field, wireType, offset, low32: value.low32, fitsIn32Bits: value.fitsIn32Bits };
      }
      case WireType.FIXED64:
        this.#skip(8, offset);
        return { field, wireType, offset };
      case WireType.FIXED32:
        this.#skip(4, offset);
        return { field, wireType, offset };
      case WireType.LENGTH_DELIMITED: {
        const length = this.#varint();
        const start = this.#position;
        if (!length.fitsIn32Bits || length.low32 > this.#bytes.length - start) {
          throw new ProtobufDecodeError(`field ${field} claims more bytes than the message holds`, offset);
        }
        this.#position = start + length.low32;
        return { field, wireType, offset, bytes: this.#bytes.subarray(start, this.#position), bytesOffset: this.#baseOffset + start };
      }
      default:
        // Groups (3, 4) are deprecated and unused by ONNX; 6 and 7 do not exist.
        throw new ProtobufDecodeError(`unsupported wire type ${wireType} for field ${field}`, offset);
    }
  }

  #skip(count: number, offset: number): void {
    if (count > this.#bytes.length - this.#position) throw new ProtobufDecodeError('truncated fixed-width field', offset);
    this.#position += count;
  }

  /**
   * Reads a varint of up to 10 bytes. The low 32 bits are computed exactly (protobuf truncates an
   * int32 or enum read from a wider varint to them); `fitsIn32Bits` says whether any higher bit was set.
   */
  #varint(): { low32: number; fitsIn32Bits: boolean } {
    const start = this.#position;
    let low32 = 0;
    let fitsIn32Bits = true;
    for (let index = 0; index < 10; index++) {
      if (this.#position >= this.#bytes.length) throw new ProtobufDecodeError('truncated varint', this.#baseOffset + start);
      const byte = this.#bytes[this.#position++]!;
      const payload = byte & 0x7f;
      const shift = index * 7;
      if (shift < 32) {
        low32 = (low32 | (payload << shift)) >>> 0;
        // Bits of this byte that land at or above bit 32.
        if (shift + 7 > 32 && payload >>> (32 - shift) !== 0) fitsIn32Bits = false;
      } else if (payload !== 0) {
        fitsIn32Bits = false;
      }
      if ((byte & 0x80) === 0) {
        // The tenth byte may carry only bit 63.
        if (index === 9 && payload > 1) throw new ProtobufDecodeError('varint longer than 64 bits', this.#baseOffset + start);
        return { low32, fitsIn32Bits };
      }
    }
    throw new ProtobufDecodeError('varint longer than 10 bytes', this.#baseOffset + start);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A `string` field's text; invalid UTF-8 is an error rather than silently replaced characters. */
export function decodeUtf8(field: Extract<ProtobufField, { wireType: 2 }>): string {
  try {
    return strictUtf8.decode(field.bytes);
  } catch {
    throw new ProtobufDecodeError(`field ${field.field} is not valid UTF-8`, field.offset);
  }
}

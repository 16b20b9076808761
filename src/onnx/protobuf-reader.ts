/**
 * A minimal protobuf wire-format reader, the counterpart of `protobuf-writer.ts`: just enough to walk
 * an ONNX ModelProto that arrived from a client. Every read is bounds-checked and every failure is
 * a `ProtobufDecodeError` naming the byte offset, so hostile bytes end in a clean refusal rather
 * than a crash. A cursor, not a stream of objects: walking a file of millions of tiny fields
 * allocates nothing per field, and payloads are views (`subarray`), never copies.
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

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Iterates the fields of one message: `next()` moves to the following field and fills in `field`,
 * `wireType` and, by wire type, the varint's value or the payload's bounds. `baseOffset` is where
 * the message starts in the whole file, so error offsets point into the file the client sent.
 */
export class ProtobufReader {
  readonly #bytes: Uint8Array;
  readonly #baseOffset: number;
  #position = 0;
  #payloadStart = 0;
  #payloadEnd = 0;
  /** The current field's number and wire type, and where its key starts in the file. */
  field = 0;
  wireType = 0;
  offset = 0;
  /** A varint's low 32 bits, exactly (protobuf truncates an int32 or enum read from a wider varint to them). */
  low32 = 0;
  /** False when a varint set any bit above the low 32. */
  fitsIn32Bits = true;

  constructor(message: Uint8Array, baseOffset = 0) {
    this.#bytes = message;
    this.#baseOffset = baseOffset;
  }

  /** Moves to the next field; false at the end of the message. */
  next(): boolean {
    if (this.#position >= this.#bytes.length) return false;
    this.offset = this.#baseOffset + this.#position;
    this.#varint();
    if (!this.fitsIn32Bits) throw new ProtobufDecodeError('field key out of range', this.offset);
    const key = this.low32;
    this.field = key >>> 3;
    this.wireType = key & 7;
    // Field 0 is invalid; 2^29-1 is the largest field number protobuf allows.
    if (this.field === 0 || this.field > 0x1fffffff) throw new ProtobufDecodeError(`invalid field number ${this.field}`, this.offset);
    switch (this.wireType) {
      case WireType.VARINT:
        this.#varint();
        return true;
      case WireType.FIXED64:
        this.#skip(8);
        return true;
      case WireType.FIXED32:
        this.#skip(4);
        return true;
      case WireType.LENGTH_DELIMITED: {
        this.#varint();
        const start = this.#position;
        if (!this.fitsIn32Bits || this.low32 > this.#bytes.length - start) {
          throw new ProtobufDecodeError(`field ${this.field} claims more bytes than the message holds`, this.offset);
        }
        this.#payloadStart = start;
        this.#payloadEnd = start + this.low32;
        this.#position = this.#payloadEnd;
        return true;
      }
      default:
        // Groups (3, 4) are deprecated and unused by ONNX; 6 and 7 do not exist.
        throw new ProtobufDecodeError(`unsupported wire type ${this.wireType} for field ${this.field}`, this.offset);
    }
  }

  /** The current length-delimited field's payload; a decode error for any other wire type. */
  payload(what: string): Uint8Array {
    this.#expectLengthDelimited(what);
    return this.#bytes.subarray(this.#payloadStart, this.#payloadEnd);
  }

  /** A reader over the current field's payload, an embedded message. */
  message(what: string): ProtobufReader {
    return new ProtobufReader(this.payload(what), this.#baseOffset + this.#payloadStart);
  }

  /** The current field as strict UTF-8 text: invalid sequences are an error, not replaced characters. */
  text(what: string): string {
    const payload = this.payload(what);
    try {
      return strictUtf8.decode(payload);
    } catch {
      throw new ProtobufDecodeError(`${what} is not valid UTF-8`, this.offset);
    }
  }

  #expectLengthDelimited(what: string): void {
    if (this.wireType !== WireType.LENGTH_DELIMITED) throw new ProtobufDecodeError(`${what} is not length-delimited`, this.offset);
  }

  #skip(count: number): void {
    if (count > this.#bytes.length - this.#position) throw new ProtobufDecodeError('truncated fixed-width field', this.offset);
    this.#position += count;
  }

  /** Reads a varint of up to 10 bytes into `low32` and `fitsIn32Bits`. */
  #varint(): void {
    const start = this.#position;
    // Most varints (keys, small lengths) are one byte.
    if (start < this.#bytes.length && this.#bytes[start]! < 0x80) {
      this.low32 = this.#bytes[start]!;
      this.fitsIn32Bits = true;
      this.#position = start + 1;
      return;
    }
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
        this.low32 = low32;
        this.fitsIn32Bits = fitsIn32Bits;
        return;
      }
    }
    throw new ProtobufDecodeError('varint longer than 10 bytes', this.#baseOffset + start);
  }
}

/**
 * The structure of an ONNX model read from a stream, without its bulk: the model's protobuf is
 * copied field by field except the data of the main graph's initializers (TensorProto fields
 * float_data, int32_data, string_data, int64_data, raw_data, double_data, uint64_data), which are
 * skipped as they stream past. Everything else (names, external_data entries, data_location, nodes
 * with their attributes, subgraphs, sparse initializers, functions, training info) is kept, so the
 * external-data walk (`external-data.ts`) sees every reference a full read would, while a
 * multi-gigabyte model is never held in memory: what is kept is capped.
 */
import { InvalidOnnxError } from './external-data.ts';

const ModelField = { graph: 7 } as const;
const GraphField = { initializer: 5 } as const;
/** TensorProto fields that hold tensor data, not description. */
const tensorDataFields = new Set([4, 5, 6, 7, 9, 10, 11]);
const Wire = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

/** Pulls bytes from an async source one field at a time. */
class StreamCursor {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #offset = 0;
  #done = false;
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#offset >= this.#chunk.byteLength) {
      if (this.#done) return false;
      const next = await this.#iterator.next();
      if (next.done === true) {
        this.#done = true;
        return false;
      }
      this.#chunk = next.value;
      this.#offset = 0;
    }
    return true;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  async #byte(): Promise<number> {
    if (!(await this.#fill())) throw new InvalidOnnxError('the file ends inside a field');
    this.position += 1;
    return this.#chunk[this.#offset++]!;
  }

  /** A varint's raw bytes (copied as they are) and its value, exact up to 2^53. */
  async varint(): Promise<{ raw: Uint8Array; value: number }> {
    const raw: number[] = [];
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = await this.#byte();
      raw.push(byte);
      value += (byte & 0x7f) * scale;
      scale *= 128;
      if ((byte & 0x80) === 0) break;
      if (raw.length >= 10) throw new InvalidOnnxError('a varint is longer than 10 bytes');
    }
    return { raw: Uint8Array.from(raw), value };
  }

  async bytes(count: number): Promise<Uint8Array> {
    const out = new Uint8Array(count);
    let filled = 0;
    while (filled < count) {
      if (!(await this.#fill())) throw new InvalidOnnxError('the file ends inside a field');
      const take = Math.min(count - filled, this.#chunk.byteLength - this.#offset);
      out.set(this.#chunk.subarray(this.#offset, this.#offset + take), filled);
      this.#offset += take;
      filled += take;
    }
    this.position += count;
    return out;
  }

  async skip(count: number): Promise<void> {
    let left = count;
    while (left > 0) {
      if (!(await this.#fill())) throw new InvalidOnnxError('the file ends inside a field');
      const take = Math.min(left, this.#chunk.byteLength - this.#offset);
      this.#offset += take;
      left -= take;
    }
    this.position += count;
  }

  /** Stops reading the source (it may hold a file open). */
  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

/** A protobuf varint (non-negative, up to 2^53). */
export function varintBytes(value: number): Uint8Array {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

/** Collected output with a cap on its total size. */
class Budget {
  used = 0;
  constructor(readonly limit: number) {}

  take(count: number): void {
    this.used += count;
    if (this.used > this.limit) {
      throw new InvalidOnnxError(
        `the model holds more than ${Math.round(this.limit / 1024 ** 2)} MiB outside the data of its graph initializers; keep large constants as initializers`,
      );
    }
  }
}

function lengthOf(value: number): number {
  if (!Number.isSafeInteger(value)) throw new InvalidOnnxError('a field length is out of range');
  return value;
}

type Part = Uint8Array;

/** Copies one field (whose tag was already read) into `parts`. */
async function copyField(cursor: StreamCursor, tag: Uint8Array, wire: number, parts: Part[], budget: Budget): Promise<void> {
  parts.push(tag);
  budget.take(tag.byteLength);
  switch (wire) {
    case Wire.varint: {
      const { raw } = await cursor.varint();
      budget.take(raw.byteLength);
      parts.push(raw);
      return;
    }
    case Wire.fixed64:
    case Wire.fixed32: {
      const size = wire === Wire.fixed64 ? 8 : 4;
      budget.take(size);
      parts.push(await cursor.bytes(size));
      return;
    }
    case Wire.lengthDelimited: {
      const { raw, value } = await cursor.varint();
      const length = lengthOf(value);
      budget.take(raw.byteLength + length);
      parts.push(raw, await cursor.bytes(length));
      return;
    }
    default:
      throw new InvalidOnnxError(`wire type ${wire} does not occur in ONNX files`);
  }
}

async function skipField(cursor: StreamCursor, wire: number): Promise<void> {
  switch (wire) {
    case Wire.varint:
      await cursor.varint();
      return;
    case Wire.fixed64:
      await cursor.skip(8);
      return;
    case Wire.fixed32:
      await cursor.skip(4);
      return;
    case Wire.lengthDelimited:
      await cursor.skip(lengthOf((await cursor.varint()).value));
      return;
    default:
      throw new InvalidOnnxError(`wire type ${wire} does not occur in ONNX files`);
  }
}

/** Reads a message of `length` bytes field by field; `visit` handles a field or returns false to copy it. */
async function message(
  cursor: StreamCursor,
  length: number | undefined,
  budget: Budget,
  visit: (field: number, wire: number, tag: Uint8Array, parts: Part[]) => Promise<boolean>,
): Promise<Uint8Array> {
  const end = length === undefined ? undefined : cursor.position + length;
  const parts: Part[] = [];
  while (end === undefined ? !(await cursor.atEnd()) : cursor.position < end) {
    const { raw: tag, value } = await cursor.varint();
    const field = Math.floor(value / 8);
    const wire = value % 8;
    if (!(await visit(field, wire, tag, parts))) await copyField(cursor, tag, wire, parts, budget);
  }
  if (end !== undefined && cursor.position !== end) throw new InvalidOnnxError('a field runs past the end of its message');
  return Buffer.concat(parts);
}

/** Appends a rewritten length-delimited field. */
function pushMessage(parts: Part[], tag: Uint8Array, body: Uint8Array, budget: Budget): void {
  const length = varintBytes(body.byteLength);
  budget.take(tag.byteLength + length.byteLength);
  parts.push(tag, length, body);
}

/**
 * The model without its main graph's initializer data, from a stream; at most `maxBytes` kept.
 * Throws InvalidOnnxError when the stream is not a well-formed protobuf or keeps too much.
 */
export async function onnxSkeleton(source: AsyncIterable<Uint8Array>, options: { maxBytes?: number; keepTensorsUpToBytes?: number } = {}): Promise<Uint8Array> {
  // Small initializers (shapes, axes) may be kept whole: a cost analysis needs Reshape's target.
  const keepUpTo = options.keepTensorsUpToBytes ?? 0;
  const cursor = new StreamCursor(source);
  const budget = new Budget(options.maxBytes ?? 256 * 1024 * 1024);
  try {
    return await message(cursor, undefined, budget, async (field, wire, tag, parts) => {
      if (field !== ModelField.graph || wire !== Wire.lengthDelimited) return false;
      const graphLength = lengthOf((await cursor.varint()).value);
      const graph = await message(cursor, graphLength, budget, async (graphField, graphWire, graphTag, graphParts) => {
        if (graphField !== GraphField.initializer || graphWire !== Wire.lengthDelimited) return false;
        const { raw: lengthBytes, value } = await cursor.varint();
        const tensorLength = lengthOf(value);
        if (tensorLength <= keepUpTo) {
          budget.take(graphTag.byteLength + lengthBytes.byteLength + tensorLength);
          graphParts.push(graphTag, lengthBytes, await cursor.bytes(tensorLength));
          return true;
        }
        const tensor = await message(cursor, tensorLength, budget, async (tensorField, tensorWire) => {
          if (!tensorDataFields.has(tensorField)) return false;
          await skipField(cursor, tensorWire);
          return true;
        });
        pushMessage(graphParts, graphTag, tensor, budget);
        return true;
      });
      pushMessage(parts, tag, graph, budget);
      return true;
    });
  } finally {
    await cursor.close();
  }
}

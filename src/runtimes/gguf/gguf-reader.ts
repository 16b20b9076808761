/**
 * A bounds-checked GGUF header reader. llama.cpp's own parser has a CVE history (out-of-bounds reads,
 * gigabyte allocations from 160-byte files), so an uploaded file is read here first, in an isolated
 * process, and refused unless every count, length, type, shape and offset is consistent with the
 * file's real size. Only the header is read; tensor data is never touched.
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  alignUp,
  ggmlTensorBytes,
  ggmlTypeLayout,
  ggufDefaultAlignment,
  ggufMagic,
  GgufValueType,
  scalarTypeBytes,
  scalarTypeNames,
  type GgufScalarTypeName,
  type GgufTensorInfo,
  type GgufValue,
} from './gguf-format.ts';

export interface GgufLimits {
  maxTensors: number;
  maxMetadataEntries: number;
  maxStringBytes: number;
  maxArrayElements: number;
  /** Bytes the header (metadata + descriptors) may take in all. */
  maxHeaderBytes: number;
}

export const defaultGgufLimits: GgufLimits = {
  maxTensors: 65_536,
  maxMetadataEntries: 65_536,
  maxStringBytes: 1 << 20,
  maxArrayElements: 1 << 22,
  maxHeaderBytes: 256 << 20,
};

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** File offset where tensor data starts. */
  dataOffset: number;
  fileBytes: number;
}

/** A GGUF file that breaks the format or a limit; `offset` is where reading stopped. */
export class GgufFormatError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.name = 'GgufFormatError';
    this.offset = offset;
  }
}

/** Sequential reads over a file handle through a window buffer, never past the file's end. */
class BoundedReader {
  readonly #handle: FileHandle;
  readonly #fileBytes: number;
  readonly #limit: number;
  #buffer = Buffer.alloc(0);
  #bufferStart = 0;
  position = 0;

  constructor(handle: FileHandle, fileBytes: number, limit: number) {
    this.#handle = handle;
    this.#fileBytes = fileBytes;
    this.#limit = Math.min(fileBytes, limit);
  }

  async take(length: number, what: string): Promise<Buffer> {
    if (this.position + length > this.#limit) {
      const reason = this.position + length > this.#fileBytes ? 'runs past the end of the file' : 'exceeds the header size limit';
      throw new GgufFormatError(`${what} (${length} bytes) ${reason}`, this.position);
    }
    const end = this.position + length;
    if (this.position < this.#bufferStart || end > this.#bufferStart + this.#buffer.length) {
      const size = Math.min(Math.max(length, 1 << 16), this.#limit - this.position);
      const buffer = Buffer.alloc(size);
      const { bytesRead } = await this.#handle.read(buffer, 0, size, this.position);
      if (bytesRead < length) throw new GgufFormatError(`${what} could not be read`, this.position);
      this.#buffer = buffer.subarray(0, bytesRead);
      this.#bufferStart = this.position;
    }
    const offset = this.position - this.#bufferStart;
    this.position = end;
    return this.#buffer.subarray(offset, offset + length);
  }

  async u32(what: string): Promise<number> {
    return (await this.take(4, what)).readUInt32LE(0);
  }

  /** A uint64 that must fit a safe integer and stay at or below `max`. */
  async count(what: string, max: number): Promise<number> {
    const at = this.position;
    const value = (await this.take(8, what)).readBigUInt64LE(0);
    if (value > BigInt(max)) throw new GgufFormatError(`${what} ${value} exceeds the limit of ${max}`, at);
    return Number(value);
  }

  async string(what: string, maxBytes: number): Promise<string> {
    const length = await this.count(`${what} length`, maxBytes);
    const at = this.position;
    const bytes = await this.take(length, what);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new GgufFormatError(`${what} is not valid UTF-8`, at);
    }
  }
}

async function readScalar(reader: BoundedReader, type: GgufScalarTypeName, what: string, limits: GgufLimits): Promise<number | bigint | boolean | string> {
  if (type === 'string') return await reader.string(what, limits.maxStringBytes);
  const bytes = await reader.take(scalarTypeBytes[type], what);
  switch (type) {
    case 'uint8': return bytes.readUInt8(0);
    case 'int8': return bytes.readInt8(0);
    case 'bool': {
      const value = bytes.readUInt8(0);
      if (value > 1) throw new GgufFormatError(`${what} is a bool of value ${value}`, reader.position - 1);
      return value === 1;
    }
    case 'uint16': return bytes.readUInt16LE(0);
    case 'int16': return bytes.readInt16LE(0);
    case 'uint32': return bytes.readUInt32LE(0);
    case 'int32': return bytes.readInt32LE(0);
    case 'float32': return bytes.readFloatLE(0);
    case 'float64': return bytes.readDoubleLE(0);
    case 'uint64': return bytes.readBigUInt64LE(0);
    case 'int64': return bytes.readBigInt64LE(0);
  }
}

async function readValue(reader: BoundedReader, key: string, limits: GgufLimits): Promise<GgufValue> {
  const at = reader.position;
  const typeCode = await reader.u32(`type of ${key}`);
  if (typeCode === GgufValueType.ARRAY) {
    const elementCode = await reader.u32(`element type of ${key}`);
    const elementType = scalarTypeNames[elementCode];
    // Nested arrays are legal GGUF but no model metadata uses them; refusing keeps the reader flat.
    if (elementType === undefined) throw new GgufFormatError(`${key} has an unsupported array element type ${elementCode}`, at);
    const length = await reader.count(`${key} array length`, limits.maxArrayElements);
    const values: Array<number | bigint | boolean | string> = [];
    for (let index = 0; index < length; index++) values.push(await readScalar(reader, elementType, `${key}[${index}]`, limits));
    return { type: 'array', elementType, values };
  }
  const type = scalarTypeNames[typeCode];
  if (type === undefined) throw new GgufFormatError(`${key} has an unknown value type ${typeCode}`, at);
  const value = await readScalar(reader, type, key, limits);
  if (type === 'uint64' || type === 'int64') return { type, value: value as bigint };
  if (type === 'bool') return { type, value: value as boolean };
  if (type === 'string') return { type, value: value as string };
  return { type, value: value as number };
}

/** Reads and checks a GGUF file's header; throws `GgufFormatError` on anything inconsistent. */
export async function readGgufHeader(path: string, limits: GgufLimits = defaultGgufLimits): Promise<GgufHeader> {
  const handle = await open(path, 'r');
  try {
    const fileBytes = (await handle.stat()).size;
    const reader = new BoundedReader(handle, fileBytes, limits.maxHeaderBytes);
    if ((await reader.u32('magic')) !== ggufMagic) throw new GgufFormatError('not a GGUF file (bad magic)', 0);
    const version = await reader.u32('version');
    if (version !== 2 && version !== 3) throw new GgufFormatError(`unsupported GGUF version ${version} (2 and 3 are supported)`, 4);
    const tensorCount = await reader.count('tensor count', limits.maxTensors);
    const metadataCount = await reader.count('metadata count', limits.maxMetadataEntries);

    const metadata = new Map<string, GgufValue>();
    for (let index = 0; index < metadataCount; index++) {
      const at = reader.position;
      const key = await reader.string(`metadata key ${index}`, 65_536);
      if (metadata.has(key)) throw new GgufFormatError(`duplicate metadata key ${key}`, at);
      metadata.set(key, await readValue(reader, key, limits));
    }

    const alignmentValue = metadata.get('general.alignment');
    let alignment = ggufDefaultAlignment;
    if (alignmentValue !== undefined) {
      if (alignmentValue.type !== 'uint32' || alignmentValue.value === 0 || (alignmentValue.value & (alignmentValue.value - 1)) !== 0) {
        throw new GgufFormatError('general.alignment must be a uint32 power of two', 0);
      }
      alignment = alignmentValue.value;
    }

    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    for (let index = 0; index < tensorCount; index++) {
      const at = reader.position;
      const name = await reader.string(`tensor ${index} name`, 65_536);
      if (names.has(name)) throw new GgufFormatError(`duplicate tensor ${name}`, at);
      names.add(name);
      const dimensionCount = await reader.u32(`tensor ${name} rank`);
      if (dimensionCount < 1 || dimensionCount > 4) throw new GgufFormatError(`tensor ${name} has rank ${dimensionCount} (1 to 4 allowed)`, at);
      const dimensions: number[] = [];
      let elements = 1;
      for (let axis = 0; axis < dimensionCount; axis++) {
        const dimension = await reader.count(`tensor ${name} dimension ${axis}`, fileBytes * 8);
        if (dimension === 0) throw new GgufFormatError(`tensor ${name} has a zero dimension`, at);
        dimensions.push(dimension);
        elements *= dimension;
        if (elements > fileBytes * 8) throw new GgufFormatError(`tensor ${name} has more elements than the file could hold`, at);
      }
      const type = await reader.u32(`tensor ${name} type`);
      if (ggmlTypeLayout[type] === undefined) throw new GgufFormatError(`tensor ${name} has an unknown type ${type}`, at);
      const offset = await reader.count(`tensor ${name} offset`, fileBytes);
      if (offset % alignment !== 0) throw new GgufFormatError(`tensor ${name} offset ${offset} is not aligned to ${alignment}`, at);
      tensors.push({ name, dimensions, type, offset });
    }

    const dataOffset = alignUp(reader.position, alignment);
    const ranges: Array<[number, number, string]> = [];
    for (const tensor of tensors) {
      const elements = tensor.dimensions.reduce((product, dimension) => product * dimension, 1);
      const bytes = ggmlTensorBytes(tensor.type, elements);
      if (bytes === undefined) throw new GgufFormatError(`tensor ${tensor.name}: ${elements} elements do not fill whole ${ggmlTypeLayout[tensor.type]!.name} blocks`, dataOffset);
      const start = dataOffset + tensor.offset;
      if (start + bytes > fileBytes) throw new GgufFormatError(`tensor ${tensor.name} (${bytes} bytes at ${start}) runs past the end of the file`, dataOffset);
      ranges.push([start, start + bytes, tensor.name]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    for (let index = 1; index < ranges.length; index++) {
      if (ranges[index]![0] < ranges[index - 1]![1]) throw new GgufFormatError(`tensors ${ranges[index - 1]![2]} and ${ranges[index]![2]} overlap`, dataOffset);
    }
    return { version, metadata, tensors, alignment, dataOffset, fileBytes };
  } finally {
    await handle.close();
  }
}

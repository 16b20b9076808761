import { AiaasError, quoteForError } from '../errors.ts';

/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 header
 * length N, N bytes of UTF-8 JSON `{"__metadata__"?: {string: string}, "<name>": {"dtype",
 * "shape", "data_offsets": [begin, end]}}` with offsets relative to the byte buffer that follows,
 * then that buffer. Values are little-endian, C order, no strides.
 */
export type SafetensorsDtype = 'F32' | 'F64' | 'I32' | 'I64' | 'U8' | 'BOOL';
export type SafetensorsData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

export interface DecodedSafetensors {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB so a hostile file cannot make it parse gigabytes of JSON. */
export const maxSafetensorsHeaderBytes = 100_000_000;

const dtypeInfo: Record<SafetensorsDtype, { bytesPerElement: number; arrayName: string }> = {
  F32: { bytesPerElement: 4, arrayName: 'Float32Array' },
  F64: { bytesPerElement: 8, arrayName: 'Float64Array' },
  I32: { bytesPerElement: 4, arrayName: 'Int32Array' },
  I64: { bytesPerElement: 8, arrayName: 'BigInt64Array' },
  U8: { bytesPerElement: 1, arrayName: 'Uint8Array' },
  BOOL: { bytesPerElement: 1, arrayName: 'Uint8Array' },
};

/** Names the reference implementation knows but this module does not decode, for a clearer error. */
const knownUnsupportedDtypes = new Set(['F16', 'BF16', 'I8', 'I16', 'U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

function isSupportedDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(dtypeInfo, value);
}

function invalidWeights(message: string, details: Record<string, unknown> = {}): AiaasError {
  return new AiaasError('INVALID_WEIGHTS', message, { details: { format: 'safetensors', ...details } });
}

function matchesDtype(dtype: SafetensorsDtype, data: SafetensorsData): boolean {
  switch (dtype) {
    case 'F32':
      return data instanceof Float32Array;
    case 'F64':
      return data instanceof Float64Array;
    case 'I32':
      return data instanceof Int32Array;
    case 'I64':
      return data instanceof BigInt64Array;
    case 'U8':
    case 'BOOL':
      // Buffer is a Uint8Array subclass and is fine; Uint8ClampedArray is not a Uint8Array.
      return data instanceof Uint8Array;
  }
}

function shapeElements(shape: readonly number[]): number {
  let product = 1;
  for (const size of shape) product *= size;
  return product;
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((size) => Number.isSafeInteger(size) && (size as number) >= 0);
}

// Typed arrays use platform byte order, safetensors is little-endian; the byte copies below are
// only correct on little-endian hosts, which is every platform Node ships for today.
const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Serialises tensors. Tensors are laid out contiguously in sorted-name order (code-unit order) and
 * the header lists `__metadata__` first, then the tensors in that order, as compact JSON padded with
 * spaces to a multiple of 8 bytes so the buffer starts 8-aligned. (The Rust reference orders by
 * descending dtype alignment first; readers must not depend on either, offsets are authoritative.)
 */
export function encodeSafetensors(tensors: Record<string, SafetensorsTensor>, metadata?: Record<string, string>): Uint8Array {
  if (!littleEndianHost) throw invalidWeights('safetensors encoding requires a little-endian host');
  const names = Object.keys(tensors).sort((left, right) => (left < right ? -1 : left > right ? 1 : 0));
  // Entries are serialised one by one because a plain object would move integer-like tensor names
  // ("0", "1") ahead of "__metadata__" and out of the sorted order.
  const headerEntries: string[] = [];
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw invalidWeights(`Metadata value for ${JSON.stringify(key)} must be a string`, { key });
    }
    headerEntries.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const name of names) {
    if (name === '__metadata__') throw invalidWeights('A tensor cannot be named "__metadata__" (reserved by the format)');
    const tensor = tensors[name] as SafetensorsTensor;
    if (!isSupportedDtype(tensor.dtype)) {
      throw invalidWeights(`Tensor ${JSON.stringify(name)}: unsupported dtype ${JSON.stringify(tensor.dtype)}`, { tensor: name });
    }
    if (!validShape(tensor.shape)) {
      throw invalidWeights(`Tensor ${JSON.stringify(name)}: shape must be non-negative integers, got ${JSON.stringify(tensor.shape)}`, { tensor: name });
    }
    if (!matchesDtype(tensor.dtype, tensor.data)) {
      throw invalidWeights(
        `Tensor ${JSON.stringify(name)}: dtype ${tensor.dtype} needs a ${dtypeInfo[tensor.dtype].arrayName}, got ${tensor.data.constructor.name}`,
        { tensor: name },
      );
    }
    const elements = shapeElements(tensor.shape);
    if (tensor.data.length !== elements) {
      throw invalidWeights(
        `Tensor ${JSON.stringify(name)}: shape [${tensor.shape.join(', ')}] has ${elements} elements but the data has ${tensor.data.length}`,
        { tensor: name },
      );
    }
    if (tensor.dtype === 'BOOL') {
      const invalidIndex = (tensor.data as Uint8Array).findIndex((value) => value > 1);
      if (invalidIndex !== -1) throw invalidWeights(`Tensor ${JSON.stringify(name)}: BOOL element ${invalidIndex} is not 0 or 1`, { tensor: name });
    }
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    const info = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes.length] };
    headerEntries.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(`{${headerEntries.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const output = new Uint8Array(8 + headerLength + offset);
  new DataView(output.buffer).setBigUint64(0, BigInt(headerLength), true);
  output.set(json, 8);
  output.fill(0x20, 8 + json.length, 8 + headerLength);
  let position = 8 + headerLength;
  for (const chunk of chunks) {
    output.set(chunk, position);
    position += chunk.length;
  }
  return output;
}

function typedView(dtype: SafetensorsDtype, bytes: Uint8Array): SafetensorsData {
  const { bytesPerElement } = dtypeInfo[dtype];
  // A typed array over an unaligned offset throws, so unaligned data (possible when the caller's
  // buffer is a slice, or with a writer that does not align) is copied into a fresh buffer.
  const source = bytes.byteOffset % bytesPerElement === 0 ? bytes : bytes.slice();
  const length = source.byteLength / bytesPerElement;
  switch (dtype) {
    case 'F32':
      return new Float32Array(source.buffer, source.byteOffset, length);
    case 'F64':
      return new Float64Array(source.buffer, source.byteOffset, length);
    case 'I32':
      return new Int32Array(source.buffer, source.byteOffset, length);
    case 'I64':
      return new BigInt64Array(source.buffer, source.byteOffset, length);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(source.buffer, source.byteOffset, length);
  }
}

/** One tensor as the header describes it; offsets are relative to the data buffer. */
export interface SafetensorsHeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** In data-buffer order. */
  entries: SafetensorsHeaderEntry[];
  metadata: Record<string, string>;
  /** Offset of the data buffer in the file: 8 + header length. */
  bufferStart: number;
}

/**
 * Parses and validates a safetensors file's header without touching its tensor data, so a caller
 * can check names and shapes before anything is built. Validation follows the reference reader:
 * header size within bounds, JSON object, known dtypes, integer shapes, offsets that tile the byte
 * buffer exactly (contiguous from 0, no overlap, no trailing bytes) and byte lengths equal to
 * elements × dtype size.
 */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (!littleEndianHost) throw invalidWeights('safetensors decoding requires a little-endian host');
  if (bytes.length < 8) {
    throw invalidWeights(`safetensors file too small: ${bytes.length} bytes, the 8-byte header length is missing`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declaredLength = view.getBigUint64(0, true);
  if (declaredLength > BigInt(maxSafetensorsHeaderBytes)) {
    throw invalidWeights(`safetensors header length ${declaredLength} exceeds the ${maxSafetensorsHeaderBytes}-byte limit`, {
      headerLength: declaredLength.toString(),
    });
  }
  const headerLength = Number(declaredLength);
  if (8 + headerLength > bytes.length) {
    throw invalidWeights(`safetensors header length ${headerLength} runs past the end of the ${bytes.length}-byte file`, { headerLength });
  }
  if (headerLength < 2) throw invalidWeights(`safetensors header length ${headerLength} is too small for a JSON object`, { headerLength });
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw invalidWeights('safetensors header is not valid UTF-8');
  }
  if (!headerText.startsWith('{')) throw invalidWeights('safetensors header must be a JSON object starting with "{"');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    throw invalidWeights(`safetensors header is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw invalidWeights('safetensors header must be a JSON object');
  }

  // Keys from the file are defined as own properties (Object.fromEntries), never assigned: a
  // `__proto__` key would otherwise replace the result's prototype and vanish from its keys.
  const metadataEntries: [string, string][] = [];
  const entries: SafetensorsHeaderEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw invalidWeights('safetensors "__metadata__" must be an object of strings');
      }
      for (const [key, value] of Object.entries(info as Record<string, unknown>)) {
        if (typeof value !== 'string') {
          throw invalidWeights(`safetensors "__metadata__" value for ${quoteForError(key)} must be a string, got ${quoteForError(value)}`, { key });
        }
        metadataEntries.push([key, value]);
      }
      continue;
    }
    const label = `safetensors tensor ${quoteForError(name)}`;
    if (typeof info !== 'object' || info === null || Array.isArray(info)) throw invalidWeights(`${label}: entry must be an object`, { tensor: name });
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isSupportedDtype(dtype)) {
      const known = typeof dtype === 'string' && knownUnsupportedDtypes.has(dtype);
      throw invalidWeights(
        `${label}: ${known ? 'unsupported' : 'unknown'} dtype ${quoteForError(dtype)} (supported: ${Object.keys(dtypeInfo).join(', ')})`,
        { tensor: name },
      );
    }
    if (!validShape(shape)) throw invalidWeights(`${label}: shape must be an array of non-negative integers, got ${quoteForError(shape)}`, { tensor: name });
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((value) => Number.isSafeInteger(value) && (value as number) >= 0)) {
      throw invalidWeights(`${label}: data_offsets must be [begin, end] non-negative integers, got ${quoteForError(offsets)}`, { tensor: name });
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw invalidWeights(`${label}: data_offsets [${begin}, ${end}] end before they begin`, { tensor: name });
    const expectedBytes = shapeElements(shape) * dtypeInfo[dtype].bytesPerElement;
    if (end - begin !== expectedBytes) {
      throw invalidWeights(
        `${label}: ${dtype} shape [${shape.join(', ')}] needs ${expectedBytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
        { tensor: name },
      );
    }
    entries.push({ name, dtype, shape, begin, end });
  }

  const bufferStart = 8 + headerLength;
  const bufferLength = bytes.length - bufferStart;
  entries.sort((left, right) => left.begin - right.begin || left.end - right.end);
  let expectedBegin = 0;
  for (const entry of entries) {
    if (entry.end > bufferLength) {
      throw invalidWeights(
        `safetensors tensor ${quoteForError(entry.name)}: data_offsets [${entry.begin}, ${entry.end}] run past the ${bufferLength}-byte data buffer`,
        { tensor: entry.name },
      );
    }
    if (entry.begin !== expectedBegin) {
      throw invalidWeights(
        `safetensors tensor ${quoteForError(entry.name)}: data_offsets begin at ${entry.begin}, expected ${expectedBegin} (${entry.begin < expectedBegin ? 'overlaps the previous tensor' : 'leaves a gap'})`,
        { tensor: entry.name },
      );
    }
    expectedBegin = entry.end;
  }
  if (expectedBegin !== bufferLength) {
    throw invalidWeights(`safetensors data buffer is ${bufferLength} bytes but the tensors cover ${expectedBegin} (trailing bytes)`);
  }

  return { entries, metadata: Object.fromEntries(metadataEntries), bufferStart };
}

/**
 * Parses and validates a safetensors file (`readSafetensorsHeader`, then the data). Aligned tensors
 * are views into `bytes` (no copy), so mutating `bytes` afterwards changes them; unaligned ones are
 * copies.
 */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  const { entries, metadata, bufferStart } = readSafetensorsHeader(bytes);
  const tensorEntries: [string, SafetensorsTensor][] = [];
  for (const entry of entries) {
    const raw = bytes.subarray(bufferStart + entry.begin, bufferStart + entry.end);
    if (entry.dtype === 'BOOL') {
      const invalidIndex = raw.findIndex((value) => value > 1);
      if (invalidIndex !== -1) throw invalidWeights(`safetensors tensor ${quoteForError(entry.name)}: BOOL element ${invalidIndex} is ${raw[invalidIndex]}, not 0 or 1`, { tensor: entry.name });
    }
    tensorEntries.push([entry.name, { dtype: entry.dtype, shape: entry.shape, data: typedView(entry.dtype, raw) }]);
  }
  return { tensors: Object.fromEntries(tensorEntries), metadata };
}

/**
 * Triton's binary tensor data extension (server docs/protocol/extension_binary_data.md): a body that
 * is a JSON header of `Inference-Header-Content-Length` bytes followed by raw tensor bytes, and the
 * byte codec for those tensors: little-endian, row-major, no padding; BOOL one byte (0 or 1); FP16
 * the raw half bits; BYTES each element a 4-byte little-endian length and then its bytes.
 */
import { endianness } from 'node:os';
import { AiaasError } from '../../errors.ts';
import type { Tensor, TensorData, TensorDataType } from '../../runtimes/runtime.ts';
import { allocateTensorData } from '../../runtimes/tensor.ts';
import { decodeUtf8Element, invalidTensor } from './tensor-json.ts';

export const inferenceHeaderLengthHeader = 'inference-header-content-length';

/** The bytes after a request's JSON header. */
export interface BinarySection {
  bytes: Buffer;
  /** True when the header length was 0: no JSON at all, the bytes are the one input's (Triton's raw binary request). */
  raw: boolean;
}

/** Bytes per element of the fixed-size data types; BYTES has none. */
const elementBytes: Record<Exclude<TensorDataType, 'BYTES'>, number> = {
  FP32: 4,
  FP64: 8,
  FP16: 2,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  BOOL: 1,
};

export function bytesPerElement(datatype: TensorDataType): number | undefined {
  return datatype === 'BYTES' ? undefined : elementBytes[datatype];
}

/**
 * Reads `Inference-Header-Content-Length` and splits the body. The JSON part is decoded here so a
 * header that is not JSON is the same 400 INVALID_JSON as any other body; a raw request has none.
 */
export function splitBinaryBody(body: Buffer, headerLength: string, parseJson: (text: string) => unknown): { json: unknown; section: BinarySection } {
  const length = /^\d{1,15}$/.test(headerLength.trim()) ? Number(headerLength.trim()) : Number.NaN;
  if (!Number.isSafeInteger(length)) {
    throw new AiaasError('INVALID_REQUEST', `Inference-Header-Content-Length must be a non-negative integer, got ${JSON.stringify(headerLength.slice(0, 40))}`);
  }
  if (length > body.length) {
    throw new AiaasError('INVALID_REQUEST', `Inference-Header-Content-Length is ${length} but the body has only ${body.length} bytes`);
  }
  if (length === 0) return { json: undefined, section: { bytes: body, raw: true } };
  return { json: parseJson(body.toString('utf8', 0, length)), section: { bytes: body.subarray(length), raw: false } };
}

const littleEndianHost = endianness() === 'LE';

/** Reverses each `width`-byte group in place (big-endian hosts only; the wire is little-endian). */
function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let offset = 0; offset + width <= bytes.length; offset += width) bytes.subarray(offset, offset + width).reverse();
}

/**
 * Decodes one input's binary bytes (exactly its `binary_data_size`) into tensor storage with
 * `count` elements; the caller has already checked the size of fixed-size types.
 */
export function decodeBinaryTensor(bytes: Uint8Array, datatype: TensorDataType, count: number, inputName: string): TensorData {
  if (datatype === 'BYTES') return decodeBinaryStrings(bytes, count, inputName);
  const data = allocateTensorData(datatype, count) as Exclude<TensorData, string[]>;
  // A copy into fresh, aligned storage: the section's offset in the body is arbitrary.
  const target = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  target.set(bytes);
  if (!littleEndianHost) swapBytes(target, elementBytes[datatype]);
  if (datatype === 'BOOL') {
    const index = target.findIndex((value) => value > 1);
    if (index >= 0) throw invalidTensor(inputName, `BOOL element ${index} is byte ${target[index]}; binary BOOL elements are 0 or 1`);
  }
  return data;
}

function decodeBinaryStrings(bytes: Uint8Array, count: number, inputName: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strings: string[] = [];
  let offset = 0;
  for (let index = 0; index < count; index++) {
    if (offset + 4 > bytes.length) {
      throw invalidTensor(inputName, `binary data ends after ${index} of ${count} BYTES elements (each is a 4-byte little-endian length, then the bytes)`);
    }
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.length) {
      throw invalidTensor(inputName, `BYTES element ${index} declares ${length} bytes but only ${bytes.length - offset} remain in its binary data`);
    }
    strings.push(decodeUtf8Element(bytes.subarray(offset, offset + length), inputName, index));
    offset += length;
  }
  if (offset !== bytes.length) {
    throw invalidTensor(inputName, `binary_data_size is ${bytes.length} but its ${count} BYTES elements take ${offset} bytes`);
  }
  return strings;
}

/** A tensor's wire bytes: a view of its storage on little-endian hosts, length-prefixed UTF-8 for BYTES. */
export function encodeBinaryTensor(tensor: Tensor): Buffer {
  if (tensor.datatype === 'BYTES') {
    const encoded = (tensor.data as string[]).map((text) => Buffer.from(text, 'utf8'));
    const out = Buffer.allocUnsafe(encoded.reduce((sum, item) => sum + 4 + item.length, 0));
    let offset = 0;
    for (const item of encoded) {
      out.writeUInt32LE(item.length, offset);
      item.copy(out, offset + 4);
      offset += 4 + item.length;
    }
    return out;
  }
  const data = tensor.data as Exclude<TensorData, string[]>;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (littleEndianHost) return view;
  const copy = Buffer.from(view);
  swapBytes(copy, elementBytes[tensor.datatype]);
  return copy;
}

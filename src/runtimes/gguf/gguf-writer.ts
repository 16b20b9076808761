/**
 * Writes GGUF v3 files. Used to generate test fixtures and benchmark models on this machine, since
 * nothing may be downloaded: the header and descriptors are encoded up front (every tensor's size is
 * known from its type and shape), then each tensor's bytes are produced one at a time, so a model of
 * hundreds of megabytes is written with one tensor in memory at a time.
 */
import { open } from 'node:fs/promises';
import {
  alignUp,
  ggmlTensorBytes,
  ggufDefaultAlignment,
  ggufMagic,
  ggufVersion,
  GgufValueType,
  scalarTypeBytes,
  scalarTypeCodes,
  type GgufScalarTypeName,
  type GgufValue,
} from './gguf-format.ts';

export interface GgufTensorSource {
  name: string;
  /** ggml order: dimensions[0] is the contiguous one (a llama `[n_embd, n_vocab]` embedding has n_embd first). */
  dimensions: number[];
  type: number;
  /** Produces exactly the tensor's bytes; called once, in order. */
  data(): Uint8Array;
}

class ByteSink {
  #chunks: Uint8Array[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  bytes(value: Uint8Array): void {
    this.#chunks.push(value);
    this.#length += value.length;
  }

  fixed(size: number, fill: (view: DataView) => void): void {
    const buffer = new Uint8Array(size);
    fill(new DataView(buffer.buffer));
    this.bytes(buffer);
  }

  u32(value: number): void {
    this.fixed(4, (view) => view.setUint32(0, value, true));
  }

  u64(value: number | bigint): void {
    this.fixed(8, (view) => view.setBigUint64(0, BigInt(value), true));
  }

  string(value: string): void {
    const encoded = new TextEncoder().encode(value);
    this.u64(encoded.length);
    this.bytes(encoded);
  }

  concat(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

function writeScalar(sink: ByteSink, type: GgufScalarTypeName, value: number | bigint | boolean | string): void {
  if (type === 'string') {
    sink.string(String(value));
    return;
  }
  sink.fixed(scalarTypeBytes[type], (view) => {
    switch (type) {
      case 'uint8': view.setUint8(0, Number(value)); break;
      case 'int8': view.setInt8(0, Number(value)); break;
      case 'bool': view.setUint8(0, value === true ? 1 : 0); break;
      case 'uint16': view.setUint16(0, Number(value), true); break;
      case 'int16': view.setInt16(0, Number(value), true); break;
      case 'uint32': view.setUint32(0, Number(value), true); break;
      case 'int32': view.setInt32(0, Number(value), true); break;
      case 'float32': view.setFloat32(0, Number(value), true); break;
      case 'float64': view.setFloat64(0, Number(value), true); break;
      case 'uint64': view.setBigUint64(0, BigInt(value), true); break;
      case 'int64': view.setBigInt64(0, BigInt(value), true); break;
    }
  });
}

function writeValue(sink: ByteSink, value: GgufValue): void {
  if (value.type === 'array') {
    sink.u32(GgufValueType.ARRAY);
    sink.u32(scalarTypeCodes[value.elementType]);
    sink.u64(value.values.length);
    for (const element of value.values) writeScalar(sink, value.elementType, element);
    return;
  }
  sink.u32(scalarTypeCodes[value.type]);
  writeScalar(sink, value.type, value.value);
}

interface Layout {
  header: Uint8Array;
  offsets: number[];
  sizes: number[];
  alignment: number;
}

function layoutFile(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensorSource[]): Layout {
  const alignmentEntry = metadata.find(([key]) => key === 'general.alignment');
  const alignment = alignmentEntry !== undefined && alignmentEntry[1].type === 'uint32' ? alignmentEntry[1].value : ggufDefaultAlignment;
  const sink = new ByteSink();
  sink.u32(ggufMagic);
  sink.u32(ggufVersion);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  for (const [key, value] of metadata) {
    sink.string(key);
    writeValue(sink, value);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const tensor of tensors) {
    const elements = tensor.dimensions.reduce((product, dimension) => product * dimension, 1);
    const size = ggmlTensorBytes(tensor.type, elements);
    if (size === undefined) throw new RangeError(`tensor ${tensor.name}: type ${tensor.type} cannot hold ${elements} elements`);
    sink.string(tensor.name);
    sink.u32(tensor.dimensions.length);
    for (const dimension of tensor.dimensions) sink.u64(dimension);
    sink.u32(tensor.type);
    sink.u64(offset);
    offsets.push(offset);
    sizes.push(size);
    offset = alignUp(offset + size, alignment);
  }
  const headerLength = alignUp(sink.length, alignment);
  sink.bytes(new Uint8Array(headerLength - sink.length));
  return { header: sink.concat(), offsets, sizes, alignment };
}

function checkedData(tensor: GgufTensorSource, size: number): Uint8Array {
  const data = tensor.data();
  if (data.length !== size) throw new RangeError(`tensor ${tensor.name}: produced ${data.length} bytes, expected ${size}`);
  return data;
}

/** Encodes a whole GGUF file in memory (small fixtures). */
export function encodeGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensorSource[]): Uint8Array {
  const layout = layoutFile(metadata, tensors);
  const last = tensors.length - 1;
  const dataLength = last < 0 ? 0 : layout.offsets[last]! + layout.sizes[last]!;
  const out = new Uint8Array(layout.header.length + dataLength);
  out.set(layout.header, 0);
  tensors.forEach((tensor, index) => out.set(checkedData(tensor, layout.sizes[index]!), layout.header.length + layout.offsets[index]!));
  return out;
}

/** Writes a GGUF file tensor by tensor; returns its size in bytes. */
export async function writeGgufFile(
  path: string,
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensorSource[],
): Promise<number> {
  const layout = layoutFile(metadata, tensors);
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.write(layout.header, 0, layout.header.length, 0);
    let end = layout.header.length;
    for (const [index, tensor] of tensors.entries()) {
      const position = layout.header.length + layout.offsets[index]!;
      const data = checkedData(tensor, layout.sizes[index]!);
      await handle.write(data, 0, data.length, position);
      end = position + data.length;
    }
    await handle.truncate(end);
    return end;
  } finally {
    await handle.close();
  }
}

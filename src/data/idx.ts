import { AiaasError } from '../errors.ts';
import { gunzipIfCompressed, isGzip } from './bytes.ts';
import type { Dataset } from './dataset.ts';

/**
 * IDX is the MNIST container: a big-endian magic `00 00 <type> <rank>`, then `rank` big-endian
 * uint32 dimension sizes, then the data in C order, multi-byte values big-endian.
 */
export type IdxDataType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxTensor {
  dataType: IdxDataType;
  dims: number[];
  data: IdxArray;
}

export interface IdxParseOptions {
  maxDecompressedBytes?: number;
}

export interface IdxPairOptions extends IdxParseOptions {
  /** Divide uint8 images by 255 so values lie in [0, 1]. Default true. Other types are never scaled. */
  scale?: boolean;
  /** Names used in error messages and recorded nowhere else. */
  fileNames?: { images?: string; labels?: string };
}

const typeCodes: Record<number, { dataType: IdxDataType; bytesPerElement: number }> = {
  0x08: { dataType: 'uint8', bytesPerElement: 1 },
  0x09: { dataType: 'int8', bytesPerElement: 1 },
  0x0b: { dataType: 'int16', bytesPerElement: 2 },
  0x0c: { dataType: 'int32', bytesPerElement: 4 },
  0x0d: { dataType: 'float32', bytesPerElement: 4 },
  0x0e: { dataType: 'float64', bytesPerElement: 8 },
};

const codeOfType: Record<IdxDataType, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

function invalid(fileName: string, offset: number, problem: string, compressed: boolean): AiaasError {
  const where = compressed ? `byte offset ${offset} after gunzip` : `byte offset ${offset}`;
  return new AiaasError('INVALID_DATA', `${fileName} (${where}): ${problem}`, {
    details: { file: fileName, offset, format: 'idx' },
  });
}

/** True when the bytes start like an uncompressed IDX file (used for format detection). */
export function looksLikeIdx(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === 0 &&
    bytes[1] === 0 &&
    typeCodes[bytes[2] as number] !== undefined &&
    (bytes[3] as number) >= 1
  );
}

/** Parses raw or gzip-compressed IDX bytes (gzip is recognised by its 1f 8b magic, not by name). */
export function parseIdx(bytes: Uint8Array, fileName = 'IDX data', options: IdxParseOptions = {}): IdxTensor {
  const compressed = isGzip(bytes);
  const plain = gunzipIfCompressed(bytes, fileName, options.maxDecompressedBytes);
  if (plain.length < 4) {
    throw invalid(fileName, 0, `truncated magic number: expected 4 bytes, got ${plain.length}`, compressed);
  }
  if (plain[0] !== 0 || plain[1] !== 0) {
    throw invalid(
      fileName,
      0,
      `bad magic number ${Array.from(plain.subarray(0, 4), hex).join(' ')}: IDX files start with 0x00 0x00`,
      compressed,
    );
  }
  const typeCode = plain[2] as number;
  const type = typeCodes[typeCode];
  if (type === undefined) {
    throw invalid(
      fileName,
      2,
      `unknown data type code ${hex(typeCode)} (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)`,
      compressed,
    );
  }
  const rank = plain[3] as number;
  if (rank === 0) throw invalid(fileName, 3, 'dimension count is 0', compressed);
  const headerLength = 4 + 4 * rank;
  if (plain.length < headerLength) {
    throw invalid(
      fileName,
      4,
      `truncated header: expected ${headerLength - 4} bytes of dimension sizes for ${rank} dimensions, got ${plain.length - 4}`,
      compressed,
    );
  }
  const view = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
  const dims: number[] = [];
  let elements = 1;
  for (let axis = 0; axis < rank; axis++) {
    const size = view.getUint32(4 + 4 * axis, false);
    dims.push(size);
    elements *= size;
  }
  const expectedBytes = elements * type.bytesPerElement;
  const actualBytes = plain.length - headerLength;
  if (actualBytes < expectedBytes) {
    throw invalid(
      fileName,
      headerLength,
      `truncated data for dimensions [${dims.join(', ')}] of ${type.dataType}: expected ${expectedBytes} bytes, got ${actualBytes}`,
      compressed,
    );
  }
  if (actualBytes > expectedBytes) {
    throw invalid(
      fileName,
      headerLength + expectedBytes,
      `${actualBytes - expectedBytes} unexpected bytes after the data for dimensions [${dims.join(', ')}] (expected ${expectedBytes} data bytes)`,
      compressed,
    );
  }
  return { dataType: type.dataType, dims, data: readBigEndian(view, headerLength, elements, type.dataType) };
}

function readBigEndian(view: DataView, start: number, elements: number, dataType: IdxDataType): IdxArray {
  const source = new Uint8Array(view.buffer, view.byteOffset + start, view.byteLength - start);
  switch (dataType) {
    case 'uint8':
      return source.slice(0, elements);
    case 'int8':
      return new Int8Array(source.slice(0, elements).buffer);
    case 'int16': {
      const output = new Int16Array(elements);
      for (let index = 0; index < elements; index++) output[index] = view.getInt16(start + 2 * index, false);
      return output;
    }
    case 'int32': {
      const output = new Int32Array(elements);
      for (let index = 0; index < elements; index++) output[index] = view.getInt32(start + 4 * index, false);
      return output;
    }
    case 'float32': {
      const output = new Float32Array(elements);
      for (let index = 0; index < elements; index++) output[index] = view.getFloat32(start + 4 * index, false);
      return output;
    }
    case 'float64': {
      const output = new Float64Array(elements);
      for (let index = 0; index < elements; index++) output[index] = view.getFloat64(start + 8 * index, false);
      return output;
    }
  }
}

/** Writes an uncompressed IDX file (gzip it with node:zlib if wanted). */
export function encodeIdx(tensor: IdxTensor): Uint8Array {
  const { dataType, dims, data } = tensor;
  if (dims.length === 0 || dims.length > 255) {
    throw new AiaasError('INVALID_DATA', `IDX needs 1 to 255 dimensions, got ${dims.length}`);
  }
  let elements = 1;
  for (const size of dims) {
    if (!Number.isInteger(size) || size < 0 || size > 0xffffffff) {
      throw new AiaasError('INVALID_DATA', `IDX dimension sizes must be uint32, got [${dims.join(', ')}]`);
    }
    elements *= size;
  }
  if (data.length !== elements) {
    throw new AiaasError('INVALID_DATA', `IDX data has ${data.length} elements, dimensions [${dims.join(', ')}] need ${elements}`);
  }
  const bytesPerElement = (typeCodes[codeOfType[dataType]] as { bytesPerElement: number }).bytesPerElement;
  const headerLength = 4 + 4 * dims.length;
  const output = new Uint8Array(headerLength + elements * bytesPerElement);
  const view = new DataView(output.buffer);
  output[2] = codeOfType[dataType];
  output[3] = dims.length;
  dims.forEach((size, axis) => view.setUint32(4 + 4 * axis, size, false));
  for (let index = 0; index < elements; index++) {
    const value = data[index] as number;
    const at = headerLength + index * bytesPerElement;
    switch (dataType) {
      case 'uint8':
        view.setUint8(at, value);
        break;
      case 'int8':
        view.setInt8(at, value);
        break;
      case 'int16':
        view.setInt16(at, value, false);
        break;
      case 'int32':
        view.setInt32(at, value, false);
        break;
      case 'float32':
        view.setFloat32(at, value, false);
        break;
      case 'float64':
        view.setFloat64(at, value, false);
        break;
    }
  }
  return output;
}

/**
 * Joins an images file and a labels file (MNIST layout: images [count, ...dims], labels [count] or
 * [count, ...labelDims]) into a Dataset with featureShape = the per-image dims, e.g. [28, 28].
 */
export function loadIdxPair(imagesBytes: Uint8Array, labelsBytes: Uint8Array, options: IdxPairOptions = {}): Dataset {
  const imagesName = options.fileNames?.images ?? 'images IDX file';
  const labelsName = options.fileNames?.labels ?? 'labels IDX file';
  const parseOptions: IdxParseOptions = {};
  if (options.maxDecompressedBytes !== undefined) parseOptions.maxDecompressedBytes = options.maxDecompressedBytes;
  const images = parseIdx(imagesBytes, imagesName, parseOptions);
  const labels = parseIdx(labelsBytes, labelsName, parseOptions);
  const count = images.dims[0] as number;
  const labelCount = labels.dims[0] as number;
  if (count !== labelCount) {
    throw new AiaasError(
      'INVALID_DATA',
      `${imagesName} holds ${count} samples but ${labelsName} holds ${labelCount} labels (the first dimension must match)`,
      { details: { file: labelsName, offset: 4, format: 'idx', images: count, labels: labelCount } },
    );
  }
  const scale = options.scale ?? true;
  let features: Float32Array;
  if (scale && images.dataType === 'uint8') {
    features = new Float32Array(images.data.length);
    for (let index = 0; index < features.length; index++) features[index] = (images.data[index] as number) / 255;
  } else {
    features = Float32Array.from(images.data);
  }
  return {
    features,
    featureShape: images.dims.slice(1),
    labels: Float32Array.from(labels.data),
    labelShape: labels.dims.slice(1),
    count,
  };
}

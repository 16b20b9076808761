import type { Tensor, TensorData, TensorDataType, TensorSpec } from './runtime.ts';

/** Number of elements of a shape; the empty shape is a scalar with one element. */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/** Allocates zero-filled storage of the right kind for a data type. */
export function allocateTensorData(datatype: TensorDataType, length: number): TensorData {
  switch (datatype) {
    case 'FP32':
      return new Float32Array(length);
    case 'FP64':
      return new Float64Array(length);
    case 'FP16':
    case 'UINT16':
      return new Uint16Array(length);
    case 'INT8':
      return new Int8Array(length);
    case 'INT16':
      return new Int16Array(length);
    case 'INT32':
      return new Int32Array(length);
    case 'INT64':
      return new BigInt64Array(length);
    case 'UINT8':
    case 'BOOL':
      return new Uint8Array(length);
    case 'UINT32':
      return new Uint32Array(length);
    case 'UINT64':
      return new BigUint64Array(length);
    case 'BYTES':
      return new Array<string>(length).fill('');
  }
}

/** A tensor of zeros (empty strings for BYTES) for a spec, dynamic dimensions set to `dynamicSize`. */
export function zeroTensor(spec: TensorSpec, dynamicSize = 1): Tensor {
  const shape = spec.shape.map((dim) => (dim < 0 ? dynamicSize : dim));
  return { name: spec.name, datatype: spec.datatype, shape, data: allocateTensorData(spec.datatype, elementCount(shape)) };
}

/** Concatenates tensors of equal trailing dimensions along axis 0. */
export function concatenateBatch(parts: readonly Tensor[]): Tensor {
  const first = parts[0];
  if (first === undefined) throw new RangeError('concatenateBatch needs at least one tensor');
  if (parts.length === 1) return first;
  const rows = parts.reduce((sum, part) => sum + (part.shape[0] ?? 0), 0);
  const shape = [rows, ...first.shape.slice(1)];
  const data = allocateTensorData(first.datatype, elementCount(shape));
  let offset = 0;
  for (const part of parts) {
    if (Array.isArray(data)) {
      const strings = part.data as string[];
      for (let index = 0; index < strings.length; index++) data[offset + index] = strings[index]!;
    } else {
      // Same datatype on every part, so the typed arrays are of the same kind.
      (data as Float32Array).set(part.data as Float32Array, offset);
    }
    offset += part.data.length;
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

/** Rows [start, end) of a tensor along axis 0, as views where the storage allows. */
export function sliceBatch(tensor: Tensor, start: number, end: number): Tensor {
  const rowSize = elementCount(tensor.shape.slice(1));
  const data = (
    Array.isArray(tensor.data)
      ? tensor.data.slice(start * rowSize, end * rowSize)
      : (tensor.data as Float32Array).subarray(start * rowSize, end * rowSize)
  ) as TensorData;
  return { name: tensor.name, datatype: tensor.datatype, shape: [end - start, ...tensor.shape.slice(1)], data };
}

/**
 * The GGUF v3 container as ggml's `docs/gguf.md` defines it: a little-endian header (magic, version,
 * tensor count, metadata count), typed metadata key/values, tensor descriptors, padding to the
 * alignment, then tensor data. Shared by the writer (fixtures, benchmark models) and the reader
 * (upload validation), so both agree on every number below.
 */

export const ggufMagic = 0x46554747; // "GGUF" read as a little-endian uint32
export const ggufVersion = 3;
export const ggufDefaultAlignment = 32;

/** Metadata value types (`gguf_metadata_value_type`). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** Tensor element types (`ggml_type`) this project writes or recognises by name. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Elements per block and bytes per block of each type, for bounds-checking tensor sizes. */
export const ggmlTypeLayout: Readonly<Record<number, { name: string; blockElements: number; blockBytes: number }>> = {
  0: { name: 'F32', blockElements: 1, blockBytes: 4 },
  1: { name: 'F16', blockElements: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockElements: 32, blockBytes: 18 },
  3: { name: 'Q4_1', blockElements: 32, blockBytes: 20 },
  6: { name: 'Q5_0', blockElements: 32, blockBytes: 22 },
  7: { name: 'Q5_1', blockElements: 32, blockBytes: 24 },
  8: { name: 'Q8_0', blockElements: 32, blockBytes: 34 },
  9: { name: 'Q8_1', blockElements: 32, blockBytes: 36 },
  10: { name: 'Q2_K', blockElements: 256, blockBytes: 84 },
  11: { name: 'Q3_K', blockElements: 256, blockBytes: 110 },
  12: { name: 'Q4_K', blockElements: 256, blockBytes: 144 },
  13: { name: 'Q5_K', blockElements: 256, blockBytes: 176 },
  14: { name: 'Q6_K', blockElements: 256, blockBytes: 210 },
  15: { name: 'Q8_K', blockElements: 256, blockBytes: 292 },
  16: { name: 'IQ2_XXS', blockElements: 256, blockBytes: 66 },
  17: { name: 'IQ2_XS', blockElements: 256, blockBytes: 74 },
  18: { name: 'IQ3_XXS', blockElements: 256, blockBytes: 98 },
  19: { name: 'IQ1_S', blockElements: 256, blockBytes: 50 },
  20: { name: 'IQ4_NL', blockElements: 32, blockBytes: 18 },
  21: { name: 'IQ3_S', blockElements: 256, blockBytes: 110 },
  22: { name: 'IQ2_S', blockElements: 256, blockBytes: 82 },
  23: { name: 'IQ4_XS', blockElements: 256, blockBytes: 136 },
  24: { name: 'I8', blockElements: 1, blockBytes: 1 },
  25: { name: 'I16', blockElements: 1, blockBytes: 2 },
  26: { name: 'I32', blockElements: 1, blockBytes: 4 },
  27: { name: 'I64', blockElements: 1, blockBytes: 8 },
  28: { name: 'F64', blockElements: 1, blockBytes: 8 },
  29: { name: 'IQ1_M', blockElements: 256, blockBytes: 56 },
  30: { name: 'BF16', blockElements: 1, blockBytes: 2 },
  34: { name: 'TQ1_0', blockElements: 256, blockBytes: 54 },
  35: { name: 'TQ2_0', blockElements: 256, blockBytes: 66 },
};

/** A metadata value as the writer takes it and the reader returns it. */
export type GgufValue =
  | { type: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64'; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; elementType: Exclude<GgufScalarTypeName, never>; values: readonly (number | bigint | boolean | string)[] };

export type GgufScalarTypeName =
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'uint32'
  | 'int32'
  | 'float32'
  | 'float64'
  | 'uint64'
  | 'int64'
  | 'bool'
  | 'string';

export const scalarTypeCodes: Readonly<Record<GgufScalarTypeName, GgufValueType>> = {
  uint8: GgufValueType.UINT8,
  int8: GgufValueType.INT8,
  uint16: GgufValueType.UINT16,
  int16: GgufValueType.INT16,
  uint32: GgufValueType.UINT32,
  int32: GgufValueType.INT32,
  float32: GgufValueType.FLOAT32,
  float64: GgufValueType.FLOAT64,
  uint64: GgufValueType.UINT64,
  int64: GgufValueType.INT64,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
};

export const scalarTypeNames: Readonly<Record<number, GgufScalarTypeName>> = Object.fromEntries(
  Object.entries(scalarTypeCodes).map(([name, code]) => [code, name as GgufScalarTypeName]),
);

/** Bytes one element of a fixed-size scalar type takes; strings are variable. */
export const scalarTypeBytes: Readonly<Record<Exclude<GgufScalarTypeName, 'string'>, number>> = {
  uint8: 1,
  int8: 1,
  bool: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  uint64: 8,
  int64: 8,
  float64: 8,
};

/** A tensor descriptor. `dimensions` are in ggml order: dimensions[0] is the innermost (contiguous) one. */
export interface GgufTensorInfo {
  name: string;
  dimensions: number[];
  type: number;
  /** Offset of the tensor's data from the start of the data section. */
  offset: number;
}

/** Bytes a tensor of this type and element count occupies, or undefined for an unknown type or partial block. */
export function ggmlTensorBytes(type: number, elements: number): number | undefined {
  const layout = ggmlTypeLayout[type];
  if (layout === undefined || elements % layout.blockElements !== 0) return undefined;
  return (elements / layout.blockElements) * layout.blockBytes;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

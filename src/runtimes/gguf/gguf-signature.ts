/**
 * What a GGUF model version is known by without loading it: architecture, context length, parameter
 * count, quantization and chat template, read from its bounds-checked header. The validation child
 * (`validate-gguf-child.mjs`) runs `describeGgufFile` in an isolated process; the registry stores
 * the result as the version's signature.
 */
import { ggmlTensorBytes, ggmlTypeLayout, type GgufValue } from './gguf-format.ts';
import { readGgufHeader, type GgufHeader } from './gguf-reader.ts';

export interface GgufSignature {
  format: 'gguf';
  ggufVersion: number;
  /** `general.architecture`, e.g. `llama`. */
  architecture: string;
  /** `general.name` when present. */
  name: string | null;
  /** `<architecture>.context_length`: the context the model was trained with. */
  contextLength: number | null;
  /** `<architecture>.embedding_length`. */
  embeddingLength: number | null;
  /** Sum of every tensor's elements. */
  parameterCount: number;
  /** `general.file_type` by name (e.g. `Q8_0`), else the type holding most of the weights' bytes. */
  quantization: string;
  tensorCount: number;
  fileBytes: number;
  hasChatTemplate: boolean;
  /**
   * KV-cache bytes per token of context at llama.cpp's default f16 cache: block_count × head_count_kv
   * × (key_length + value_length) × 2 bytes, i.e. 2 × n_layer × n_kv_heads × head_dim × 2 when keys and
   * values share a head size. Null when the metadata lacks a figure (or holds per-layer arrays). Absent
   * from versions stored before it existed.
   */
  kvCacheBytesPerToken?: number | null;
}

export interface GgufDescription {
  signature: GgufSignature;
  /** `tokenizer.chat_template`, or null when the file has none (the runtime then uses its documented fallback). */
  chatTemplate: string | null;
}

/** `general.file_type` (llama_ftype) names for the common values. */
export function fileTypeName(fileType: number): string {
  const names: Record<number, string> = {
    0: 'F32',
    1: 'F16',
    2: 'Q4_0',
    3: 'Q4_1',
    7: 'Q8_0',
    8: 'Q5_0',
    9: 'Q5_1',
    10: 'Q2_K',
    11: 'Q3_K_S',
    12: 'Q3_K_M',
    13: 'Q3_K_L',
    14: 'Q4_K_S',
    15: 'Q4_K_M',
    16: 'Q5_K_S',
    17: 'Q5_K_M',
    18: 'Q6_K',
    32: 'BF16',
  };
  return names[fileType] ?? `file_type ${fileType}`;
}

function numberOf(value: GgufValue | undefined): number | null {
  if (value === undefined) return null;
  if (value.type === 'uint64' || value.type === 'int64') return Number(value.value);
  if (typeof (value as { value?: unknown }).value === 'number') return (value as { value: number }).value;
  return null;
}

function stringOf(value: GgufValue | undefined): string | null {
  return value?.type === 'string' ? value.value : null;
}

/** f16, llama.cpp's default type for both the K and the V cache. */
const kvCacheElementBytes = 2;

function kvCacheBytesPerToken(metadata: GgufHeader['metadata'], architecture: string): number | null {
  const number = (key: string) => numberOf(metadata.get(`${architecture}.${key}`));
  const layers = number('block_count');
  const heads = number('attention.head_count');
  const kvHeads = metadata.has(`${architecture}.attention.head_count_kv`) ? number('attention.head_count_kv') : heads;
  const embedding = number('embedding_length');
  const keyLength = number('attention.key_length') ?? (embedding !== null && heads !== null && heads > 0 ? embedding / heads : null);
  const valueLength = number('attention.value_length') ?? keyLength;
  if (layers === null || kvHeads === null || keyLength === null || valueLength === null || !Number.isInteger(keyLength)) return null;
  return layers * kvHeads * (keyLength + valueLength) * kvCacheElementBytes;
}

/** The signature and chat template of a header `readGgufHeader` accepted. */
export function describeGgufHeader(header: GgufHeader): GgufDescription {
  const architecture = stringOf(header.metadata.get('general.architecture'));
  if (architecture === null) throw new Error('general.architecture is missing or not a string');
  let parameterCount = 0;
  const bytesByType = new Map<number, number>();
  for (const tensor of header.tensors) {
    const elements = tensor.dimensions.reduce((product, dimension) => product * dimension, 1);
    parameterCount += elements;
    bytesByType.set(tensor.type, (bytesByType.get(tensor.type) ?? 0) + (ggmlTensorBytes(tensor.type, elements) ?? 0));
  }
  const fileType = numberOf(header.metadata.get('general.file_type'));
  const dominant = [...bytesByType].sort((left, right) => right[1] - left[1])[0];
  const quantization = fileType !== null ? fileTypeName(fileType) : dominant === undefined ? 'none' : (ggmlTypeLayout[dominant[0]]?.name ?? `type ${dominant[0]}`);
  const chatTemplate = stringOf(header.metadata.get('tokenizer.chat_template'));
  return {
    signature: {
      format: 'gguf',
      ggufVersion: header.version,
      architecture,
      name: stringOf(header.metadata.get('general.name')),
      contextLength: numberOf(header.metadata.get(`${architecture}.context_length`)),
      embeddingLength: numberOf(header.metadata.get(`${architecture}.embedding_length`)),
      parameterCount,
      quantization,
      tensorCount: header.tensors.length,
      fileBytes: header.fileBytes,
      hasChatTemplate: chatTemplate !== null,
      kvCacheBytesPerToken: kvCacheBytesPerToken(header.metadata, architecture),
    },
    chatTemplate,
  };
}

/** Reads and describes a GGUF file; throws `GgufFormatError` (or Error) on anything malformed. */
export async function describeGgufFile(path: string): Promise<GgufDescription> {
  return describeGgufHeader(await readGgufHeader(path));
}

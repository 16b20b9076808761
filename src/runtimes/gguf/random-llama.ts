/**
 * Generates a llama-architecture GGUF model with seeded random weights: a byte-fallback
 * SentencePiece-style vocabulary (so any text tokenizes), a ChatML `tokenizer.chat_template`, and
 * the tensor names llama.cpp's llama loader expects. Nothing may be downloaded here, so tests and
 * benchmarks make their language models with this; the output is gibberish, the machinery is real.
 */
import { GgmlType, type GgufValue } from './gguf-format.ts';
import { encodeGguf, writeGgufFile, type GgufTensorSource } from './gguf-writer.ts';

export interface RandomLlamaOptions {
  embeddingLength?: number;
  blockCount?: number;
  headCount?: number;
  headCountKv?: number;
  feedForwardLength?: number;
  /** Must leave room for node-llama-cpp's default system prompt: at 256 `LlamaChatSession` fails. */
  contextLength?: number;
  /** Tensor storage of the 2-D weights; norms stay F32 as llama.cpp requires. */
  weightType?: 'F32' | 'F16' | 'Q8_0';
  seed?: number;
  name?: string;
  /** Omit `tokenizer.chat_template` (tests of the documented fallback). */
  withoutChatTemplate?: boolean;
}

export const chatMlTemplate =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** SentencePiece token types as llama.cpp reads them from `tokenizer.ggml.token_type`. */
const TokenType = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
  bos: number;
  eos: number;
  unknown: number;
}

function buildVocabulary(): Vocabulary {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const add = (token: string, type: number, score = 0): void => {
    tokens.push(token);
    types.push(type);
    scores.push(score);
  };
  add('<unk>', TokenType.unknown);
  add('<s>', TokenType.control);
  add('</s>', TokenType.control);
  for (let byte = 0; byte < 256; byte++) add(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`, TokenType.byte);
  add('<|im_start|>', TokenType.control);
  add('<|im_end|>', TokenType.control);
  const characters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?\'"-(){}[]<>/_=+*#@&%$';
  add('\u2581', TokenType.normal, -1);
  for (const character of characters) add(character, TokenType.normal, -2);
  for (const character of characters) add(`\u2581${character}`, TokenType.normal, -1.5);
  for (const word of ['the', 'and', 'is', 'of', 'to', 'in', 'it', 'you', 'that', 'hello', 'world', 'yes', 'no', 'true', 'false', 'null']) {
    add(`\u2581${word}`, TokenType.normal, -1);
  }
  return { tokens, scores, types, bos: 1, eos: 2, unknown: 0 };
}

/** xorshift32 + Box–Muller: a seeded normal generator, enough for random weights. */
function normalGenerator(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  const uniform = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

const float32View = new Float32Array(1);
const uint32View = new Uint32Array(float32View.buffer);

/** IEEE half from a float, round to nearest even (finite inputs of weight magnitude). */
export function toHalf(value: number): number {
  float32View[0] = value;
  const bits = uint32View[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    const shifted = (mantissa | 0x800000) >>> (1 - exponent);
    return sign | ((shifted + 0x1000 + ((shifted >>> 13) & 1) - 1) >>> 13);
  }
  if (exponent >= 31) return sign | 0x7c00;
  const rounded = mantissa + 0xfff + ((mantissa >>> 13) & 1);
  if (rounded & 0x800000) return exponent + 1 >= 31 ? sign | 0x7c00 : sign | ((exponent + 1) << 10);
  return sign | (exponent << 10) | (rounded >>> 13);
}

function encodeWeights(values: Float32Array, type: 'F32' | 'F16' | 'Q8_0'): Uint8Array {
  if (type === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (type === 'F16') {
    const out = new Uint16Array(values.length);
    for (let index = 0; index < values.length; index++) out[index] = toHalf(values[index]!);
    return new Uint8Array(out.buffer);
  }
  // Q8_0: blocks of 32 values, each an f16 scale followed by 32 int8 quanta.
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let block = 0; block < blocks; block++) {
    let max = 0;
    for (let index = 0; index < 32; index++) max = Math.max(max, Math.abs(values[block * 32 + index]!));
    const scale = max / 127;
    const inverse = scale === 0 ? 0 : 1 / scale;
    view.setUint16(block * 34, toHalf(scale), true);
    for (let index = 0; index < 32; index++) view.setInt8(block * 34 + 2 + index, Math.round(values[block * 32 + index]! * inverse));
  }
  return out;
}

interface ModelPlan {
  metadata: Array<[string, GgufValue]>;
  tensors: GgufTensorSource[];
  parameterCount: number;
}

function planRandomLlama(options: RandomLlamaOptions): ModelPlan {
  const embedding = options.embeddingLength ?? 64;
  const blocks = options.blockCount ?? 2;
  const heads = options.headCount ?? 4;
  const headsKv = options.headCountKv ?? heads;
  const feedForward = options.feedForwardLength ?? embedding * 2;
  const contextLength = options.contextLength ?? 2048;
  const weightType = options.weightType ?? 'F32';
  if (embedding % heads !== 0) throw new RangeError('embeddingLength must be a multiple of headCount');
  if (weightType === 'Q8_0' && (embedding % 32 !== 0 || feedForward % 32 !== 0)) {
    throw new RangeError('Q8_0 needs embeddingLength and feedForwardLength to be multiples of 32');
  }
  const headDimension = embedding / heads;
  const kvLength = headDimension * headsKv;
  const vocabulary = buildVocabulary();
  const vocabularySize = vocabulary.tokens.length;
  const normal = normalGenerator(options.seed ?? 1);

  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: options.name ?? 'aiaas-random-llama' }],
    ['general.file_type', { type: 'uint32', value: weightType === 'F32' ? 0 : weightType === 'F16' ? 1 : 7 }],
    ['general.quantization_version', { type: 'uint32', value: 2 }],
    ['llama.context_length', { type: 'uint32', value: contextLength }],
    ['llama.embedding_length', { type: 'uint32', value: embedding }],
    ['llama.block_count', { type: 'uint32', value: blocks }],
    ['llama.feed_forward_length', { type: 'uint32', value: feedForward }],
    ['llama.attention.head_count', { type: 'uint32', value: heads }],
    ['llama.attention.head_count_kv', { type: 'uint32', value: headsKv }],
    ['llama.rope.dimension_count', { type: 'uint32', value: headDimension }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'float32', value: 1e-5 }],
    ['llama.vocab_size', { type: 'uint32', value: vocabularySize }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', elementType: 'string', values: vocabulary.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', elementType: 'float32', values: vocabulary.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', elementType: 'int32', values: vocabulary.types }],
    ['tokenizer.ggml.bos_token_id', { type: 'uint32', value: vocabulary.bos }],
    ['tokenizer.ggml.eos_token_id', { type: 'uint32', value: vocabulary.eos }],
    ['tokenizer.ggml.unknown_token_id', { type: 'uint32', value: vocabulary.unknown }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
  if (options.withoutChatTemplate !== true) metadata.push(['tokenizer.chat_template', { type: 'string', value: chatMlTemplate }]);

  const tensors: GgufTensorSource[] = [];
  let parameterCount = 0;
  const weight = (name: string, inputs: number, outputs: number): void => {
    parameterCount += inputs * outputs;
    // Q8_0 blocks run along the contiguous (input) dimension, which every 2-D weight here keeps a multiple of 32.
    const type = weightType === 'Q8_0' && inputs % 32 !== 0 ? GgmlType.F16 : GgmlType[weightType];
    tensors.push({
      name,
      dimensions: [inputs, outputs],
      type,
      data: () => {
        const values = new Float32Array(inputs * outputs);
        for (let index = 0; index < values.length; index++) values[index] = normal() * 0.02;
        return encodeWeights(values, type === GgmlType.F16 ? 'F16' : weightType);
      },
    });
  };
  const norm = (name: string): void => {
    parameterCount += embedding;
    tensors.push({ name, dimensions: [embedding], type: GgmlType.F32, data: () => new Uint8Array(new Float32Array(embedding).fill(1).buffer) });
  };

  weight('token_embd.weight', embedding, vocabularySize);
  for (let block = 0; block < blocks; block++) {
    norm(`blk.${block}.attn_norm.weight`);
    weight(`blk.${block}.attn_q.weight`, embedding, embedding);
    weight(`blk.${block}.attn_k.weight`, embedding, kvLength);
    weight(`blk.${block}.attn_v.weight`, embedding, kvLength);
    weight(`blk.${block}.attn_output.weight`, embedding, embedding);
    norm(`blk.${block}.ffn_norm.weight`);
    weight(`blk.${block}.ffn_gate.weight`, embedding, feedForward);
    weight(`blk.${block}.ffn_up.weight`, embedding, feedForward);
    weight(`blk.${block}.ffn_down.weight`, feedForward, embedding);
  }
  norm('output_norm.weight');
  weight('output.weight', embedding, vocabularySize);
  return { metadata, tensors, parameterCount };
}

/** A small random llama in memory (defaults: 64-wide, 2 blocks, ≈ 0.5 MB as F32). */
export function randomLlamaGguf(options: RandomLlamaOptions = {}): Uint8Array {
  const plan = planRandomLlama(options);
  return encodeGguf(plan.metadata, plan.tensors);
}

/** Writes a random llama to `path` tensor by tensor (benchmark models of ~100M parameters). */
export async function writeRandomLlamaGguf(path: string, options: RandomLlamaOptions = {}): Promise<{ bytes: number; parameterCount: number }> {
  const plan = planRandomLlama(options);
  const bytes = await writeGgufFile(path, plan.metadata, plan.tensors);
  return { bytes, parameterCount: plan.parameterCount };
}

/**
 * The mutation fuzzer for every file format the server parses. Each target parses bytes the way the
 * server does; the pass condition is "succeeds, or throws a catalogued AiaasError" (the SDK's tar
 * reader, which runs client-side without the server's catalogue, throws its own TarError). Anything
 * else (TypeError, RangeError, a hang) is a crash to fix at its root and to add to the corpus.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { parseCsv } from '../../src/data/csv.ts';
import { decodeText, gunzipIfCompressed } from '../../src/data/bytes.ts';
import { encodeIdx, loadIdxPair, parseIdx } from '../../src/data/idx.ts';
import { parseJsonLines } from '../../src/data/jsonl.ts';
import { detectDatasetFormat } from '../../src/data/load.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src/data/safetensors.ts';
import { loadWeights, modelFromBytes } from '../../src/engine/saved-model.ts';
import { planModel } from '../../src/engine/plan.ts';
import { resolveSpec } from '../../src/engine/spec.ts';
import { Model } from '../../src/engine/index.ts';
import { AiaasError } from '../../src/errors.ts';
import { readTar, writeTar } from '../../src/platform/tar.ts';
import { GgmlType } from '../../src/runtimes/gguf/gguf-format.ts';
import { GgufFormatError, readGgufHeader } from '../../src/runtimes/gguf/gguf-reader.ts';
import { encodeGguf } from '../../src/runtimes/gguf/gguf-writer.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { validateOnnxInChild } from '../../src/runtimes/onnx/validate-in-child.ts';
import { externalDataFiles } from '../../src/platform/external-data.ts';
import { graphCost } from '../../src/onnx/cost.ts';
import { quantizeDynamicInt8 } from '../../src/onnx/quantize.ts';
import { packTar, parseTar, TarError } from '../../src/sdk/tar.ts';
import { mutateBytes, mutateJson, Random } from './random.ts';

export const corpusDirectory = fileURLToPath(new URL('./corpus/', import.meta.url));

export interface FormatTarget {
  name: string;
  /** Valid inputs to mutate. */
  seeds: readonly Uint8Array[];
  parse(bytes: Uint8Array): unknown;
  /** JSON documents to mutate structurally (wrong types, huge values, deep nesting), besides bytewise. */
  structured?: readonly unknown[];
  /** A spawned child per case: run rarely. */
  slow?: boolean;
  /** Errors the format's contract allows, besides AiaasError. */
  allows?(error: unknown): boolean;
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

const spec = {
  name: 'fuzz',
  input: { shape: [4] },
  layers: [
    { type: 'dense', units: 3, activation: 'relu' },
    { type: 'dense', units: 2, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'sgd', learningRate: 0.1 }, loss: 'sparseCategoricalCrossentropy' },
};

function csvSample(): string {
  return 'a,b,"c d",label\n1,2.5,-3e2,0\n4,5,6,1\n"7",8,9,2\n';
}

function jsonlSample(): string {
  return '{"x":[1,2,3],"y":0.5,"label":1}\n{"x":[4,5,6],"y":-1,"label":0}\n{"x":[7,8,9],"y":2e3,"label":2}\n';
}

const idxImages = encodeIdx({ dataType: 'uint8', dims: [3, 2, 2], data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) });
const idxLabels = encodeIdx({ dataType: 'uint8', dims: [3], data: Uint8Array.from([0, 1, 2]) });

let onnxSeed: Uint8Array | undefined;
let ggufLlama: Uint8Array | undefined;

function ggufSeed(): Uint8Array {
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  return encodeGguf(
    [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['some.count', { type: 'uint64', value: 12345678901234n }],
      ['some.flag', { type: 'bool', value: true }],
      ['some.list', { type: 'array', elementType: 'int32', values: [1, -2, 3] }],
    ],
    [
      { name: 'a', dimensions: [3, 2], type: GgmlType.F32, data: () => new Uint8Array(data.buffer) },
      { name: 'b', dimensions: [5], type: GgmlType.F16, data: () => new Uint8Array(10) },
    ],
  );
}let modelForWeights: Model | undefined;

function model(): Model {
  return (modelForWeights ??= Model.fromSpec(spec, { seed: 1 }));
}

export function formatTargets(): FormatTarget[] {
  const weights = encodeSafetensors({
    'dense.kernel': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
    ids: { dtype: 'I64', shape: [2], data: BigInt64Array.from([1n, -2n]) },
    flags: { dtype: 'BOOL', shape: [3], data: Uint8Array.from([0, 1, 1]) },
  }, { format: 'aiaas' });
  onnxSeed ??= model().exportOnnx();
  return [
    { name: 'csv', seeds: [text(csvSample())], parse: (bytes) => parseCsv(bytes, { fileName: 'fuzz.csv' }) },
    { name: 'jsonl', seeds: [text(jsonlSample())], structured: [{ x: [[1, 2], [3, 4]], y: 0.5, label: 1 }, { x: 1, label: [0, 1] }], parse: (bytes) => parseJsonLines(bytes, { fileName: 'fuzz.jsonl' }) },
    {
      name: 'idx',
      seeds: [idxImages, idxLabels],
      parse: (bytes) => {
        parseIdx(bytes, 'fuzz.idx', { maxDecompressedBytes: 1 << 20 });
        return loadIdxPair(bytes, idxLabels, { maxDecompressedBytes: 1 << 20 });
      },
    },
    { name: 'safetensors', seeds: [weights, encodeWeightsOf(model())], parse: (bytes) => {
      decodeSafetensors(bytes);
      loadWeights(Model.fromSpec(spec, { seed: 1 }), bytes);
    } },
    {
      name: 'gzip',
      seeds: [Uint8Array.from(gzipSync(csvSample())), Uint8Array.from(gzipSync(idxImages))],
      parse: (bytes) => {
        gunzipIfCompressed(bytes, 'fuzz.gz', 1 << 20);
        detectDatasetFormat(bytes, 'fuzz.gz', 1 << 20);
        return decodeText(bytes, 'fuzz.gz', 1 << 20);
      },
    },
    {
      // spec.json as job submissions and saved-model uploads read it: resolve, plan, build with weights.
      name: 'spec',
      seeds: [text(JSON.stringify(spec)), text(JSON.stringify(convolutionSpec))],
      structured: [spec, convolutionSpec],
      parse: async (bytes) => {
        const specText = new TextDecoder().decode(bytes);
        let document: unknown;
        try {
          document = JSON.parse(specText);
        } catch {
          return undefined; // the server maps a syntax error to INVALID_SPEC before the engine sees it
        }
        const plan = planModel(resolveSpec(document));
        // Building allocates every parameter: bounded here as the upload path's parameter cap bounds it.
        if (plan.parameterCount <= 100_000) await modelFromBytes(specText, weightsFor(specText)).dispose();
        return plan;
      },
    },
    {
      name: 'tar',
      seeds: [writeTar([{ name: 'model/spec.json', bytes: text(JSON.stringify(spec)) }, { name: 'model/model.onnx', bytes: onnxSeed.subarray(0, 300) }])],
      parse: (bytes) => readTar(bytes),
    },
    {
      name: 'sdk-tar',
      seeds: [packTar([{ path: 'spec.json', bytes: text(JSON.stringify(spec)) }, { path: 'weights/model.safetensors', bytes: weights }])],
      parse: (bytes) => parseTar(bytes),
      allows: (error) => error instanceof TarError,
    },
    {
      // The reader works on a path (uploads are streamed to disk first); GgufFormatError is its
      // documented refusal, which the upload path reports as INVALID_MODEL_FILE.
      name: 'gguf',
      seeds: [ggufSeed(), (ggufLlama ??= randomLlamaGguf({ embeddingLength: 8, blockCount: 1, headCount: 2, headCountKv: 2, feedForwardLength: 8, contextLength: 512 }))],
      parse: async (bytes) => {
        const directory = mkdtempSync(join(tmpdir(), 'aiaas-fuzz-gguf-'));
        try {
          const path = join(directory, 'model.gguf');
          writeFileSync(path, bytes);
          return await readGgufHeader(path, { maxTensors: 4096, maxMetadataEntries: 4096, maxStringBytes: 1 << 20, maxArrayElements: 1 << 20, maxHeaderBytes: 16 << 20 });
        } finally {
          rmSync(directory, { recursive: true, force: true });
        }
      },
      allows: (error) => error instanceof GgufFormatError,
    },
    {
      // The main-process ONNX protobuf walk every upload passes (external-data policy), as a bare
      // upload and as a saved-model archive with one data file.
      name: 'onnx-reader',
      seeds: [onnxSeed],
      parse: async (bytes) => {
        await externalDataFiles(bytes, undefined, ['model.onnx']);
        return externalDataFiles(bytes, new Map([['weights.bin', new Uint8Array(64)]]), ['model.onnx']);
      },
    },
    {
      // int8 quantization's graph rewrite (it runs in the quantize child) and the cost card's count.
      name: 'onnx-quantize',
      seeds: [onnxSeed, Model.fromSpec(convolutionSpec, { seed: 2 }).exportOnnx()],
      parse: (bytes) => {
        graphCost(bytes, new Map([['input', [1, 4]]]));
        return quantizeDynamicInt8(bytes);
      },
    },
    {
      name: 'onnx',
      seeds: [onnxSeed],
      slow: true,
      parse: (bytes) => validateOnnxInChild({ onnx: bytes }, { timeoutMs: 20_000, memoryLimitBytes: 512 * 1024 ** 2 }),
    },
  ];
}

const convolutionSpec = {
  name: 'conv',
  input: { shape: [6, 6, 1] },
  layers: [
    { type: 'conv2d', filters: 2, kernelSize: 3, activation: 'relu' },
    { type: 'maxPooling2d', poolSize: 2 },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.2 },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.01 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

/** Weights that match a spec, so the build-and-load path runs past the weight check. */
function weightsFor(specText: string): Uint8Array {
  try {
    return encodeWeightsOf(Model.fromSpec(JSON.parse(specText) as unknown, { seed: 1 }));
  } catch {
    return encodeWeightsOf(model());
  }
}

function encodeWeightsOf(target: Model): Uint8Array {
  const shapes = new Map(target.plan.parameters.map((parameter) => [parameter.name, parameter.shape]));
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, data] of target.parameters) tensors[name] = { dtype: 'F32', shape: shapes.get(name)!, data };
  return encodeSafetensors(tensors);
}

export interface FormatFailure {
  format: string;
  error: string;
  input: Uint8Array;
}

/** Runs one input; returns a failure description, or undefined when the contract held. */
export async function runFormatCase(target: FormatTarget, bytes: Uint8Array): Promise<FormatFailure | undefined> {
  try {
    await target.parse(bytes);
    return undefined;
  } catch (error) {
    if (AiaasError.isInstance(error) || target.allows?.(error) === true) return undefined;
    const described = error instanceof Error ? `${error.name}: ${error.message.slice(0, 300)}` : String(error);
    return { format: target.name, error: described, input: bytes };
  }
}

/** Inputs stored under corpus/<format>/, replayed on every run. */
export function corpusInputs(format: string): { file: string; bytes: Uint8Array }[] {
  const directory = join(corpusDirectory, format);
  let files: string[];
  try {
    files = readdirSync(directory).filter((file) => !file.startsWith('.')).sort();
  } catch {
    return [];
  }
  return files.map((file) => ({ file, bytes: new Uint8Array(readFileSync(join(directory, file))) }));
}

export function saveToCorpus(format: string, bytes: Uint8Array, extension = 'bin'): string {
  const directory = join(corpusDirectory, format);
  mkdirSync(directory, { recursive: true });
  const file = join(directory, `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${extension}`);
  writeFileSync(file, bytes);
  return file;
}

/** Mutated inputs for `target`, deterministic for a seed. */
export function* mutatedInputs(target: FormatTarget, random: Random): Generator<Uint8Array> {
  for (;;) {
    if (target.structured !== undefined && random.chance(0.6)) yield text(mutateJson(random, random.pick(target.structured)));
    else yield mutateBytes(random, random.pick(target.seeds), target.seeds);
  }
}

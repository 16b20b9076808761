/**
 * The contract every tensor runtime (`Runtime` in src/runtimes/runtime.ts) must keep, in the style of
 * hono's shared router tests (`runTest({ newRouter })`): a runtime's test file calls
 * `runTensorRuntimeContract` with a factory, and these cases run against it. The cases open the tiny
 * ONNX models of test/inference/fixtures/tiny-onnx.ts, written to files because runtimes open paths.
 *
 * A runtime may take over the buffers of the tensors passed to `infer` (worker runtimes transfer
 * them), so every case builds fresh tensors for every call.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError, errorCatalogue } from '../../src/errors.ts';
import type { ModelFile, Runtime, Tensor } from '../../src/runtimes/runtime.ts';
import { ElementType, fixedBatchModel, identityModel, linearModel, linearReference, model, node, stringModel, valueInfo } from '../inference/fixtures/tiny-onnx.ts';

export interface TensorRuntimeContractOptions {
  /** Shown in the describe block: the implementation and its settings. */
  name: string;
  /** Opens a runtime on the model file; the contract disposes every runtime it opens. */
  open(model: ModelFile): Promise<Runtime>;
}

/**
 * A model whose cost the input chooses: x [1, 4] is tiled by `repeats` into a square matrix that is
 * multiplied by itself eight times (tanh between, so values stay finite) and summed. `repeats` [4, 1]
 * is a few hundred multiply-adds, [320, 80] a few hundred million: the same runtime serves a run that
 * is slow next to another by orders of magnitude, which is what the concurrency case needs.
 */
function sizedWorkModel(rounds = 8): Uint8Array {
  const nodes = [node('Tile', ['x', 'repeats'], ['h0'])];
  let previous = 'h0';
  for (let round = 1; round <= rounds; round++) {
    nodes.push(node('MatMul', [previous, 'h0'], [`m${round}`]), node('Tanh', [`m${round}`], [`h${round}`]));
    previous = `h${round}`;
  }
  nodes.push(node('ReduceSum', [previous], ['y']));
  return model({
    nodes,
    inputs: [valueInfo('x', ElementType.FLOAT, [1, 4]), valueInfo('repeats', ElementType.INT64, [2])],
    outputs: [valueInfo('y', ElementType.FLOAT, [1, 1])],
  });
}

const fixtures = {
  linear: linearModel,
  identity: identityModel,
  string: stringModel,
  fixedBatch: fixedBatchModel,
  sizedWork: () => sizedWorkModel(),
} as const;
type FixtureName = keyof typeof fixtures;

const x = (rows: number[][]): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows.length, 3], data: new Float32Array(rows.flat()) });
const work = (side: number): Tensor[] => [
  { name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([0.01, 0.02, 0.03, 0.04]) },
  { name: 'repeats', datatype: 'INT64', shape: [2], data: new BigInt64Array([BigInt(side), BigInt(side / 4)]) },
];
const slowWork = (): Tensor[] => work(320);
const quickWork = (): Tensor[] => work(4);

function byName(outputs: Tensor[], name: string): Tensor {
  const found = outputs.find((output) => output.name === name);
  if (found === undefined) throw new Error(`no output '${name}' among ${outputs.map((output) => output.name).join(', ')}`);
  return found;
}

export function runTensorRuntimeContract(options: TensorRuntimeContractOptions): void {
  describe(`TensorRuntime contract: ${options.name}`, () => {
    let directory: string;
    const files = {} as Record<FixtureName, ModelFile>;
    const opened: Runtime[] = [];

    async function open(fixture: FixtureName): Promise<Runtime> {
      const runtime = await options.open(files[fixture]);
      opened.push(runtime);
      return runtime;
    }

    beforeAll(async () => {
      directory = await mkdtemp(join(tmpdir(), 'aiaas-contract-'));
      for (const [name, build] of Object.entries(fixtures) as [FixtureName, () => Uint8Array][]) {
        const bytes = build();
        const path = join(directory, `${name}.onnx`);
        await writeFile(path, bytes, { mode: 0o600 });
        files[name] = { path, sizeBytes: bytes.byteLength };
      }
    });

    afterAll(async () => {
      await Promise.all(opened.map((runtime) => runtime.dispose()));
      await rm(directory, { recursive: true, force: true });
    });

    it('declares version v1 and a signature with named, typed tensors and -1 for dynamic dimensions', async () => {
      const linear = await open('linear');
      expect(linear.specificationVersion).toBe('v1');
      expect(linear.signature()).toEqual({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
        outputs: [
          { name: 'y', datatype: 'FP32', shape: [-1, 2] },
          { name: 'r', datatype: 'FP32', shape: [-1, 2] },
        ],
      });
      const identity = await open('identity');
      expect(identity.signature().inputs).toEqual([
        { name: 'i64', datatype: 'INT64', shape: [-1, 2] },
        { name: 'flag', datatype: 'BOOL', shape: [-1] },
        { name: 'u8', datatype: 'UINT8', shape: [-1] },
        { name: 'f64', datatype: 'FP64', shape: [-1] },
        { name: 'i32', datatype: 'INT32', shape: [-1] },
      ]);
      expect((await open('fixedBatch')).signature().inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [1, 3] }]);
      expect((await open('string')).signature().outputs).toEqual([{ name: 'text_out', datatype: 'BYTES', shape: [-1] }]);
    });

    it('returns all outputs in signature order when none are named, with the values the model defines', async () => {
      const runtime = await open('linear');
      const rows = [[1, 2, 3], [-4, -5, -6]];
      const outputs = await runtime.infer([x(rows)]);
      const expected = linearReference(rows);
      expect(outputs.map((output) => [output.name, output.datatype, output.shape])).toEqual([
        ['y', 'FP32', [2, 2]],
        ['r', 'FP32', [2, 2]],
      ]);
      expect(Array.from(outputs[0]!.data as Float32Array)).toEqual(expected.y.flat());
      expect(Array.from(outputs[1]!.data as Float32Array)).toEqual(expected.r.flat());
      expect(expected.r.flat()).toContain(0); // the second row really goes through Relu's cut
    });

    it('returns only the requested outputs, in the requested order', async () => {
      const runtime = await open('linear');
      const rows = [[0.5, 0.25, -1]];
      const expected = linearReference(rows);
      const reversed = await runtime.infer([x(rows)], ['r', 'y']);
      expect(reversed.map((output) => output.name)).toEqual(['r', 'y']);
      expect(Array.from(reversed[0]!.data as Float32Array)).toEqual(expected.r.flat());
      expect(Array.from(reversed[1]!.data as Float32Array)).toEqual(expected.y.flat());
      const single = await runtime.infer([x(rows)], ['y']);
      expect(single.map((output) => output.name)).toEqual(['y']);
    });

    it('carries every element type through unchanged: INT64, BOOL, UINT8, FP64, INT32 and BYTES', async () => {
      const identity = await open('identity');
      const outputs = await identity.infer([
        { name: 'i64', datatype: 'INT64', shape: [2, 2], data: new BigInt64Array([1n, -2n, 9_007_199_254_740_993n, 0n]) },
        { name: 'flag', datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
        { name: 'u8', datatype: 'UINT8', shape: [2], data: new Uint8Array([0, 255]) },
        { name: 'f64', datatype: 'FP64', shape: [2], data: new Float64Array([Math.PI, -0.1]) },
        { name: 'i32', datatype: 'INT32', shape: [2], data: new Int32Array([-2_147_483_648, 7]) },
      ]);
      expect(byName(outputs, 'i64_out')).toMatchObject({ datatype: 'INT64', shape: [2, 2] });
      expect(Array.from(byName(outputs, 'i64_out').data as BigInt64Array)).toEqual([1n, -2n, 9_007_199_254_740_993n, 0n]);
      expect(byName(outputs, 'flag_out')).toMatchObject({ datatype: 'BOOL', shape: [2] });
      expect(Array.from(byName(outputs, 'flag_out').data as Uint8Array)).toEqual([1, 0]);
      expect(Array.from(byName(outputs, 'u8_out').data as Uint8Array)).toEqual([0, 255]);
      expect(Array.from(byName(outputs, 'f64_out').data as Float64Array)).toEqual([Math.PI, -0.1]);
      expect(Array.from(byName(outputs, 'i32_out').data as Int32Array)).toEqual([-2_147_483_648, 7]);

      const strings = await open('string');
      const [text] = await strings.infer([{ name: 'text', datatype: 'BYTES', shape: [3], data: ['hello', '', 'żółw 🐢'] }]);
      expect(text).toEqual({ name: 'text_out', datatype: 'BYTES', shape: [3], data: ['hello', '', 'żółw 🐢'] });
    });

    it('answers a wrong input with a catalogued AiaasError that names no host path, and keeps serving', async () => {
      const runtime = await open('fixedBatch');
      const wrongInputs: Tensor[][] = [
        [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: new Float32Array(6) }], // a fixed dimension broken
        [{ name: 'x', datatype: 'INT32', shape: [1, 3], data: new Int32Array(3) }], // the wrong element type
        [{ name: 'nope', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }], // an unknown name
      ];
      for (const inputs of wrongInputs) {
        const error = await runtime.infer(inputs).catch((caught: unknown) => caught);
        expect(AiaasError.isInstance(error), `${inputs[0]!.name} ${inputs[0]!.datatype} [${inputs[0]!.shape.join(',')}]`).toBe(true);
        const { code, message } = error as AiaasError;
        expect(Object.keys(errorCatalogue)).toContain(code);
        expect(message).not.toContain(directory);
        expect(message).not.toMatch(/onnxruntime_src|\.cc:\d/);
      }
      const [y] = await runtime.infer([{ name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array([-1, 0, 2]) }]);
      expect(Array.from(y!.data as Float32Array)).toEqual([0, 0, 2]);
    });

    it('settles many concurrent calls, each with its own answer', async () => {
      const runtime = await open('linear');
      const batches = Array.from({ length: 12 }, (_, index) => Array.from({ length: (index % 3) + 1 }, (_, row) => [index, row, index - row]));
      const answers = await Promise.all(batches.map((rows) => runtime.infer([x(rows)], ['y'])));
      answers.forEach(([y], index) => {
        const rows = batches[index]!;
        expect(y!.shape).toEqual([rows.length, 2]);
        expect(Array.from(y!.data as Float32Array)).toEqual(linearReference(rows).y.flat());
      });
    });

    it('runs as many inferences at once as its concurrency, and queues the next', async () => {
      const slow = await open('sizedWork');
      const concurrency = slow.concurrency ?? 1;
      const order: string[] = [];
      const track = (label: string, run: Promise<Tensor[]>): Promise<void> => run.then(() => void order.push(label));

      // With one instance still free, a quick run does not wait behind the slow ones.
      const busy = Array.from({ length: concurrency - 1 }, (_, index) => track(`slow${index}`, slow.infer(slowWork())));
      await track('free', slow.infer(quickWork()));
      await Promise.all(busy);
      expect(order[0]).toBe('free');

      // With every instance busy, the next run waits until one of them is done.
      order.length = 0;
      const full = Array.from({ length: concurrency }, (_, index) => track(`slow${index}`, slow.infer(slowWork())));
      const queued = track('queued', slow.infer(quickWork()));
      await Promise.all([...full, queued]);
      expect(order).toHaveLength(concurrency + 1);
      expect(order[0]).not.toBe('queued');
    });

    it('reports a positive memory estimate', async () => {
      const runtime = await open('linear');
      expect(runtime.memoryBytes()).toBeGreaterThan(0);
    });

    it('refuses inference with MODEL_NOT_READY after dispose, and disposes twice without error', async () => {
      const runtime = await options.open(files.linear);
      expect((await runtime.infer([x([[1, 1, 1]])]))).toHaveLength(2);
      await runtime.dispose();
      const error = await runtime.infer([x([[1, 1, 1]])]).catch((caught: unknown) => caught);
      expect(AiaasError.isInstance(error) && error.code).toBe('MODEL_NOT_READY');
      await expect(runtime.dispose()).resolves.toBeUndefined();
    });
  });
}

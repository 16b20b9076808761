/**
 * Dynamic int8 quantization on hand-made graphs: per-channel scales and int8 values are exactly
 * what the rule says, the quantized model runs in ONNX Runtime with outputs within the error the
 * quantization allows, unsupported nodes stay float32 and are reported, and the result passes the
 * ONNX checker (when /usr/bin/python3 has the onnx package).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { readModelView, readTensor } from '../../src/onnx/model-fields.ts';
import { attribute, encodeOnnxModel, floatTensor, int64Tensor, OnnxDataType, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from '../../src/onnx/model.ts';
import { quantizeDynamicInt8 } from '../../src/onnx/quantize.ts';

const directory = mkdtempSync(join(tmpdir(), 'aiaas-quantize-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function onnxAvailable(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const checkerAvailable = onnxAvailable();

/** Runs onnx.checker (full_check: shape inference too) on the bytes; 'ok' or the checker's complaint. */
function onnxChecker(bytes: Uint8Array, name: string): string {
  const path = join(directory, `${name}.onnx`);
  writeFileSync(path, bytes);
  return execFileSync('/usr/bin/python3', ['-c', 'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print("ok")', path]).toString().trim();
}

function model(nodes: OnnxNode[], initializers: OnnxTensor[], inputs: OnnxValueInfo[], outputs: OnnxValueInfo[], opsetVersion = 17): Uint8Array {
  const value: OnnxModel = { graph: { name: 'test', nodes, initializers, inputs, outputs }, opsetVersion, irVersion: 8, producerName: 'test', producerVersion: '1' };
  return encodeOnnxModel(value);
}

const float = (name: string, shape: (number | string)[]): OnnxValueInfo => ({ name, elemType: OnnxDataType.FLOAT, shape });

/** Deterministic values in [-1, 1). */
function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[index] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const result = await session.run(feeds);
    return result[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function initializer(bytes: Uint8Array, name: string) {
  const view = readModelView(bytes);
  const field = view.graph.initializers.find(({ tensor }) => tensor.name === name);
  if (field === undefined) return undefined;
  return readTensor(view.graph.fields[field.fieldIndex]!.payload!);
}

function floatsOf(raw: Uint8Array | undefined): Float32Array {
  const copy = new Float32Array((raw?.byteLength ?? 0) / 4);
  new Uint8Array(copy.buffer).set(raw ?? new Uint8Array(0));
  return copy;
}

function maxDifference(left: Float32Array, right: Float32Array): number {
  let largest = 0;
  for (let index = 0; index < left.length; index++) largest = Math.max(largest, Math.abs(left[index]! - right[index]!));
  return largest;
}

describe('MatMul', () => {
  // 4 × 3, one column all zeros and one with a single large value, so the scales differ widely.
  const weights = Float32Array.from([0.5, 0, -2.54, -0.25, 0, 0.01, 1, 0, 0.02, -0.75, 0, 0.03]);
  const bytes = model(
    [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'dense' }],
    [floatTensor('w', [4, 3], weights)],
    [float('x', ['batch', 4])],
    [float('y', ['batch', 3])],
  );
  const result = quantizeDynamicInt8(bytes);

  it('quantizes each column with its own scale, max |w| / 127, and int8 values round(w / scale)', () => {
    expect(result.quantizedNodes).toEqual([{ node: 'dense', opType: 'MatMul', weight: 'w', channels: 3 }]);
    expect(result.floatNodes).toEqual([]);
    const scales = floatsOf(initializer(result.bytes, 'w_scale')?.rawData);
    expect(Array.from(scales)).toEqual(Array.from(Float32Array.from([1 / 127, 1, 2.54 / 127])));
    const quantized = initializer(result.bytes, 'w_int8');
    expect(quantized?.dataType).toBe(OnnxDataType.INT8);
    expect(quantized?.dims).toEqual([4, 3]);
    expect(Array.from(new Int8Array(quantized!.rawData!.buffer.slice(quantized!.rawData!.byteOffset, quantized!.rawData!.byteOffset + 12)))).toEqual([64, 0, -127, -32, 0, 1, 127, 0, 1, -95, 0, 2]);
    // The float weight is gone: every reader of it was rewritten.
    expect(initializer(result.bytes, 'w')).toBeUndefined();
    expect(result.weightBytesBefore).toBe(48);
    expect(result.weightBytesAfter).toBe(12 + 12);
  });

  it('runs in ONNX Runtime within the error the scales allow', async () => {
    const input = values(8 * 4, 11);
    const expected = await run(bytes, { x: new ort.Tensor('float32', input, [8, 4]) });
    const actual = await run(result.bytes, { x: new ort.Tensor('float32', input, [8, 4]) });
    // |x·w − x̂·ŵ| ≤ Σ_k (|x_k| · s_w/2 + |w_k| · s_x/2 + s_x · s_w / 4), s_x = range / 255.
    const inputScale = (Math.max(0, ...input) - Math.min(0, ...input)) / 255;
    const scales = [1 / 127, 1, 2.54 / 127];
    for (let row = 0; row < 8; row++) {
      for (let column = 0; column < 3; column++) {
        let bound = 0;
        for (let k = 0; k < 4; k++) bound += (Math.abs(input[row * 4 + k]!) * scales[column]!) / 2 + (Math.abs(weights[k * 3 + column]!) * inputScale) / 2 + (inputScale * scales[column]!) / 4;
        expect(Math.abs(expected[row * 3 + column]! - actual[row * 3 + column]!)).toBeLessThanOrEqual(bound + 1e-6);
      }
    }
    expect(maxDifference(expected, actual)).toBeGreaterThan(0);
  });

  it.skipIf(!checkerAvailable)('passes the ONNX checker', () => {
    expect(onnxChecker(result.bytes, 'matmul')).toBe('ok');
  });
});

describe('Conv', () => {
  const weights = values(3 * 2 * 3 * 3, 5);
  // Output channel 1 is ten times larger: a per-tensor scale would crush channels 0 and 2.
  for (let index = 18; index < 36; index++) weights[index]! *= 10;
  const bias = Float32Array.from([0.1, -0.2, 0.3]);
  const bytes = model(
    [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], name: 'conv', attributes: { pads: attribute.ints([1, 1, 1, 1]), strides: attribute.ints([1, 1]) } }],
    [floatTensor('w', [3, 2, 3, 3], weights), floatTensor('b', [3], bias)],
    [float('x', ['batch', 2, 5, 5])],
    [float('y', ['batch', 3, 5, 5])],
  );
  const result = quantizeDynamicInt8(bytes);

  it('has one scale per output channel, shaped [1, M, 1, 1], each max |w| of its filter / 127', () => {
    const scale = initializer(result.bytes, 'w_scale');
    expect(scale?.dims).toEqual([1, 3, 1, 1]);
    const expected = [0, 1, 2].map((channel) => Math.max(...Array.from(weights.subarray(channel * 18, (channel + 1) * 18), Math.abs)) / 127);
    expect(Array.from(floatsOf(scale?.rawData))).toEqual(Array.from(Float32Array.from(expected)));
    // Stored as uint8 = round(w / scale) + 128, with one scalar zero point of 128.
    const filters = initializer(result.bytes, 'w_uint8');
    expect([filters?.dataType, filters?.dims]).toEqual([OnnxDataType.UINT8, [3, 2, 3, 3]]);
    expect(Array.from(filters!.rawData!)).toEqual(Array.from(weights, (value, index) => Math.round(value / expected[Math.floor(index / 18)]!) + 128));
    const zeroPoint = initializer(result.bytes, 'w_zero_point');
    expect([zeroPoint?.dataType, zeroPoint?.dims, Array.from(zeroPoint!.rawData!)]).toEqual([OnnxDataType.UINT8, [], [128]]);
    expect(initializer(result.bytes, 'b_per_channel')?.dims).toEqual([1, 3, 1, 1]);
    // The original bias and filters are gone: nothing reads them any more.
    expect(initializer(result.bytes, 'b')).toBeUndefined();
    expect(initializer(result.bytes, 'w')).toBeUndefined();
    expect(result.quantizedNodes).toEqual([{ node: 'conv', opType: 'Conv', weight: 'w', channels: 3 }]);
  });

  it('runs in ONNX Runtime (ConvInteger) close to the float convolution', async () => {
    const input = values(2 * 2 * 5 * 5, 17);
    const expected = await run(bytes, { x: new ort.Tensor('float32', input, [2, 2, 5, 5]) });
    const actual = await run(result.bytes, { x: new ort.Tensor('float32', input, [2, 2, 5, 5]) });
    const largest = Math.max(...Array.from(expected, Math.abs));
    expect(maxDifference(expected, actual)).toBeLessThan(0.02 * largest);
  });

  it.skipIf(!checkerAvailable)('passes the ONNX checker', () => {
    expect(onnxChecker(result.bytes, 'conv')).toBe('ok');
  });
});

describe('Gemm', () => {
  it('folds alpha into the scales, beta into the bias, and transposes a transB weight', async () => {
    const weights = values(5 * 4, 23); // [N = 5, K = 4] with transB = 1
    const bias = values(5, 29);
    const bytes = model(
      [{ opType: 'Gemm', inputs: ['x', 'w', 'c'], outputs: ['y'], name: 'gemm', attributes: { transB: attribute.int(1), alpha: attribute.float(0.5), beta: attribute.float(2) } }],
      [floatTensor('w', [5, 4], weights), floatTensor('c', [5], bias)],
      [float('x', ['batch', 4])],
      [float('y', ['batch', 5])],
    );
    const result = quantizeDynamicInt8(bytes);
    expect(initializer(result.bytes, 'w_int8')?.dims).toEqual([4, 5]);
    const input = values(6 * 4, 31);
    const expected = await run(bytes, { x: new ort.Tensor('float32', input, [6, 4]) });
    const actual = await run(result.bytes, { x: new ort.Tensor('float32', input, [6, 4]) });
    expect(maxDifference(expected, actual)).toBeLessThan(0.02);
    if (checkerAvailable) expect(onnxChecker(result.bytes, 'gemm')).toBe('ok');
  });
});

describe('what stays float32', () => {
  const bytes = model(
    [
      { opType: 'MatMul', inputs: ['x', 'w'], outputs: ['h'], name: 'dense' },
      // Both operands computed at run time: nothing to quantize ahead of time.
      { opType: 'MatMul', inputs: ['h', 'other'], outputs: ['g'], name: 'activation_product' },
      // An embedding lookup carries a float weight of its own, which dynamic-int8 does not quantize.
      { opType: 'Gather', inputs: ['table', 'ids'], outputs: ['e'], name: 'embedding', attributes: { axis: attribute.int(0) } },
      { opType: 'Reshape', inputs: ['e', 'shape'], outputs: ['flat'], name: 'reshape' },
      { opType: 'Add', inputs: ['g', 'flat'], outputs: ['y'], name: 'sum' },
    ],
    [floatTensor('w', [3, 4], values(12, 3)), floatTensor('table', [10, 2], values(20, 4)), int64Tensor('ids', [2], [1, 7]), int64Tensor('shape', [2], [1, 4])],
    [float('x', ['batch', 3]), float('other', [4, 4])],
    [float('y', ['batch', 4])],
  );

  it('leaves unsupported nodes in float32 and reports each with its reason', async () => {
    const result = quantizeDynamicInt8(bytes);
    expect(result.quantizedNodes.map((node) => node.node)).toEqual(['dense']);
    expect(result.floatNodes).toEqual([
      { node: 'activation_product', opType: 'MatMul', reason: "its weight 'other' is computed in the graph, not an initializer" },
      { node: 'embedding', opType: 'Gather', reason: 'Gather is not quantized by dynamic-int8 (MatMul, Gemm and Conv are)' },
    ]);
    // The Gather table is untouched, still float32.
    expect(initializer(result.bytes, 'table')?.dataType).toBe(OnnxDataType.FLOAT);
    const feeds = () => ({ x: new ort.Tensor('float32', values(6, 9), [2, 3]), other: new ort.Tensor('float32', values(16, 10), [4, 4]) });
    const expected = await run(bytes, feeds());
    const actual = await run(result.bytes, feeds());
    expect(maxDifference(expected, actual)).toBeLessThan(0.05);
    if (checkerAvailable) expect(onnxChecker(result.bytes, 'mixed')).toBe('ok');
  });

  it('refuses a model with nothing to quantize, and one older than opset 11', () => {
    const nothing = model([{ opType: 'Relu', inputs: ['x'], outputs: ['y'], name: 'relu' }], [], [float('x', [2])], [float('y', [2])]);
    expect(() => quantizeDynamicInt8(nothing)).toThrow(expect.objectContaining({ code: 'QUANTIZATION_UNSUPPORTED' }) as AiaasError);
    const old = model([{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'dense' }], [floatTensor('w', [2, 2], [1, 2, 3, 4])], [float('x', [1, 2])], [float('y', [1, 2])], 10);
    expect(() => quantizeDynamicInt8(old)).toThrow(/opset 11 or later.*opset 10/);
    expect(() => quantizeDynamicInt8(Uint8Array.from([0xff, 0xff, 0xff]))).toThrow(expect.objectContaining({ code: 'INVALID_MODEL_FILE' }) as AiaasError);
  });
});

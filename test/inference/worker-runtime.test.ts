import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { Batcher } from '../../src/inference/batcher.ts';
import { openOnnxInWorkers } from '../../src/runtimes/onnx/onnx-worker-runtime.ts';
import type { Runtime, Tensor } from '../../src/runtimes/runtime.ts';
import { Gate, defaultBatching } from './fixtures/app.ts';
import { linearModel, slowModel } from './fixtures/tiny-onnx.ts';

let directory: string;
const x = (rows: number[][]): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows.length, 3], data: new Float32Array(rows.flat()) });

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-workers-'));
  await writeFile(join(directory, 'linear.onnx'), linearModel());
  await writeFile(join(directory, 'slow.onnx'), slowModel());
  await writeFile(join(directory, 'garbage.onnx'), new Uint8Array([1, 2, 3, 4, 5]));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

// Signature, values, output selection, wrong inputs, concurrency and dispose: test/runtimes/onnx-worker-runtime.contract.test.ts.
describe('ONNX models in worker threads', () => {
  it('keeps the main thread free while a slow model runs, and runs a fast model meanwhile', async () => {
    const slow = await openOnnxInWorkers(join(directory, 'slow.onnx'), { instances: 1, intraOpThreads: 1 });
    const fast = await openOnnxInWorkers(join(directory, 'linear.onnx'), { instances: 1, intraOpThreads: 1 });
    try {
      const order: string[] = [];
      const slowRun = slow.infer([{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([0.01, 0.02, 0.03, 0.04]) }]).then(() => order.push('slow'));
      // Each of these needs the main thread's event loop (a timer) or another worker while the slow run is in progress.
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push('timer');
      await fast.infer([x([[1, 1, 1]])]);
      order.push('fast');
      await slowRun;
      expect(order).toEqual(['timer', 'fast', 'slow']);
    } finally {
      await Promise.all([slow.dispose(), fast.dispose()]);
    }
  });

  it('refuses a file ONNX Runtime cannot open, without a path in the message', async () => {
    const error = await openOnnxInWorkers(join(directory, 'garbage.onnx'), { instances: 1, intraOpThreads: 1 }).catch((caught: unknown) => caught);
    expect(AiaasError.isInstance(error) && error.code).toBe('MODEL_LOAD_FAILED');
    expect((error as Error).message).not.toContain(directory);
  });

  it('answers a bad input with INFERENCE_FAILED and keeps serving', async () => {
    const runtime = await openOnnxInWorkers(join(directory, 'linear.onnx'), { instances: 1, intraOpThreads: 1 });
    try {
      const error = await runtime.infer([{ name: 'x', datatype: 'FP32', shape: [1, 5], data: new Float32Array(5) }]).catch((caught: unknown) => caught);
      expect(AiaasError.isInstance(error) && error.code).toBe('INFERENCE_FAILED');
      expect((error as Error).message).not.toMatch(/onnxruntime_src|\/.+\.cc/);
      expect((await runtime.infer([x([[0, 0, 0]])]))[0]!.shape).toEqual([1, 2]);
    } finally {
      await runtime.dispose();
    }
  });
});

describe('Batcher with several instances and several callers', () => {
  /** A runtime whose runs wait at a gate and that records the row count of each run. */
  async function gatedRuntime(concurrency: number): Promise<{ runtime: Runtime; gate: Gate; runs: number[]; inner: Runtime }> {
    const inner = await openOnnxInWorkers(join(directory, 'linear.onnx'), { instances: concurrency, intraOpThreads: 1 });
    const gate = new Gate();
    const gated = gate.wrap(inner);
    const runs: number[] = [];
    return {
      gate,
      runs,
      inner,
      runtime: { ...gated, concurrency, infer: async (inputs, outputs) => { runs.push(inputs[0]!.shape[0]!); return await gated.infer(inputs, outputs); } },
    };
  }

  it('runs as many batches at once as the runtime has instances', async () => {
    const { runtime, gate, inner } = await gatedRuntime(2);
    try {
      gate.close();
      const batcher = new Batcher(runtime, { ...defaultBatching, maxBatchSize: 1 });
      const answers = [1, 2, 3].map((value) => batcher.submit({ inputs: [x([[value, 0, 0]])] }));
      await gate.waitEntered(2);
      expect(gate.entered).toBe(2);
      expect(batcher.queueDepth).toBe(1);
      gate.open();
      expect((await Promise.all(answers)).length).toBe(3);
    } finally {
      await inner.dispose();
    }
  });

  it('takes callers round-robin, so a flood from one caller does not starve another', async () => {
    const { runtime, gate, runs, inner } = await gatedRuntime(1);
    try {
      gate.close();
      const batcher = new Batcher(runtime, { ...defaultBatching, maxBatchSize: 4, maxQueueDelayMicroseconds: 0 });
      const served: string[] = [];
      const submit = (key: string, index: number) => batcher.submit({ inputs: [x([[index, 0, 0]])] }, { fairnessKey: key }).then(() => served.push(`${key}${index}`));
      const blocker = submit('a', 0);
      await gate.waitEntered(1);
      const flood = Array.from({ length: 8 }, (_, index) => submit('a', index + 1));
      const other = [submit('b', 1), submit('b', 2)];
      gate.open();
      await Promise.all([blocker, ...flood, ...other]);
      // The second batch holds four rows: two of the flood and both of b's, taken in turns.
      expect(runs.slice(0, 2)).toEqual([1, 4]);
      expect(served.indexOf('b2')).toBeLessThan(served.indexOf('a5'));
    } finally {
      await inner.dispose();
    }
  });

  it('drops a queued request whose client went away', async () => {
    const { runtime, gate, runs, inner } = await gatedRuntime(1);
    try {
      gate.close();
      const batcher = new Batcher(runtime, { ...defaultBatching, maxBatchSize: 1 });
      const first = batcher.submit({ inputs: [x([[1, 0, 0]])] });
      await gate.waitEntered(1);
      const controller = new AbortController();
      const dropped = batcher.submit({ inputs: [x([[2, 0, 0]])] }, { signal: controller.signal });
      controller.abort();
      const error = await dropped.catch((caught: unknown) => caught);
      expect(AiaasError.isInstance(error) && error.code).toBe('CLIENT_DISCONNECTED');
      expect(batcher.queueDepth).toBe(0);
      gate.open();
      await first;
      expect(runs).toEqual([1]);
    } finally {
      await inner.dispose();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { openOnnxInWorkers } from '../../src/runtimes/onnx/onnx-worker-runtime.ts';
import type { Runtime, Tensor } from '../../src/runtimes/runtime.ts';
import { Batcher } from '../../src/inference/batcher.ts';
import { ModelManager, type ModelManagerOptions } from '../../src/inference/model-manager.ts';
import { createFormatLoaders } from '../../src/runtimes/formats.ts';
import { Metrics } from '../../src/http/metrics.ts';
import { Gate, defaultBatching } from './fixtures/app.ts';
import { openFilesFrom, openTestRuntime, writeModelFiles } from './fixtures/model-files.ts';
import { fixedBatchModel, linearModel, linearReference } from './fixtures/tiny-onnx.ts';

const bytes = linearModel();
const x = (rows: number[][]): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows.length, 3], data: new Float32Array(rows.flat()) });

function manager(overrides: Partial<ModelManagerOptions> = {}): { manager: ModelManager; loads: string[] } {
  const loads: string[] = [];
  return {
    loads,
    manager: new ModelManager({
      openFiles: openFilesFrom((key) => {
        loads.push(key.versionId);
        return bytes;
      }),
      memoryBudgetBytes: 1024 ** 3,
      idleUnloadMs: 0,
      warmup: false,
      batchingDefaults: defaultBatching,
      ...overrides,
    }),
  };
}

describe('ModelManager', () => {
  it('shares one load between concurrent first uses', async () => {
    const { manager: models, loads } = manager();
    const [first, second] = await Promise.all([models.acquire({ versionId: 'a' }), models.acquire({ versionId: 'a' })]);
    expect(first.runtime).toBe(second.runtime);
    expect(loads).toEqual(['a']);
    expect(models.loaded()).toEqual([expect.objectContaining({ key: { versionId: 'a' }, memoryBytes: bytes.byteLength })]);
    await models.close();
  });

  it('evicts the least recently used model when over budget', async () => {
    let clock = 0;
    const { manager: models } = manager({ memoryBudgetBytes: Math.floor(bytes.byteLength * 2.5), now: () => ++clock });
    await models.acquire({ versionId: 'a' });
    await models.acquire({ versionId: 'b' });
    await models.infer({ versionId: 'a' }, { inputs: [x([[1, 2, 3]])] }); // a is now more recent than b
    await models.acquire({ versionId: 'c' });
    expect(models.loaded().map((entry) => entry.key.versionId).sort()).toEqual(['a', 'c']);
    expect(models.isLoaded('b')).toBe(false);
    await models.close();
  });

  it('budgets a version at its measured memory times its instances, not its file size', async () => {
    let clock = 0;
    // Measured bytes per version; the file (a few hundred bytes) alone would be over this budget.
    const measured: Record<string, number> = { a: 40, b: 40, c: 20 };
    const models = new ModelManager({
      openFiles: async (key) => ({ ...(await writeModelFiles(bytes)), measuredMemoryBytes: measured[key.versionId]! }),
      loaders: createFormatLoaders({ tensor: { instances: 2, intraOpThreads: 1 }, language: { parallel: 1, maxWaiting: 0, threads: 1, contextLength: 64, maxContextLength: 64 } }, { info: () => undefined }),
      memoryBudgetBytes: 170,
      idleUnloadMs: 0,
      warmup: false,
      batchingDefaults: defaultBatching,
      now: () => ++clock,
    });
    expect(bytes.byteLength).toBeGreaterThan(170);
    await models.acquire({ versionId: 'a' });
    await models.acquire({ versionId: 'b' });
    // Two instances each: 80 + 80 of 170.
    expect(models.loaded().map((entry) => [entry.key.versionId, entry.memoryBytes])).toEqual([['a', 80], ['b', 80]]);
    // c's 40 would make 200: the least recently used (a) goes.
    await models.acquire({ versionId: 'c' });
    expect(models.loaded().map((entry) => [entry.key.versionId, entry.memoryBytes]).sort()).toEqual([['b', 80], ['c', 40]]);
    await models.close();
  });

  it('gives each tenant a fair share: a load evicts from the tenant furthest over it, never from one under it', async () => {
    let clock = 0;
    // Room for two models: with two tenants loaded, each is entitled to one.
    const { manager: models } = manager({ memoryBudgetBytes: Math.floor(bytes.byteLength * 2.5), now: () => ++clock });
    await models.acquire({ versionId: 'a1', tenantId: 'A' });
    await models.acquire({ versionId: 'a2', tenantId: 'A' });
    // A alone may use the whole budget.
    expect(models.loaded().map((entry) => entry.key.versionId).sort()).toEqual(['a1', 'a2']);
    await models.acquire({ versionId: 'b1', tenantId: 'B' });
    // B's load evicts A's least recently used model: A was over its half, B under.
    expect(models.loaded().map((entry) => entry.key.versionId).sort()).toEqual(['a2', 'b1']);
    // A uses a2 again, so B's model is the least recently used of all; yet A's next load evicts A's own
    // model (a plain LRU would evict B's).
    await models.acquire({ versionId: 'a2', tenantId: 'A' });
    await models.acquire({ versionId: 'a3', tenantId: 'A' });
    expect(models.loaded().map((entry) => entry.key.versionId).sort()).toEqual(['a3', 'b1']);
    await models.close();
  });

  it('never evicts a model that is mid-inference', async () => {
    const gate = new Gate();
    const { manager: models } = manager({
      memoryBudgetBytes: Math.floor(bytes.byteLength * 1.5),
      loadRuntime: async (data) => gate.wrap(await openOnnxInWorkers(data, { instances: 1, intraOpThreads: 1 })),
    });
    gate.close();
    const busy = models.infer({ versionId: 'a' }, { inputs: [x([[1, 2, 3]])] });
    await gate.waitEntered(1);
    await models.acquire({ versionId: 'b' });
    expect(models.isLoaded('a')).toBe(true); // over budget rather than pulling a runtime out from under a request
    gate.open();
    const result = await busy;
    expect(Array.from(result.outputs[0]!.data as Float32Array)).toEqual(linearReference([[1, 2, 3]]).y[0]);
    await models.acquire({ versionId: 'c' });
    expect(models.loaded().map((entry) => entry.key.versionId)).toEqual(['c']);
    await models.close();
  });

  it('serves a request that raced an unload from a fresh load instead of the disposed runtime', async () => {
    const { manager: models, loads } = manager({ batchingDefaults: { ...defaultBatching, maxQueueDelayMicroseconds: 1000 } });
    await models.acquire({ versionId: 'a' });
    const unloaded = models.unload({ versionId: 'a' });
    const request = models.infer({ versionId: 'a' }, { inputs: [x([[1, 2, 3]])] });
    const [result] = await Promise.all([request, unloaded]);
    expect(Array.from(result.outputs[0]!.data as Float32Array)).toEqual(linearReference([[1, 2, 3]]).y[0]);
    expect(loads).toEqual(['a', 'a']);
    await models.close();
  });

  it('finishes a request queued before an unload on the loaded runtime, then unloads', async () => {
    const { manager: models, loads } = manager({ batchingDefaults: { ...defaultBatching, maxQueueDelayMicroseconds: 1000 } });
    await models.acquire({ versionId: 'a' });
    const request = models.infer({ versionId: 'a' }, { inputs: [x([[1, 2, 3]])] });
    const unloaded = models.unload({ versionId: 'a' });
    const [result, wasLoaded] = await Promise.all([request, unloaded]);
    expect(Array.from(result.outputs[0]!.data as Float32Array)).toEqual(linearReference([[1, 2, 3]]).y[0]);
    expect(wasLoaded).toBe(true);
    expect(loads).toEqual(['a']);
    expect(models.isLoaded('a')).toBe(false);
    await models.close();
  });

  it('refuses a model larger than the whole budget', async () => {
    const { manager: models } = manager({ memoryBudgetBytes: 10 });
    await expect(models.acquire({ versionId: 'a' })).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED' });
    expect(models.loaded()).toEqual([]);
  });

  it('unloads idle models by the injected clock, and reloads on next use', async () => {
    let clock = 1_000;
    const { manager: models, loads } = manager({ idleUnloadMs: 500, now: () => clock });
    await models.acquire({ versionId: 'a' });
    clock += 499;
    expect(await models.sweepIdle()).toEqual([]);
    clock += 1;
    expect(await models.sweepIdle()).toEqual(['a']);
    expect(models.isLoaded('a')).toBe(false);
    await models.acquire({ versionId: 'a' });
    expect(loads).toEqual(['a', 'a']);
    await models.close();
  });

  it('warms up with zeros of the signature shape and reports loaded models', async () => {
    const calls: Tensor[][] = [];
    const metrics = new Metrics();
    const { manager: models } = manager({
      warmup: true,
      metrics,
      loadRuntime: async (data) => {
        const runtime = await openOnnxInWorkers(data, { instances: 1, intraOpThreads: 1 });
        return { specificationVersion: 'v1', signature: () => runtime.signature(), memoryBytes: () => runtime.memoryBytes(), dispose: () => runtime.dispose(), infer: (inputs, names) => (calls.push(inputs), runtime.infer(inputs, names)) } satisfies Runtime;
      },
    });
    await models.acquire({ versionId: 'a' });
    expect(calls).toHaveLength(1);
    expect(calls[0]![0]).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1, 3] });
    expect(metrics.loadedModels.get()).toBe(1);
    expect(metrics.loadedBytes.get()).toBe(bytes.byteLength);
    await models.unload({ versionId: 'a' });
    expect(metrics.loadedModels.get()).toBe(0);
  });

  it('turns unreadable bytes into MODEL_LOAD_FAILED and does not cache the failure', async () => {
    let good = false;
    const models = new ModelManager({
      openFiles: openFilesFrom(() => (good ? bytes : new Uint8Array([1, 2, 3]))),
      memoryBudgetBytes: 1024 ** 3,
      idleUnloadMs: 0,
      warmup: false,
      batchingDefaults: defaultBatching,
    });
    const error = await models.acquire({ versionId: 'a' }).catch((caught: unknown) => caught);
    expect(AiaasError.isInstance(error) && error.code).toBe('MODEL_LOAD_FAILED');
    good = true;
    await expect(models.acquire({ versionId: 'a' })).resolves.toBeDefined();
    await models.close();
  });
});

describe('ModelManager and model files', () => {
  it('releases a version\'s files on unload, eviction and failed loads; a reload waits until the old files are gone', async () => {
    const events: string[] = [];
    let releaseGate: (() => void) | undefined;
    let good = true;
    const models = new ModelManager({
      openFiles: async (key) => {
        events.push(`open ${key.versionId}`);
        const files = await writeModelFiles(good ? bytes : new Uint8Array([1, 2, 3]));
        return {
          ...files,
          release: async () => {
            events.push(`release ${key.versionId} started`);
            if (key.versionId === 'slow') await new Promise<void>((resolve) => (releaseGate = resolve));
            await files.release();
            events.push(`release ${key.versionId} done`);
          },
        };
      },
      memoryBudgetBytes: Math.floor(bytes.byteLength * 1.5),
      idleUnloadMs: 0,
      warmup: false,
      batchingDefaults: defaultBatching,
    });
    const until = async (event: string) => {
      while (!events.includes(event)) await new Promise((resolve) => setImmediate(resolve));
    };
    await models.acquire({ versionId: 'slow' });
    const unloading = models.unload({ versionId: 'slow' });
    const reloading = models.acquire({ versionId: 'slow' });
    await until('release slow started');
    expect(events).toEqual(['open slow', 'release slow started']); // the reload has not opened yet
    releaseGate!();
    await Promise.all([unloading, reloading]);
    expect(events).toEqual(['open slow', 'release slow started', 'release slow done', 'open slow']);

    events.length = 0;
    const other = models.acquire({ versionId: 'other' }); // over budget: evicts 'slow'
    await until('release slow started');
    releaseGate!();
    await other;
    expect(events).toEqual(['open other', 'release slow started', 'release slow done']);
    expect(models.loaded().map((entry) => entry.key.versionId)).toEqual(['other']);

    events.length = 0;
    good = false;
    await expect(models.acquire({ versionId: 'broken' })).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED' });
    expect(events).toEqual(['open broken', 'release broken started', 'release broken done']);
    await models.close();
  });
});

describe('Batcher', () => {
  it('merges only compatible requests and keeps each result with its request', async () => {
    const runtime = await openTestRuntime(bytes);
    const metrics = new Metrics();
    const batcher = new Batcher(runtime, { maxBatchSize: 5, maxQueueDelayMicroseconds: 60_000_000, maxQueueSize: 10, metrics, labels: { model: 'm', version: '1' } });
    const twoRows = batcher.submit({ inputs: [x([[1, 2, 3], [4, 5, 6]])] });
    const onlyR = batcher.submit({ inputs: [x([[7, 8, 9]])], outputs: ['r'] }); // different outputs: its own batch
    const oneRow = batcher.submit({ inputs: [x([[-1, -2, -3]])] });
    expect(batcher.queueDepth).toBe(3);
    await batcher.flush();
    const [a, b, c] = await Promise.all([twoRows, onlyR, oneRow]);
    expect(a.outputs[0]!.shape).toEqual([2, 2]);
    expect(Array.from(a.outputs[0]!.data as Float32Array)).toEqual(linearReference([[1, 2, 3], [4, 5, 6]]).y.flat());
    expect(b.outputs.map((output) => output.name)).toEqual(['r']);
    expect(Array.from(c.outputs[1]!.data as Float32Array)).toEqual(linearReference([[-1, -2, -3]]).r.flat());
    expect(metrics.batchRequests.snapshot({ model: 'm', version: '1' })).toMatchObject({ count: 2, max: 2 });
    expect(metrics.queueDepthGauge.get({ model: 'm', version: '1' })).toBe(0);
    await runtime.dispose();
  });

  it('refuses work beyond maxQueueSize with QUEUE_FULL and Retry-After', async () => {
    const runtime = await openTestRuntime(fixedBatchModel());
    // A fresh tensor per request: the runtime takes over its buffer.
    const input = (): Tensor => ({ name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) });
    const gate = new Gate();
    const gated = new Batcher(gate.wrap(runtime), { maxBatchSize: 1, maxQueueDelayMicroseconds: 0, maxQueueSize: 1 });
    gate.close();
    const running = gated.submit({ inputs: [input()] });
    await gate.waitEntered(1);
    const queued = gated.submit({ inputs: [input()] });
    await expect(gated.submit({ inputs: [input()] })).rejects.toMatchObject({ code: 'QUEUE_FULL', status: 503, headers: { 'retry-after': '1' } });
    gate.open();
    await Promise.all([running, queued]);
    expect(gated.pending).toBe(0);
    await runtime.dispose();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/dataset.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { loadMnistPackage } from '../../src/data/mnist-package.ts';
import { call, finalJob, startTestServer, type TestServer } from '../http/helpers.ts';

/**
 * Drift end to end on real digits: a training job stores the baseline of its MNIST inputs; V2
 * traffic from held-out digits scores below 0.1 PSI, the same digits brightened score above 0.25,
 * the crossing writes one audit entry, and the gauges show the scores.
 */
const spec = {
  input: { shape: [28, 28] },
  layers: [{ type: 'flatten' }, { type: 'dense', units: 16, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
  compile: { optimizer: { type: 'adam', learningRate: 0.003 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

function idx(dataset: Dataset): { images: Uint8Array; labels: Uint8Array } {
  return {
    images: encodeIdx({ dataType: 'uint8', dims: [dataset.count, 28, 28], data: Uint8Array.from(dataset.features, (value) => Math.round(value * 255)) }),
    labels: encodeIdx({ dataType: 'uint8', dims: [dataset.count], data: Uint8Array.from(dataset.labels) }),
  };
}

let server: TestServer;
const { train, test } = loadMnistPackage({ train: 3000, test: 1000 });
const windowSize = 500;

beforeAll(async () => {
  server = await startTestServer({ driftSampleRate: 1, driftWindowSize: windowSize });
  server.context.jobs.start();
});

afterAll(async () => {
  await server?.close();
});

const waitForJob = (id: string): Promise<Record<string, unknown>> => finalJob(server, server.adminKey, id);

/** Sends rows [start, end) of the test digits, brightened by `shift` (clipped to 1), 50 per V2 request. */
async function send(start: number, end: number, shift: number): Promise<void> {
  for (let row = start; row < end; row += 50) {
    const rows = Math.min(50, end - row);
    const data = Array.from(test.features.subarray(row * 784, (row + rows) * 784), (value) => Math.min(1, value + shift));
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/digits/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 28, 28], data }] });
    expect(response.statusCode).toBe(200);
  }
}

describe('drift', () => {
  it('stores a training baseline; unshifted digits stay below 0.1 PSI, brightened ones cross 0.25 and are audited once', async () => {
    const files = idx(train);
    const dataset = await server.context.datasets.upload(server.context.bootstrap.tenantId, { name: 'digits', bytes: files.images, labelsBytes: files.labels, format: 'idx' });
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'digits', spec, datasetId: dataset.id, epochs: 1, batchSize: 64 });
    expect(submitted.statusCode).toBe(202);
    const job = await waitForJob(submitted.json().job.id);
    expect(job.status).toBe('succeeded');

    const empty = await call(server.app, server.adminKey, 'GET', '/api/v1/models/digits/drift');
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toMatchObject({
      model: 'digits',
      version: '1',
      sampling: { rate: 1, windowSize },
      threshold: 0.25,
      baseline: { source: 'training', rows: 3000, features: 49, projection: 'average-pool', classes: 10 },
      drifted: false,
      scores: null,
    });

    // The first request only loads the baseline (its rows are not sampled); then the window fills.
    await send(0, 50, 0);
    await send(0, windowSize, 0);
    const stable = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/digits/drift?version=1')).json();
    expect(stable.scores.samples).toBe(windowSize);
    expect(stable.scores.features).toHaveLength(49);
    expect(stable.scores.maxPsi).toBeLessThan(0.1);
    expect(stable.scores.output.psi).toBeLessThan(0.1);
    expect(stable.drifted).toBe(false);

    // The same digits, 0.2 brighter: the black background moves, every border cell shifts.
    await send(windowSize, 2 * windowSize, 0.2);
    const shifted = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/digits/drift')).json();
    expect(shifted.scores.samples).toBe(windowSize);
    expect(shifted.scores.maxPsi).toBeGreaterThan(0.25);
    expect(shifted.scores.maxKs).toBeGreaterThan(0.5);
    expect(shifted.scores.pixelMeanShift.meanAbsolute).toBeGreaterThan(0.1);
    expect(shifted.drifted).toBe(true);
    // Asking again is not a new crossing.
    await call(server.app, server.adminKey, 'GET', '/api/v1/models/digits/drift');

    const audit = (await call(server.app, server.adminKey, 'GET', '/api/v1/audit?limit=1000')).json();
    const entries = (audit.entries as { action: string; resource: string; detail: { maxPsi: number; threshold: number } }[]).filter((entry) => entry.action === 'drift.detected');
    expect(entries).toHaveLength(1);
    expect(entries[0]!.resource).toBe('model:digits/versions/1');
    expect(entries[0]!.detail.maxPsi).toBeGreaterThan(0.25);
    expect(entries[0]!.detail.threshold).toBe(0.25);

    const metrics = await call(server.app, server.adminKey, 'GET', '/metrics');
    const gauge = /aiaas_drift_psi_max\{tenant="[^"]+",model="digits",version="1"\} ([0-9.e+-]+)/.exec(metrics.body);
    expect(Number(gauge?.[1])).toBeGreaterThan(0.25);
  }, 120_000);

  it('answers 404 for a model that does not exist', async () => {
    const response = await call(server.app, server.adminKey, 'GET', '/api/v1/models/nothing/drift');
    expect(response.statusCode).toBe(404);
    expect(response.json().error.code).toBe('MODEL_NOT_FOUND');
  });
});

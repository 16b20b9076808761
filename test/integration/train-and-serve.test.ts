import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { loadMnistPackage } from '../../src/data/mnist-package.ts';
import { modelFromBytes } from '../../src/engine/saved-model.ts';
import { AiaasClient, type FetchFunction, type JsonObject } from '../../src/sdk/index.ts';
import { responseSchemaProblem } from '../http/response-schemas.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { startServer, type RunningServer } from '../../src/startup/start.ts';

const spec: JsonObject = {
  name: 'digits',
  input: { shape: [28, 28] },
  layers: [
    { type: 'flatten' },
    { type: 'dense', units: 32, activation: 'relu' },
    { type: 'dropout', rate: 0.1 },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.003 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

function idx(dataset: Dataset): { images: Uint8Array; labels: Uint8Array } {
  return {
    images: encodeIdx({ dataType: 'uint8', dims: [dataset.count, 28, 28], data: Uint8Array.from(dataset.features, (value) => Math.round(value * 255)) }),
    labels: encodeIdx({ dataType: 'uint8', dims: [dataset.count], data: Uint8Array.from(dataset.labels) }),
  };
}

let server: RunningServer;
let client: AiaasClient;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'aiaas-e2e-'));
  const config = loadConfig({ flags: { dataDir, port: 0, masterKey: generateMasterKey(), logLevel: 'silent' }, env: {} });
  server = await startServer(config, {
    handleSignals: false,
    printSecret: () => undefined,
    logger: pino({ level: 'silent' }),
  });
  client = new AiaasClient({ baseUrl: server.url, apiKey: server.context.bootstrap.generatedKey!, fetch: checkedFetch });
});

/** Every response the SDK receives is checked against its route's schema (event streams excepted: they never end). */
const schemaProblems: string[] = [];
const checkedFetch: FetchFunction = async (input, init) => {
  const response = await fetch(input, init);
  const contentType = response.headers.get('content-type') ?? undefined;
  if (!contentType?.startsWith('text/event-stream')) {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const problem = responseSchemaProblem(server.app.registeredRoutes, init?.method ?? 'GET', `${url.pathname}${url.search}`, {
      status: response.status,
      contentType,
      body: await response.clone().text(),
    });
    if (problem !== undefined) schemaProblems.push(problem);
  }
  return response;
};

afterEach(() => {
  expect(schemaProblems.splice(0)).toEqual([]);
});

afterAll(async () => {
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('dataset → job → version → alias → V2 and TF-Serving', () => {
  it('trains on uploaded digits and serves the same numbers as the engine', async () => {
    const { train, test } = loadMnistPackage({ train: 1500, test: 300 });
    const trainFiles = idx(train);
    const testFiles = idx(test);
    const trainSet = await client.datasets.push({ name: 'digits-train', file: trainFiles.images, labels: trainFiles.labels });
    const testSet = await client.datasets.push({ name: 'digits-test', file: testFiles.images, labels: testFiles.labels });
    expect(trainSet).toMatchObject({ format: 'idx', rowCount: 1500, schema: { featureShape: [28, 28], labelShape: [] } });

    const submitted = await client.jobs.submit({ model: 'digits', spec, datasetId: trainSet.id, testDatasetId: testSet.id, epochs: 3, batchSize: 64, seed: 3 });
    expect(submitted.status).toBe('queued');
    const seen: string[] = [];
    for await (const event of client.jobs.watch(submitted.id)) seen.push(event.type);
    expect(seen).toContain('epoch-end');
    expect(seen.at(-1)).toBe('job-finished');

    const job = await client.jobs.get(submitted.id);
    expect(job.status).toBe('succeeded');
    expect(job.epoch).toBe(3);
    expect(job.history).toHaveLength(3);
    const version = job.resultVersion!.version;
    const testAccuracy = job.resultVersion!.metrics!.testMetrics.accuracy;
    expect(testAccuracy).toBeGreaterThan(0.75);

    await client.aliases.set('digits', 'production', version);
    const rows = test.features.subarray(0, 3 * 784);

    // The engine's own prediction from the stored saved model is the reference.
    const specBytes = await client.versions.downloadFile('digits', version, 'spec.json');
    const weights = await client.versions.downloadFile('digits', version, 'model.safetensors');
    const engineModel = modelFromBytes(new TextDecoder().decode(specBytes), weights);
    const expected = await engineModel.predict(rows);
    await engineModel.dispose();

    const v2 = await client.inferV2('digits', { id: 'req-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 28, 28], data: Array.from(rows) }] }, { version: 'production' });
    expect(v2.id).toBe('req-1');
    const v2Output = v2.outputs.find((output) => output.name === 'output')!;
    expect(v2Output.shape).toEqual([3, 10]);
    (v2Output.data as number[]).forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));

    const instances = [0, 1, 2].map((row) => Array.from(rows.subarray(row * 784, (row + 1) * 784)));
    const tf = await client.predictTfServing('digits', { instances: instances.map((flat) => Array.from({ length: 28 }, (_, r) => flat.slice(r * 28, r * 28 + 28))) }, { label: 'production' });
    const predictions = (tf as { predictions: number[][] }).predictions;
    expect(predictions).toHaveLength(3);
    predictions.flat().forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));

    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.context.bootstrap.generatedKey!}` } })).text();
    expect(metrics).toMatch(/aiaas_inference_requests_total\{tenant="[^"]+",model="digits",version="1",protocol="v2",outcome="ok"\} 1\b/);
    expect(metrics).toMatch(/aiaas_inference_requests_total\{tenant="[^"]+",model="digits",version="1",protocol="tfserving",outcome="ok"\} 1\b/);
    expect(metrics).toMatch(/aiaas_training_jobs\{tenant="[^"]+",status="succeeded"\} 1\b/);
    expect(metrics).toMatch(/aiaas_loaded_models 1\b/);
  });

  it('rejects a bad spec with 400 naming the layer, and unknown jobs with 404', async () => {
    const dataset = (await client.datasets.list())[0]!;
    const failure = await client.jobs
      .submit({ model: 'bad', spec: { ...spec, layers: [{ type: 'flatten' }, { type: 'dense', units: 'many' }] } as never, datasetId: dataset.id })
      .catch((error: unknown) => error as { status: number; code: string; message: string });
    expect(failure).toMatchObject({ status: 400, code: 'INVALID_SPEC' });
    expect((failure as { message: string }).message).toContain('layer 1 (dense_1) field "units"');
    await expect(client.jobs.get('job_doesnotexist')).rejects.toMatchObject({ status: 404, code: 'JOB_NOT_FOUND' });
  });
});

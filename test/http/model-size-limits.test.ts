/**
 * Issue 7, finding 2 and the fuzzing run's "job specs have no parameter cap": a spec's size is
 * checked from its shapes before anything is allocated, building a network from an uploaded spec
 * happens in a child process, and a training job that needs too much memory dies alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../../src/data/safetensors.ts';
import { savedModelBytes } from '../../src/engine/saved-model.ts';
import { writeTar } from '../../src/platform/tar.ts';
import { call, classifierModel, startTestServer, type TestServer } from './helpers.ts';

const mebibyte = 1024 * 1024;

/** The assessment's archive: spec.json with one dense 10000×10000 layer, any model.safetensors, any model.onnx. */
function oversizedSavedModel(): Uint8Array {
  const spec = { input: { shape: [10_000] }, layers: [{ type: 'dense', units: 10_000 }], compile: { optimizer: 'adam', loss: 'meanSquaredError' } };
  return writeTar([
    { name: 'big/spec.json', bytes: new TextEncoder().encode(JSON.stringify(spec)) },
    { name: 'big/model.safetensors', bytes: encodeSafetensors({ 'dense_1.kernel': { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } }) },
    { name: 'big/model.onnx', bytes: classifierModel().exportOnnx() },
  ]);
}

async function uploadTar(server: TestServer, name: string, tar: Uint8Array) {
  const created = await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name });
  expect([201, 409]).toContain(created.statusCode);
  return call(server.app, server.adminKey, 'POST', `/api/v1/models/${name}/versions`, Buffer.from(tar), { 'content-type': 'application/x-tar' });
}

/** Resident memory the server process gained while `action` ran; building the spec above would add ≥ 400 MB. */
async function residentGrowth<T>(action: () => Promise<T>): Promise<{ result: T; grownBytes: number }> {
  const before = process.memoryUsage().rss;
  const result = await action();
  return { result, grownBytes: process.memoryUsage().rss - before };
}

describe('specs are sized from their shapes before anything is built (default limits)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => server.close());

  it("refuses the assessment's 10 KB archive with TOO_MANY_PARAMETERS, without allocating its 100 M parameters", async () => {
    const tar = oversizedSavedModel();
    expect(tar.byteLength).toBeLessThan(10 * 1024);
    const { result: response, grownBytes } = await residentGrowth(() => uploadTar(server, 'big', tar));
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().error).toMatchObject({
      code: 'TOO_MANY_PARAMETERS',
      details: { parameters: 100_010_000, limit: 50_000_000, layerIndex: 0, layerName: 'dense_1' },
    });
    expect(response.json().error.message).toBe(
      "the model has 100,010,000 parameters, more than this server's limit of 50,000,000 (maxModelParameters); layer 0 (dense_1, dense) alone has 100,010,000: kernel [10000, 10000], bias [10000]",
    );
    expect(grownBytes).toBeLessThan(100 * mebibyte);
    const versions = await call(server.app, server.adminKey, 'GET', '/api/v1/models/big/versions');
    expect(versions.json().versions).toEqual([]);
  });

  it('refuses a spec with a dense layer of 1e7 units with 400 TOO_MANY_PARAMETERS naming the layer, before queueing', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', {
      model: 'huge',
      spec: {
        input: { shape: [784] },
        layers: [{ type: 'dense', units: 1e7, activation: 'relu' }, { type: 'dense', name: 'out', units: 10, activation: 'softmax' }],
        compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
      },
      datasetId: 'ds_anything',
    });
    expect(response.statusCode, response.body).toBe(400);
    const error = response.json().error;
    expect(error).toMatchObject({ code: 'TOO_MANY_PARAMETERS', details: { layerIndex: 0, layerName: 'dense_1', limit: 50_000_000 } });
    expect(error.message).toBe(
      "the model has 7,950,000,010 parameters, more than this server's limit of 50,000,000 (maxModelParameters); layer 0 (dense_1, dense) alone has 7,850,000,000: kernel [784, 10000000], bias [10000000]",
    );
    const jobs = await call(server.app, server.adminKey, 'GET', '/api/v1/jobs');
    expect(jobs.json().jobs).toEqual([]);
  });

  it('a valid saved model still uploads, its network built (in the child) from spec.json and model.safetensors', async () => {
    const files = savedModelBytes(classifierModel(3), { accuracy: 1 });
    const response = await uploadTar(server, 'small', writeTar([
      { name: 'spec.json', bytes: files.spec },
      { name: 'model.safetensors', bytes: files.weights },
      { name: 'model.onnx', bytes: files.onnx },
    ]));
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().version.files).toEqual(['model.onnx', 'spec.json', 'model.safetensors']);
  });

  it('refuses a spec.json larger than any spec before parsing it', async () => {
    const padded = new TextEncoder().encode(`{"input": {"shape": [4]}${' '.repeat(1024 * 1024)}}`);
    const response = await uploadTar(server, 'padded', writeTar([
      { name: 'spec.json', bytes: padded },
      { name: 'model.onnx', bytes: classifierModel().exportOnnx() },
    ]));
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'INVALID_MODEL_FILE', details: { file: 'spec.json' } });
  });
});

describe('with the parameter cap raised, the weights header is checked against the spec before anything is built', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ maxModelParameters: 200_000_000 });
  });
  afterAll(async () => server.close());

  it('answers INVALID_WEIGHTS naming the tensor whose shape does not fit, without allocating the spec', async () => {
    const { result: response, grownBytes } = await residentGrowth(() => uploadTar(server, 'big', oversizedSavedModel()));
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().error).toMatchObject({
      code: 'INVALID_WEIGHTS',
      message: 'tensor "dense_1.kernel" has shape [2, 2], the model expects [10000, 10000]',
      details: { tensor: 'dense_1.kernel', shape: [2, 2], expectedShape: [10_000, 10_000] },
    });
    expect(grownBytes).toBeLessThan(100 * mebibyte);
  });
});

describe('building an uploaded network runs in the validation child, under its memory limit', () => {
  let server: TestServer;
  beforeAll(async () => {
    // Below what a Node process with ONNX Runtime loaded needs at all: any build in the child is killed.
    server = await startTestServer({ validationMemoryBytes: 64 * mebibyte });
  });
  afterAll(async () => server.close());

  it('refuses the upload when the child building it crosses validationMemoryBytes, and keeps serving', async () => {
    const files = savedModelBytes(classifierModel(4));
    const response = await uploadTar(server, 'limited', writeTar([
      { name: 'spec.json', bytes: files.spec },
      { name: 'model.safetensors', bytes: files.weights },
      { name: 'model.onnx', bytes: files.onnx },
    ]));
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().error).toMatchObject({
      code: 'INVALID_MODEL_FILE',
      message: 'the network could not be built from spec.json and model.safetensors: building it exceeded the memory limit of 64 MiB',
    });
    expect((await call(server.app, undefined, 'GET', '/healthz')).statusCode).toBe(200);
  });
});

describe('training jobs', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ jobMemoryLimitBytes: 256 * mebibyte });
    server.context.jobs.start();
  });
  afterAll(async () => server.close());

  /** A CSV of `rows` samples with `features` columns and a 0/1 label. */
  async function pushDataset(features: number, rows: number): Promise<string> {
    const header = [...Array.from({ length: features }, (_, index) => `f${index}`), 'label'].join(',');
    const lines = Array.from({ length: rows }, (_, row) => [...Array.from({ length: features }, (_, index) => ((row * 31 + index) % 97) / 97), row % 2].join(','));
    const response = await call(server.app, server.adminKey, 'POST', `/api/v1/datasets?name=wide-${features}&label=label`, `${header}\n${lines.join('\n')}\n`, { 'content-type': 'text/csv' });
    expect(response.statusCode, response.body).toBe(201);
    return response.json().dataset.id as string;
  }

  async function waitForFinal(jobId: string, whileRunning: () => Promise<void> = async () => undefined) {
    for (;;) {
      const response = await call(server.app, server.adminKey, 'GET', `/api/v1/jobs/${jobId}`);
      expect(response.statusCode).toBe(200);
      const job = response.json().job;
      if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
      await whileRunning();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  it('fails a job whose training process exceeds jobMemoryLimitBytes with JOB_MEMORY_EXCEEDED while the server keeps answering', async () => {
    const wide = await pushDataset(4000, 8);
    // 16 M parameters: weights and Adam's two slots alone are 192 MB, far above 256 MiB with Node and ORT.
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', {
      model: 'wide',
      spec: {
        input: { shape: [4000] },
        layers: [{ type: 'dense', units: 4000, activation: 'relu' }, { type: 'dense', units: 2, activation: 'softmax' }],
        compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
      },
      datasetId: wide,
      epochs: 10_000,
      batchSize: 4,
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    let answered = 0;
    const job = await waitForFinal(submitted.json().job.id, async () => {
      expect((await call(server.app, undefined, 'GET', '/healthz')).statusCode).toBe(200);
      expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models')).statusCode).toBe(200);
      answered += 1;
    });
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'JOB_MEMORY_EXCEEDED', details: { limitBytes: 256 * mebibyte } });
    expect(job.error.message).toMatch(/more than the job memory limit of 256 MiB \(jobMemoryLimitBytes\)/);
    expect(job.error.details.peakResidentBytes).toBeGreaterThan(256 * mebibyte);
    expect(answered).toBeGreaterThan(0);

    // The same server still trains a job that fits.
    const small = await pushDataset(4, 16);
    const next = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', {
      model: 'small',
      spec: { input: { shape: [4] }, layers: [{ type: 'dense', units: 2, activation: 'softmax' }], compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' } },
      datasetId: small,
      epochs: 2,
    });
    expect(next.statusCode, next.body).toBe(202);
    const finished = await waitForFinal(next.json().job.id);
    expect(finished.error).toBeNull();
    expect(finished.status).toBe('succeeded');
    expect(finished.resultVersion.version).toBe(1);
  });
});

/**
 * Quantize jobs and cost cards through the server: `POST …/versions/:v/quantize` makes a new int8
 * version whose stored report matches what an independent ONNX Runtime run of both files shows;
 * `GET …/cost` counts the graph; `POST …/cost/calibrate` measures through the model manager and
 * stores the figures with the version.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDatasetBytes } from '../../src/data/load.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { call, finalJob, type JobBody, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let server: TestServer;
let datasetId: string;
const floatOnnx = classifierModel(5).exportOnnx();

beforeAll(async () => {
  server = await startTestServer();
  server.context.jobs.start();
  const uploaded = await uploadOnnxModel(server, server.adminKey, 'blobs', floatOnnx);
  expect(uploaded.statusCode, uploaded.body).toBe(201);
  const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris&label=label', irisLikeCsv(), { 'content-type': 'application/octet-stream' });
  expect(dataset.statusCode, dataset.body).toBe(201);
  datasetId = dataset.json().dataset.id;
});

afterAll(async () => {
  await server?.close();
});

const finalQuantize = (id: string): Promise<JobBody> => finalJob<JobBody>(server, server.adminKey, id);

async function outputs(bytes: Uint8Array, features: Float32Array, count: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', features.slice(), [count, 4]) });
    return result[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function argmax(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let index = 1; index < length; index++) if (values[offset + index]! > values[offset + best]!) best = index;
  return best;
}

describe('quantize jobs', () => {
  let report: Record<string, unknown> & {
    sizeRatio: number;
    maxAbsoluteOutputDifference: number;
    accuracy: { items: number; float: number; quantized: number; deltaPercentagePoints: number };
    quantizedBytes: number;
    floatBytes: number;
  };

  it('makes a new int8 version from version 1 and stores the report with it', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/models/blobs/versions/1/quantize', { mode: 'dynamic-int8', evaluationDatasetId: datasetId });
    expect(submitted.statusCode, submitted.body).toBe(202);
    expect(submitted.json().job).toMatchObject({ kind: 'quantize', model: 'blobs', settings: { version: 1, mode: 'dynamic-int8', evaluationDatasetId: datasetId } });
    const job = await finalQuantize(submitted.json().job.id);
    expect(job.error).toBeNull();
    expect(job).toMatchObject({ status: 'succeeded', resultVersion: { version: 2 } });

    const version = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/2')).json();
    expect(version.source).toBe('job');
    // Derived from version 1: the provenance names it, and an export restriction would carry over.
    const source = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1')).json();
    expect(version.parentVersionId).toBe(source.id);
    report = version.quantization;
    expect(report).toMatchObject({ mode: 'dynamic-int8', sourceVersion: 1, jobId: job.id, floatBytes: floatOnnx.byteLength, sampleSource: 'evaluation', sampleItems: 12, floatNodes: [], floatNodeCount: 0, quantizedNodeCount: 2 });
    expect(report.quantizedNodes).toHaveLength(2);
    expect(report.sizeRatio).toBe(Math.round((report.quantizedBytes / report.floatBytes) * 1e4) / 1e4);
    expect(report.latency).toHaveLength(2);
    expect(report.accuracy.items).toBe(12);
    const quantization = await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/2/quantization');
    expect(quantization.json()).toEqual(report);
    // The float version was not made by quantization.
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1/quantization')).statusCode).toBe(404);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1')).json().quantization).toBeNull();
  });

  it('reports what an independent run of both files shows: output difference and accuracies', async () => {
    const quantizedOnnx = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/2/files/model.onnx')).rawPayload;
    expect(quantizedOnnx.byteLength).toBe(report.quantizedBytes);
    const dataset = loadDatasetBytes('csv', new TextEncoder().encode(irisLikeCsv()), { label: 'label' });
    const expected = await outputs(floatOnnx, dataset.features, dataset.count);
    const actual = await outputs(new Uint8Array(quantizedOnnx), dataset.features, dataset.count);
    let largest = 0;
    let floatCorrect = 0;
    let quantizedCorrect = 0;
    for (let index = 0; index < expected.length; index++) largest = Math.max(largest, Math.abs(expected[index]! - actual[index]!));
    for (let item = 0; item < dataset.count; item++) {
      if (argmax(expected, item * 3, 3) === dataset.labels[item]) floatCorrect += 1;
      if (argmax(actual, item * 3, 3) === dataset.labels[item]) quantizedCorrect += 1;
    }
    // The quantized outputs are within the reported bound, and the bound is what the sample shows.
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThanOrEqual(report.maxAbsoluteOutputDifference + 1e-7);
    expect(report.maxAbsoluteOutputDifference).toBeCloseTo(largest, 6);
    expect(report.accuracy.float).toBe(floatCorrect / dataset.count);
    expect(report.accuracy.quantized).toBe(quantizedCorrect / dataset.count);
  });

  it('takes its sample from a calibration dataset, reports no accuracy without an evaluation set, and refuses to quantize twice', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/models/blobs/versions/1/quantize', { mode: 'dynamic-int8', calibrationDatasetId: datasetId });
    const job = await finalQuantize(submitted.json().job.id);
    expect(job).toMatchObject({ status: 'succeeded', resultVersion: { version: 3 } });
    const report = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/3/quantization')).json();
    expect(report).toMatchObject({ sampleSource: 'calibration', sampleItems: 12, accuracy: null });
    const again = await call(server.app, server.adminKey, 'POST', '/api/v1/models/blobs/versions/3/quantize', { mode: 'dynamic-int8' });
    const failed = await finalQuantize(again.json().job.id);
    expect([failed.status, failed.error?.code]).toEqual(['failed', 'QUANTIZATION_UNSUPPORTED']);
    expect(failed.error?.message).toContain('already quantized');
  });

  it('answers bad requests before anything is queued', async () => {
    const post = (body: unknown, path = '/api/v1/models/blobs/versions/1/quantize') => call(server.app, server.adminKey, 'POST', path, body);
    const mode = await post({ mode: 'int4' });
    expect(mode.statusCode).toBe(400);
    expect((await post({ mode: 'dynamic-int8', extra: 1 })).statusCode).toBe(400);
    const dataset = await post({ mode: 'dynamic-int8', evaluationDatasetId: 'ds_missing' });
    expect([dataset.statusCode, dataset.json().error.code]).toEqual([404, 'DATASET_NOT_FOUND']);
    const version = await post({ mode: 'dynamic-int8' }, '/api/v1/models/blobs/versions/9/quantize');
    expect([version.statusCode, version.json().error.code]).toEqual([404, 'VERSION_NOT_FOUND']);
    const viaJobs = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { kind: 'quantize', model: 'blobs', version: 'one', mode: 'dynamic-int8' });
    expect(viaJobs.statusCode).toBe(400);
  });
});

describe('cost cards', () => {
  it('counts parameters and FLOPs per item from the graph (2 per multiply-accumulate)', async () => {
    const response = await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1/cost');
    expect(response.statusCode, response.body).toBe(200);
    // Dense 4→8 (MatMul 2·4·8, bias 8, tanh 8), Dense 8→3 (MatMul 2·8·3, bias 3), softmax 3·3.
    expect(response.json()).toMatchObject({
      model: 'blobs',
      version: 1,
      format: 'onnx',
      parameters: 4 * 8 + 8 + 8 * 3 + 3,
      fileBytes: floatOnnx.byteLength,
      flopsPerItem: 64 + 8 + 8 + 48 + 3 + 9,
      flopsComplete: true,
      uncountedNodes: [],
      calibration: null,
      pricePer1000Predictions: null,
    });
  });

  it("prices 1,000 predictions under the caller's plan", async () => {
    // The operator tenant's own plan: 0.25 USD per 1,000 predictions beyond 10,000 a month.
    const plan = await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/metered', { name: 'metered', currency: 'USD', prices: { perThousandPredictions: 250_000 }, included: { predictions: 10_000 } });
    expect(plan.statusCode, plan.body).toBeLessThan(300);
    const tenant = (await call(server.app, server.adminKey, 'GET', '/api/v1/me')).json().tenant.id as string;
    const assigned = await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant}/plan`, { plan: 'metered' });
    expect(assigned.statusCode, assigned.body).toBeLessThan(300);
    const card = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1/cost')).json();
    expect(card.pricePer1000Predictions).toEqual({ plan: 'metered', currency: 'USD', micros: 250_000, includedPredictions: 10_000 });
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant}/plan`, { plan: null });
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1/cost')).json().pricePer1000Predictions).toBeNull();
  });

  it('calibrates through the model manager and keeps the figures with the version', async () => {
    const calibrated = await call(server.app, server.adminKey, 'POST', '/api/v1/models/blobs/versions/1/cost/calibrate');
    expect(calibrated.statusCode, calibrated.body).toBe(200);
    const card = calibrated.json();
    expect(card.calibration).toMatchObject({ throughputBatch: 32, runs: 20 });
    expect(card.calibration.p50Milliseconds).toBeGreaterThan(0);
    expect(card.calibration.itemsPerSecond).toBeGreaterThan(0);
    // Calibration loaded the version, so the manager's figure is there.
    expect(card.memoryBytes).toBeGreaterThan(0);
    const again = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1/cost')).json();
    expect(again.calibration).toEqual(card.calibration);
    // The quantized version's integer ops are counted too.
    const quantized = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/2/cost')).json();
    expect(quantized.flopsComplete).toBe(true);
    expect(quantized.flopsPerItem).toBeGreaterThan(again.flopsPerItem);
  });
});

describe('cost cards of GGUF language models', () => {
  let llmServer: TestServer;

  beforeAll(async () => {
    llmServer = await startTestServer({ llmThreads: 1, llmParallel: 1, llmContextLength: 512, llmDefaultMaxTokens: 16, llmMaxTokens: 64 });
    const gguf = randomLlamaGguf({ seed: 3, embeddingLength: 64, blockCount: 2, headCount: 4, headCountKv: 2 });
    const uploaded = await uploadOnnxModel(llmServer, llmServer.adminKey, 'tiny', gguf);
    expect(uploaded.statusCode, uploaded.body).toBe(201);
  });

  afterAll(async () => {
    await llmServer?.close();
  });

  it('gives KV-cache bytes per token from the metadata and measures tokens/s on calibration', async () => {
    const card = (await call(llmServer.app, llmServer.adminKey, 'GET', '/api/v1/models/tiny/versions/1/cost')).json();
    // 2 (K and V) × 2 layers × 2 KV heads × head_dim 64/4 × 2 bytes (f16).
    expect(card).toMatchObject({ format: 'gguf', kvCacheBytesPerToken: 2 * 2 * 2 * 16 * 2, tokensPerSecond: null, flopsPerItem: null, calibration: null });
    const calibrated = await call(llmServer.app, llmServer.adminKey, 'POST', '/api/v1/models/tiny/versions/1/cost/calibrate');
    expect(calibrated.statusCode, calibrated.body).toBe(200);
    expect(calibrated.json().tokensPerSecond).toBeGreaterThan(0);
    expect(calibrated.json().memoryBytes).toBeGreaterThan(0);
    expect((await call(llmServer.app, llmServer.adminKey, 'GET', '/api/v1/models/tiny/versions/1/cost')).json().tokensPerSecond).toBe(calibrated.json().tokensPerSecond);
  });

  it('fails a quantize job on a GGUF version with QUANTIZATION_UNSUPPORTED, registering nothing', async () => {
    llmServer.context.jobs.start();
    const submitted = await call(llmServer.app, llmServer.adminKey, 'POST', '/api/v1/models/tiny/versions/1/quantize', { mode: 'dynamic-int8' });
    expect(submitted.statusCode, submitted.body).toBe(202);
    let job: JobBody;
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = (await call(llmServer.app, llmServer.adminKey, 'GET', `/api/v1/jobs/${submitted.json().job.id}`)).json().job as JobBody;
    } while (!['succeeded', 'failed', 'cancelled'].includes(job.status));
    expect([job.status, job.error?.code]).toEqual(['failed', 'QUANTIZATION_UNSUPPORTED']);
    expect((await call(llmServer.app, llmServer.adminKey, 'GET', '/api/v1/models/tiny')).json().versions).toEqual([1]);
  });
});

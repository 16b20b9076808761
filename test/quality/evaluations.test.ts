import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/index.ts';
import { call, classifierModel, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';
import { linearModel, linearReference } from '../inference/fixtures/tiny-onnx.ts';
import { encodeIdx } from '../../src/data/idx.ts';

function multipart(parts: { name: string; fileName: string; body: Uint8Array }[]): { body: Buffer; contentType: string } {
  const boundary = 'evaluation-boundary';
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${part.name}"; filename="${part.fileName}"\r\ncontent-type: application/octet-stream\r\n\r\n`), Buffer.from(part.body), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

let server: TestServer;

/** Three overlapping blobs in four features: a model gets most, not all, right. */
function blobsCsv(rows: number, seed: number): string {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const lines = ['a,b,c,d,label'];
  for (let row = 0; row < rows; row++) {
    const label = row % 3;
    const features = [0, 1, 2, 3].map((feature) => (feature === label ? 1.2 : 0) + (random() - 0.5) * 2.2);
    lines.push(`${features.map((value) => value.toFixed(4)).join(',')},${label}`);
  }
  return `${lines.join('\n')}\n`;
}

/** y = 2a − b + 0.5, noisy. */
function regressionCsv(rows: number): string {
  const lines = ['a,b,y'];
  for (let row = 0; row < rows; row++) {
    const a = ((row * 37) % 100) / 50 - 1;
    const b = ((row * 53) % 100) / 50 - 1;
    lines.push(`${a},${b},${(2 * a - b + 0.5 + (((row * 71) % 7) - 3) * 0.02).toFixed(4)}`);
  }
  return `${lines.join('\n')}\n`;
}

async function uploadDataset(name: string, csv: string, label: string): Promise<string> {
  const response = await call(server.app, server.adminKey, 'POST', `/api/v1/datasets?name=${name}&label=${label}`, csv, { 'content-type': 'application/octet-stream' });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().dataset.id as string;
}

async function evaluate(path: string, body: Record<string, unknown>): Promise<Record<string, any>> {
  const submitted = await call(server.app, server.adminKey, 'POST', `${path}/evaluations`, body);
  expect(submitted.statusCode, submitted.body).toBe(202);
  const { evaluation } = submitted.json();
  expect(submitted.headers.location).toBe(`${path}/evaluations/${evaluation.id}`);
  const job = await server.context.jobs.evaluations.waitForJob(server.context.bootstrap.tenantId, evaluation.jobId, 120_000);
  expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
  const shown = await call(server.app, server.adminKey, 'GET', `${path}/evaluations/${evaluation.id}`);
  expect(shown.statusCode, shown.body).toBe(200);
  return shown.json();
}

let classifier: Model;
let classifierDataset: string;

beforeAll(async () => {
  server = await startTestServer();
  server.context.jobs.start();
  classifierDataset = await uploadDataset('blobs', blobsCsv(150, 3), 'label');
  classifier = classifierModel(5);
  const data = await server.context.datasets.load(server.context.bootstrap.tenantId, classifierDataset);
  await classifier.fit(data, { epochs: 3, batchSize: 16, seed: 1 });
  expect((await uploadOnnxModel(server, server.adminKey, 'blobs', classifier.exportOnnx())).statusCode).toBe(201);
}, 120_000);

afterAll(async () => {
  await classifier?.dispose();
  await server?.close();
});

describe('evaluation reports', () => {
  it("runs as a job and agrees with itself and with the engine's own evaluate", async () => {
    const evaluation = await evaluate('/api/v1/models/blobs/versions/1', { datasetId: classifierDataset, classNames: ['red', 'green', 'blue'], topK: 2 });
    expect(evaluation).toMatchObject({ model: 'blobs', version: 1, datasetId: classifierDataset, status: 'succeeded' });
    const report = evaluation.report;
    expect(report).toMatchObject({ task: 'classification', count: 150, classes: ['red', 'green', 'blue'], topK: 2, scoreTransform: 'none' });
    const matrix = report.confusionMatrix as number[][];
    const total = matrix.flat().reduce((sum, value) => sum + value, 0);
    const trace = matrix.reduce((sum, row, index) => sum + row[index]!, 0);
    expect(total).toBe(150);
    expect(trace / total).toBe(report.accuracy);
    expect(report.perClass.map((entry: { support: number }) => entry.support)).toEqual([50, 50, 50]);
    // The engine's evaluation graph computes accuracy as a float32 mean; the counts are what must match.
    const data = await server.context.datasets.load(server.context.bootstrap.tenantId, classifierDataset);
    const engine = await classifier.evaluate(data);
    expect(Math.round(engine.metrics.accuracy! * 150)).toBe(trace);
    expect(report.accuracy).toBeCloseTo(engine.metrics.accuracy!, 6);
    expect(report.accuracy).toBeGreaterThan(0.4);
    expect(report.accuracy).toBeLessThan(1);
    // Log loss is the engine's own loss (sparse categorical cross-entropy) on the same data.
    expect(report.logLoss).toBeCloseTo(engine.loss, 4);
    expect(report.topKAccuracy).toBeGreaterThanOrEqual(report.accuracy);
    expect(report.calibration.bins.reduce((sum: number, bin: { count: number }) => sum + bin.count, 0)).toBe(150);
    expect(report.binary).toBeUndefined();

    const list = await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/versions/1/evaluations');
    expect(list.json().evaluations.map((entry: { id: string }) => entry.id)).toContain(evaluation.id);

    // The evaluated inputs become the version's drift baseline (issue 11: "at training and at evaluation").
    const drift = await call(server.app, server.adminKey, 'GET', '/api/v1/models/blobs/drift?version=1');
    expect(drift.statusCode, drift.body).toBe(200);
    expect(drift.json().baseline).toMatchObject({ source: 'evaluation', rows: 150 });
  }, 120_000);

  it('reports regression figures that match the engine', async () => {
    const datasetId = await uploadDataset('line', regressionCsv(80), 'y');
    const regressor = Model.fromSpec(
      { name: 'line', input: { shape: [2] }, layers: [{ type: 'dense', units: 1 }], compile: { optimizer: { type: 'adam', learningRate: 0.1 }, loss: 'meanSquaredError', metrics: ['meanAbsoluteError'] } },
      { seed: 2 },
    );
    try {
      const data = await server.context.datasets.load(server.context.bootstrap.tenantId, datasetId);
      await regressor.fit(data, { epochs: 5, batchSize: 8, seed: 1 });
      expect((await uploadOnnxModel(server, server.adminKey, 'line', regressor.exportOnnx())).statusCode).toBe(201);
      const { report } = await evaluate('/api/v1/models/line/versions/1', { datasetId });
      const engine = await regressor.evaluate(data);
      expect(report).toMatchObject({ task: 'regression', count: 80, outputs: 1 });
      expect(report.meanSquaredError).toBeCloseTo(engine.loss, 4);
      expect(report.meanAbsoluteError).toBeCloseTo(engine.metrics.meanAbsoluteError!, 4);
      expect(report.rootMeanSquaredError).toBeCloseTo(Math.sqrt(report.meanSquaredError), 12);
      expect(report.residualHistogram.reduce((sum: number, bin: { count: number }) => sum + bin.count, 0)).toBe(80);
    } finally {
      await regressor.dispose();
    }
  }, 120_000);

  it('evaluates an imported ONNX model on the output the request names, reading its logits through a softmax', async () => {
    // y = x·W + b (two logits) and r = Relu(y): a hand-written graph, not one of the engine's.
    const rows = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, -1], [-1, 0.5, 0], [0.2, -0.4, 0.1]];
    const { y } = linearReference(rows);
    const labels = [0, 1, 1, 1, 0, 0];
    const datasetId = await uploadDataset('linear', `a,b,c,label\n${rows.map((row, index) => `${row.join(',')},${labels[index]}`).join('\n')}\n`, 'label');
    expect((await uploadOnnxModel(server, server.adminKey, 'imported', linearModel())).statusCode).toBe(201);
    const { report, settings } = await evaluate('/api/v1/models/imported/versions/1', { datasetId, outputs: ['y'] });
    expect(settings.output).toBe('y');
    const predicted = y.map((scores) => (scores[1]! > scores[0]! ? 1 : 0));
    const correct = predicted.filter((label, index) => label === labels[index]).length;
    expect(report).toMatchObject({ task: 'classification', count: 6, scoreTransform: 'softmax', accuracy: correct / 6 });
    const expectedLogLoss = -y.reduce((sum, scores, index) => sum + scores[labels[index]!]! - Math.log(Math.exp(scores[0]!) + Math.exp(scores[1]!)), 0) / 6;
    expect(report.logLoss).toBeCloseTo(expectedLogLoss, 4);
    expect(report.binary.rocPoints[0]).toMatchObject({ falsePositiveRate: 0, truePositiveRate: 0 });
    // ROC-AUC as the share of (positive, negative) pairs ranked right, ties counting half.
    const margin = y.map((scores) => scores[1]! - scores[0]!);
    let pairs = 0;
    let right = 0;
    for (const positive of labels.keys()) {
      for (const negative of labels.keys()) {
        if (labels[positive] !== 1 || labels[negative] !== 0) continue;
        pairs++;
        right += margin[positive]! > margin[negative]! ? 1 : margin[positive] === margin[negative] ? 0.5 : 0;
      }
    }
    expect(report.binary.rocAuc).toBeCloseTo(right / pairs, 12);
  }, 120_000);

  it("names the classes after a dataset's string labels", async () => {
    const names = ['red', 'green', 'blue'];
    const csv = blobsCsv(60, 8).replace(/,([0-2])$/gm, (_, label: string) => `,${names[Number(label)]}`);
    const datasetId = await uploadDataset('colours', csv, 'label');
    const data = await server.context.datasets.load(server.context.bootstrap.tenantId, datasetId);
    expect(data.classNames).toEqual(['blue', 'green', 'red']);
    const { report } = await evaluate('/api/v1/models/blobs/versions/1', { datasetId });
    expect(report.classes).toEqual(['blue', 'green', 'red']);
    expect(report.perClass.map((entry: { name: string; support: number }) => [entry.name, entry.support])).toEqual([
      ['blue', 20],
      ['green', 20],
      ['red', 20],
    ]);
  }, 120_000);

  it("feeds IDX pixels as the version was trained on them, and matches the training job's own test figures", async () => {
    // 4×4 images whose brightest quadrant is the class; the spec scales the raw pixels in its graph.
    const count = 120;
    const pixels = new Uint8Array(count * 16);
    const labels = new Uint8Array(count);
    for (let sample = 0; sample < count; sample++) {
      const label = sample % 4;
      labels[sample] = label;
      for (let pixel = 0; pixel < 16; pixel++) {
        const quadrant = (pixel >= 8 ? 2 : 0) + (pixel % 4 >= 2 ? 1 : 0);
        pixels[sample * 16 + pixel] = (quadrant === label ? 120 : 0) + ((sample * 37 + pixel * 11) % 130);
      }
    }
    const form = multipart([
      { name: 'file', fileName: 'images-idx3-ubyte', body: encodeIdx({ dataType: 'uint8', dims: [count, 4, 4], data: pixels }) },
      { name: 'labels', fileName: 'labels-idx1-ubyte', body: encodeIdx({ dataType: 'uint8', dims: [count], data: labels }) },
    ]);
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=quadrants', form.body, { 'content-type': form.contentType });
    expect(upload.statusCode, upload.body).toBe(201);
    const datasetId = upload.json().dataset.id as string;
    const spec = {
      name: 'quadrants',
      input: { shape: [4, 4], scale: 1 / 255 },
      layers: [{ type: 'flatten' }, { type: 'dense', units: 4, activation: 'softmax' }],
      compile: { optimizer: { type: 'adam', learningRate: 0.05 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
    };
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'quadrants', spec, datasetId, testDatasetId: datasetId, epochs: 2, batchSize: 16, seed: 3 });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const job = await server.context.jobs.evaluations.waitForJob(server.context.bootstrap.tenantId, submitted.json().job.id, 120_000);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const trained = job.resultVersion!.metrics as { testLoss: number; testMetrics: { accuracy: number } };
    const { report } = await evaluate('/api/v1/models/quadrants/versions/1', { datasetId });
    expect(report.count).toBe(count);
    expect(Math.round(report.accuracy * count)).toBe(Math.round(trained.testMetrics.accuracy * count));
    expect(report.logLoss).toBeCloseTo(trained.testLoss, 4);
  }, 120_000);

  it('refuses bad requests before a job exists', async () => {
    const path = '/api/v1/models/blobs/versions/1/evaluations';
    const noOutput = await call(server.app, server.adminKey, 'POST', path, { datasetId: classifierDataset, outputs: 'nope' });
    expect(noOutput.statusCode).toBe(400);
    expect(noOutput.json().error.message).toContain("no output \"nope\"");
    const noDataset = await call(server.app, server.adminKey, 'POST', path, { datasetId: 'ds_missing' });
    expect(noDataset.statusCode).toBe(404);
    expect(noDataset.json().error.code).toBe('DATASET_NOT_FOUND');
    const noVersion = await call(server.app, server.adminKey, 'POST', '/api/v1/models/blobs/versions/9/evaluations', { datasetId: classifierDataset });
    expect(noVersion.json().error.code).toBe('VERSION_NOT_FOUND');
    const unknownField = await call(server.app, server.adminKey, 'POST', path, { datasetId: classifierDataset, colour: 'red' });
    expect(unknownField.statusCode).toBe(400);
    const missing = await call(server.app, server.adminKey, 'GET', `${path}/job_missing`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('EVALUATION_NOT_FOUND');
  });

  it('fails the job, not the server, when the class names do not fit', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/models/blobs/versions/1/evaluations', { datasetId: classifierDataset, classNames: ['a', 'b'] });
    expect(submitted.statusCode).toBe(202);
    const job = await server.context.jobs.evaluations.waitForJob(server.context.bootstrap.tenantId, submitted.json().evaluation.jobId, 120_000);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'INVALID_REQUEST' });
    const shown = await call(server.app, server.adminKey, 'GET', `/api/v1/models/blobs/versions/1/evaluations/${job.id}`);
    expect(shown.json()).toMatchObject({ status: 'failed', report: null });
  }, 120_000);
});

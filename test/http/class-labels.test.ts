import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDatasetBytes } from '../../src/data/load.ts';
import { Model } from '../../src/engine/index.ts';
import { AiaasClient } from '../../src/sdk/client.ts';
import { call, finalJob, classifierModel, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  server.context.jobs.start();
});
afterAll(async () => server.close());

const featureNames = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
const species = ['virginica', 'setosa', 'versicolor'];

/** Three separable string-labelled classes, 60 rows, species column last (first-seen order is not sorted order). */
function flowersCsv(): string {
  const rows = [`${featureNames.join(',')},species`];
  for (let index = 0; index < 60; index++) {
    const kind = index % 3;
    const jitter = ((index * 7) % 5) * 0.05;
    rows.push([4.5 + kind * 1.2 + jitter, 3 - kind * 0.3 + jitter, 1.2 + kind * 2 + jitter, 0.2 + kind * 0.8 + jitter].map((value) => value.toFixed(2)).join(',') + `,${species[kind]}`);
  }
  return `${rows.join('\n')}\n`;
}

const flowersSpec = {
  name: 'flowers',
  input: { shape: [4] },
  layers: [
    { type: 'normalization' },
    { type: 'dense', units: 8, activation: 'relu' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.05 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

const waitForJob = (jobId: string): Promise<Record<string, unknown>> => finalJob(server, server.adminKey, jobId);

function closeTo(actual: readonly number[], expected: ArrayLike<number>): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));
}

describe('string class labels, end to end', () => {
  let probabilities: Float32Array;
  const samples = [
    [4.5, 3.0, 1.2, 0.2],
    [5.7, 2.7, 3.2, 1.0],
    [6.9, 2.4, 5.2, 1.8],
  ];

  it('keeps the class names in the dataset schema, sorted', async () => {
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=flowers&label=species', flowersCsv(), { 'content-type': 'text/csv' });
    expect(upload.statusCode, upload.body).toBe(201);
    expect(upload.json().dataset.schema).toMatchObject({ featureShape: [4], labelShape: [], classes: 3, classNames: ['setosa', 'versicolor', 'virginica'], labelName: 'species' });
  });

  it('trains a job on it; the version carries the class and feature names in its signature and model.onnx', async () => {
    const datasets = await call(server.app, server.adminKey, 'GET', '/api/v1/datasets');
    const dataset = datasets.json().datasets.find((item: { name: string }) => item.name === 'flowers');
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'flowers', spec: flowersSpec, datasetId: dataset.id, epochs: 30, batchSize: 16, seed: 1 });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const job = await waitForJob(submitted.json().job.id);
    expect(job.status, JSON.stringify(job)).toBe('succeeded');
    const version = await call(server.app, server.adminKey, 'GET', '/api/v1/models/flowers/versions/1');
    expect(version.statusCode, version.body).toBe(200);
    expect(version.json().signature).toMatchObject({ classNames: ['setosa', 'versicolor', 'virginica'], featureNames });
    expect((version.json().metrics as { metrics: { accuracy: number } }).metrics.accuracy).toBe(1);

    const onnx = await call(server.app, server.adminKey, 'GET', '/api/v1/models/flowers/versions/1/files/model.onnx');
    expect(onnx.statusCode).toBe(200);
    expect(onnx.rawPayload.includes(Buffer.from('["setosa","versicolor","virginica"]'))).toBe(true);
    const predicted = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/flowers:predict', { instances: samples });
    probabilities = Float32Array.from((predicted.json().predictions as number[][]).flat());
  });

  it('refuses a job whose output has fewer units than the dataset has classes, before queueing it', async () => {
    const datasets = await call(server.app, server.adminKey, 'GET', '/api/v1/datasets');
    const dataset = datasets.json().datasets.find((item: { name: string }) => item.name === 'flowers');
    const spec = { ...flowersSpec, layers: [{ type: 'dense', units: 2, activation: 'softmax' }] };
    const refused = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'too-few', spec, datasetId: dataset.id, epochs: 1 });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('INVALID_DATA');
    expect(refused.json().error.message).toBe(`training dataset ${dataset.id} has 3 classes (string labels), but the spec's output has 2 units`);
  });

  it(':classify takes feature dicts by feature name and answers [class name, score] for every class', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/flowers:classify', {
      signature_name: 'serving_default',
      context: { sepal_width: 3.0 },
      examples: [
        { sepal_length: 4.5, petal_length: 1.2, petal_width: [0.2] },
        { sepal_length: 4.5, petal_length: 1.2, petal_width: 0.2 },
      ],
    });
    expect(response.statusCode, response.body).toBe(200);
    const results = response.json().results as [string, number][][];
    expect(results).toHaveLength(2);
    for (const row of results) {
      expect(row.map(([label]) => label)).toEqual(['setosa', 'versicolor', 'virginica']);
      closeTo(row.map(([, score]) => score), probabilities.subarray(0, 3));
    }
    const best = results[0]!.reduce((top, entry) => (entry[1] > top[1] ? entry : top));
    expect(best[0]).toBe('virginica');
  });

  it(':classify also takes one feature named like the input holding the values, through a label', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/models/flowers/aliases/production', { version: 1 });
    const response = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/flowers/labels/production:classify', { examples: samples.map((input) => ({ input })) });
    expect(response.statusCode, response.body).toBe(200);
    const results = response.json().results as [string, number][][];
    closeTo(results.flatMap((row) => row.map(([, score]) => score)), probabilities);
    // The samples are of kinds 0, 1, 2, whose labels are species[kind].
    expect(results.map((row) => row.reduce((top, entry) => (entry[1] > top[1] ? entry : top))[0])).toEqual(species);
  });

  it('the SDK classifies over a real socket', async () => {
    const address = await server.app.listen({ port: 0, host: '127.0.0.1' });
    const client = new AiaasClient({ baseUrl: address, apiKey: server.adminKey });
    const response = await client.classifyTfServing('flowers', { examples: [{ input: samples[2]! }] }, { label: 'production' });
    expect(response.results[0]!.map(([label]) => label)).toEqual(['setosa', 'versicolor', 'virginica']);
    closeTo(response.results[0]!.map(([, score]) => score), probabilities.subarray(6, 9));
    await expect(client.classifyTfServing('flowers', { examples: [{ input: [1] }] })).rejects.toMatchObject({ status: 400, code: 'INVALID_TENSOR' });
  });

  it('refuses malformed :classify requests with 400 and the stable code', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ examples: [] }, 'INVALID_REQUEST', /./],
      [{ instances: [[1, 2, 3, 4]] }, 'INVALID_REQUEST', /examples/],
      [{ examples: [{ sepal_length: 1 }] }, 'INVALID_TENSOR', /lacks the feature "sepal_width"/],
      [{ examples: [{ f0: 1, f1: 2, f2: 3, f3: 4 }] }, 'INVALID_TENSOR', /unknown feature "f0"/],
      [{ context: { sepal_width: 3 }, examples: [{ sepal_width: 3, sepal_length: 1, petal_length: 1, petal_width: 1 }] }, 'INVALID_REQUEST', /in "context" and in example 0/],
      [{ examples: [{ sepal_length: 'big', sepal_width: 1, petal_length: 1, petal_width: 1 }] }, 'INVALID_TENSOR', /expected a number/],
      [{ examples: [{ input: [1, 2, 3] }] }, 'INVALID_TENSOR', /3 values/],
      [{ signature_name: 'other', examples: [{ input: [1, 2, 3, 4] }] }, 'INVALID_REQUEST', /signature_name/],
    ];
    for (const [body, code, message] of cases) {
      const response = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/flowers:classify', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.headers['x-aiaas-error-code'], JSON.stringify(body)).toBe(code);
      expect(response.json().error).toMatch(message);
    }
    const regress = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/flowers:regress', { examples: [{ input: [1, 2, 3, 4] }] });
    expect(regress.statusCode).toBe(400);
    expect((await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/flowers:explode', {})).statusCode).toBe(404);
  });

  it('V2 with a classification parameter returns the top-k "score:index:label" strings as BYTES', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/flowers/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: samples.flat() }],
      outputs: [{ name: 'output', parameters: { classification: 2 } }],
    });
    expect(response.statusCode, response.body).toBe(200);
    const output = response.json().outputs[0];
    expect(output).toMatchObject({ name: 'output', datatype: 'BYTES', shape: [3, 2] });
    const strings = output.data as string[];
    for (let row = 0; row < 3; row++) {
      const scores = Array.from(probabilities.subarray(row * 3, row * 3 + 3));
      const order = [0, 1, 2].sort((left, right) => scores[right]! - scores[left]!);
      for (let rank = 0; rank < 2; rank++) {
        const [score, index, label] = strings[row * 2 + rank]!.split(':');
        expect(Number(index)).toBe(order[rank]);
        expect(label).toBe(['setosa', 'versicolor', 'virginica'][order[rank]!]);
        expect(Number(score)).toBeCloseTo(scores[order[rank]!]!, 5);
        expect(Math.fround(Number(score))).toBe(Math.fround(scores[order[rank]!]!));
      }
    }
    // More classes than the output has are clamped to all of them; bad counts are refused.
    const all = await call(server.app, server.adminKey, 'POST', '/v2/models/flowers/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: samples[0] }],
      outputs: [{ name: 'output', parameters: { classification: 10 } }],
    });
    expect(all.json().outputs[0].shape).toEqual([1, 3]);
    for (const bad of [0, 1.5, 'two']) {
      const refused = await call(server.app, server.adminKey, 'POST', '/v2/models/flowers/infer', {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: samples[0] }],
        outputs: [{ name: 'output', parameters: { classification: bad } }],
      });
      expect(refused.statusCode, String(bad)).toBe(400);
      expect(refused.json().error).toMatch(/classification/);
    }
    const metadata = await call(server.app, server.adminKey, 'GET', '/v2');
    expect(metadata.json().extensions).toContain('classification');
  });

  it('a model trained on numeric labels classifies with index labels, and V2 strings carry no label', async () => {
    const model = classifierModel();
    const rows = Float32Array.from([0.1, 0.2, 0.3, 0.4]);
    const expected = await model.predict(rows);
    expect((await uploadOnnxModel(server, server.adminKey, 'numeric', model.exportOnnx())).statusCode).toBe(201);
    const classified = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/numeric:classify', { examples: [{ f0: 0.1, f1: 0.2, f2: 0.3, f3: 0.4 }] });
    expect(classified.statusCode, classified.body).toBe(200);
    const row = classified.json().results[0] as [string, number][];
    expect(row.map(([label]) => label)).toEqual(['0', '1', '2']);
    closeTo(row.map(([, score]) => score), expected);
    const v2 = await call(server.app, server.adminKey, 'POST', '/v2/models/numeric/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: Array.from(rows) }],
      outputs: [{ name: 'output', parameters: { classification: 1 } }],
    });
    const best = Array.from(expected).indexOf(Math.max(...expected));
    expect(v2.json().outputs[0].data).toHaveLength(1);
    expect((v2.json().outputs[0].data[0] as string).split(':')).toHaveLength(2);
    expect((v2.json().outputs[0].data[0] as string).split(':')[1]).toBe(String(best));
    model.dispose();
  });

  it('a single sigmoid unit classifies as two classes, 1 − p and p, named by its string labels', async () => {
    const csv = ['a,b,outcome', ...Array.from({ length: 40 }, (_, index) => `${index % 2},${(index * 3) % 7},${index % 2 === 0 ? 'benign' : 'malignant'}`)].join('\n');
    const dataset = loadDatasetBytes('csv', Buffer.from(csv), { label: 'outcome' });
    expect(dataset.classNames).toEqual(['benign', 'malignant']);
    const model = Model.fromSpec({
      input: { shape: [2] },
      layers: [{ type: 'dense', units: 1, activation: 'sigmoid' }],
      compile: { optimizer: { type: 'adam', learningRate: 0.1 }, loss: 'binaryCrossentropy' },
    });
    await model.fit(dataset, { epochs: 20, batchSize: 8 });
    const [probability] = await model.predict(Float32Array.from([1, 3]));
    expect((await uploadOnnxModel(server, server.adminKey, 'binary', model.exportOnnx())).statusCode).toBe(201);
    const classified = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/binary:classify', { examples: [{ a: 1, b: 3 }] });
    expect(classified.statusCode, classified.body).toBe(200);
    const [[first, second]] = classified.json().results as [string, number][][];
    expect(first![0]).toBe('benign');
    expect(second![0]).toBe('malignant');
    expect(first![1]).toBeCloseTo(1 - probability!, 5);
    expect(second![1]).toBeCloseTo(probability!, 5);
    expect(probability).toBeGreaterThan(0.5);
    await model.dispose();
  });

  it('refuses an uploaded model.onnx whose class or feature names do not fit it (400 INVALID_MODEL_FILE)', async () => {
    const model = classifierModel();
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'aiaas.class_names': 'setosa,versicolor' }, /aiaas\.class_names is not JSON/],
      [{ 'aiaas.class_names': '[1, 2, 3]' }, /must be a non-empty JSON array of strings/],
      [{ 'aiaas.class_names': '["a","b","c","d"]' }, /declares 4 class names \(aiaas\.class_names\), but its output 'output' has 3 classes/],
      [{ 'aiaas.feature_names': '["a","b"]' }, /declares 2 feature names/],
    ];
    for (const [metadata, message] of cases) {
      const response = await uploadOnnxModel(server, server.adminKey, 'badly-named', model.exportOnnx(metadata));
      expect(response.statusCode, JSON.stringify(metadata)).toBe(400);
      expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
      expect(response.json().error.message).toMatch(message);
    }
    const versions = await call(server.app, server.adminKey, 'GET', '/api/v1/models/badly-named/versions');
    expect(versions.json().versions).toEqual([]);
    await model.dispose();
  });
});

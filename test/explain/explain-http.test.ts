import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/engine/graph.ts';
import { Model } from '../../src/engine/model.ts';
import { savedModelBytes } from '../../src/engine/saved-model.ts';
import { crc32 } from '../../src/explain/png.ts';
import { encodeOnnxModel } from '../../src/onnx/model.ts';
import { packTar } from '../../src/sdk/tar.ts';
import { call, classifierSpec, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

async function uploadSavedModel(name: string, model: Model): Promise<void> {
  const files = savedModelBytes(model);
  const tar = packTar([
    { path: 'model.onnx', bytes: files.onnx },
    { path: 'spec.json', bytes: files.spec },
    { path: 'model.safetensors', bytes: files.weights },
  ]);
  expect((await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name })).statusCode).toBe(201);
  const response = await call(server.app, server.adminKey, 'POST', `/api/v1/models/${name}/versions`, Buffer.from(tar), { 'content-type': 'application/x-tar' });
  expect(response.statusCode, response.body).toBe(201);
}

/** y = tanh(x · W) where only features 1 and 4 have non-zero weights: the others cannot matter. */
function sparseDependenceModel(): Uint8Array {
  const graph = new GraphBuilder('sparse');
  const input = graph.input('x', ['batch', 6]);
  const weights = graph.initializer('W', [6, 2], Float32Array.of(0, 0, 0.8, -0.5, 0, 0, 0, 0, -1.2, 0.7, 0, 0));
  const product = graph.node1('MatMul', [input, weights], ['batch', 2]);
  graph.output(graph.node1('Tanh', [product], ['batch', 2]), 'y');
  return encodeOnnxModel(graph.toModel());
}

const cnnSpec = {
  name: 'tiny-cnn',
  input: { shape: [8, 8, 1] },
  layers: [
    { type: 'conv2d', filters: 2, kernelSize: 3, activation: 'relu', padding: 'same' },
    { type: 'flatten' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
};

describe('POST /v2/models/:name/explain', () => {
  it('integrated gradients on an engine model are complete within 2 % at 128 steps', async () => {
    await uploadSavedModel('ig-mlp', Model.fromSpec(classifierSpec, { seed: 3 }));
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/ig-mlp/explain', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1.5, -2, 0.7, 2.5] }],
      parameters: { steps: 128 },
    });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.outputs[0]).toMatchObject({ name: 'attributions', datatype: 'FP32', shape: [1, 4] });
    expect(body.explanation).toMatchObject({ method: 'integrated_gradients', steps: 128, rule: 'trapezoid', input: 'input', output: 'output' });
    const sum = (body.outputs[0].data as number[]).reduce((total, value) => total + value, 0);
    const difference = body.explanation.scores[0] - body.explanation.baseline_scores[0];
    expect(Math.abs(difference)).toBeGreaterThan(0.01);
    expect(Math.abs(sum - difference)).toBeLessThanOrEqual(0.02 * Math.abs(difference));
    expect(body.explanation.deltas[0]).toBeCloseTo(sum - difference, 5);
    // The explained class defaults to the predicted one.
    const predicted = (await call(server.app, server.adminKey, 'POST', '/v2/models/ig-mlp/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1.5, -2, 0.7, 2.5] }] })).json().outputs[0].data as number[];
    expect(body.explanation.targets[0]).toBe(predicted.indexOf(Math.max(...predicted)));
    expect(body.explanation.scores[0]).toBeCloseTo(Math.max(...predicted), 5);
  });

  it('takes a given target and baseline, top level or in parameters, but not both', async () => {
    const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }], target: 2, baseline: [0.5, 0.5, 0.5, 0.5], rule: 'midpoint' };
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/ig-mlp/versions/1/explain', request);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json().explanation).toMatchObject({ targets: [2], rule: 'midpoint' });
    const twice = await call(server.app, server.adminKey, 'POST', '/v2/models/ig-mlp/explain', { ...request, parameters: { target: 1 } });
    expect(twice.statusCode).toBe(400);
    expect(twice.json().error).toMatch(/target/);
    const badBaseline = await call(server.app, server.adminKey, 'POST', '/v2/models/ig-mlp/explain', { ...request, baseline: [1, 2] });
    expect(badBaseline.statusCode).toBe(400);
  });

  it('occlusion and permutation give all the attribution to the only inputs an imported model reads', async () => {
    expect((await uploadOnnxModel(server, server.adminKey, 'sparse', sparseDependenceModel())).statusCode).toBe(201);
    const occluded = await call(server.app, server.adminKey, 'POST', '/v2/models/sparse/explain', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 6], data: [0.3, 0.9, -0.4, 1.1, 0.6, -0.8] }],
      method: 'occlusion',
      target: 0,
    });
    expect(occluded.statusCode, occluded.body).toBe(200);
    const attributions = occluded.json().outputs[0].data as number[];
    expect(occluded.json().outputs[0].shape).toEqual([1, 6]);
    expect([0, 2, 3, 5].map((index) => attributions[index])).toEqual([0, 0, 0, 0]);
    expect(Math.abs(attributions[1]!)).toBeGreaterThan(0.1);
    expect(Math.abs(attributions[4]!)).toBeGreaterThan(0.1);
    // Exactly F(x) − F(x with that feature zeroed): tanh(0.8·0.9 − 1.2·0.6) − tanh(−1.2·0.6) for feature 1.
    expect(attributions[1]).toBeCloseTo(Math.tanh(0.8 * 0.9 - 1.2 * 0.6) - Math.tanh(-1.2 * 0.6), 5);

    const rows = Array.from({ length: 8 }, (_, row) => Array.from({ length: 6 }, (_, column) => Math.sin(row * 6 + column) * 1.5));
    const permuted = await call(server.app, server.adminKey, 'POST', '/v2/models/sparse/explain', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [8, 6], data: rows.flat() }],
      method: 'permutation',
      target: 1,
      repeats: 3,
      seed: 5,
    });
    expect(permuted.statusCode, permuted.body).toBe(200);
    const importances = permuted.json().outputs[0].data as number[];
    expect(permuted.json().outputs[0].shape).toEqual([1, 6]);
    expect([0, 2, 3, 5].map((index) => importances[index])).toEqual([0, 0, 0, 0]);
    expect(importances[1]).toBeGreaterThan(0.05);
    expect(importances[4]).toBeGreaterThan(0.05);
  });

  it('refuses integrated gradients for an imported ONNX model', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/sparse/explain', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 6], data: [0, 0, 0, 0, 0, 0] }],
      method: 'integrated_gradients',
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['x-aiaas-error-code'] ?? JSON.stringify(response.json())).toMatch(/EXPLANATION_UNSUPPORTED/);
  });

  it('returns a heatmap PNG for an image model: valid signature, IHDR, CRCs and pixel data', async () => {
    await uploadSavedModel('ig-cnn', Model.fromSpec(cnnSpec, { seed: 2 }));
    const image = Array.from({ length: 64 }, (_, index) => ((index % 8) >= 2 && (index % 8) <= 5 && index >= 16 && index < 48 ? 1 : 0));
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/ig-cnn/explain', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 8, 8, 1], data: image }],
      format: 'png',
      scale: 4,
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('image/png');
    const png = response.rawPayload;
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const chunks: { type: string; data: Buffer }[] = [];
    for (let offset = 8; offset < png.length; ) {
      const length = png.readUInt32BE(offset);
      const type = png.subarray(offset + 4, offset + 8).toString('latin1');
      const data = png.subarray(offset + 8, offset + 8 + length);
      expect(png.readUInt32BE(offset + 8 + length)).toBe(crc32(png.subarray(offset + 4, offset + 8 + length)));
      chunks.push({ type, data });
      offset += 12 + length;
    }
    expect(chunks.map((chunk) => chunk.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const header = chunks[0]!.data;
    expect([header.readUInt32BE(0), header.readUInt32BE(4), header[8], header[9]]).toEqual([32, 32, 8, 2]);
    const pixels = inflateSync(chunks[1]!.data);
    expect(pixels.length).toBe((32 * 3 + 1) * 32);
  });
});

describe('output policies', () => {
  const input = { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [1.5, -2, 0.7, 2.5, -1, 0.5, 2, -0.3] }] };

  it('top-1 returns only the label on V2 and TF-Serving :predict, and /explain answers 403', async () => {
    await uploadSavedModel('guarded', Model.fromSpec(classifierSpec, { seed: 5 }));
    const open = (await call(server.app, server.adminKey, 'POST', '/v2/models/guarded/infer', input)).json().outputs[0];
    const labels = [0, 1].map((row) => {
      const scores = (open.data as number[]).slice(row * 3, row * 3 + 3);
      return scores.indexOf(Math.max(...scores));
    });
    const patched = await call(server.app, server.adminKey, 'PATCH', '/api/v1/models/guarded', { outputPolicy: { topK: 1 } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().model.outputPolicy).toEqual({ topK: 1 });

    const v2 = await call(server.app, server.adminKey, 'POST', '/v2/models/guarded/infer', input);
    expect(v2.statusCode, v2.body).toBe(200);
    expect(v2.json().outputs).toEqual([{ name: 'output', datatype: 'INT64', shape: [2, 1], data: labels }]);

    const tf = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/guarded:predict', { instances: [[1.5, -2, 0.7, 2.5], [-1, 0.5, 2, -0.3]] });
    expect(tf.statusCode, tf.body).toBe(200);
    expect(tf.json()).toEqual({ predictions: labels.map((label) => [label]) });

    // :classify and V2's classification extension show the label and withhold the score.
    const classified = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/guarded:classify', { examples: [{ input: [1.5, -2, 0.7, 2.5] }, { input: [-1, 0.5, 2, -0.3] }] });
    expect(classified.statusCode, classified.body).toBe(200);
    expect(classified.json()).toEqual({ results: labels.map((label) => [[String(label), null]]) });
    const v2Classes = await call(server.app, server.adminKey, 'POST', '/v2/models/guarded/infer', { ...input, outputs: [{ name: 'output', parameters: { classification: 3 } }] });
    expect(v2Classes.statusCode, v2Classes.body).toBe(200);
    expect(v2Classes.json().outputs).toEqual([{ name: 'output', datatype: 'BYTES', shape: [2, 1], data: labels.map(String) }]);

    const explained = await call(server.app, server.adminKey, 'POST', '/v2/models/guarded/explain', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    expect(explained.statusCode).toBe(403);
    expect(explained.headers['x-aiaas-error-code']).toBe('OUTPUT_POLICY_RESTRICTED');
  });

  it('rounds probabilities to N digits, and clearing the policy restores the scores', async () => {
    await call(server.app, server.adminKey, 'PATCH', '/api/v1/models/guarded', { outputPolicy: { roundDigits: 2 } });
    const rounded = (await call(server.app, server.adminKey, 'POST', '/v2/models/guarded/infer', input)).json().outputs[0];
    expect(rounded.datatype).toBe('FP64');
    for (const value of rounded.data as number[]) expect(Math.round(value * 100) / 100).toBe(value);
    await call(server.app, server.adminKey, 'PATCH', '/api/v1/models/guarded', { outputPolicy: null });
    const restored = (await call(server.app, server.adminKey, 'POST', '/v2/models/guarded/infer', input)).json().outputs[0];
    expect(restored.datatype).toBe('FP32');
    expect((restored.data as number[]).reduce((total, value) => total + value, 0)).toBeCloseTo(2, 5);
  });

  it('refuses an invalid policy', async () => {
    const response = await call(server.app, server.adminKey, 'PATCH', '/api/v1/models/guarded', { outputPolicy: { topK: 0 } });
    expect(response.statusCode).toBe(400);
  });
});

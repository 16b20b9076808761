/** `aiaas models quantize --watch` and `aiaas models cost [--calibrate]` against a real aiaas server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';
import { captureIo } from './helpers.ts';

let server: TestServer;
let url: string;
let datasetId: string;

beforeAll(async () => {
  server = await startTestServer();
  server.context.jobs.start();
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  expect((await uploadOnnxModel(server, server.adminKey, 'clf', classifierModel(3).exportOnnx())).statusCode).toBe(201);
  const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris&label=label', irisLikeCsv(), { 'content-type': 'application/octet-stream' });
  datasetId = dataset.json().dataset.id;
});

afterAll(async () => {
  await server?.close();
});

const connection = () => ['--server', url, '--api-key', server.adminKey];

describe('aiaas models quantize', () => {
  it('--watch prints the new version with its size, latency, accuracy and output difference', async () => {
    const io = captureIo();
    const code = await main(['models', 'quantize', 'clf@1', '--evaluation-dataset', datasetId, '--watch', ...connection()], io);
    expect(io.err()).toContain('quantizing');
    expect(code).toBe(0);
    const report = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/clf/versions/2/quantization')).json();
    const out = io.out();
    expect(out).toContain('version        2 (from 1)');
    expect(out).toContain(`(${report.sizeRatio}×)`);
    expect(out).toMatch(/latency b=1 {4}[0-9.]+ ms → [0-9.]+ ms/);
    expect(out).toContain(`accuracy       ${(report.accuracy.float * 100).toFixed(2)} % → ${(report.accuracy.quantized * 100).toFixed(2)} %`);
    expect(out).toContain(`max |Δoutput|  ${report.maxAbsoluteOutputDifference} over 12 evaluation items`);
    expect(out).toContain('quantized      2 nodes; left float32: none');
  });

  it('exits 1 with the server error for a missing version', async () => {
    const io = captureIo();
    expect(await main(['models', 'quantize', 'clf@9', ...connection()], io)).toBe(1);
    expect(io.err()).toContain('VERSION_NOT_FOUND');
  });
});

describe('aiaas models cost', () => {
  it('prints the card, and with --calibrate the measured figures', async () => {
    const before = captureIo();
    expect(await main(['models', 'cost', 'clf@1', ...connection()], before)).toBe(0);
    expect(before.out()).toContain('parameters     67');
    expect(before.out()).toContain('FLOPs/item     140');
    expect(before.out()).toContain('latency p50    not calibrated (--calibrate)');
    const after = captureIo();
    expect(await main(['models', 'cost', 'clf@1', '--calibrate', '--json', ...connection()], after)).toBe(0);
    const card = JSON.parse(after.out());
    expect(card).toMatchObject({ model: 'clf', version: 1, parameters: 67, flopsPerItem: 140, calibration: { throughputBatch: 32, runs: 20 } });
    expect(card.calibration.p50Milliseconds).toBeGreaterThan(0);
  });
});

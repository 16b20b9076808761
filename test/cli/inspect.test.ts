import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { sparkline } from '../../src/cli/format.ts';
import { captureIo, fakeServer, sendJson, type RecordedRequest, type Route } from './helpers.ts';

let directory: string;
let server: Awaited<ReturnType<typeof fakeServer>> | undefined;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-cli-inspect-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(directory, { recursive: true, force: true });
});

async function run(routes: Record<string, Route>, argv: string[], env: NodeJS.ProcessEnv = { AIAAS_API_KEY: 'aiaas_test_key' }) {
  server = await fakeServer(routes);
  const io = captureIo({ env: { AIAAS_SERVER: server.url, ...env }, cwd: directory });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), requests: server.requests.map((request: RecordedRequest) => `${request.method} ${request.url}`) };
}

const signature = { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 28, 28] }], outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 10] }] };
const baseVersion = { id: 'mv_1', model: 'mnist', source: 'job', format: 'onnx', signature, files: ['model.onnx', 'spec.json'], createdAt: '2026-11-29T10:00:00.000Z', exportable: true, parentVersionId: null };
const version1 = { ...baseVersion, version: 1, jobId: 'job_a', metrics: { loss: 0.3, metrics: { accuracy: 0.9 }, testLoss: 0.25, testMetrics: { accuracy: 0.93 } }, aliases: [], provenance: true };
const version2 = { ...baseVersion, id: 'mv_2', version: 2, source: 'upload', jobId: null, metrics: null, aliases: ['production'], provenance: false };

describe('models show', () => {
  it('prints versions with sizes from the provenance record, aliases, metrics and the latest signature', async () => {
    const result = await run(
      {
        'GET /api/v1/models/mnist': sendJson(200, { model: { name: 'mnist', description: 'digits', versions: [1, 2], aliases: [{ name: 'production', version: 2 }] } }),
        'GET /api/v1/models/mnist/versions': sendJson(200, { versions: [version1, version2] }),
        'GET /api/v1/models/mnist/versions/1/provenance': sendJson(200, { record: { files: [{ name: 'model.onnx', sha256: 'a', bytes: 2048 }, { name: 'spec.json', sha256: 'b', bytes: 1024 }] }, signature: 'x' }),
        'GET /api/v1/models/mnist/versions/2/cost': sendJson(200, {
            model: 'mnist', version: 2, format: 'onnx', parameters: 101770, fileBytes: 407698, flopsPerItem: 203530, flopsComplete: true, uncountedNodes: [],
            calibration: { p50Milliseconds: 0.25, itemsPerSecond: 339611, throughputBatch: 32, runs: 20, measuredAt: '2026-11-29T10:05:00.000Z' },
            tokensPerSecond: null, kvCacheBytesPerToken: null, memoryBytes: null, measuredMemoryBytes: 1048576,
            pricePer1000Predictions: { plan: 'starter', currency: 'USD', micros: 250000, includedPredictions: 10000 }, priceNote: '',
        }),
      },
      ['models', 'show', 'mnist'],
    );
    expect(result.code, result.err).toBe(0);
    expect(result.requests).toEqual(['GET /api/v1/models/mnist', 'GET /api/v1/models/mnist/versions', 'GET /api/v1/models/mnist/versions/1/provenance', 'GET /api/v1/models/mnist/versions/2/cost']);
    expect(result.out).toBe(
      [
        'model mnist — digits',
        'aliases: production → 2',
        '',
        'VERSION  CREATED            SOURCE     FORMAT  SIZE     ALIASES     METRICS',
        '1        2026-11-29 10:00Z  job job_a  onnx    3.0 KiB  -           test_loss 0.2500 test_acc 0.9300',
        '2        2026-11-29 10:00Z  upload     onnx    -        production  -',
        '',
        'signature (version 2):',
        '          NAME    TYPE  SHAPE',
        '  input   input   FP32  [-1, 28, 28]',
        '  output  output  FP32  [-1, 10]',
        'files (version 2): model.onnx, spec.json',
        '',
        'cost card (version 2; aiaas models cost mnist@2 --calibrate measures latency):',
        '  model          mnist@2 (onnx)',
        '  parameters     101770',
        '  file           398 KiB',
        '  FLOPs/item     203530',
        '  latency p50    0.25 ms (batch 1)',
        '  items/s        339611 (batch 32)',
        '  memory         not loaded',
        '  price/1000     0.25 USD (plan starter, beyond 10000 included a month)',
        '',
      ].join('\n'),
    );
  });

  it('--json prints the model and its versions with file sizes', async () => {
    const result = await run(
      {
        'GET /api/v1/models/mnist': sendJson(200, { model: { name: 'mnist', versions: [2], aliases: [] } }),
        'GET /api/v1/models/mnist/versions': sendJson(200, { versions: [version2] }),
      },
      ['models', 'show', 'mnist', '--json'],
    );
    expect(JSON.parse(result.out)).toMatchObject({ model: { name: 'mnist' }, versions: [{ version: 2, fileSizes: null }], cost: null });
  });
});

describe('models versions rm, models alias rm', () => {
  it('deletes a version by NAME@VERSION and an alias by NAME ALIAS', async () => {
    const version = await run({ 'DELETE /api/v1/models/mnist/versions/2': sendJson(204, undefined) }, ['models', 'versions', 'rm', 'mnist@2']);
    expect(version).toMatchObject({ code: 0, err: 'deleted mnist version 2\n', requests: ['DELETE /api/v1/models/mnist/versions/2'] });
    await server!.close();
    const alias = await run({ 'DELETE /api/v1/models/mnist/aliases/staging': sendJson(204, undefined) }, ['models', 'alias', 'rm', 'mnist', 'staging']);
    expect(alias).toMatchObject({ code: 0, err: 'deleted alias mnist@staging\n', requests: ['DELETE /api/v1/models/mnist/aliases/staging'] });
  });

  it('refuses an alias or a malformed reference for versions rm, and still moves aliases with three arguments', async () => {
    const aliasGiven = await run({}, ['models', 'versions', 'rm', 'mnist@production']);
    expect(aliasGiven.code).toBe(2);
    expect(aliasGiven.err).toMatch(/^error USAGE: VERSION must be a version number ≥ 1 \(not an alias\), got "production"/);
    expect(aliasGiven.requests).toEqual([]);
    await server!.close();
    const malformed = await run({}, ['models', 'versions', 'rm', 'mnist']);
    expect(malformed.err).toMatch(/^error USAGE: expected NAME@VERSION, got "mnist"/);
    await server!.close();
    const moved = await run({ 'PUT /api/v1/models/mnist/aliases/production': sendJson(200, { alias: { name: 'production', version: 3, split: null, shadow: null }, gate: null }) }, ['models', 'alias', 'mnist', 'production', '3']);
    expect(moved).toMatchObject({ code: 0, err: 'mnist@production → version 3\n' });
  });
});

describe('models download', () => {
  it('writes the main file of the version an alias names', async () => {
    const result = await run(
      {
        'GET /api/v1/models/mnist/versions/production': sendJson(200, { version: version2 }),
        'GET /api/v1/models/mnist/versions/2/files/model.onnx': (_request, response) => void response.writeHead(200, { 'content-type': 'application/octet-stream' }).end('onnx-bytes'),
      },
      ['models', 'download', 'mnist@production', 'out.onnx'],
    );
    expect(result.code, result.err).toBe(0);
    expect(result.requests).toEqual(['GET /api/v1/models/mnist/versions/production', 'GET /api/v1/models/mnist/versions/2/files/model.onnx']);
    expect(await readFile(join(directory, 'out.onnx'), 'utf8')).toBe('onnx-bytes');
    expect(result.err).toBe(`saved mnist version 2 model.onnx to ${join(directory, 'out.onnx')}\n`);
  });

  it('reports export control and leaves no file; names the files a version has', async () => {
    const refused = await run(
      {
        'GET /api/v1/models/mnist/versions/2': sendJson(200, { version: version2 }),
        'GET /api/v1/models/mnist/versions/2/files/spec.json': sendJson(403, { error: { code: 'MODEL_NOT_EXPORTABLE', message: 'model mnist is not exportable' } }),
      },
      ['models', 'download', 'mnist@2', 'spec.json', '--file', 'spec.json'],
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^error MODEL_NOT_EXPORTABLE: model mnist is not exportable\n/);
    expect(await readdir(directory)).toEqual([]);
    await server!.close();
    const missing = await run({ 'GET /api/v1/models/mnist/versions/2': sendJson(200, { version: version2 }) }, ['models', 'download', 'mnist@2', 'w', '--file', 'model.safetensors']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^error USAGE: mnist version 2 has no file "model.safetensors"; it has model.onnx, spec.json\n/);
  });
});

const job = {
  id: 'job_1',
  kind: 'train',
  model: 'mnist',
  status: 'succeeded',
  epoch: 3,
  totalEpochs: 3,
  step: 189,
  loss: 0.2,
  history: [
    { epoch: 1, epochs: 3, step: 63, loss: 0.9, metrics: { accuracy: 0.7 }, samplesPerSecond: 9000, seconds: 0.9 },
    { epoch: 2, epochs: 3, step: 126, loss: 0.4, metrics: { accuracy: 0.88 }, samplesPerSecond: 9100, seconds: 0.88 },
    { epoch: 3, epochs: 3, step: 189, loss: 0.2, metrics: { accuracy: 0.94 }, samplesPerSecond: 9200, seconds: 0.87 },
  ],
  error: null,
  resultVersion: { id: 'mv_1', version: 1, metrics: { testLoss: 0.22, testMetrics: { accuracy: 0.93 }, stopReason: 'completed' } },
  settings: { epochs: 3, batchSize: 128, seed: 42, shuffle: true },
  datasetId: 'ds_1',
  testDatasetId: 'ds_2',
  cancelRequested: false,
  createdAt: '2026-11-29T10:00:00.000Z',
  startedAt: '2026-11-29T10:00:01.000Z',
  finishedAt: '2026-11-29T10:00:05.000Z',
};

describe('jobs show', () => {
  it('prints the job, its history as a table and loss and accuracy as sparklines', async () => {
    const result = await run({ 'GET /api/v1/jobs/job_1': sendJson(200, { job }) }, ['jobs', 'show', 'job_1']);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe(
      [
        'job job_1 (train) for model mnist: succeeded',
        'epoch 3/3, step 189, loss 0.2000',
        'created 2026-11-29 10:00Z, started 2026-11-29 10:00Z, finished 2026-11-29 10:00Z',
        'datasets: train ds_1, test ds_2',
        'settings: epochs 3, batchSize 128, seed 42, shuffle true',
        'result: version 1; test loss 0.2200 test_acc 0.9300',
        '',
        'EPOCH  STEP  LOSS    ACCURACY  SAMPLES/S  SECONDS',
        '1      63    0.9000  0.7000    9000       0.9',
        '2      126   0.4000  0.8800    9100       0.9',
        '3      189   0.2000  0.9400    9200       0.9',
        '',
        '  loss      █▃▁  0.9000 → 0.2000',
        '  accuracy  ▁▆█  0.7000 → 0.9400',
        '',
      ].join('\n'),
    );
  });

  it('sparkline scales a series between its minimum and maximum', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([2, 2])).toBe('▄▄');
    expect(sparkline([1, Number.NaN, 0])).toBe('█ ▁');
    expect(sparkline([])).toBe('');
  });
});

describe('tenants rm, whoami, status', () => {
  it('tenants rm needs --yes, then deletes', async () => {
    const unconfirmed = await run({}, ['tenants', 'rm', 'tn_2']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.err).toMatch(/^error USAGE: deleting tenant tn_2 destroys all its data and cannot be undone; add --yes to confirm\n/);
    expect(unconfirmed.requests).toEqual([]);
    await server!.close();
    const confirmed = await run({ 'DELETE /api/v1/tenants/tn_2': sendJson(204, undefined) }, ['tenants', 'rm', 'tn_2', '--yes']);
    expect(confirmed).toMatchObject({ code: 0, err: 'deleted tenant tn_2\n', requests: ['DELETE /api/v1/tenants/tn_2'] });
  });

  const me = {
    tenant: { id: 'tn_1', name: 'default', operator: true },
    key: { id: 'key_1', name: 'bootstrap', prefix: 'aiaas_ab', role: 'admin', allowedModels: null, expiresAt: null },
    permissions: ['models:read', 'jobs:write'],
  };

  it('whoami prints tenant, key and permissions', async () => {
    const result = await run({ 'GET /api/v1/me': sendJson(200, me) }, ['whoami']);
    expect(result.out).toBe('tenant default (tn_1), the operator tenant\nkey bootstrap (key_1, aiaas_ab…), role admin, all models\npermissions: models:read, jobs:write\n');
  });

  const serviceRoutes: Record<string, Route> = {
    'GET /healthz': sendJson(200, { status: 'ok' }),
    'GET /readyz': sendJson(200, { status: 'ready' }),
    'GET /v2': sendJson(200, { name: 'aiaas', version: '0.1.0', extensions: [] }),
  };

  it('status reports server, version, identity, loaded models and the job queue', async () => {
    const result = await run(
      {
        ...serviceRoutes,
        'GET /api/v1/me': sendJson(200, me),
        'POST /v2/repository/index': sendJson(200, [{ name: 'mnist', version: '2', state: 'READY', reason: '' }]),
        'GET /api/v1/jobs': (request, response) => {
          const jobs = request.url.includes('status=running') ? [job] : [job, job];
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jobs }));
        },
      },
      ['status'],
    );
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe(`server ${server!.url}: aiaas 0.1.0, ready\ntenant default, key bootstrap (admin)\nloaded models: mnist@2\njobs: 1 running, 2 queued\n`);
    expect(result.requests).toContain('POST /v2/repository/index');
    expect(result.requests).toContain('GET /api/v1/jobs?status=queued');
  });

  it('status without a key shows the server only; a server that is not ready exits 1', async () => {
    const keyless = await run(serviceRoutes, ['status'], {});
    expect(keyless.code).toBe(0);
    expect(keyless.out).toBe(`server ${server!.url}: aiaas 0.1.0, ready\nmodels and jobs not shown: no API key (pass --api-key or set AIAAS_API_KEY for models and jobs)\n`);
    await server!.close();
    const unready = await run({ ...serviceRoutes, 'GET /readyz': sendJson(503, { status: 'unavailable' }) }, ['status'], {});
    expect(unready.code).toBe(1);
    expect(unready.err).toMatch(/^error NOT_READY: the server at .* answers but is not ready/);
  });
});

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { detectProtocol, parseModelReference } from '../../src/cli/commands/predict.ts';
import { parseTar } from '../../src/sdk/tar.ts';
import { captureIo, fakeServer, sendJson, type RecordedRequest, type Route } from './helpers.ts';

let directory: string;
let server: Awaited<ReturnType<typeof fakeServer>> | undefined;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-cli-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(directory, { recursive: true, force: true });
});

async function run(routes: Record<string, Route>, argv: string[], env: NodeJS.ProcessEnv = {}) {
  server = await fakeServer(routes);
  const io = captureIo({ env: { AIAAS_SERVER: server.url, AIAAS_API_KEY: 'aiaas_test_key', ...env }, cwd: directory });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), requests: server.requests };
}

function jsonBody(request: RecordedRequest | undefined): unknown {
  return JSON.parse(request?.body.toString('utf8') ?? 'null');
}

const dataset = { id: 'ds_1', name: 'digits', format: 'idx', rowCount: 2, bytes: 100, schema: { featureShape: [2, 2], labelShape: [] }, createdAt: '2026-01-01T00:00:00.000Z' };
const version = { id: 'mv_1', model: 'm', version: 4, source: 'upload', signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [] }, metrics: null, jobId: null, files: ['model.onnx'], aliases: [], createdAt: '' };

describe('datasets', () => {
  it('push sends an IDX pair as multipart with file and labels parts', async () => {
    await writeFile(join(directory, 'images.idx'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 1, 7]));
    await writeFile(join(directory, 'labels.idx'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 1, 3]));
    const result = await run({ 'POST /api/v1/datasets': sendJson(201, { dataset }) }, ['datasets', 'push', 'images.idx', '--labels', 'labels.idx', '--name', 'digits']);
    expect(result).toMatchObject({ code: 0, out: 'ds_1\n' });
    expect(result.err).toContain('uploaded digits: idx, 2 rows features [2, 2]');
    const request = result.requests[0]!;
    expect(request.url).toBe('/api/v1/datasets?name=digits');
    expect(request.headers.authorization).toBe('Bearer aiaas_test_key');
    expect(request.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    const body = request.body.toString('latin1');
    expect(body).toMatch(/name="file"; filename="images.idx"/);
    expect(body).toMatch(/name="labels"; filename="labels.idx"/);
    expect(body).toContain('\u0000\u0000\u0008\u0001\u0000\u0000\u0000\u0001\u0003');
  });

  it('push sends a single file as raw bytes with name, format and label in the query', async () => {
    await writeFile(join(directory, 'iris.csv.gz'), 'not really gzip');
    const result = await run({ 'POST /api/v1/datasets': sendJson(201, { dataset: { ...dataset, format: 'csv' } }) }, ['datasets', 'push', 'iris.csv.gz', '--label', 'species', '--format', 'csv', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.out)).toMatchObject({ id: 'ds_1', format: 'csv' });
    expect(result.requests[0]).toMatchObject({ url: '/api/v1/datasets?name=iris&format=csv&label=species' });
    expect(result.requests[0]!.headers['content-type']).toBe('application/octet-stream');
    expect(result.requests[0]!.body.toString()).toBe('not really gzip');
  });

  it('ls prints a table, rm deletes by id', async () => {
    const listed = await run({ 'GET /api/v1/datasets': sendJson(200, { datasets: [dataset] }) }, ['datasets', 'ls']);
    expect(listed.out).toBe('ID    NAME    FORMAT  ROWS  FEATURES  SIZE   CREATED\nds_1  digits  idx     2     [2,2]     100 B  2026-01-01 00:00Z\n');
    await server!.close();
    const removed = await run({ 'DELETE /api/v1/datasets/ds_1': sendJson(204, undefined) }, ['datasets', 'rm', 'ds_1']);
    expect(removed).toMatchObject({ code: 0, err: 'deleted dataset ds_1\n' });
  });
});

describe('models', () => {
  it('push creates a missing model, packs a folder as a tar and sets the alias', async () => {
    await mkdir(join(directory, 'saved'));
    await writeFile(join(directory, 'saved', 'model.onnx'), 'onnx-bytes');
    await writeFile(join(directory, 'saved', 'spec.json'), '{}');
    const result = await run(
      {
        'GET /api/v1/models/m': sendJson(404, { error: { code: 'MODEL_NOT_FOUND', message: 'no model m' } }),
        'POST /api/v1/models': sendJson(201, { model: { name: 'm' } }),
        'POST /api/v1/models/m/versions': sendJson(201, { version }),
        'PUT /api/v1/models/m/aliases/production': sendJson(200, { name: 'production', version: 4 }),
      },
      ['models', 'push', 'm', 'saved', '--alias', 'production', '--description', 'a model'],
    );
    expect(result).toMatchObject({ code: 0, out: '4\n' });
    expect(result.err).toContain('pushed m version 4 (inputs: x FP32[-1,4]); production → 4');
    const [, create, upload, alias] = result.requests;
    expect(jsonBody(create)).toEqual({ name: 'm', description: 'a model' });
    expect(upload!.headers['content-type']).toBe('application/x-tar');
    expect(parseTar(new Uint8Array(upload!.body)).map((entry) => [entry.path, Buffer.from(entry.bytes ?? []).toString()])).toEqual([
      ['model.onnx', 'onnx-bytes'],
      ['spec.json', '{}'],
    ]);
    expect(jsonBody(alias)).toEqual({ version: 4 });
  });

  it('push sends an .onnx file as octet-stream to an existing model', async () => {
    await writeFile(join(directory, 'm.onnx'), 'onnx');
    const result = await run(
      { 'GET /api/v1/models/m': sendJson(200, { name: 'm', versions: [1], aliases: [] }), 'POST /api/v1/models/m/versions': sendJson(201, { version }) },
      ['models', 'push', 'm', 'm.onnx'],
    );
    expect(result.code).toBe(0);
    expect(result.requests.map((request) => `${request.method} ${request.url}`)).toEqual(['GET /api/v1/models/m', 'POST /api/v1/models/m/versions']);
    expect(result.requests[1]!.headers['content-type']).toBe('application/octet-stream');
  });

  it('push removes the model it created when the server refuses the file', async () => {
    await writeFile(join(directory, 'garbage.onnx'), 'junk');
    const result = await run(
      {
        'GET /api/v1/models/junk': sendJson(404, { error: { code: 'MODEL_NOT_FOUND', message: 'no model junk' } }),
        'POST /api/v1/models': sendJson(201, { model: { name: 'junk' } }),
        'POST /api/v1/models/junk/versions': sendJson(400, { error: { code: 'INVALID_MODEL_FILE', message: 'not an ONNX model' } }),
        'DELETE /api/v1/models/junk': (_request, response) => {
          response.statusCode = 204;
          response.end();
        },
      },
      ['models', 'push', 'junk', 'garbage.onnx'],
    );
    expect(result.code).toBe(1);
    expect(result.err).toContain('INVALID_MODEL_FILE');
    expect(result.err).not.toContain('created model');
    expect(result.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      'GET /api/v1/models/junk',
      'POST /api/v1/models',
      'POST /api/v1/models/junk/versions',
      'DELETE /api/v1/models/junk',
    ]);
  });

  it('ls shows versions and aliases', async () => {
    const result = await run(
      { 'GET /api/v1/models': sendJson(200, { models: [{ name: 'mnist', description: 'digits', batching: null, versions: [1, 2], aliases: [{ name: 'production', version: 2 }], createdAt: '' }] }) },
      ['models', 'ls'],
    );
    expect(result.out).toBe('NAME   VERSIONS  ALIASES       DESCRIPTION\nmnist  1,2       production→2  digits\n');
  });
});

describe('jobs', () => {
  it('submit reads the spec and sends every setting', async () => {
    await writeFile(join(directory, 'spec.json'), JSON.stringify({ layers: [] }));
    const result = await run({ 'POST /api/v1/jobs': sendJson(202, { job: { id: 'job_1' } }) }, [
      'jobs', 'submit', '--model', 'm', '--spec', 'spec.json', '--dataset', 'ds_1', '--test-dataset', 'ds_2',
      '--epochs', '3', '--batch-size', '16', '--seed', '0', '--validation-split', '0.1',
    ]);
    expect(result).toMatchObject({ code: 0, out: 'job_1\n' });
    expect(jsonBody(result.requests[0])).toEqual({ model: 'm', spec: { layers: [] }, datasetId: 'ds_1', testDatasetId: 'ds_2', epochs: 3, batchSize: 16, seed: 0, validationSplit: 0.1 });
  });

  const stream = (events: string): Route => (_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' }).end(events);
  };
  const job = { id: 'job_1', model: 'm', status: 'running', epoch: 0, totalEpochs: 2, step: 0, loss: null, history: [] };
  const progressEvents =
    'id: 1\nevent: job-started\ndata: {"epoch":0,"totalEpochs":2}\n\n' +
    'id: 2\nevent: job-progress\ndata: {"epoch":1,"batch":1,"batchesPerEpoch":2,"samplesSeen":10,"samplesPerEpoch":20,"step":1,"loss":2.0,"samplesPerSecond":100}\n\n' +
    'id: 3\nevent: epoch-end\ndata: {"epoch":1,"epochs":2,"step":2,"loss":1.5,"metrics":{"accuracy":0.5},"samplesPerSecond":100,"seconds":0.2}\n\n' +
    'id: 4\nevent: job-progress\ndata: {"epoch":2,"batch":1,"batchesPerEpoch":2,"samplesSeen":10,"samplesPerEpoch":20,"step":3,"loss":1.0,"samplesPerSecond":100}\n\n' +
    'id: 5\nevent: epoch-end\ndata: {"epoch":2,"epochs":2,"step":4,"loss":0.9,"metrics":{"accuracy":0.75},"validationLoss":1.1,"validationMetrics":{"accuracy":0.7},"samplesPerSecond":100,"seconds":0.2}\n\n';

  it('watch prints plain epoch lines when not on a terminal and exits 0 on success', async () => {
    const result = await run(
      {
        'GET /api/v1/jobs/job_1': sendJson(200, { job }),
        'GET /api/v1/jobs/job_1/events': stream(`${progressEvents}id: 6\nevent: job-finished\ndata: {"status":"succeeded","version":3,"summary":{"testLoss":0.8,"testMetrics":{"accuracy":0.8}}}\n\n`),
      },
      ['jobs', 'watch', 'job_1'],
    );
    expect(result.code).toBe(0);
    expect(result.err).toBe(
      'training started\n' +
        'epoch 1/2 loss 1.5000 acc 0.5000 100 samples/s 0.2s\n' +
        'epoch 2/2 loss 0.9000 acc 0.7500 val_loss 1.1000 val_acc 0.7000 100 samples/s 0.2s\n' +
        'succeeded: version 3; test loss 0.8000 test_acc 0.8000\n',
    );
  });

  it('watch exits 1 with the job error when the job failed, and --json prints events as lines', async () => {
    const result = await run(
      {
        'GET /api/v1/jobs/job_1': sendJson(200, { job }),
        'GET /api/v1/jobs/job_1/events': stream('id: 1\nevent: job-finished\ndata: {"status":"failed","error":{"code":"TRAINING_DIVERGED","message":"loss became NaN at step 9"}}\n\n'),
      },
      ['jobs', 'watch', 'job_1', '--json'],
    );
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out)).toEqual({ type: 'job-finished', id: '1', data: { status: 'failed', error: { code: 'TRAINING_DIVERGED', message: 'loss became NaN at step 9' } } });
    expect(result.err).toMatch(/error TRAINING_DIVERGED: job job_1 failed: loss became NaN at step 9\n$/);
  });

  it('watch draws a progress bar with ETA in place on a terminal', async () => {
    server = await fakeServer({
      'GET /api/v1/jobs/job_1': sendJson(200, { job }),
      'GET /api/v1/jobs/job_1/events': stream(`${progressEvents}id: 6\nevent: job-finished\ndata: {"status":"cancelled","epoch":2}\n\n`),
    });
    const io = captureIo({ env: { AIAAS_SERVER: server.url }, tty: true });
    expect(await main(['jobs', 'watch', 'job_1'], io)).toBe(1);
    const err = io.err();
    // First batch of epoch 1: 10 of 20 samples, one more epoch to go: 30 samples at 100/s.
    expect(err).toContain('\repoch 1/2 [===========>            ] step 1 loss 2.0000 100 samples/s ETA 0s\u001b[K');
    // Later bars carry the last epoch's metrics.
    expect(err).toContain('\repoch 2/2 [===========>            ] step 3 loss 1.0000 acc 0.5000 100 samples/s ETA 0s\u001b[K');
    expect(err).toContain('\r\u001b[2Kepoch 2/2 loss 0.9000');
    expect(err).toMatch(/cancelled after epoch 2\nerror JOB_CANCELLED: job job_1 was cancelled\n$/);
  });
});

describe('predict', () => {
  it('parses MODEL[@VERSION|@ALIAS] and detects the protocol', () => {
    expect(parseModelReference('mnist')).toEqual({ name: 'mnist', version: undefined, alias: undefined });
    expect(parseModelReference('mnist@3')).toEqual({ name: 'mnist', version: 3, alias: undefined });
    expect(parseModelReference('mnist@production')).toEqual({ name: 'mnist', version: undefined, alias: 'production' });
    expect(detectProtocol({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] })).toBe('v2');
    expect(detectProtocol({ instances: [[1]] })).toBe('tfserving');
    expect(detectProtocol({ inputs: [[1, 2]] })).toBe('tfserving');
    expect(detectProtocol({ inputs: { x: [[1]] } })).toBe('tfserving');
  });

  it('sends V2 to versions/ALIAS/infer and TF-Serving to labels/ALIAS:predict', async () => {
    await writeFile(join(directory, 'v2.json'), JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }] }));
    await writeFile(join(directory, 'tf.json'), JSON.stringify({ instances: [[1]] }));
    const v2 = await run({ 'POST /v2/models/m/versions/production/infer': sendJson(200, { model_name: 'm', outputs: [] }) }, ['predict', 'm@production', '--input', 'v2.json']);
    expect(v2).toMatchObject({ code: 0, out: '{\n  "model_name": "m",\n  "outputs": []\n}\n' });
    await server!.close();
    const tf = await run(
      {
        'POST /tfserving/v1/models/m/labels/production:predict': (_request, response) => {
          response.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions": [[NaN, 0.5]]}');
        },
      },
      ['predict', 'm@production', '--input', 'tf.json'],
    );
    expect(tf).toMatchObject({ code: 0, out: '{\n  "predictions": [\n    [null, 0.5]\n  ]\n}\n' });
    await server!.close();
    const byVersion = await run({ 'POST /tfserving/v1/models/m/versions/2:predict': sendJson(200, { predictions: [] }) }, ['predict', 'm@2', '--input', 'v2.json', '--protocol', 'tfserving']);
    expect(byVersion.code).toBe(0);
  });

  it('prints V2 errors with the code from the header', async () => {
    await writeFile(join(directory, 'v2.json'), JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }] }));
    const result = await run(
      {
        'POST /v2/models/m/infer': (_request, response) => {
          response.writeHead(400, { 'content-type': 'application/json', 'x-aiaas-error-code': 'INVALID_TENSOR' }).end(JSON.stringify({ error: "input 'x': expected shape [-1, 4]" }));
        },
      },
      ['predict', 'm', '--input', 'v2.json'],
    );
    expect(result).toMatchObject({ code: 1, out: '', err: "error INVALID_TENSOR: input 'x': expected shape [-1, 4]\n" });
  });
});

describe('keys, tenants, audit', () => {
  it('keys create sends role, models and expiry and prints the secret alone on stdout', async () => {
    const result = await run({ 'POST /api/v1/keys': sendJson(201, { id: 'key_1', key: 'aiaas_secret', prefix: 'aiaas_se', role: 'inference' }) }, [
      'keys', 'create', '--name', 'app', '--role', 'inference', '--models', 'a, b', '--expires', '2027-01-01T00:00:00Z',
    ]);
    expect(result).toMatchObject({ code: 0, out: 'aiaas_secret\n' });
    expect(jsonBody(result.requests[0])).toEqual({ name: 'app', role: 'inference', allowedModels: ['a', 'b'], expiresAt: '2027-01-01T00:00:00.000Z' });
  });

  it('tenants create prints the admin key; a 403 prints the missing permission', async () => {
    const created = await run({ 'POST /api/v1/tenants': sendJson(201, { tenant: { id: 't1', name: 'acme' }, adminKey: { id: 'k', key: 'aiaas_acme', prefix: 'aiaas_ac' } }) }, ['tenants', 'create', 'acme']);
    expect(created).toMatchObject({ code: 0, out: 'aiaas_acme\n' });
    await server!.close();
    const forbidden = await run({ 'GET /api/v1/tenants': sendJson(403, { error: { code: 'FORBIDDEN', message: 'needs tenants:manage', details: { permission: 'tenants:manage' } } }) }, ['tenants', 'ls']);
    expect(forbidden).toMatchObject({ code: 1, err: 'error FORBIDDEN: needs tenants:manage\n  details: {"permission":"tenants:manage"}\n' });
  });

  it('audit verify exits 1 at a broken chain; export writes a file', async () => {
    const broken = await run(
      { 'GET /api/v1/audit/verify': sendJson(200, { ok: false, position: 2, seq: 3, reason: 'altered', message: 'hash mismatch' }) },
      ['audit', 'verify'],
    );
    expect(broken).toMatchObject({ code: 1, err: 'error AUDIT_CHAIN_BROKEN: entry at position 2 (seq 3) altered: hash mismatch\n' });
    await server!.close();
    const exported = await run(
      { 'GET /api/v1/audit/export': (_request, response) => void response.writeHead(200, { 'content-type': 'application/x-ndjson' }).end('{"seq":1}\n{"seq":2}\n') },
      ['audit', 'export', '--out', 'audit.jsonl'],
    );
    expect(exported).toMatchObject({ code: 0, out: '' });
    expect(exported.err).toMatch(/^wrote 2 entries to .*audit\.jsonl\n$/);
  });

  it('takes --server and --api-key before the command over the environment', async () => {
    server = await fakeServer({ 'GET /api/v1/jobs': sendJson(200, { jobs: [] }) });
    const io = captureIo({ env: { AIAAS_SERVER: 'http://127.0.0.1:9', AIAAS_API_KEY: 'from-env' } });
    expect(await main(['--server', server.url, '--api-key', 'from-flag', 'jobs', 'ls'], io)).toBe(0);
    expect(io.out()).toBe('no jobs\n');
    expect(server.requests[0]!.headers.authorization).toBe('Bearer from-flag');
  });
});

describe('usage', () => {
  const units = { requests: 0, failedRequests: 0, items: 0, promptTokens: 0, completionTokens: 0, computeMs: 0, queueMs: 0, bytesIn: 0, bytesOut: 0, trainingSampleEpochs: 0, trainingWorkerSeconds: 0, storedByteHours: 0 };

  it('prints a table of the groups asked for, with the units some row has, and passes filters and range', async () => {
    const usage = [
      { model: 'iris', keyId: 'key_a', ...units, requests: 12, failedRequests: 1, items: 30, computeMs: 4.25, bytesIn: 2048 },
      { model: '', keyId: '', ...units, storedByteHours: 3 * 1024 * 1024 },
    ];
    const result = await run(
      { 'GET /api/v1/usage': sendJson(200, { groupBy: ['model', 'key'], from: '2026-01-01T00:00:00.000Z', to: null, usage }) },
      ['usage', '--group-by', 'model,key', '--from', '2026-01-01', '--model', 'iris', '--version', '2'],
    );
    expect(result.code).toBe(0);
    expect(result.requests[0]!.url).toBe('/api/v1/usage?groupBy=model%2Ckey&from=2026-01-01&model=iris&version=2');
    expect(result.requests[0]!.headers.accept).toBe('application/json');
    expect(result.out).toBe(
      [
        'MODEL       KEY    REQUESTS  FAILED  ITEMS  COMPUTE  IN       STORED',
        'iris        key_a  12        1       30     4.3ms    2.0 KiB  0 B·h',
        '(datasets)  -      0         0       0      0.0ms    0 B      3.0 MiB·h',
        '',
      ].join('\n'),
    );
  });

  it('--csv prints what the server sends for Accept: text/csv; a bad --group-by is a usage error', async () => {
    const csv = 'model,day,requests\r\niris,2026-01-02,3\r\n';
    const result = await run({ 'GET /api/v1/usage': (_request, response) => void response.writeHead(200, { 'content-type': 'text/csv' }).end(csv) }, ['usage', '--csv', '--to', '2026-01-31']);
    expect(result).toMatchObject({ code: 0, out: csv });
    expect(result.requests[0]!.headers.accept).toBe('text/csv');
    expect(result.requests[0]!.url).toBe('/api/v1/usage?to=2026-01-31');
    const bad = await run({}, ['usage', '--group-by', 'colour']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--group-by takes model, key, version, protocol, day, hour, minute; got "colour"');
  });
});

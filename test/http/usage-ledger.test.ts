import { Readable, Writable } from 'node:stream';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, classifierModel, classifierSpec, createKey, createTenant, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

const v2Body = (rows: number) => ({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 4], data: Array.from({ length: rows * 4 }, (_, index) => index / 10) }] });

/** `queue;dur=…, compute;dur=…` as numbers. */
function parseServerTiming(header: unknown): { queue: number; compute: number } {
  expect(typeof header).toBe('string');
  const match = /^queue;dur=(\d+(?:\.\d+)?), compute;dur=(\d+(?:\.\d+)?)$/.exec(header as string);
  expect(match, String(header)).not.toBeNull();
  return { queue: Number(match![1]), compute: Number(match![2]) };
}

describe('usage ledger in the server', () => {
  let server: TestServer;
  let clock = new Date('2026-03-04T10:15:30Z');
  beforeAll(async () => {
    server = await startTestServer({}, { now: () => clock });
  });
  afterAll(async () => {
    await server.close();
  });

  it('records requests, items, bytes and worker times per key, model, version and protocol; Server-Timing reports the same times', async () => {
    const tenant = await createTenant(server, 'metered');
    expect((await uploadOnnxModel(server, tenant.adminKey, 'alpha', classifierModel(1).exportOnnx())).statusCode).toBe(201);
    expect((await uploadOnnxModel(server, tenant.adminKey, 'alpha', classifierModel(2).exportOnnx())).statusCode).toBe(201);
    const developer = await createKey(server, tenant.adminKey, 'developer');

    const first = await call(server.app, tenant.adminKey, 'POST', '/v2/models/alpha/versions/1/infer', v2Body(3));
    expect(first.statusCode).toBe(200);
    const timing = parseServerTiming(first.headers['server-timing']);
    expect(timing.compute).toBeGreaterThan(0);
    const bytesIn = Buffer.byteLength(JSON.stringify(v2Body(3)));
    expect(bytesIn).toBeGreaterThan(0);

    clock = new Date('2026-03-04T11:00:05Z');
    const predict = await call(server.app, developer.key, 'POST', '/tfserving/v1/models/alpha:predict', { instances: [[1, 2, 3, 4], [4, 3, 2, 1]] });
    expect(predict.statusCode).toBe(200);
    parseServerTiming(predict.headers['server-timing']);
    const second = await call(server.app, developer.key, 'POST', '/v2/models/alpha/infer', v2Body(1));
    expect(second.statusCode).toBe(200);

    const byVersion = await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=model,version,key,protocol');
    expect(byVersion.statusCode).toBe(200);
    const rows = byVersion.json().usage as Record<string, number | string>[];
    // Ordered by the groups, in the order asked for.
    expect(rows.map((row) => [row.model, row.version, row.keyId, row.protocol, row.requests, row.items])).toEqual([
      ['alpha', 1, await keyIdOf(tenant.adminKey), 'v2', 1, 3],
      ['alpha', 2, developer.id, 'tfserving', 1, 2],
      ['alpha', 2, developer.id, 'v2', 1, 1],
    ]);
    const adminRow = rows.find((row) => row.version === 1)!;
    // The ledger and the header come from the same measurement (a batch of one bills its whole run).
    expect(adminRow.computeMs).toBe(timing.compute);
    expect(adminRow.queueMs).toBe(timing.queue);
    expect(adminRow.bytesIn).toBe(bytesIn);
    expect(adminRow.bytesOut).toBe(Buffer.byteLength(first.body));
    expect(adminRow.failedRequests).toBe(0);

    // Time buckets, filters and ranges.
    const byHour = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=hour')).json();
    expect(byHour.usage.map((row: { hour: string; requests: number }) => [row.hour, row.requests])).toEqual([
      ['2026-03-04T10:00Z', 1],
      ['2026-03-04T11:00Z', 2],
    ]);
    const byMinute = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=minute,protocol&protocol=v2')).json();
    expect(byMinute.usage.map((row: { minute: string; protocol: string; requests: number }) => [row.minute, row.protocol, row.requests])).toEqual([
      ['2026-03-04T10:15Z', 'v2', 1],
      ['2026-03-04T11:00Z', 'v2', 1],
    ]);
    const ranged = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=model&from=2026-03-04T10:30:00Z&to=2026-03-04')).json();
    expect(ranged).toMatchObject({ groupBy: ['model'], from: '2026-03-04T10:30:00.000Z', to: '2026-03-05T00:00:00.000Z' });
    expect(ranged.usage.map((row: { model: string; requests: number }) => [row.model, row.requests])).toEqual([['alpha', 2]]);
    const byKey = (await call(server.app, tenant.adminKey, 'GET', `/api/v1/usage?groupBy=day&key=${developer.id}&version=2`)).json();
    expect(byKey.usage).toEqual([expect.objectContaining({ day: '2026-03-04', requests: 2, items: 3 })]);
    const byDefault = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?to=2026-03-03')).json();
    expect(byDefault).toMatchObject({ groupBy: ['model', 'day'], usage: [] });

    // CSV: a header row, then one row per group.
    const csv = await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=model,day', undefined, { accept: 'text/csv' });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = csv.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'model,day,requests,failedRequests,items,promptTokens,completionTokens,computeMs,queueMs,bytesIn,bytesOut,trainingSampleEpochs,trainingWorkerSeconds,storedByteHours',
    );
    expect(lines).toHaveLength(2);
    expect(lines[1]!.split(',').slice(0, 5)).toEqual(['alpha', '2026-03-04', '3', '0', '6']);

    // Another tenant sees none of it.
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/usage?model=alpha')).json().usage).toEqual([]);
  });

  it('records failed inferences as failures, never as billed requests', async () => {
    const tenant = await createTenant(server, 'failing');
    expect((await uploadOnnxModel(server, tenant.adminKey, 'beta', classifierModel(3).exportOnnx())).statusCode).toBe(201);
    const wrongShape = await call(server.app, tenant.adminKey, 'POST', '/v2/models/beta/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(wrongShape.statusCode).toBe(400);
    expect(wrongShape.headers['server-timing']).toBeUndefined();
    const wrongPredict = await call(server.app, tenant.adminKey, 'POST', '/tfserving/v1/models/beta:predict', { instances: [[1, 2]] });
    expect(wrongPredict.statusCode).toBe(400);
    const totals = await server.context.ledger.totals(tenant.id);
    expect(totals).toMatchObject({ requests: 0, failedRequests: 2, items: 0, computeMs: 0, bytesIn: 0, bytesOut: 0 });
    expect((await call(server.app, tenant.adminKey, 'POST', '/v2/models/beta/infer', v2Body(2))).statusCode).toBe(200);
    expect(await server.context.ledger.totals(tenant.id)).toMatchObject({ requests: 1, failedRequests: 2, items: 2 });
  });

  it('shows a key restricted to some models only their usage, whatever it groups by', async () => {
    const tenant = await createTenant(server, 'restricted');
    expect((await uploadOnnxModel(server, tenant.adminKey, 'seen', classifierModel(4).exportOnnx())).statusCode).toBe(201);
    expect((await uploadOnnxModel(server, tenant.adminKey, 'hidden', classifierModel(5).exportOnnx())).statusCode).toBe(201);
    for (const name of ['seen', 'hidden', 'hidden']) expect((await call(server.app, tenant.adminKey, 'POST', `/v2/models/${name}/infer`, v2Body(1))).statusCode).toBe(200);
    const limited = await createKey(server, tenant.adminKey, 'viewer', { allowedModels: ['seen'] });
    expect((await call(server.app, limited.key, 'GET', '/api/v1/usage')).json().usage.map((row: { model: string }) => row.model)).toEqual(['seen']);
    expect((await call(server.app, limited.key, 'GET', '/api/v1/usage?groupBy=key')).json().usage).toEqual([expect.objectContaining({ requests: 1 })]);
    expect((await call(server.app, limited.key, 'GET', '/api/v1/usage?groupBy=day&model=hidden')).json().usage).toEqual([]);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=key')).json().usage).toEqual([expect.objectContaining({ requests: 3 })]);
  });

  it('counts the bytes of a request body sent without Content-Length as they are read', async () => {
    const tenant = await createTenant(server, 'chunked');
    expect((await uploadOnnxModel(server, tenant.adminKey, 'gamma', classifierModel(8).exportOnnx())).statusCode).toBe(201);
    const body = Buffer.from(JSON.stringify(v2Body(2)));
    const response = await server.app.inject({
      method: 'POST',
      url: '/v2/models/gamma/infer',
      headers: { authorization: `Bearer ${tenant.adminKey}`, 'content-type': 'application/json' },
      payload: Readable.from([body.subarray(0, 10), body.subarray(10)]),
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBeDefined();
    expect(await server.context.ledger.totals(tenant.id)).toMatchObject({ requests: 1, items: 2, bytesIn: body.length, bytesOut: Buffer.byteLength(response.body) });
  });

  it('refuses malformed groupBy, ranges and versions with 400', async () => {
    for (const query of ['groupBy=colour', 'groupBy=day,hour', 'from=yesterday', 'to=2026-02-30', 'from=2026-03-06&to=2026-03-04', 'version=x', 'bogus=1']) {
      const response = await call(server.app, server.adminKey, 'GET', `/api/v1/usage?${query}`);
      expect(response.statusCode, query).toBe(400);
    }
  });

  it('samples stored bytes into byte-hours once an hour', async () => {
    const tenant = await createTenant(server, 'storing');
    const onnx = classifierModel(6).exportOnnx();
    expect((await uploadOnnxModel(server, tenant.adminKey, 'kept', onnx)).statusCode).toBe(201);
    const dataset = await call(server.app, tenant.adminKey, 'POST', '/api/v1/datasets?name=rows&label=label', irisLikeCsv(), { 'content-type': 'application/octet-stream' });
    expect(dataset.statusCode).toBe(201);
    clock = new Date('2026-03-04T12:20:00Z');
    expect(await server.context.storageSampler.sample()).toBe(true);
    clock = new Date('2026-03-04T12:59:00Z');
    expect(await server.context.storageSampler.sample()).toBe(false);
    clock = new Date('2026-03-04T13:00:00Z');
    expect(await server.context.storageSampler.sample()).toBe(true);
    const stored = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=model,version,protocol,hour&protocol=storage')).json().usage as Record<string, number | string>[];
    const datasetBytes = dataset.json().dataset.bytes as number;
    expect(stored.filter((row) => row.model === '').map((row) => [row.hour, row.storedByteHours])).toEqual([
      ['2026-03-04T12:00Z', datasetBytes],
      ['2026-03-04T13:00Z', datasetBytes],
    ]);
    const modelRows = stored.filter((row) => row.model === 'kept');
    expect(modelRows.map((row) => [row.hour, row.version])).toEqual([
      ['2026-03-04T12:00Z', 1],
      ['2026-03-04T13:00Z', 1],
    ]);
    // Encrypted on disk: at least the model's own bytes.
    expect(modelRows[0]!.storedByteHours).toBeGreaterThanOrEqual(onnx.byteLength);
    expect((await server.context.ledger.totals(tenant.id, { from: new Date('2026-03-04T13:00:00Z') })).storedByteHours).toBe(datasetBytes + (modelRows[1]!.storedByteHours as number));
  });

  async function keyIdOf(key: string): Promise<string> {
    return (await call(server.app, key, 'GET', '/api/v1/me')).json().key.id as string;
  }
});

describe('a failing ledger write in the server', () => {
  it('is logged with its error, keeps the usage, and writes it with the next flush', async () => {
    const lines: { level: number; msg: string; pendingBuckets?: number; err?: { message: string } }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
        done();
      },
    });
    const server = await startTestServer({}, { logger: pino({ level: 'warn' }, sink) });
    try {
      expect((await uploadOnnxModel(server, server.adminKey, 'counted', classifierModel().exportOnnx())).statusCode).toBe(201);
      const infer = () => call(server.app, server.adminKey, 'POST', '/v2/models/counted/infer', v2Body(1));
      const db = server.context.database.db;
      // A real failure of the real table: it is briefly gone.
      await sql`alter table usage_ledger rename to usage_ledger_away`.execute(db);
      expect((await infer()).statusCode).toBe(200);
      expect((await infer()).statusCode).toBe(200);
      await expect(server.context.ledger.flush()).rejects.toThrow(/usage_ledger/);
      const logged = lines.find((line) => line.msg.includes('could not write the usage ledger'));
      expect(logged).toMatchObject({ level: 50, pendingBuckets: 1 });
      expect(logged!.err!.message).toMatch(/usage_ledger/);
      expect(server.context.ledger.pendingRequests).toBe(2);
      await sql`alter table usage_ledger_away rename to usage_ledger`.execute(db);
      expect((await call(server.app, server.adminKey, 'GET', '/api/v1/usage')).json().usage).toMatchObject([{ model: 'counted', requests: 2 }]);
    } finally {
      await server.close();
    }
  });
});

describe('training in the ledger', () => {
  it('bills a training job’s sample-epochs and worker time to the key that submitted it', async () => {
    const server = await startTestServer();
    try {
      server.context.jobs.start();
      const developer = await createKey(server, server.adminKey, 'developer');
      const dataset = await call(server.app, developer.key, 'POST', '/api/v1/datasets?name=rows&label=label', irisLikeCsv(), { 'content-type': 'application/octet-stream' });
      expect(dataset.statusCode).toBe(201);
      const submitted = await call(server.app, developer.key, 'POST', '/api/v1/jobs', { model: 'trained', spec: classifierSpec, datasetId: dataset.json().dataset.id, epochs: 3, batchSize: 4, seed: 1 });
      expect(submitted.statusCode, submitted.body).toBe(202);
      const jobId = submitted.json().job.id as string;
      await expect
        .poll(async () => (await call(server.app, developer.key, 'GET', `/api/v1/jobs/${jobId}`)).json().job.status, { timeout: 60_000, interval: 100 })
        .toBe('succeeded');
      // Sample-epochs are recorded as each epoch ends, before the job can be marked done.
      await expect.poll(async () => (await server.context.ledger.totals(server.context.bootstrap.tenantId)).trainingSampleEpochs, { timeout: 10_000 }).toBe(12 * 3);
      const rows = (await call(server.app, server.adminKey, 'GET', '/api/v1/usage?groupBy=model,version,key,protocol&protocol=training')).json().usage;
      expect(rows).toEqual([expect.objectContaining({ model: 'trained', version: 0, keyId: developer.id, protocol: 'training', requests: 0, trainingSampleEpochs: 36 })]);
      expect(rows[0].trainingWorkerSeconds).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});

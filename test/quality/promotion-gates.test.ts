import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/index.ts';
import { decideGate, parseGate } from '../../src/quality/promotion-gates.ts';
import { call, createKey, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

describe('gate decisions', () => {
  const figure = (version: number, value: number) => ({ version, value, evaluationId: `e${version}` });

  it('applies minimum, maximum and the drop from the current version in the metric direction', () => {
    const drop = parseGate({ metric: 'accuracy', datasetId: 'd', maxDropFromCurrent: 0.005 })!;
    expect(decideGate(drop, figure(2, 0.896), figure(1, 0.9))).toMatchObject({ passed: true, required: { atLeast: expect.closeTo(0.895, 12) } });
    expect(decideGate(drop, figure(2, 0.894), figure(1, 0.9)).passed).toBe(false);
    // No current version (a new alias): the drop bound does not apply.
    expect(decideGate(drop, figure(2, 0.1), null).passed).toBe(true);
    const absolute = parseGate({ metric: 'accuracy', datasetId: 'd', minimum: 0.9 })!;
    expect(decideGate(absolute, figure(2, 0.9), null).passed).toBe(true);
    expect(decideGate(absolute, figure(2, 0.8999), null).passed).toBe(false);
    // Lower is better for errors: the drop allows a rise.
    const error = parseGate({ metric: 'rootMeanSquaredError', datasetId: 'd', maxDropFromCurrent: 0.1, maximum: 1 })!;
    expect(decideGate(error, figure(2, 0.55), figure(1, 0.5))).toMatchObject({ passed: true, required: { atMost: expect.closeTo(0.6, 12) } });
    expect(decideGate(error, figure(2, 0.65), figure(1, 0.5)).passed).toBe(false);
  });

  it('refuses gates that cannot be checked', () => {
    expect(() => parseGate({ metric: 'vibes', datasetId: 'd', minimum: 1 })).toThrow(/gate.metric/);
    expect(() => parseGate({ metric: 'accuracy', datasetId: 'd' })).toThrow(/at least one of/);
    expect(() => parseGate({ metric: 'accuracy', datasetId: 'd', maxDropFromCurrent: -1 })).toThrow(/≥ 0/);
    expect(parseGate(null)).toBeNull();
  });
});

describe('gated aliases', () => {
  let server: TestServer;
  let datasetId: string;
  const models: Model[] = [];

  function blobsCsv(rows: number): string {
    const lines = ['a,b,c,d,label'];
    for (let row = 0; row < rows; row++) {
      const label = row % 3;
      const features = [0, 1, 2, 3].map((feature) => (feature === label ? 1.5 : 0) + (((row * 7 + feature * 13) % 17) / 17 - 0.5) * 1.5);
      lines.push(`${features.map((value) => value.toFixed(4)).join(',')},${label}`);
    }
    return `${lines.join('\n')}\n`;
  }

  async function classifier(seed: number, epochs: number): Promise<Model> {
    const model = Model.fromSpec(
      {
        name: 'gated',
        input: { shape: [4] },
        layers: [{ type: 'dense', units: 3, activation: 'softmax' }],
        compile: { optimizer: { type: 'adam', learningRate: 0.1 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
      },
      { seed },
    );
    models.push(model);
    if (epochs > 0) await model.fit(await server.context.datasets.load(server.context.bootstrap.tenantId, datasetId), { epochs, batchSize: 8, seed: 1 });
    return model;
  }

  beforeAll(async () => {
    server = await startTestServer();
    server.context.jobs.start();
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=gate&label=label', blobsCsv(90), { 'content-type': 'application/octet-stream' });
    datasetId = upload.json().dataset.id;
    // Version 1 trained, version 2 untrained (worse), version 3 the same weights as version 1.
    const good = await classifier(4, 8);
    const bad = await classifier(9, 0);
    for (const model of [good, bad, good]) expect((await uploadOnnxModel(server, server.adminKey, 'gated', model.exportOnnx())).statusCode).toBe(201);
  }, 120_000);

  afterAll(async () => {
    for (const model of models) await model.dispose();
    await server?.close();
  });

  const put = (body: Record<string, unknown>, key = server.adminKey) => call(server.app, key, 'PUT', '/api/v1/models/gated/aliases/production', body);
  const evaluationsOf = async (version: number) => (await call(server.app, server.adminKey, 'GET', `/api/v1/models/gated/versions/${version}/evaluations`)).json().evaluations as { id: string; status: string; report: { accuracy: number } }[];

  it('blocks a move that drops accuracy, with both figures, and reuses the reports', async () => {
    expect((await put({ version: 1 })).statusCode).toBe(200);
    const first = await put({ version: 1, gate: { metric: 'accuracy', datasetId, maxDropFromCurrent: 0.005 } });
    expect(first.statusCode, first.body).toBe(200);
    // Pointing at the version it already serves needs no evaluation.
    expect(first.json()).toMatchObject({ alias: { name: 'production', version: 1, split: null, shadow: null, gate: { metric: 'accuracy', maxDropFromCurrent: 0.005 } }, gate: null });

    const blocked = await put({ version: 2 });
    expect(blocked.statusCode, blocked.body).toBe(409);
    const error = blocked.json().error;
    expect(error.code).toBe('GATE_FAILED');
    const [current] = await evaluationsOf(1);
    const [candidate] = await evaluationsOf(2);
    expect(current!.status).toBe('succeeded');
    expect(error.details).toMatchObject({
      passed: false,
      metric: 'accuracy',
      candidate: { version: 2, value: candidate!.report.accuracy, evaluationId: candidate!.id },
      current: { version: 1, value: current!.report.accuracy, evaluationId: current!.id },
      required: { atLeast: expect.closeTo(current!.report.accuracy - 0.005, 12) },
    });
    expect(candidate!.report.accuracy).toBeLessThan(current!.report.accuracy - 0.005);
    expect(error.message).toContain(`version 2 has accuracy ${candidate!.report.accuracy}`);

    // Same version and dataset again: the stored reports are reused, no new evaluation runs.
    expect((await put({ version: 2 })).statusCode).toBe(409);
    expect(await evaluationsOf(2)).toHaveLength(1);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/gated/aliases')).json().aliases[0]).toMatchObject({ version: 1 });

    // An equally good version passes.
    const moved = await put({ version: 3 });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json().gate).toMatchObject({ forced: false, decisions: [{ passed: true, candidate: { version: 3, value: current!.report.accuracy } }] });
  }, 120_000);

  it('lets only an admin force a move, and audits it', async () => {
    const developer = await createKey(server, server.adminKey, 'developer');
    const refused = await put({ version: 2, force: true }, developer.key);
    expect(refused.statusCode).toBe(403);
    const forced = await put({ version: 2, force: true });
    expect(forced.statusCode, forced.body).toBe(200);
    expect(forced.json()).toMatchObject({ alias: { version: 2 }, gate: { forced: true, decisions: [] } });
    const entries = (await call(server.app, server.adminKey, 'GET', '/api/v1/audit')).json().entries as { action: string; resource: string; detail: { gate?: { forced: boolean } } }[];
    const entry = entries.filter((item) => item.action === 'alias.set' && item.resource === 'model:gated/aliases/production').at(-1);
    expect(entry?.detail.gate?.forced).toBe(true);
    expect((await put({ version: 1, gate: { metric: 'accuracy', datasetId, minimum: 0 } })).statusCode).toBe(200);
  }, 120_000);

  it('answers 202 with the evaluation jobs when they outlast the wait, and decides once they finish', async () => {
    const second = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=gate2&label=label', blobsCsv(60), { 'content-type': 'application/octet-stream' });
    const otherDataset = second.json().dataset.id as string;
    const pending = await call(server.app, server.adminKey, 'PUT', '/api/v1/models/gated/aliases/staging', { version: 3, gate: { metric: 'accuracy', datasetId: otherDataset, minimum: 0.5 }, waitSeconds: 0 });
    expect(pending.statusCode, pending.body).toBe(202);
    const { jobs } = pending.json();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ kind: 'evaluate', settings: { version: 3, datasetId: otherDataset } });
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/gated/aliases')).json().aliases.map((alias: { name: string }) => alias.name)).not.toContain('staging');
    await server.context.jobs.evaluations.waitForJob(server.context.bootstrap.tenantId, jobs[0].id, 120_000);
    const done = await call(server.app, server.adminKey, 'PUT', '/api/v1/models/gated/aliases/staging', { version: 3, gate: { metric: 'accuracy', datasetId: otherDataset, minimum: 0.5 }, waitSeconds: 0 });
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json().gate.decisions[0]).toMatchObject({ passed: true, candidate: { evaluationId: jobs[0].id } });
  }, 120_000);
});

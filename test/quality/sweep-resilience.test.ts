import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { call, startTestServer } from '../http/helpers.ts';

const directory = await mkdtemp(join(tmpdir(), 'aiaas-sweep-restart-'));
const masterKey = generateMasterKey();
const bootstrapKey = `aiaas_${'r'.repeat(40)}`;

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function open() {
  const config = loadConfig({ flags: { dataDir: directory, masterKey, bootstrapKey, logLevel: 'silent', warmup: false }, env: {} });
  const context = await createServerContext(config, { logger: pino({ level: 'silent' }), usageFlushIntervalMs: 0 });
  const app = await buildApp(context);
  const request = (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${bootstrapKey}`, ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
  const close = async () => {
    await app.close();
    await context.close();
  };
  return { context, app, request, close };
}

describe('a sweep across a restart', () => {
  it('is carried on by the next server from what the database holds', async () => {
    const first = await open();
    const rows = ['x,label', ...Array.from({ length: 32 }, (_, index) => `${index / 31},${(2 * index) / 31 + 1}`)].join('\n');
    const dataset = await first.request('POST', '/api/v1/datasets?name=line', rows, { 'content-type': 'text/csv' });
    expect(dataset.statusCode).toBe(201);
    // The job runner never starts on this server: the first trial stays queued.
    const submitted = await first.request('POST', '/api/v1/sweeps', {
      baseJob: { model: 'line', datasetId: dataset.json().dataset.id, epochs: 3, batchSize: 8, spec: { input: { shape: [1] }, layers: [{ type: 'dense', units: 1 }], compile: { optimizer: 'sgd', loss: 'meanSquaredError' } } },
      space: { 'compile.optimizer.learningRate': [0.01, 0.1] },
    } as never);
    expect(submitted.statusCode, submitted.body).toBe(202);
    const sweepId = submitted.json().sweep.id as string;
    expect(submitted.json().sweep.leaderboard.map((trial: { status: string }) => trial.status)).toEqual(['queued']);
    await first.close();

    const second = await open();
    try {
      second.context.jobs.start();
      const stream = await second.request('GET', `/api/v1/sweeps/${sweepId}/events`);
      expect(stream.body).toContain('event: sweep-finished');
      const sweep = (await second.request('GET', `/api/v1/sweeps/${sweepId}`)).json().sweep;
      expect(sweep.status).toBe('succeeded');
      expect(sweep.leaderboard.map((trial: { trial: number; status: string }) => [trial.trial, trial.status]).sort()).toEqual([[0, 'succeeded'], [1, 'succeeded']]);
      expect(sweep.best.params['compile.optimizer.learningRate']).toBe(0.1);
    } finally {
      await second.close();
    }
  }, 60_000);
});

describe('a sweep behind a full job quota', () => {
  it('waits for the quota instead of failing, then runs its trials', async () => {
    const server = await startTestServer({ maxConcurrentJobsPerTenant: 1, jobLeaseMs: 3000 });
    try {
      server.context.jobs.start();
      const rows = ['x,label', ...Array.from({ length: 32 }, (_, index) => `${index / 31},${(2 * index) / 31 + 1}`)].join('\n');
      const datasetId = (await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=line', rows, { 'content-type': 'text/csv' })).json().dataset.id as string;
      const spec = { input: { shape: [1] }, layers: [{ type: 'dense', units: 1 }], compile: { optimizer: 'sgd', loss: 'meanSquaredError' } };
      // An ordinary job holds the tenant's only slot.
      const blocker = await call(server.app, server.adminKey, 'POST', '/api/v1/jobs', { model: 'other', spec, datasetId, epochs: 10_000 });
      expect(blocker.statusCode).toBe(202);
      const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/sweeps', { baseJob: { model: 'line', datasetId, epochs: 2, batchSize: 8, spec }, space: { 'compile.optimizer.learningRate': [0.01, 0.1] }, parallelism: 2 });
      expect(submitted.statusCode, submitted.body).toBe(202);
      expect(submitted.json().sweep.leaderboard).toEqual([]);
      expect((await call(server.app, server.adminKey, 'POST', `/api/v1/jobs/${blocker.json().job.id}/cancel`)).statusCode).toBe(202);
      const stream = await server.app.inject({ method: 'GET', url: `/api/v1/sweeps/${submitted.json().sweep.id}/events`, headers: { authorization: `Bearer ${server.adminKey}` } });
      expect(stream.body).toContain('event: sweep-finished');
      const sweep = (await call(server.app, server.adminKey, 'GET', `/api/v1/sweeps/${submitted.json().sweep.id}`)).json().sweep;
      expect(sweep.status).toBe('succeeded');
      expect(sweep.leaderboard.map((trial: { status: string }) => trial.status)).toEqual(['succeeded', 'succeeded']);
    } finally {
      await server.close();
    }
  }, 60_000);
});

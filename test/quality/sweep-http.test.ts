import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { captureIo } from '../cli/helpers.ts';
import { call, startTestServer, type TestServer } from '../http/helpers.ts';

/**
 * A learning-rate sweep where the answer is known: plain SGD fitting y = 2x + 1. At 1e-5 the
 * weights barely move, at 10 the loss diverges (the trial fails TRAINING_DIVERGED), at 0.1 it
 * converges: the sweep must rank 0.1 first and register its model.
 */
let server: TestServer;
let datasetId: string;

function lineCsv(): string {
  const rows = ['x,label'];
  for (let index = 0; index < 64; index++) {
    const x = index / 63;
    rows.push(`${x},${2 * x + 1}`);
  }
  return `${rows.join('\n')}\n`;
}

const baseJob = {
  model: 'line',
  spec: { input: { shape: [1] }, layers: [{ type: 'dense', units: 1 }], compile: { optimizer: { type: 'sgd', learningRate: 0.01 }, loss: 'meanSquaredError' } },
  epochs: 30,
  batchSize: 8,
  seed: 3,
};

beforeAll(async () => {
  // A short lease: a cancel that reaches a job before its training process exists is passed on at the next renewal.
  server = await startTestServer({ jobConcurrency: 2, jobLeaseMs: 3000 });
  server.context.jobs.start();
  const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=line', lineCsv(), { 'content-type': 'text/csv' });
  expect(dataset.statusCode).toBe(201);
  datasetId = dataset.json().dataset.id;
});

afterAll(async () => {
  await server?.close();
});

interface Trial {
  jobId: string;
  trial: number;
  params: Record<string, number>;
  status: string;
  metric: number | null;
  error: { code: string } | null;
}

describe('hyperparameter sweeps', () => {
  it('finds the learning rate that converges, streams the leaderboard and registers the best trial', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/sweeps', {
      baseJob: { ...baseJob, datasetId },
      space: { 'compile.optimizer.learningRate': [1e-5, 10, 0.1] },
      strategy: 'grid',
      parallelism: 2,
      metric: { name: 'loss', direction: 'minimize' },
      register: true,
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const sweepId = submitted.json().sweep.id as string;
    expect(submitted.json().sweep.leaderboard).toHaveLength(2);

    // The stream ends when the sweep does: inject returns the whole of it.
    const stream = await server.app.inject({ method: 'GET', url: `/api/v1/sweeps/${sweepId}/events`, headers: { authorization: `Bearer ${server.adminKey}` } });
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = stream.body.split('\n\n').filter((block) => block.includes('event: ')).map((block) => /event: (\S+)/.exec(block)![1]);
    expect(events[0]).toBe('sweep-leaderboard');
    expect(events.at(-1)).toBe('sweep-finished');

    const sweep = (await call(server.app, server.adminKey, 'GET', `/api/v1/sweeps/${sweepId}`)).json().sweep as { status: string; leaderboard: Trial[]; best: Trial; resultVersion: { version: number } | null };
    expect(sweep.status).toBe('succeeded');
    expect(sweep.leaderboard).toHaveLength(3);
    const byRate = new Map(sweep.leaderboard.map((trial) => [trial.params['compile.optimizer.learningRate'], trial]));
    expect(sweep.best.params['compile.optimizer.learningRate']).toBe(0.1);
    expect(byRate.get(0.1)!.metric).toBeLessThan(0.01);
    expect(byRate.get(1e-5)!.metric).toBeGreaterThan(1);
    expect(byRate.get(10)!.status).toBe('failed');
    expect(byRate.get(10)!.error!.code).toBe('TRAINING_DIVERGED');
    expect(sweep.leaderboard.map((trial) => trial.params['compile.optimizer.learningRate'])).toEqual([0.1, 1e-5, 10]);

    // Trials registered nothing; the sweep registered the best one, with its drift baseline.
    expect(sweep.resultVersion).toEqual({ id: expect.any(String), version: 1 });
    const versions = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/line/versions')).json().versions as { version: number; jobId: string; metrics: { loss: number } }[];
    expect(versions).toHaveLength(1);
    expect(versions[0]!.jobId).toBe(sweep.best.jobId);
    expect(versions[0]!.metrics.loss).toBe(sweep.best.metric);
    const drift = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/line/drift')).json();
    expect(drift.baseline).toMatchObject({ source: 'training', rows: 64, features: 1, projection: 'identity', classes: null });

    // Registering again returns the same version.
    const again = await call(server.app, server.adminKey, 'POST', `/api/v1/sweeps/${sweepId}/register`);
    expect(again.statusCode).toBe(201);
    expect(again.json().sweep.resultVersion.version).toBe(1);
  }, 120_000);

  it('halves successively: the best of the first round trains again with eta× the epochs', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/sweeps', {
      baseJob: { ...baseJob, model: 'line-halving', datasetId },
      space: { 'compile.optimizer.learningRate': { type: 'logRange', min: 1e-4, max: 0.3 } },
      strategy: { type: 'successiveHalving', seed: 11, eta: 3, minEpochs: 2, maxEpochs: 6 },
      maxTrials: 3,
      parallelism: 3,
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const sweepId = submitted.json().sweep.id as string;
    await server.app.inject({ method: 'GET', url: `/api/v1/sweeps/${sweepId}/events`, headers: { authorization: `Bearer ${server.adminKey}` } });
    const sweep = (await call(server.app, server.adminKey, 'GET', `/api/v1/sweeps/${sweepId}`)).json().sweep as { status: string; leaderboard: (Trial & { rung: number; totalEpochs: number })[]; best: Trial & { rung: number } };
    expect(sweep.status).toBe('succeeded');
    const first = sweep.leaderboard.filter((trial) => trial.rung === 0);
    const second = sweep.leaderboard.filter((trial) => trial.rung === 1);
    expect(first).toHaveLength(3);
    expect(first.every((trial) => trial.totalEpochs === 2)).toBe(true);
    expect(second).toHaveLength(1);
    expect(second[0]!.totalEpochs).toBe(6);
    // The promoted configuration is the first round's best, and the longer run ranks first.
    const bestFirst = [...first].sort((a, b) => a.metric! - b.metric!)[0]!;
    expect(second[0]!.params).toEqual(bestFirst.params);
    expect(second[0]!.trial).toBe(bestFirst.trial);
    expect(sweep.best.rung).toBe(1);
    expect(sweep.best.metric).toBeLessThanOrEqual(bestFirst.metric!);
  }, 120_000);

  it('cancels a sweep and its running trials', async () => {
    const submitted = await call(server.app, server.adminKey, 'POST', '/api/v1/sweeps', {
      baseJob: { ...baseJob, datasetId, epochs: 10_000 },
      space: { 'compile.optimizer.learningRate': { type: 'logRange', min: 1e-4, max: 1e-2, count: 3 } },
      parallelism: 2,
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const sweepId = submitted.json().sweep.id as string;
    const cancelled = await call(server.app, server.adminKey, 'POST', `/api/v1/sweeps/${sweepId}/cancel`);
    expect(cancelled.statusCode).toBe(202);
    expect(cancelled.json().sweep.status).toBe('cancelled');
    const jobIds = (cancelled.json().sweep.leaderboard as { jobId: string }[]).map((trial) => trial.jobId);
    expect(jobIds).toHaveLength(2);
    for (const jobId of jobIds) {
      let status = '';
      for (let attempt = 0; attempt < 200 && status !== 'cancelled'; attempt++) {
        status = (await call(server.app, server.adminKey, 'GET', `/api/v1/jobs/${jobId}`)).json().job.status;
        if (status !== 'cancelled') await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(status).toBe('cancelled');
    }
    // No third trial starts after the cancel.
    expect((await call(server.app, server.adminKey, 'GET', `/api/v1/sweeps/${sweepId}`)).json().sweep.leaderboard).toHaveLength(2);
    expect((await call(server.app, server.adminKey, 'POST', `/api/v1/sweeps/${sweepId}/cancel`)).statusCode).toBe(409);
  }, 60_000);

  it('aiaas sweeps submit --watch follows the leaderboard; sweeps show prints it', async () => {
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-sweep-cli-'));
    try {
      const file = join(directory, 'sweep.json');
      await writeFile(file, JSON.stringify({ baseJob: { ...baseJob, model: 'line-cli', datasetId, epochs: 10 }, space: { 'compile.optimizer.learningRate': [1e-5, 0.1] }, parallelism: 2 }));
      const io = captureIo({ cwd: directory });
      const code = await main(['sweeps', 'submit', file, '--watch', '--server', url, '--api-key', server.adminKey], io);
      expect(code, io.err()).toBe(0);
      const out = io.out();
      expect(out).toMatch(/^sweep sweep_\S+  model line-cli  succeeded  minimize loss/);
      expect(out).toMatch(/best: trial 1 \{"compile\.optimizer\.learningRate":0\.1\} loss /);
      const rows = out.trim().split('\n').slice(-2);
      expect(rows[0]).toMatch(/^1\s+1\s+0\.1\s+succeeded\s+\S+$/);
      expect(rows[1]).toMatch(/^2\s+0\s+0\.00001\s+succeeded\s+\S+$/);
      expect(io.err()).toContain('following its leaderboard');

      const sweepId = /^sweep (sweep_\S+)/.exec(out)![1]!;
      const shown = captureIo();
      expect(await main(['sweeps', 'show', sweepId, '--server', url, '--api-key', server.adminKey], shown)).toBe(0);
      expect(shown.out()).toBe(out);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a trial that would break the spec before running anything, and unknown sweeps', async () => {
    const bad = await call(server.app, server.adminKey, 'POST', '/api/v1/sweeps', { baseJob: { ...baseJob, datasetId }, space: { 'layers.0.units': [-1] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^trial 0/);
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/sweeps/sweep_nothing')).statusCode).toBe(404);
  });
});

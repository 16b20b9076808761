import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/storage/repositories/jobs.ts';
import { openTestStorage, type TestStorage } from './helpers.ts';

const newJob = (modelName = 'iris'): NewJob => ({
  modelName,
  spec: { layers: [{ type: 'dense', units: 3 }] },
  settings: { epochs: 5, batchSize: 32 },
  datasetId: 'ds_1',
  totalEpochs: 5,
});

const leaseMs = 30_000;
let storage: TestStorage;
beforeEach(async () => {
  storage = await openTestStorage();
});
afterEach(async () => {
  await storage.database.close();
});

describe('JobRepository', () => {
  it('creates queued jobs visible only to their tenant', async () => {
    const { jobs } = storage.repositories;
    const job = await jobs.create(storage.tenantA, newJob());
    expect(job).toMatchObject({ status: 'queued', epoch: 0, step: 0, metricsHistory: [], cancelRequested: false });
    expect(await jobs.get(storage.tenantA, job.id)).toEqual(job);
    expect(await jobs.get(storage.tenantB, job.id)).toBeUndefined();
    expect(await jobs.list(storage.tenantB)).toEqual([]);
    expect(await jobs.requestCancel(storage.tenantB, job.id)).toBeUndefined();
  });

  it('claims the oldest queued job first and leases it', async () => {
    const { jobs } = storage.repositories;
    const first = await jobs.create(storage.tenantA, newJob('first'));
    storage.clock.advance(10);
    await jobs.create(storage.tenantB, newJob('second'));
    const claimed = await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    expect(claimed).toMatchObject({
      id: first.id,
      status: 'running',
      leaseOwner: 'worker-1',
      leaseExpiresAt: '2025-01-01T00:00:30.011Z',
      startedAt: '2025-01-01T00:00:00.011Z',
    });
    expect((await jobs.claimNext('worker-2', leaseMs, storage.clock.now()))?.modelName).toBe('second');
    expect(await jobs.claimNext('worker-3', leaseMs, storage.clock.now())).toBeUndefined();
  });

  it('hands a job whose lease expired to another worker, keeping its progress (crash-resume)', async () => {
    const { jobs } = storage.repositories;
    const job = await jobs.create(storage.tenantA, newJob());
    await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    await jobs.updateProgress(storage.tenantA, job.id, 'worker-1', { epoch: 2, step: 40, loss: 0.5, checkpointRef: 'sha256:' + 'c'.repeat(64) });

    storage.clock.advance(leaseMs - 1);
    expect(await jobs.claimNext('worker-2', leaseMs, storage.clock.now())).toBeUndefined();
    storage.clock.advance(2);
    const resumed = await jobs.claimNext('worker-2', leaseMs, storage.clock.now());
    expect(resumed).toMatchObject({ id: job.id, leaseOwner: 'worker-2', epoch: 2, checkpointRef: 'sha256:' + 'c'.repeat(64) });
    expect(resumed?.startedAt).toBe('2025-01-01T00:00:00.001Z');

    // The worker presumed dead wakes up: all its writes are refused.
    expect(await jobs.renewLease(storage.tenantA, job.id, 'worker-1', leaseMs, storage.clock.now())).toBeUndefined();
    expect(await jobs.updateProgress(storage.tenantA, job.id, 'worker-1', { epoch: 9 })).toBe(false);
    expect(await jobs.finish(storage.tenantA, job.id, { status: 'failed', owner: 'worker-1' })).toBe(false);
    expect((await jobs.get(storage.tenantA, job.id))?.epoch).toBe(2);
  });

  it('keeps a job while the lease is renewed', async () => {
    const { jobs } = storage.repositories;
    const job = await jobs.create(storage.tenantA, newJob());
    await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    storage.clock.advance(leaseMs - 5);
    const renewed = await jobs.renewLease(storage.tenantA, job.id, 'worker-1', leaseMs, storage.clock.now());
    expect(renewed?.leaseExpiresAt).toBe(new Date(storage.clock.now().getTime() + leaseMs).toISOString());
    storage.clock.advance(10);
    expect(await jobs.claimNext('worker-2', leaseMs, storage.clock.now())).toBeUndefined();
  });

  it('gives each of many concurrent claimers a different job', async () => {
    const { jobs } = storage.repositories;
    for (let index = 0; index < 5; index += 1) await jobs.create(storage.tenantA, newJob(`m${index}`));
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, index) => jobs.claimNext(`worker-${index}`, leaseMs, storage.clock.now())),
    );
    const claimedIds = claims.filter((claim) => claim !== undefined).map((claim) => claim.id);
    expect(claimedIds).toHaveLength(5);
    expect(new Set(claimedIds).size).toBe(5);
  });

  it('records progress and finishes with a result', async () => {
    const { jobs } = storage.repositories;
    const job = await jobs.create(storage.tenantA, newJob());
    await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    expect(
      await jobs.updateProgress(storage.tenantA, job.id, 'worker-1', {
        epoch: 1,
        step: 10,
        loss: 0.25,
        metricsHistory: [{ epoch: 1, loss: 0.25 }],
      }),
    ).toBe(true);
    storage.clock.advance(500);
    expect(await jobs.finish(storage.tenantA, job.id, { status: 'succeeded', owner: 'worker-1', resultVersionId: 'ver_1' })).toBe(true);
    const done = await jobs.get(storage.tenantA, job.id);
    expect(done).toMatchObject({
      status: 'succeeded',
      loss: 0.25,
      metricsHistory: [{ epoch: 1, loss: 0.25 }],
      resultVersionId: 'ver_1',
      leaseOwner: null,
      finishedAt: '2025-01-01T00:00:00.501Z',
    });
    expect(await jobs.finish(storage.tenantA, job.id, { status: 'failed' })).toBe(false);
    await expect(jobs.requestCancel(storage.tenantA, job.id)).rejects.toMatchObject({ code: 'JOB_NOT_CANCELLABLE' });
  });

  it('stores an error on failure', async () => {
    const { jobs } = storage.repositories;
    const job = await jobs.create(storage.tenantA, newJob());
    await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    await jobs.finish(storage.tenantA, job.id, { status: 'failed', error: { code: 'TRAINING_DIVERGED', message: 'loss is NaN' } });
    expect((await jobs.get(storage.tenantA, job.id))?.error).toEqual({ code: 'TRAINING_DIVERGED', message: 'loss is NaN' });
  });

  it('cancels a queued job at once and flags a running one', async () => {
    const { jobs } = storage.repositories;
    const running = await jobs.create(storage.tenantA, newJob('running'));
    await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    const waiting = await jobs.create(storage.tenantA, newJob('waiting'));

    expect(await jobs.requestCancel(storage.tenantA, waiting.id)).toMatchObject({ status: 'cancelled', cancelRequested: true });
    expect(await jobs.claimNext('worker-2', leaseMs, storage.clock.now())).toBeUndefined();

    expect(await jobs.requestCancel(storage.tenantA, running.id)).toMatchObject({ status: 'running', cancelRequested: true });
    expect(await jobs.finish(storage.tenantA, running.id, { status: 'cancelled', owner: 'worker-1' })).toBe(true);
    expect((await jobs.get(storage.tenantA, running.id))?.status).toBe('cancelled');
    await expect(jobs.requestCancel(storage.tenantA, waiting.id)).rejects.toMatchObject({ code: 'JOB_NOT_CANCELLABLE' });
    await expect(jobs.requestCancel(storage.tenantA, running.id)).rejects.toMatchObject({ code: 'JOB_NOT_CANCELLABLE' });
  });

  it('counts by status, per tenant and overall', async () => {
    const { jobs } = storage.repositories;
    await jobs.create(storage.tenantA, newJob());
    storage.clock.advance(1);
    await jobs.create(storage.tenantA, newJob());
    storage.clock.advance(1);
    await jobs.create(storage.tenantB, newJob());
    await jobs.claimNext('worker-1', leaseMs, storage.clock.now());
    expect(await jobs.countByStatus(storage.tenantA)).toEqual({ queued: 1, running: 1, succeeded: 0, failed: 0, cancelled: 0 });
    expect(await jobs.countByStatus()).toEqual({ queued: 2, running: 1, succeeded: 0, failed: 0, cancelled: 0 });
    expect(await jobs.list(storage.tenantA, { status: 'queued' })).toHaveLength(1);
  });

  it('appends events and pages through them after an id, tenant-scoped', async () => {
    const { jobs } = storage.repositories;
    const job = await jobs.create(storage.tenantA, newJob());
    const first = await jobs.appendEvent(storage.tenantA, job.id, 'job-started', {});
    const second = await jobs.appendEvent(storage.tenantA, job.id, 'job-progress', { epoch: 1, loss: 0.3 });
    const third = await jobs.appendEvent(storage.tenantA, job.id, 'job-progress', { epoch: 2, loss: 0.2 });
    expect(second.id).toBeGreaterThan(first.id);
    expect((await jobs.listEvents(storage.tenantA, job.id)).map((event) => event.type)).toEqual([
      'job-started',
      'job-progress',
      'job-progress',
    ]);
    const after = await jobs.listEvents(storage.tenantA, job.id, { afterId: first.id });
    expect(after.map((event) => event.id)).toEqual([second.id, third.id]);
    expect(after[1]?.payload).toEqual({ epoch: 2, loss: 0.2 });
    expect(await jobs.listEvents(storage.tenantB, job.id)).toEqual([]);
  });
});

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeIdx } from '../../src/data/idx.ts';
import { decodeCheckpoint, modelFromBytes } from '../../src/engine/saved-model.ts';
import { AiaasError } from '../../src/errors.ts';
import { JobRunner, type TrainingUsage } from '../../src/jobs/job-runner.ts';
import { JobService } from '../../src/jobs/job-service.ts';
import type { SavedModelPayload, TrainingSummary } from '../../src/jobs/worker-protocol.ts';
import { createRepositories, FileSystemArtifactStore, openDatabase, type Database } from '../../src/storage/index.ts';
import { textCipherFor } from '../storage/helpers.ts';

const spec = {
  input: { shape: [4, 4] },
  layers: [{ type: 'flatten' }, { type: 'dense', units: 8, activation: 'relu' }, { type: 'dense', units: 2, activation: 'softmax' }],
  compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

/** Class 1 images are bright in the top half, class 0 in the bottom half. */
function idxPair(count: number): { images: Uint8Array; labels: Uint8Array } {
  const pixels = new Uint8Array(count * 16);
  const labels = new Uint8Array(count);
  for (let index = 0; index < count; index++) {
    labels[index] = index % 2;
    for (let pixel = 0; pixel < 16; pixel++) pixels[index * 16 + pixel] = (pixel < 8) === (index % 2 === 1) ? 200 + (pixel % 50) : (index * 7 + pixel) % 40;
  }
  return {
    images: encodeIdx({ dataType: 'uint8', dims: [count, 4, 4], data: pixels }),
    labels: encodeIdx({ dataType: 'uint8', dims: [count], data: labels }),
  };
}

const opened: Database[] = [];
const runners: JobRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
  await Promise.all(opened.splice(0).map((database) => database.close()));
});

async function setup() {
  const directory = mkdtempSync(join(tmpdir(), 'aiaas-jobs-'));
  const database = await openDatabase({ path: join(directory, 'db.sqlite') });
  opened.push(database);
  const repositories = createRepositories(database.db, { textCipher: textCipherFor(database.db) });
  const store = await FileSystemArtifactStore.open(join(directory, 'artifacts'));
  const tenant = await repositories.tenants.create({ name: 'acme' });
  const data = idxPair(64);
  const validationData = idxPair(16);
  const registered: { files: SavedModelPayload; summary: TrainingSummary; modelName: string }[] = [];
  const trainingUsage: TrainingUsage[] = [];
  const runner = new JobRunner(
    {
      jobs: repositories.jobs,
      loadDatasetSource: async (_tenantId, datasetId) =>
        datasetId === 'ds_train'
          ? { format: 'idx', bytes: data.images, labelsBytes: data.labels, name: 'train.idx' }
          : datasetId === 'ds_val'
            ? { format: 'idx', bytes: validationData.images, labelsBytes: validationData.labels, name: 'val.idx' }
            : undefined,
      putArtifact: async (_tenantId, bytes) => store.put(bytes),
      getArtifact: async (_tenantId, ref) => store.get(ref as `sha256:${string}`),
      deleteArtifact: async (ref) => store.delete(ref as `sha256:${string}`),
      registerVersion: async (_tenantId, modelName, files, { metrics }) => {
        registered.push({ files, summary: metrics, modelName });
        return { versionId: 'ver_test', version: registered.length };
      },
      logger: pino({ level: 'silent' }),
      recordTrainingUsage: (usage) => trainingUsage.push(usage),
    },
    { concurrency: 1, leaseMs: 5_000, pollMs: 50 },
  );
  runners.push(runner);
  const service = new JobService({
    jobs: repositories.jobs,
    datasetSchema: async (_tenantId, id) => (id === 'ds_train' || id === 'ds_val' ? { featureShape: [4, 4], labelShape: [] } : undefined),
    versionOf: async () => ({ version: 1, metrics: {} }),
    runner,
    maxUnfinishedJobsPerTenant: 2,
  });
  return { repositories, store, tenantId: tenant.id, runner, service, registered, trainingUsage };
}

async function waitForFinal(service: JobService, tenantId: string, id: string) {
  for (;;) {
    const job = await service.get(tenantId, id);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('training jobs', () => {
  it('runs in a child process, checkpoints every epoch, and hands back a loadable saved model', async () => {
    const { service, runner, tenantId, registered, repositories, store, trainingUsage } = await setup();
    runner.start();
    const submitted = await service.submit(tenantId, { model: 'halves', spec, datasetId: 'ds_train', epochs: 3, batchSize: 8, seed: 1 });
    expect(submitted.status).toBe('queued');
    const job = await waitForFinal(service, tenantId, submitted.id);
    expect(job.error).toBeNull();
    expect(job.status).toBe('succeeded');
    expect(job.epoch).toBe(3);
    expect(job.step).toBe(24);
    expect(job.history).toHaveLength(3);
    expect(registered).toHaveLength(1);
    expect(registered[0]!.modelName).toBe('halves');
    expect(registered[0]!.summary.epochs).toBe(3);
    const model = modelFromBytes(new TextDecoder().decode(registered[0]!.files.spec), registered[0]!.files.weights);
    expect(model.plan.parameterCount).toBe(16 * 8 + 8 + 8 * 2 + 2);
    const record = await repositories.jobs.get(tenantId, submitted.id);
    expect(await store.has(record!.checkpointRef as `sha256:${string}`)).toBe(true);
    // Each checkpoint replaces the previous one on disk too: no orphan files per epoch.
    const stored: string[] = [];
    for await (const ref of store.list()) stored.push(ref);
    expect(stored).toEqual([record!.checkpointRef]);
    const events = await service.events(tenantId, submitted.id, 0);
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('job-queued');
    expect(types.filter((type) => type === 'epoch-end')).toHaveLength(3);
    expect(types.filter((type) => type === 'checkpoint-saved')).toHaveLength(3);
    expect(types.at(-1)).toBe('job-finished');
    expect(events.at(-1)!.payload).toMatchObject({ status: 'succeeded', version: 1 });
    // The usage ledger hears each epoch's samples (64 × 3) and the process's running time, epoch by epoch and at its end.
    expect(trainingUsage.map((usage) => usage.sampleEpochs)).toEqual([64, 64, 64, 0]);
    expect(trainingUsage.every((usage) => usage.tenantId === tenantId && usage.modelName === 'halves' && usage.workerSeconds >= 0)).toBe(true);
    expect(trainingUsage.reduce((sum, usage) => sum + usage.workerSeconds, 0)).toBeGreaterThan(0);
  });

  it('evaluates a validation dataset after every epoch (validationDatasetId), which early stopping can monitor', async () => {
    const { service, runner, tenantId } = await setup();
    runner.start();
    const submitted = await service.submit(tenantId, {
      model: 'halves',
      spec,
      datasetId: 'ds_train',
      validationDatasetId: 'ds_val',
      epochs: 2,
      batchSize: 8,
      earlyStopping: { monitor: 'val_accuracy', patience: 5 },
    });
    expect(submitted.settings).toMatchObject({ validationDatasetId: 'ds_val', earlyStopping: { monitor: 'val_accuracy', patience: 5 } });
    const job = await waitForFinal(service, tenantId, submitted.id);
    expect(job.status).toBe('succeeded');
    expect(job.history).toHaveLength(2);
    for (const entry of job.history as { validationLoss?: number; validationMetrics?: Record<string, number> }[]) {
      expect(entry.validationLoss).toBeTypeOf('number');
      expect(entry.validationMetrics?.accuracy).toBeGreaterThanOrEqual(0);
    }
    await expect(service.submit(tenantId, { model: 'x', spec, datasetId: 'ds_train', validationDatasetId: 'ds_missing' })).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND', message: 'validation dataset ds_missing not found' });
    await expect(service.submit(tenantId, { model: 'x', spec, datasetId: 'ds_train', validationDatasetId: 'ds_val', validationSplit: 0.2 })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('is deterministic across training processes: the same seed gives identical weights, ONNX and checkpoint state', async () => {
    const { service, runner, tenantId, registered, repositories, store } = await setup();
    runner.start();
    const checkpoints: Uint8Array[] = [];
    for (const model of ['first', 'second']) {
      const submitted = await service.submit(tenantId, { model, spec, datasetId: 'ds_train', epochs: 2, batchSize: 8, seed: 5 });
      expect((await waitForFinal(service, tenantId, submitted.id)).status).toBe('succeeded');
      const record = await repositories.jobs.get(tenantId, submitted.id);
      checkpoints.push(await store.get(record!.checkpointRef as `sha256:${string}`));
    }
    expect(registered).toHaveLength(2);
    expect(Buffer.compare(Buffer.from(registered[0]!.files.weights), Buffer.from(registered[1]!.files.weights))).toBe(0);
    expect(Buffer.compare(Buffer.from(registered[0]!.files.onnx), Buffer.from(registered[1]!.files.onnx))).toBe(0);
    // Checkpoint bytes also hold the history's timings; the state a resume uses must match exactly.
    const [first, second] = checkpoints.map(decodeCheckpoint);
    expect(second!.parameters).toEqual(first!.parameters);
    expect(second!.optimizerState).toEqual(first!.optimizerState);
    expect(second!.dropoutRandom).toEqual(first!.dropoutRandom);
    expect(second!.shuffleRandom).toEqual(first!.shuffleRandom);
    expect(registered[0]!.summary.loss).toBe(registered[1]!.summary.loss);
  });

  it('runs no more jobs at once than its concurrency (1): the second waits queued', async () => {
    const { service, runner, tenantId } = await setup();
    const first = await service.submit(tenantId, { model: 'a', spec, datasetId: 'ds_train', epochs: 2, batchSize: 8 });
    const second = await service.submit(tenantId, { model: 'b', spec, datasetId: 'ds_train', epochs: 2, batchSize: 8 });
    runner.start();
    const firstRunning = await (async () => {
      for (;;) {
        const job = await service.get(tenantId, first.id);
        if (job.status !== 'queued') return job;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    expect(firstRunning.status).toBe('running');
    expect((await service.get(tenantId, second.id)).status).toBe('queued');
    expect((await waitForFinal(service, tenantId, first.id)).status).toBe('succeeded');
    expect((await waitForFinal(service, tenantId, second.id)).status).toBe('succeeded');
  });

  it('rejects a bad spec, an unknown dataset and a misfit dataset before queueing', async () => {
    const { service, tenantId, repositories } = await setup();
    const badSpec = service.submit(tenantId, { model: 'x', spec: { ...spec, layers: [{ type: 'dense', units: 0 }] }, datasetId: 'ds_train' });
    await expect(badSpec).rejects.toMatchObject({ code: 'INVALID_SPEC', status: 400 });
    await expect(service.submit(tenantId, { model: 'x', spec, datasetId: 'ds_missing' })).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND', status: 404 });
    const misfit = service.submit(tenantId, { model: 'x', spec: { ...spec, input: { shape: [5] }, layers: spec.layers.slice(1) }, datasetId: 'ds_train' });
    await expect(misfit).rejects.toThrow(/samples of shape \[4, 4\], the spec's input is \[5\]/);
    await expect(service.submit(tenantId, { model: 'x', spec, datasetId: 'ds_train', epochs: 0 })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(await repositories.jobs.list(tenantId)).toHaveLength(0);
  });

  it('limits unfinished jobs per tenant and cancels queued and running jobs', async () => {
    const { service, runner, tenantId } = await setup();
    const first = await service.submit(tenantId, { model: 'a', spec, datasetId: 'ds_train', epochs: 500, batchSize: 8 });
    const second = await service.submit(tenantId, { model: 'b', spec, datasetId: 'ds_train', epochs: 1 });
    const third = await service.submit(tenantId, { model: 'c', spec, datasetId: 'ds_train' }).catch((error: unknown) => error);
    expect(AiaasError.isInstance(third) && third.code).toBe('QUOTA_EXCEEDED');
    const cancelledQueued = await service.cancel(tenantId, second.id);
    expect(cancelledQueued.status).toBe('cancelled');
    runner.start();
    for (;;) {
      const job = await service.get(tenantId, first.id);
      if (job.status === 'running' && job.step > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await service.cancel(tenantId, first.id);
    const job = await waitForFinal(service, tenantId, first.id);
    expect(job.status).toBe('cancelled');
    expect(job.epoch).toBeLessThan(500);
    // The epochs it reports are the epochs whose results it shows.
    expect(job.epoch).toBe(job.history.length);
    await expect(service.cancel(tenantId, first.id)).rejects.toMatchObject({ code: 'JOB_NOT_CANCELLABLE' });
  });
});

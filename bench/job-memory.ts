/**
 * npm run bench:job-memory — peak resident memory of one training job's child process by model size,
 * the numbers behind the defaults of maxModelParameters and jobMemoryLimitBytes
 * (docs/configuration.md). Each size trains one epoch of 64 samples (batch 32) through the real
 * JobRunner, which samples the child's VmRSS every 20 ms; prints one JSON line per size.
 * BENCH_SIZES="1000 4000 7000" picks the dense widths (parameters ≈ width²), BENCH_OPTIMIZER the optimizer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { encodeIdx } from '../src/data/idx.ts';
import { JobRunner } from '../src/jobs/job-runner.ts';
import { JobService } from '../src/jobs/job-service.ts';
import { createRepositories, FileSystemArtifactStore, openDatabase } from '../src/storage/index.ts';

const sizes = (process.env.BENCH_SIZES ?? '4 1000 4000').split(/\s+/).filter(Boolean).map(Number);
const optimizer = process.env.BENCH_OPTIMIZER ?? 'adam';
const mebibyte = 1024 * 1024;

async function measure(width: number): Promise<Record<string, unknown>> {
  const directory = mkdtempSync(join(tmpdir(), 'aiaas-job-memory-'));
  const database = await openDatabase({ path: join(directory, 'db.sqlite') });
  try {
    const repositories = createRepositories(database.db);
    const store = await FileSystemArtifactStore.open(join(directory, 'artifacts'));
    const tenant = await repositories.tenants.create({ name: 'bench' });
    const count = 64;
    const images = encodeIdx({ dataType: 'uint8', dims: [count, width], data: new Uint8Array(count * width).map((_, index) => index % 251) });
    const labels = encodeIdx({ dataType: 'uint8', dims: [count], data: new Uint8Array(count).map((_, index) => index % 2) });
    let peakResidentBytes = Number.NaN;
    const logger = pino({ level: 'info' }, {
      write: (line: string) => {
        const record = JSON.parse(line) as { msg: string; peakResidentBytes?: number };
        if (record.msg === 'training process ended') peakResidentBytes = record.peakResidentBytes ?? Number.NaN;
      },
    });
    const runner = new JobRunner(
      {
        jobs: repositories.jobs,
        loadDatasetSource: async () => ({ format: 'idx', bytes: images, labelsBytes: labels, name: 'bench.idx' }),
        putArtifact: async (_tenantId, bytes) => store.put(bytes),
        getArtifact: async (_tenantId, ref) => store.get(ref as `sha256:${string}`),
        deleteArtifact: async (ref) => store.delete(ref as `sha256:${string}`),
        registerVersion: async () => ({ versionId: 'bench', version: 1 }),
        logger,
      },
      { concurrency: 1, leaseMs: 60_000, pollMs: 50, memoryLimitBytes: 64 * 1024 * mebibyte, memoryPollMs: 20 },
    );
    const service = new JobService({
      jobs: repositories.jobs,
      datasetSchema: async () => ({ featureShape: [width], labelShape: [] }),
      versionOf: async () => undefined,
      runner,
      maxUnfinishedJobsPerTenant: 1,
      maxModelParameters: Number.MAX_SAFE_INTEGER,
    });
    const spec = {
      input: { shape: [width] },
      layers: [{ type: 'dense', units: width, activation: 'relu' }, { type: 'dense', units: 2, activation: 'softmax' }],
      compile: { optimizer, loss: 'sparseCategoricalCrossentropy' },
    };
    const started = performance.now();
    runner.start();
    const job = await service.submit(tenant.id, { model: 'bench', spec, datasetId: 'bench', epochs: 1, batchSize: 32 });
    let status = 'queued';
    while (!['succeeded', 'failed', 'cancelled'].includes(status) || Number.isNaN(peakResidentBytes)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await service.get(tenant.id, job.id)).status;
    }
    await runner.stop();
    const parameters = width * width + width + width * 2 + 2;
    return {
      parameters,
      optimizer,
      status,
      peakResidentMiB: Math.round(peakResidentBytes / mebibyte),
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    await database.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

for (const width of sizes) console.log(JSON.stringify(await measure(width)));

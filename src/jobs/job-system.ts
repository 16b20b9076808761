import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';
import type { DatasetSchema } from '../platform/datasets.ts';
import { createPullHandler, registerPulledFile } from '../platform/model-pull.ts';
import type { ModelRegistry } from '../platform/model-registry.ts';
import type { EncryptedArtifactStore } from '../security/encrypted-artifact-store.ts';
import type { Repositories } from '../storage/index.ts';
import { JobRunner, type TrainingUsage } from './job-runner.ts';
import { createHash } from 'node:crypto';
import type { ProvenanceDataset, ProvenanceInputs } from '../platform/provenance.ts';
import { JobService } from './job-service.ts';

export interface JobSystem {
  runner: JobRunner;
  /** What the job routes (src/http/routes/jobs.ts, registered by the HTTP app) call. */
  service: JobService;
  start(): void;
  /** Cancels every queued or running job of a tenant (used when the tenant is deleted). */
  cancelTenantJobs(tenantId: string): Promise<void>;
  close(): Promise<void>;
}

/** Exactly what the job system needs from the composition root; it imports nothing from startup/ or http/. */
export interface JobSystemContext {
  readonly repositories: Pick<Repositories, 'jobs' | 'datasets' | 'models'>;
  readonly artifacts: EncryptedArtifactStore;
  readonly registry: ModelRegistry;
  readonly config: AiaasConfig;
  readonly logger: Logger;
  /** Where training's sample-epochs and worker-seconds go (the usage ledger). */
  readonly recordTrainingUsage?: (usage: TrainingUsage) => void;
}

/** The job queue (training and pulls) and its workers over one server's storage and keys. */
export function createJobSystem(context: JobSystemContext, options: { pollMs?: number } = {}): JobSystem {
  const { repositories, artifacts, registry, config } = context;
  const pull = createPullHandler({
    policy: { allowedHosts: config.pullAllowedHosts, allowPrivate: config.pullAllowPrivate, maxRedirects: config.pullMaxRedirects },
    maxBytes: config.maxModelBytes,
    temporaryDirectory: join(config.dataDir, 'pulls'),
    register: (job, path) => registerPulledFile(registry, job, path),
  });
  const runner = new JobRunner(
    {
      jobs: repositories.jobs,
      async loadDatasetSource(tenantId, datasetId) {
        const record = await repositories.datasets.get(tenantId, datasetId);
        if (!record) return undefined;
        const schema = record.schema as DatasetSchema;
        return {
          format: record.format,
          name: record.name,
          bytes: await artifacts.get(tenantId, record.artifactRef),
          ...(record.labelsArtifactRef === null ? {} : { labelsBytes: await artifacts.get(tenantId, record.labelsArtifactRef) }),
          ...(schema.label === undefined ? {} : { label: schema.label }),
        };
      },
      putArtifact: (tenantId, bytes) => artifacts.put(tenantId, bytes),
      getArtifact: (tenantId, ref) => artifacts.get(tenantId, ref),
      deleteArtifact: (ref) => artifacts.delete(ref),
      async registerVersion(tenantId, modelName, files, { jobId, metrics }) {
        const version = await registry.addVersionFromSavedModel(
          tenantId,
          modelName,
          { onnx: files.onnx, spec: files.spec, weights: files.weights, metrics: files.metrics },
          { source: 'job', createModel: true, jobId, metrics: { ...metrics }, provenance: await trainingProvenance(tenantId, jobId) },
        );
        return { versionId: version.id, version: version.version };
      },
      logger: context.logger.child({ component: 'jobs' }),
      ...(context.recordTrainingUsage === undefined ? {} : { recordTrainingUsage: context.recordTrainingUsage }),
      handlers: { pull: pull.handler },
    },
    {
      concurrency: config.jobConcurrency,
      leaseMs: config.jobLeaseMs,
      memoryLimitBytes: config.jobMemoryLimitBytes,
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    },
  );
  /** The job's datasets (with the SHA-256 of their plaintext) and settings, for the version's provenance record. */
  async function trainingProvenance(tenantId: string, jobId: string): Promise<ProvenanceInputs> {
    const job = await repositories.jobs.get(tenantId, jobId);
    if (job === undefined) return {};
    const datasets: ProvenanceDataset[] = [];
    for (const [role, datasetId] of [['train', job.datasetId], ['test', job.testDatasetId]] as const) {
      if (datasetId === null) continue;
      const record = await repositories.datasets.get(tenantId, datasetId);
      if (record === undefined) continue;
      const sha256 = createHash('sha256').update(await artifacts.get(tenantId, record.artifactRef)).digest('hex');
      const labelsSha256 = record.labelsArtifactRef === null ? undefined : createHash('sha256').update(await artifacts.get(tenantId, record.labelsArtifactRef)).digest('hex');
      datasets.push({ role, id: record.id, name: record.name, sha256, ...(labelsSha256 === undefined ? {} : { labelsSha256 }), rows: record.rowCount });
    }
    return { datasets, spec: job.spec, hyperparameters: job.settings };
  }
  const service = new JobService({
    jobs: repositories.jobs,
    async datasetSchema(tenantId, datasetId) {
      const record = await repositories.datasets.get(tenantId, datasetId);
      if (!record) return undefined;
      const schema = record.schema as DatasetSchema;
      return { featureShape: schema.featureShape, labelShape: schema.labelShape, ...(schema.classNames === undefined ? {} : { classNames: schema.classNames }) };
    },
    async versionOf(tenantId, versionId) {
      const version = await repositories.models.getVersionById(tenantId, versionId);
      return version ? { version: version.version, metrics: version.metrics } : undefined;
    },
    runner,
    maxUnfinishedJobsPerTenant: config.maxConcurrentJobsPerTenant,
    kinds: { pull: pull.parser },
    maxModelParameters: config.maxModelParameters,
  });
  /** Runs after the tenant's key is destroyed, so it reads no job text (and can seal no event). */
  async function cancelTenantJobs(tenantId: string): Promise<void> {
    for (const jobId of await repositories.jobs.cancelUnfinished(tenantId)) runner.cancel(jobId);
  }
  return { runner, service, start: () => runner.start(), cancelTenantJobs, close: () => runner.stop() };
}

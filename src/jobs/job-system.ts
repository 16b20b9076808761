import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';
import type { DatasetSchema } from '../platform/datasets.ts';
import { createPullHandler, registerPulledFile } from '../platform/model-pull.ts';
import { createQuantizeHandler } from '../platform/model-quantize.ts';
import type { ModelRegistry } from '../platform/model-registry.ts';
import type { EncryptedArtifactStore } from '../security/encrypted-artifact-store.ts';
import type { Repositories } from '../storage/index.ts';
import { createEvaluationHandler, EvaluationService } from '../quality/evaluations.ts';
import { JobRunner, type TrainingUsage } from './job-runner.ts';
import { createHash } from 'node:crypto';
import type { ProvenanceDataset, ProvenanceInputs } from '../platform/provenance.ts';
import { JobService } from './job-service.ts';
import { SweepService } from './sweep-service.ts';
import type { TrainingSummary } from './worker-protocol.ts';
import type { DriftBaseline } from '../quality/drift-baseline.ts';
import type { StoredBaseline } from '../platform/drift.ts';
import type { SavedModelPayload } from './worker-protocol.ts';

/** The files a `keepResult` job keeps (its `resultRefs` keys). */
export const keptFileNames = { onnx: 'model.onnx', spec: 'spec.json', weights: 'model.safetensors', metrics: 'metrics.json', baseline: 'baseline.json' } as const;

export interface JobSystem {
  runner: JobRunner;
  /** What the job routes (src/http/routes/jobs.ts, registered by the HTTP app) call. */
  service: JobService;
  /** Hyperparameter sweeps over training jobs (src/http/routes/sweeps.ts). */
  sweeps: SweepService;
  /** Evaluation reports: `evaluate` jobs and their stored reports (routes and promotion gates). */
  evaluations: EvaluationService;
  start(): void;
  /** Cancels every queued or running job of a tenant (used when the tenant is deleted). */
  cancelTenantJobs(tenantId: string): Promise<void>;
  close(): Promise<void>;
}

/** Exactly what the job system needs from the composition root; it imports nothing from startup/ or http/. */
export interface JobSystemContext {
  readonly repositories: Pick<Repositories, 'jobs' | 'datasets' | 'models' | 'versionReports' | 'sweeps' | 'evaluations'>;
  readonly artifacts: EncryptedArtifactStore;
  readonly registry: ModelRegistry;
  readonly config: AiaasConfig;
  readonly logger: Logger;
  /** Where training's sample-epochs and worker-seconds go (the usage ledger). */
  readonly recordTrainingUsage?: (usage: TrainingUsage) => void;
  /** The plans' job limits (src/billing/quotas.ts); absent: only maxConcurrentJobsPerTenant. */
  readonly admitJob?: (tenantId: string, unfinishedJobs: number) => Promise<void>;
  /** Meters a finished training job's worker-seconds against its tenant's plan. */
  readonly recordTrainingSeconds?: (tenantId: string, seconds: number) => Promise<void>;
  /** Stores a version's drift baseline (the drift service, which also drops what it cached); default: the repository. */
  readonly storeBaseline?: (tenantId: string, versionId: string, stored: StoredBaseline) => Promise<void>;
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
  /** A trained model becomes a version, with the drift baseline of its training inputs. */
  async function registerTrained(
    tenantId: string,
    modelName: string,
    files: SavedModelPayload,
    { jobId, metrics, baseline }: { jobId: string; metrics: TrainingSummary; baseline: DriftBaseline | undefined },
  ): Promise<{ versionId: string; version: number }> {
    const version = await registry.addVersionFromSavedModel(
      tenantId,
      modelName,
      { onnx: files.onnx, spec: files.spec, weights: files.weights, metrics: files.metrics },
      { source: 'job', createModel: true, jobId, metrics: { ...metrics }, provenance: await trainingProvenance(tenantId, jobId) },
    );
    if (baseline !== undefined) await repositories.versionReports.add(tenantId, version.id, 'drift-baseline', { source: 'training', jobId, baseline });
    return { versionId: version.id, version: version.version };
  }
  async function loadDatasetSource(tenantId: string, datasetId: string) {
    const record = await repositories.datasets.get(tenantId, datasetId);
    if (!record) return undefined;
    const schema = record.schema as DatasetSchema;
    const classNames = schema.classNames;
    return {
      format: record.format,
      name: record.name,
      bytes: await artifacts.get(tenantId, record.artifactRef),
      ...(record.labelsArtifactRef === null ? {} : { labelsBytes: await artifacts.get(tenantId, record.labelsArtifactRef) }),
      ...(schema.label === undefined ? {} : { label: schema.label }),
      ...(classNames === undefined ? {} : { classNames }),
    };
  }
  const evaluate = createEvaluationHandler({
    registry,
    evaluations: repositories.evaluations,
    loadDataset: loadDatasetSource,
    temporaryDirectory: join(config.dataDir, 'evaluations'),
    memoryLimitBytes: config.jobMemoryLimitBytes,
    logger: context.logger.child({ component: 'evaluations' }),
    storeBaseline:
      context.storeBaseline ??
      (async (tenantId, versionId, stored) => {
        await repositories.versionReports.add(tenantId, versionId, 'drift-baseline', stored);
      }),
  });
  const quantize = createQuantizeHandler({
    async version(tenantId, modelName, version) {
      return (await registry.getVersion(tenantId, modelName, String(version))).version;
    },
    writeModelFile: async (tenantId, version, path) => void (await artifacts.decryptToFile(tenantId, version.onnxRef, path)),
    scratchDirectory: join(config.dataDir, 'quantize'),
    loadDatasetSource,
    async specOf(tenantId, version) {
      const ref = version.savedModelRefs?.['spec.json'];
      return ref === undefined ? undefined : (JSON.parse(new TextDecoder().decode(await artifacts.get(tenantId, ref))) as unknown);
    },
    // Derived from its source version: the provenance names it, and an export restriction carries over.
    register: (job, path, source) => registerPulledFile(registry, job, path, { parentVersionId: source.id, provenance: { hyperparameters: job.settings } }),
    saveReport: (tenantId, versionId, report) => repositories.models.setQuantizationReport(tenantId, versionId, report),
    memoryLimitBytes: config.jobMemoryLimitBytes,
    onOutput: (text) => context.logger.warn({ component: 'jobs', output: text.slice(0, 2000) }, 'quantize process output'),
  });
  const runner = new JobRunner(
    {
      jobs: repositories.jobs,
      loadDatasetSource,
      putArtifact: (tenantId, bytes) => artifacts.put(tenantId, bytes),
      getArtifact: (tenantId, ref) => artifacts.get(tenantId, ref),
      deleteArtifact: (ref) => artifacts.delete(ref),
      registerVersion: (tenantId, modelName, files, options) => registerTrained(tenantId, modelName, files, options),
      async keepResult(tenantId, files, baseline) {
        const refs: Record<string, string> = {};
        for (const [name, bytes] of [
          [keptFileNames.onnx, files.onnx],
          [keptFileNames.spec, files.spec],
          [keptFileNames.weights, files.weights],
          [keptFileNames.metrics, files.metrics],
          [keptFileNames.baseline, new TextEncoder().encode(JSON.stringify(baseline))],
        ] as const) {
          refs[name] = await artifacts.put(tenantId, bytes);
        }
        return refs;
      },
      logger: context.logger.child({ component: 'jobs' }),
      ...(context.recordTrainingUsage === undefined ? {} : { recordTrainingUsage: context.recordTrainingUsage }),
      ...(context.recordTrainingSeconds === undefined
        ? {}
        : {
            async onJobFinished(tenantId: string, jobId: string) {
              const job = await repositories.jobs.get(tenantId, jobId);
              if (job === undefined || job.kind !== 'train' || job.startedAt === null || job.finishedAt === null) return;
              // One worker, from its (last) start to its end: what the job held a worker for.
              const seconds = Math.max(0, Math.ceil((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000));
              await context.recordTrainingSeconds!(tenantId, seconds);
            },
          }),
      handlers: { pull: pull.handler, evaluate: evaluate.handler, quantize: quantize.handler },
    },
    {
      concurrency: config.jobConcurrency,
      pullConcurrency: config.pullConcurrency,
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
    const validationDatasetId = (job.settings as { validationDatasetId?: string }).validationDatasetId ?? null;
    for (const [role, datasetId] of [['train', job.datasetId], ['test', job.testDatasetId], ['validation', validationDatasetId]] as const) {
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
    kinds: { pull: pull.parser, evaluate: evaluate.parser, quantize: quantize.parser },
    maxModelParameters: config.maxModelParameters,
    ...(context.admitJob === undefined ? {} : { admitJob: context.admitJob }),
  });
  /** Runs after the tenant's key is destroyed, so it reads no job text (and can seal no event). */
  async function cancelTenantJobs(tenantId: string): Promise<void> {
    for (const jobId of await repositories.jobs.cancelUnfinished(tenantId)) runner.cancel(jobId);
  }
  const evaluations = new EvaluationService({
    registry,
    evaluations: repositories.evaluations,
    jobs: service,
    datasetExists: async (tenantId, datasetId) => (await repositories.datasets.get(tenantId, datasetId)) !== undefined,
  });
  const sweeps = new SweepService({
    sweeps: repositories.sweeps,
    jobs: service,
    readArtifact: (tenantId, ref) => artifacts.get(tenantId, ref),
    registerVersion: registerTrained,
    async versionNumber(tenantId, versionId) {
      return (await repositories.models.getVersionById(tenantId, versionId))?.version;
    },
    logger: context.logger.child({ component: 'sweeps' }),
  });
  return {
    runner,
    service,
    evaluations,
    sweeps,
    start: () => {
      runner.start();
      sweeps.start().catch((error: unknown) => context.logger.error({ err: error }, 'resuming sweeps failed'));
    },
    cancelTenantJobs,
    close: async () => {
      sweeps.stop();
      await runner.stop();
    },
  };
}

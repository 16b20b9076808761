import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { authorize } from '../http/auth.ts';
import { jobRoutes } from '../http/routes/jobs.ts';
import type { ServerContext } from '../startup/context.ts';
import type { DatasetSchema } from '../platform/datasets.ts';
import { JobRunner } from './job-runner.ts';
import { JobService } from './job-service.ts';

export interface JobSystem {
  runner: JobRunner;
  service: JobService;
  routes: FastifyPluginAsync;
  start(): void;
  /** Cancels every queued or running job of a tenant (used when the tenant is deleted). */
  cancelTenantJobs(tenantId: string): Promise<void>;
  close(): Promise<void>;
}

export type JobSystemContext = Pick<ServerContext, 'repositories' | 'artifacts' | 'registry' | 'config' | 'logger'>;

/** The training-job queue, workers and routes over one server context's storage and keys. */
export function createJobSystem(context: JobSystemContext, options: { eventPollMs?: number; pollMs?: number } = {}): JobSystem {
  const { repositories, artifacts, registry, config } = context;
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
          { source: 'job', createModel: true, jobId, metrics: { ...metrics } },
        );
        return { versionId: version.id, version: version.version };
      },
      logger: context.logger.child({ component: 'jobs' }),
    },
    {
      concurrency: config.jobConcurrency,
      leaseMs: config.jobLeaseMs,
      memoryLimitBytes: config.jobMemoryLimitBytes,
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    },
  );
  const service = new JobService({
    jobs: repositories.jobs,
    async datasetSchema(tenantId, datasetId) {
      const record = await repositories.datasets.get(tenantId, datasetId);
      if (!record) return undefined;
      const schema = record.schema as DatasetSchema;
      return { featureShape: schema.featureShape, labelShape: schema.labelShape };
    },
    async versionOf(tenantId, versionId) {
      const version = await repositories.models.getVersionById(tenantId, versionId);
      return version ? { version: version.version, metrics: version.metrics } : undefined;
    },
    runner,
    maxUnfinishedJobsPerTenant: config.maxConcurrentJobsPerTenant,
    maxModelParameters: config.maxModelParameters,
  });
  const routes = jobRoutes({
    service,
    authorize: (request: FastifyRequest, permission) => authorize(request, permission),
    ...(options.eventPollMs === undefined ? {} : { eventPollMs: options.eventPollMs }),
  });
  /** Runs after the tenant's key is destroyed, so it reads no job text (and can seal no event). */
  async function cancelTenantJobs(tenantId: string): Promise<void> {
    for (const jobId of await repositories.jobs.cancelUnfinished(tenantId)) runner.cancel(jobId);
  }
  return { runner, service, routes, start: () => runner.start(), cancelTenantJobs, close: () => runner.stop() };
}

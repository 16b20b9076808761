import { AiaasError } from '../errors.ts';
import { modelAllowed } from '../security/roles.ts';
import type { JobEventRecord, JobRecord, JobRepository } from '../storage/repositories/jobs.ts';
import type { JobKind, JobStatus } from '../storage/schema.ts';
import { checkDatasetFits, parseJobRequest, type JobRequest, type JobSettings } from './job-request.ts';
import type { JobRunner } from './job-runner.ts';
import type { JobKindParser } from './job-types.ts';

export interface JobServiceDependencies {
  jobs: JobRepository;
  datasetSchema(tenantId: string, datasetId: string): Promise<{ featureShape: number[]; labelShape: number[]; classNames?: string[] } | undefined>;
  versionOf(tenantId: string, versionId: string): Promise<{ version: number; metrics: unknown } | undefined>;
  runner: JobRunner;
  /** Queued plus running jobs one tenant may have at once, of every kind together. */
  maxUnfinishedJobsPerTenant: number;
  /** Submission parsers of the kinds besides `train` this server runs (their runner handlers too). */
  kinds?: Partial<Record<Exclude<JobKind, 'train'>, JobKindParser>>;
  /** Most parameters a job's spec may have (`maxModelParameters`); the config default when unset. */
  maxModelParameters?: number;
  /** The tenant's plan (src/billing/quotas.ts): its concurrent-job limit and spent caps; throws 429 QUOTA_EXCEEDED. */
  admitJob?(tenantId: string, unfinishedJobs: number): Promise<void>;
}

export interface JobView {
  id: string;
  kind: JobKind;
  model: string;
  status: JobStatus;
  epoch: number;
  totalEpochs: number;
  step: number;
  loss: number | null;
  history: unknown[];
  error: unknown;
  resultVersion: { id: string; version: number; metrics: unknown } | null;
  /** A training job's fit settings; another kind's own settings (a pull: its url and sha256). */
  settings: JobSettings | Readonly<Record<string, unknown>>;
  /** Training jobs only (empty for other kinds). */
  datasetId: string;
  testDatasetId: string | null;
  cancelRequested: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const finalStatuses: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isFinal(status: JobStatus): boolean {
  return finalStatuses.includes(status);
}

/**
 * The calling key's model allow-list (null: every model). A job belongs to the model it trains, so
 * a job of a model outside the list answers exactly like a missing job, and cannot be submitted.
 */
export type AllowedModels = readonly string[] | null;

export class JobService {
  constructor(private readonly deps: JobServiceDependencies) {}

  /** `POST /jobs`: a training job, or with `kind` another kind this server runs. `keyId`: the submitting key, billed for its training. */
  async submit(tenantId: string, body: unknown, allowedModels: AllowedModels = null, keyId: string | null = null, options: { keepResult?: true } = {}): Promise<JobView> {
    if (typeof body === 'object' && body !== null && !Array.isArray(body) && 'kind' in body) {
      const { kind, ...rest } = body as Record<string, unknown>;
      if (kind !== 'train') return this.submitKind(tenantId, kind, rest, allowedModels);
      body = rest;
    }
    const request = await this.checkTraining(tenantId, body, allowedModels, { quota: true });
    const job = await this.deps.jobs.create(tenantId, {
      modelName: request.model,
      keyId,
      spec: request.spec,
      settings: options.keepResult === true ? { ...request.settings, keepResult: true } : request.settings,
      datasetId: request.datasetId,
      testDatasetId: request.testDatasetId ?? null,
      totalEpochs: request.settings.epochs,
    });
    await this.deps.runner.appendEvent(tenantId, job.id, 'job-queued', { kind: job.kind, model: job.modelName, totalEpochs: job.totalEpochs });
    this.deps.runner.wake();
    return this.view(job);
  }

  /**
   * Every check a training submission passes (spec, settings, the key's allow-list, the datasets'
   * shapes; with `quota`, the unfinished-job quota too) without queueing anything: sweeps check
   * their trials' bodies before the first trial runs.
   */
  async checkTraining(tenantId: string, body: unknown, allowedModels: AllowedModels, options: { quota: boolean }): Promise<JobRequest> {
    const request = parseJobRequest(body, this.deps.maxModelParameters === undefined ? {} : { maxParameters: this.deps.maxModelParameters });
    if (options.quota) await this.admit(tenantId, request.model, allowedModels);
    else if (!modelAllowed(allowedModels, request.model)) throw new AiaasError('MODEL_NOT_FOUND', `Model '${request.model}' not found`, { details: { model: request.model } });
    for (const [role, id] of [['training', request.datasetId], ['test', request.testDatasetId], ['validation', request.settings.validationDatasetId]] as const) {
      if (id === undefined) continue;
      const schema = await this.deps.datasetSchema(tenantId, id);
      if (!schema) throw new AiaasError('DATASET_NOT_FOUND', `${role} dataset ${id} not found`);
      checkDatasetFits(request.plan, schema, role, id);
    }
    return request;
  }

  /** A job of a kind other than training, e.g. `{kind: 'pull', model, url, sha256}`. */
  async submitKind(tenantId: string, kind: unknown, body: Record<string, unknown>, allowedModels: AllowedModels = null): Promise<JobView> {
    const known = Object.keys(this.deps.kinds ?? {});
    const parser = typeof kind === 'string' && known.includes(kind) ? this.deps.kinds?.[kind as Exclude<JobKind, 'train'>] : undefined;
    if (parser === undefined) {
      throw new AiaasError('INVALID_REQUEST', `kind: expected one of ${['train', ...known].join(', ')}, got ${JSON.stringify(kind)}`, { details: { field: 'kind' } });
    }
    const request = parser.parse(body);
    await this.admit(tenantId, request.model, allowedModels);
    const job = await this.deps.jobs.create(tenantId, {
      kind: kind as Exclude<JobKind, 'train'>,
      modelName: request.model,
      spec: null,
      settings: request.settings,
      datasetId: '',
      totalEpochs: 0,
    });
    await this.deps.runner.appendEvent(tenantId, job.id, 'job-queued', { kind: job.kind, model: job.modelName });
    this.deps.runner.wake();
    return this.view(job);
  }

  /** The checks every kind shares: the key's model allow-list, then the tenant's unfinished-job quota. */
  private async admit(tenantId: string, model: string, allowedModels: AllowedModels): Promise<void> {
    if (!modelAllowed(allowedModels, model)) {
      // As on every model route: 404, so a restricted key cannot probe which names exist.
      throw new AiaasError('MODEL_NOT_FOUND', `Model '${model}' not found`, { details: { model } });
    }
    const counts = await this.deps.jobs.countByStatus(tenantId);
    if (counts.queued + counts.running >= this.deps.maxUnfinishedJobsPerTenant) {
      throw new AiaasError('QUOTA_EXCEEDED', `this tenant already has ${counts.queued + counts.running} unfinished jobs (the limit is ${this.deps.maxUnfinishedJobsPerTenant}); wait for one to finish or cancel one`, {
        headers: { 'retry-after': '30' },
      });
    }
    await this.deps.admitJob?.(tenantId, counts.queued + counts.running);
  }

  async record(tenantId: string, id: string, allowedModels: AllowedModels = null): Promise<JobRecord> {
    const job = await this.deps.jobs.get(tenantId, id);
    if (!job || !modelAllowed(allowedModels, job.modelName)) throw new AiaasError('JOB_NOT_FOUND', `job ${id} not found`);
    return job;
  }

  async get(tenantId: string, id: string, allowedModels: AllowedModels = null): Promise<JobView> {
    return this.view(await this.record(tenantId, id, allowedModels));
  }

  async list(tenantId: string, filter: { status?: JobStatus; kind?: JobKind; limit?: number; offset?: number } = {}, allowedModels: AllowedModels = null): Promise<JobView[]> {
    // Filtered in the query, so limit and offset page through the visible jobs only.
    const models = allowedModels === null || allowedModels.includes('*') ? {} : { modelNames: allowedModels };
    const jobs = await this.deps.jobs.list(tenantId, { ...filter, ...models });
    return Promise.all(jobs.map((job) => this.view(job)));
  }

  async cancel(tenantId: string, id: string, allowedModels: AllowedModels = null): Promise<JobView> {
    await this.record(tenantId, id, allowedModels);
    const job = await this.deps.jobs.requestCancel(tenantId, id);
    if (!job) throw new AiaasError('JOB_NOT_FOUND', `job ${id} not found`);
    if (job.status === 'cancelled') await this.deps.runner.appendEvent(tenantId, id, 'job-finished', job.kind === 'train' ? { status: 'cancelled', epoch: job.epoch, step: job.step } : { status: 'cancelled' });
    this.deps.runner.cancel(id);
    return this.get(tenantId, id);
  }

  async events(tenantId: string, id: string, afterId: number): Promise<JobEventRecord[]> {
    return this.deps.jobs.listEvents(tenantId, id, { afterId, limit: 500 });
  }

  onJobEvent(listener: (jobId: string) => void): () => void {
    return this.deps.runner.onJobEvent(listener);
  }

  private async view(job: JobRecord): Promise<JobView> {
    const version = job.resultVersionId ? await this.deps.versionOf(job.tenantId, job.resultVersionId) : undefined;
    return {
      id: job.id,
      kind: job.kind,
      model: job.modelName,
      status: job.status,
      epoch: job.epoch,
      totalEpochs: job.totalEpochs,
      step: job.step,
      loss: job.loss,
      history: [...job.metricsHistory],
      error: job.error ?? null,
      resultVersion: version && job.resultVersionId ? { id: job.resultVersionId, version: version.version, metrics: version.metrics ?? null } : null,
      settings: job.settings as JobSettings | Readonly<Record<string, unknown>>,
      datasetId: job.datasetId,
      testDatasetId: job.testDatasetId,
      cancelRequested: job.cancelRequested,
      createdAt: job.createdAt,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
    };
  }
}

/**
 * Evaluation reports: an `evaluate` job runs a model version over a labelled dataset in a child
 * process (evaluation-child.ts) and stores the report (table `evaluations`, id = the job's id).
 * `EvaluationService` is what the routes and the promotion gates call.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { resolveSpec, scalesIdxPixelsAtLoad } from '../engine/spec.ts';
import { AiaasError, quoteForError, type ErrorCode } from '../errors.ts';
import type { JobKindContext, JobKindHandler, JobKindParser, JobKindResult } from '../jobs/job-types.ts';
import type { DatasetSource } from '../jobs/worker-protocol.ts';
import type { AllowedModels, JobService, JobView } from '../jobs/job-service.ts';
import { validateName } from '../platform/names.ts';
import type { ModelRegistry } from '../platform/model-registry.ts';
import { forkIsolated, siblingModule } from '../runtimes/isolated-process.ts';
import type { ModelSignature } from '../runtimes/runtime.ts';
import type { EvaluationRecord, EvaluationRepository } from '../storage/repositories/evaluations.ts';
import type { JobRecord } from '../storage/repositories/jobs.ts';
import type { EvaluationResult, EvaluationTask } from './evaluation-report.ts';
import type { FromEvaluationChild, ToEvaluationChild } from './evaluation-protocol.ts';
import type { StoredBaseline } from '../platform/drift.ts';

/** What an evaluate job stores (sealed) as its settings. */
export interface EvaluationSettings {
  version: number;
  datasetId: string;
  /** The output holding the scores (`outputs` in the request). */
  output?: string;
  /** Label column for CSV / JSON-lines datasets. */
  label?: string;
  classNames?: string[];
  topK?: number;
  task?: EvaluationTask;
}

/** An evaluation as clients see it: queued and running ones have no report yet. */
export interface EvaluationView {
  id: string;
  model: string;
  version: number;
  datasetId: string;
  status: JobView['status'];
  jobId: string;
  settings: EvaluationSettings;
  report: EvaluationResult | null;
  error: unknown;
  createdAt: string;
}

const requestFields = ['model', 'version', 'datasetId', 'outputs', 'label', 'classNames', 'topK', 'task'];

function invalid(field: string, expected: string, actual: unknown): AiaasError {
  return new AiaasError('INVALID_REQUEST', `${field}: expected ${expected}, got ${actual === undefined ? 'nothing' : quoteForError(actual)}`, { details: { field } });
}

/** Validates `{model, version, datasetId, outputs?, label?, classNames?, topK?, task?}` completely. */
export function parseEvaluationRequest(body: Record<string, unknown>): { model: string; settings: EvaluationSettings } {
  for (const key of Object.keys(body)) {
    if (!requestFields.includes(key)) throw new AiaasError('INVALID_REQUEST', `Unknown field ${quoteForError(key)}`, { details: { field: key.slice(0, 120), allowed: requestFields } });
  }
  const model = validateName('model', body.model);
  if (typeof body.version !== 'number' || !Number.isSafeInteger(body.version) || body.version < 1) throw invalid('version', 'a version number', body.version);
  if (typeof body.datasetId !== 'string' || body.datasetId.length === 0 || body.datasetId.length > 200) throw invalid('datasetId', 'a dataset id', body.datasetId);
  const settings: EvaluationSettings = { version: body.version, datasetId: body.datasetId };
  if (body.outputs !== undefined) {
    const outputs = typeof body.outputs === 'string' ? [body.outputs] : body.outputs;
    if (!Array.isArray(outputs) || outputs.length !== 1 || typeof outputs[0] !== 'string' || outputs[0].length === 0 || outputs[0].length > 256) {
      throw invalid('outputs', 'the name of the output holding the scores (a string, or a list of one)', body.outputs);
    }
    settings.output = outputs[0];
  }
  if (body.label !== undefined) {
    if (typeof body.label !== 'string' || body.label.length === 0 || body.label.length > 256) throw invalid('label', 'a column name', body.label);
    settings.label = body.label;
  }
  if (body.classNames !== undefined) {
    const names = body.classNames;
    if (!Array.isArray(names) || names.length < 2 || names.length > 10_000 || !names.every((name) => typeof name === 'string' && name.length <= 200)) {
      throw invalid('classNames', 'a list of 2 to 10000 class names (strings of at most 200 characters), in class-index order', names);
    }
    settings.classNames = names as string[];
  }
  if (body.topK !== undefined) {
    if (typeof body.topK !== 'number' || !Number.isInteger(body.topK) || body.topK < 1 || body.topK > 10_000) throw invalid('topK', 'an integer from 1 to 10000', body.topK);
    settings.topK = body.topK;
  }
  if (body.task !== undefined) {
    if (body.task !== 'classification' && body.task !== 'regression') throw invalid('task', '"classification" or "regression"', body.task);
    settings.task = body.task;
  }
  return { model, settings };
}

export interface EvaluationHandlerOptions {
  registry: ModelRegistry;
  evaluations: EvaluationRepository;
  /** Decrypted dataset bytes (undefined when the dataset is gone), with the class names its schema has. */
  loadDataset(tenantId: string, datasetId: string): Promise<(DatasetSource & { classNames?: string[] }) | undefined>;
  /** Private directory for decrypted model files while a job runs; swept at start. */
  temporaryDirectory: string;
  /** The evaluation process's RSS limit (the job memory limit). */
  memoryLimitBytes: number;
  logger: Logger;
  /** Rows per inference run (default 256). */
  batchSize?: number;
  /** Keeps the evaluated inputs' profile as the version's newest drift baseline. */
  storeBaseline(tenantId: string, versionId: string, stored: StoredBaseline): Promise<void>;
}

const evaluationChild = siblingModule(import.meta.url, 'evaluation-child');

/** Sets up the evaluate kind; at server start, so leftovers of a previous run are swept synchronously. */
export function createEvaluationHandler(options: EvaluationHandlerOptions): { parser: JobKindParser; handler: JobKindHandler } {
  rmSync(options.temporaryDirectory, { recursive: true, force: true });
  mkdirSync(options.temporaryDirectory, { recursive: true, mode: 0o700 });
  const parser: JobKindParser = {
    parse: (body) => {
      const { model, settings } = parseEvaluationRequest(body);
      return { model, settings: { ...settings } };
    },
  };
  const handler: JobKindHandler = {
    async run(job: JobRecord, context: JobKindContext): Promise<JobKindResult> {
      const settings = job.settings as EvaluationSettings;
      const { model, version } = await options.registry.getVersion(job.tenantId, job.modelName, String(settings.version));
      const dataset = await options.loadDataset(job.tenantId, settings.datasetId);
      if (dataset === undefined) throw new AiaasError('DATASET_NOT_FOUND', `dataset ${settings.datasetId} not found`, { details: { datasetId: settings.datasetId } });
      const directory = join(options.temporaryDirectory, job.id);
      const log = options.logger.child({ jobId: job.id, kind: 'evaluate' });
      try {
        await context.appendEvent('job-progress', { phase: 'preparing' });
        const modelPath = await options.registry.writeVersionFiles(job.tenantId, version, directory);
        context.signal.throwIfAborted();
        const classNames = settings.classNames ?? dataset.classNames;
        // IDX pixels as the version was trained on them: raw when its spec scales them in the graph.
        const spec = await options.registry.versionSpec(job.tenantId, version);
        const scalePixels = spec === undefined || scalesIdxPixelsAtLoad(resolveSpec(spec));
        const child = forkIsolated<ToEvaluationChild, FromEvaluationChild>(evaluationChild, {
          memoryLimitBytes: options.memoryLimitBytes,
          onOutput: (text) => log.warn({ output: text.slice(0, 2000) }, 'evaluation process output'),
        });
        const onAbort = () => child.kill();
        context.signal.addEventListener('abort', onAbort, { once: true });
        let outcome: FromEvaluationChild | undefined;
        let reporting: Promise<void> = Promise.resolve();
        let reportedTenth = -1;
        child.onMessage((message) => {
          if (message.type === 'progress') {
            // Every tenth of the rows: steady for watchers, cheap for the event log.
            const tenth = Math.floor((message.rowsDone * 10) / Math.max(1, message.rowsTotal));
            if (tenth === reportedTenth) return;
            reportedTenth = tenth;
            reporting = reporting.then(() => context.appendEvent('job-progress', { phase: 'evaluating', rowsDone: message.rowsDone, rowsTotal: message.rowsTotal }));
            return;
          }
          outcome = message;
          child.kill();
        });
        child.send({
          type: 'start',
          modelPath,
          dataset: { ...dataset, ...(settings.label === undefined ? {} : { label: settings.label }) },
          batchSize: options.batchSize ?? 256,
          scalePixels,
          ...(settings.output === undefined ? {} : { output: settings.output }),
          ...(settings.task === undefined ? {} : { task: settings.task }),
          ...(classNames === undefined ? {} : { classNames }),
          ...(settings.topK === undefined ? {} : { topK: settings.topK }),
        });
        const exit = await child.exited;
        context.signal.removeEventListener('abort', onAbort);
        await reporting;
        context.signal.throwIfAborted();
        if (outcome === undefined) {
          if (exit.limit === 'memory') {
            throw new AiaasError('JOB_MEMORY_EXCEEDED', `the evaluation process needed more than the job memory limit of ${Math.round(options.memoryLimitBytes / 1048576)} MiB`, {
              details: { limitBytes: options.memoryLimitBytes, peakResidentBytes: exit.peakResidentBytes },
            });
          }
          log.error({ code: exit.code, signal: exit.signal, output: exit.outputTail }, 'evaluation process ended without a result');
          throw new AiaasError('INTERNAL', 'the evaluation process ended unexpectedly; the server log has the details');
        }
        if (outcome.type === 'failed') throw new AiaasError(outcome.error.code as ErrorCode, outcome.error.message, outcome.error.details ? { details: outcome.error.details } : {});
        if (outcome.type !== 'done') throw new AiaasError('INTERNAL', 'the evaluation process sent no report');
        const stored = { ...settings, ...(settings.output === undefined ? { output: outcome.output } : {}), ...(classNames === undefined ? {} : { classNames }) };
        await options.evaluations.create(job.tenantId, {
          id: job.id,
          modelId: model.id,
          modelName: model.name,
          versionId: version.id,
          version: version.version,
          datasetId: settings.datasetId,
          settings: stored,
          report: outcome.report,
        });
        await options.storeBaseline(job.tenantId, version.id, { source: 'evaluation', jobId: job.id, datasetId: settings.datasetId, baseline: outcome.baseline });
        return { summary: { evaluationId: job.id, task: outcome.report.task, count: outcome.report.count, ...headline(outcome.report), seconds: outcome.seconds } };
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
  return { parser, handler };
}

/** The one or two figures a job's final event and the CLI's one-line summary show. */
export function headline(report: EvaluationResult): Record<string, number> {
  return report.task === 'classification'
    ? { accuracy: report.accuracy, macroF1: report.macroAverage.f1, logLoss: report.logLoss }
    : { meanAbsoluteError: report.meanAbsoluteError, rootMeanSquaredError: report.rootMeanSquaredError, r2: report.r2 };
}

export interface EvaluationServiceDependencies {
  registry: ModelRegistry;
  evaluations: EvaluationRepository;
  jobs: JobService;
  datasetExists(tenantId: string, datasetId: string): Promise<boolean>;
}

function view(record: EvaluationRecord, jobId = record.id): EvaluationView {
  return {
    id: record.id,
    model: record.modelName,
    version: record.version,
    datasetId: record.datasetId,
    status: 'succeeded',
    jobId,
    settings: record.settings as EvaluationSettings,
    report: record.report as EvaluationResult,
    error: null,
    createdAt: record.createdAt,
  };
}

function settingsOf(job: JobView): EvaluationSettings {
  return job.settings as unknown as EvaluationSettings;
}

function pendingView(job: JobView): EvaluationView {
  const settings = settingsOf(job);
  return {
    id: job.id,
    model: job.model,
    version: settings.version,
    datasetId: settings.datasetId,
    status: job.status,
    jobId: job.id,
    settings,
    report: null,
    error: job.error,
    createdAt: job.createdAt,
  };
}

export class EvaluationService {
  constructor(private readonly deps: EvaluationServiceDependencies) {}

  /**
   * Queues an evaluation of `name@selector` (a number, an alias or latest) on a dataset. The version,
   * its format and the dataset are checked now, so a bad request is a 4xx, not a failed job.
   */
  async submit(tenantId: string, name: string, selector: string, body: Record<string, unknown>, allowedModels: AllowedModels = null): Promise<EvaluationView> {
    const { version } = await this.deps.registry.getVersion(tenantId, name, selector);
    if (version.format !== 'onnx') throw new AiaasError('INVALID_REQUEST', `version ${version.version} of '${name}' is a language model; only ONNX versions can be evaluated`);
    for (const field of ['model', 'version']) {
      if (field in body) throw new AiaasError('INVALID_REQUEST', `Unknown field '${field}': the path names the model and version`, { details: { field } });
    }
    const parsed = parseEvaluationRequest({ ...body, model: name, version: version.version });
    if (!(await this.deps.datasetExists(tenantId, parsed.settings.datasetId))) {
      throw new AiaasError('DATASET_NOT_FOUND', `dataset ${parsed.settings.datasetId} not found`, { details: { datasetId: parsed.settings.datasetId } });
    }
    const output = parsed.settings.output;
    const signature = version.signature as ModelSignature;
    if (output !== undefined && !signature.outputs.some((spec) => spec.name === output)) {
      throw new AiaasError('INVALID_REQUEST', `the model has no output ${quoteForError(output)}; its outputs are ${signature.outputs.map((spec) => spec.name).join(', ')}`, {
        details: { field: 'outputs' },
      });
    }
    const job = await this.deps.jobs.submitKind(tenantId, 'evaluate', { ...body, model: name, version: version.version }, allowedModels);
    return pendingView(job);
  }

  /** A report, or the state of its job while it has none. */
  async get(tenantId: string, name: string, id: string, allowedModels: AllowedModels = null): Promise<EvaluationView> {
    const record = await this.deps.evaluations.get(tenantId, id);
    if (record !== undefined && record.modelName === name) return view(record);
    try {
      const job = await this.deps.jobs.get(tenantId, id, allowedModels);
      if (job.kind === 'evaluate' && job.model === name) return pendingView(job);
    } catch (error) {
      if (!(AiaasError.isInstance(error) && error.code === 'JOB_NOT_FOUND')) throw error;
    }
    throw new AiaasError('EVALUATION_NOT_FOUND', `model '${name}' has no evaluation ${quoteForError(id)}`, { details: { model: name, evaluation: id.slice(0, 120) } });
  }

  /** A version's evaluations, newest first: unfinished and failed ones (from their jobs) before the stored reports. */
  async list(tenantId: string, name: string, selector: string, allowedModels: AllowedModels = null): Promise<EvaluationView[]> {
    const { version } = await this.deps.registry.getVersion(tenantId, name, selector);
    const stored = await this.deps.evaluations.listForVersion(tenantId, version.id);
    const storedIds = new Set(stored.map((record) => record.id));
    const jobs = await this.deps.jobs.list(tenantId, { kind: 'evaluate', limit: 200 }, allowedModels);
    const pending = jobs
      .filter((job) => job.model === name && settingsOf(job).version === version.version && !storedIds.has(job.id) && job.status !== 'succeeded')
      .map(pendingView);
    return [...pending, ...stored.map((record) => view(record))];
  }

  /** The newest stored report of a version on a dataset, if any (what a promotion gate reuses). */
  async latestReport(tenantId: string, versionId: string, datasetId: string): Promise<EvaluationView | undefined> {
    const [record] = await this.deps.evaluations.listForVersion(tenantId, versionId, { datasetId, limit: 1 });
    return record === undefined ? undefined : view(record);
  }

  /**
   * The stored report of `name@version` on the dataset, else the evaluation job already queued or
   * running for it, else a new one (what a promotion gate reuses: at most one job per version and dataset).
   */
  async reportOrJob(
    tenantId: string,
    name: string,
    version: { id: string; version: number },
    request: { datasetId: string; outputs?: string; label?: string },
    allowedModels: AllowedModels = null,
  ): Promise<{ report: EvaluationView } | { job: JobView }> {
    const report = await this.latestReport(tenantId, version.id, request.datasetId);
    if (report !== undefined) return { report };
    const unfinished = (await this.deps.jobs.list(tenantId, { kind: 'evaluate', limit: 200 }, allowedModels)).find((job) => {
      const settings = settingsOf(job);
      return job.model === name && (job.status === 'queued' || job.status === 'running') && settings.version === version.version && settings.datasetId === request.datasetId;
    });
    if (unfinished !== undefined) return { job: unfinished };
    const submitted = await this.submit(tenantId, name, String(version.version), { ...request }, allowedModels);
    return { job: await this.deps.jobs.get(tenantId, submitted.jobId, allowedModels) };
  }

  /** Waits until the job is final or `timeoutMs` passes; returns its last state. */
  async waitForJob(tenantId: string, jobId: string, timeoutMs: number): Promise<JobView> {
    const final = (job: JobView) => job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled';
    let job = await this.deps.jobs.get(tenantId, jobId);
    if (final(job) || timeoutMs <= 0) return job;
    await new Promise<void>((resolve) => {
      let checking = false;
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        unsubscribe();
        resolve();
      };
      const check = () => {
        if (checking) return;
        checking = true;
        this.deps.jobs
          .get(tenantId, jobId)
          .then((latest) => {
            job = latest;
            if (final(latest)) done();
          })
          .catch(() => done())
          .finally(() => {
            checking = false;
          });
      };
      const unsubscribe = this.deps.jobs.onJobEvent((id) => {
        if (id === jobId) check();
      });
      // Another server's runner may run the job: its events do not reach this process's listeners.
      const poll = setInterval(check, 500);
      const timer = setTimeout(done, timeoutMs);
    });
    return job;
  }
}

/**
 * Hyperparameter sweeps: each trial is a normal training job (queued, leased, cancellable,
 * watched like any other) that keeps its trained model with the job instead of registering a
 * version. The service submits trials up to the sweep's parallelism as earlier ones finish, ranks
 * them by the sweep's metric (a live leaderboard), runs successive halving's rounds, and
 * registers the best trial's model on request (or when the sweep ends, with `register`).
 * Everything it decides follows from the stored sweep and its trials' jobs, so a restarted
 * server carries on where the last one stopped.
 */
import type { Logger } from 'pino';
import { AiaasError } from '../errors.ts';
import type { TrainingSummary } from '../engine/model.ts';
import type { DriftBaseline } from '../quality/drift-baseline.ts';
import { modelAllowed } from '../security/roles.ts';
import type { JobRecord, SweepRecord, SweepRepository, SweepTrialRecord } from '../storage/index.ts';
import type { SweepStatus } from '../storage/schema.ts';
import { isFinal, type AllowedModels, type JobService } from './job-service.ts';
import {
  better,
  configurations,
  metricValue,
  parseSweepRequest,
  promoted,
  roundEpochs,
  trialJobBody,
  type SweepDefinition,
  type TrialParameters,
} from './sweep-request.ts';
import type { SavedModelPayload } from './worker-protocol.ts';

export interface SweepServiceDependencies {
  sweeps: SweepRepository;
  jobs: JobService;
  /** A finished trial's kept files (jobs.result_refs_json), decrypted. */
  readArtifact(tenantId: string, ref: string): Promise<Uint8Array>;
  registerVersion(tenantId: string, modelName: string, files: SavedModelPayload, options: { jobId: string; metrics: TrainingSummary; baseline: DriftBaseline | undefined }): Promise<{ versionId: string; version: number }>;
  versionNumber(tenantId: string, versionId: string): Promise<number | undefined>;
  logger: Logger;
}

export interface TrialView {
  trial: number;
  rung: number;
  jobId: string;
  params: TrialParameters;
  status: JobRecord['status'];
  epoch: number;
  totalEpochs: number;
  loss: number | null;
  /** The sweep's metric, once the trial succeeded. */
  metric: number | null;
  error: { code: string; message: string } | null;
}

export interface SweepView {
  id: string;
  model: string;
  status: SweepStatus;
  strategy: SweepDefinition['strategy'];
  metric: SweepDefinition['metric'];
  space: SweepDefinition['space'];
  maxTrials: number;
  parallelism: number;
  register: boolean;
  /** Best first (by the metric); then running, queued, failed and cancelled trials. */
  leaderboard: TrialView[];
  best: TrialView | null;
  resultVersion: { id: string; version: number } | null;
  createdAt: string;
  finishedAt: string | null;
}

/** A sweep's definition as stored: the request, and the key that submitted it. */
type StoredDefinition = SweepDefinition & { keyId?: string | null };

/** How soon a sweep whose trial met a full job quota tries again. */
const quotaRetryMs = 5000;

const statusOrder: Record<JobRecord['status'], number> = { succeeded: 0, running: 1, queued: 2, failed: 3, cancelled: 4 };

export class SweepService {
  readonly #deps: SweepServiceDependencies;
  /** Summaries of finished trials (immutable once read). */
  readonly #summaries = new Map<string, TrainingSummary | null>();
  /** Trial job → its sweep, for the sweeps this process drives. */
  readonly #trialSweeps = new Map<string, { tenantId: string; sweepId: string }>();
  /** One advance at a time per sweep; another request while one runs makes it run once more. */
  readonly #advancing = new Map<string, { again: boolean; done: Promise<void> }>();
  readonly #listeners = new Set<(sweepId: string) => void>();
  /** Retries of sweeps whose next trial met a full job quota (the jobs holding it may not be theirs). */
  readonly #retries = new Set<NodeJS.Timeout>();
  #unsubscribe: (() => void) | undefined;

  constructor(deps: SweepServiceDependencies) {
    this.#deps = deps;
  }

  /** Follows trial jobs' events and resumes running sweeps (when the job runner starts). */
  async start(): Promise<void> {
    this.#unsubscribe ??= this.#deps.jobs.onJobEvent((jobId) => {
      const owner = this.#trialSweeps.get(jobId);
      if (owner !== undefined) this.#schedule(owner.tenantId, owner.sweepId);
    });
    for (const { tenantId, id } of await this.#deps.sweeps.listRunning()) this.#schedule(tenantId, id);
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
  }

  /** Called when a sweep's leaderboard may have changed (SSE streams wait on it). */
  onSweepChange(listener: (sweepId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** `keyId`: the submitting key; its trials' training is billed to it. */
  async submit(tenantId: string, body: unknown, allowedModels: AllowedModels, keyId: string | null = null): Promise<SweepView> {
    const definition = parseSweepRequest(body);
    const configs = configurations(definition);
    if (configs.length === 0) throw new AiaasError('INVALID_REQUEST', 'the search space has no configuration', { details: { field: 'space' } });
    // Every trial's job is checked now (spec, settings, datasets): a value that breaks the spec is a 400 here, not a failed trial later.
    const firstEpochs = definition.strategy.type === 'successiveHalving' ? roundEpochs(definition.strategy, 0) : undefined;
    let model = '';
    for (const [index, parameters] of configs.entries()) {
      try {
        const request = await this.#deps.jobs.checkTraining(tenantId, trialJobBody(definition, parameters, firstEpochs), allowedModels, { quota: false });
        model = request.model;
      } catch (error) {
        if (AiaasError.isInstance(error) && (error.code === 'INVALID_REQUEST' || error.code === 'INVALID_SPEC')) {
          throw new AiaasError(error.code, `trial ${index} (${JSON.stringify(parameters).slice(0, 200)}): ${error.message}`, { details: { trial: index, ...(error.details ?? {}) } });
        }
        throw error;
      }
    }
    const stored: StoredDefinition = { ...definition, keyId };
    const sweep = await this.#deps.sweeps.create(tenantId, { modelName: model, definition: stored });
    await this.#advance(tenantId, sweep.id);
    return this.get(tenantId, sweep.id, allowedModels);
  }

  async record(tenantId: string, id: string, allowedModels: AllowedModels): Promise<SweepRecord> {
    const sweep = await this.#deps.sweeps.get(tenantId, id);
    if (sweep === undefined || !modelAllowed(allowedModels, sweep.modelName)) throw new AiaasError('NOT_FOUND', `sweep ${id} not found`, { details: { sweepId: id } });
    return sweep;
  }

  async get(tenantId: string, id: string, allowedModels: AllowedModels): Promise<SweepView> {
    const sweep = await this.record(tenantId, id, allowedModels);
    return this.#view(sweep, await this.#trialViews(sweep));
  }

  async list(tenantId: string, allowedModels: AllowedModels): Promise<SweepView[]> {
    const sweeps = (await this.#deps.sweeps.list(tenantId)).filter((sweep) => modelAllowed(allowedModels, sweep.modelName));
    return Promise.all(sweeps.map(async (sweep) => this.#view(sweep, await this.#trialViews(sweep))));
  }

  /** Stops the sweep and cancels its unfinished trials. */
  async cancel(tenantId: string, id: string, allowedModels: AllowedModels): Promise<SweepView> {
    const sweep = await this.record(tenantId, id, allowedModels);
    if (sweep.status !== 'running') throw new AiaasError('CONFLICT', `sweep ${id} is already ${sweep.status}`, { details: { status: sweep.status } });
    await this.#deps.sweeps.finish(tenantId, id, 'cancelled');
    for (const trial of await this.#deps.sweeps.trials(tenantId, id)) {
      const job = await this.#deps.jobs.record(tenantId, trial.jobId).catch(() => undefined);
      if (job !== undefined && !isFinal(job.status)) await this.#deps.jobs.cancel(tenantId, trial.jobId).catch(() => undefined);
    }
    this.#notify(id);
    return this.get(tenantId, id, allowedModels);
  }

  /** Registers the best trial's model as a new version of the sweep's model (once; later calls return it). */
  async register(tenantId: string, id: string, allowedModels: AllowedModels): Promise<SweepView> {
    const sweep = await this.record(tenantId, id, allowedModels);
    if (sweep.resultVersionId === null) await this.#registerBest(sweep, await this.#trialViews(sweep));
    this.#notify(id);
    return this.get(tenantId, id, allowedModels);
  }

  async #registerBest(sweep: SweepRecord, trials: TrialView[]): Promise<void> {
    const best = trials.find((trial) => trial.metric !== null);
    if (best === undefined) throw new AiaasError('CONFLICT', `sweep ${sweep.id} has no successful trial to register yet`);
    const job = await this.#deps.jobs.record(sweep.tenantId, best.jobId);
    const refs = job.resultRefs;
    if (refs === null) throw new AiaasError('CONFLICT', `trial job ${best.jobId} kept no model`);
    const read = async (name: string) => this.#deps.readArtifact(sweep.tenantId, refs[name] ?? '');
    const files: SavedModelPayload = { onnx: await read('model.onnx'), spec: await read('spec.json'), weights: await read('model.safetensors'), metrics: await read('metrics.json') };
    const { history: _history, ...summary } = JSON.parse(new TextDecoder().decode(files.metrics)) as TrainingSummary & { history?: unknown };
    const baseline = refs['baseline.json'] === undefined ? undefined : (JSON.parse(new TextDecoder().decode(await read('baseline.json'))) as DriftBaseline);
    const { versionId } = await this.#deps.registerVersion(sweep.tenantId, sweep.modelName, files, { jobId: best.jobId, metrics: summary, baseline });
    await this.#deps.sweeps.setResultVersion(sweep.tenantId, sweep.id, versionId);
  }

  #retryLater(tenantId: string, sweepId: string): void {
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      this.#schedule(tenantId, sweepId);
    }, quotaRetryMs);
    timer.unref();
    this.#retries.add(timer);
  }

  #notify(sweepId: string): void {
    for (const listener of this.#listeners) listener(sweepId);
  }

  #schedule(tenantId: string, sweepId: string): void {
    const running = this.#advancing.get(sweepId);
    if (running !== undefined) {
      running.again = true;
      return;
    }
    void this.#advance(tenantId, sweepId).catch((error: unknown) => this.#deps.logger.error({ err: error, sweepId }, 'advancing a sweep failed'));
  }

  /** Serialized per sweep; re-runs once if asked again while running. */
  async #advance(tenantId: string, sweepId: string): Promise<void> {
    const existing = this.#advancing.get(sweepId);
    if (existing !== undefined) {
      existing.again = true;
      return existing.done;
    }
    const state = { again: false, done: Promise.resolve() };
    state.done = (async () => {
      try {
        do {
          state.again = false;
          await this.#step(tenantId, sweepId);
        } while (state.again);
      } finally {
        this.#advancing.delete(sweepId);
      }
    })();
    this.#advancing.set(sweepId, state);
    return state.done;
  }

  /** One look at the sweep: submit what may run now, finish it when nothing is left. */
  async #step(tenantId: string, sweepId: string): Promise<void> {
    const sweep = await this.#deps.sweeps.get(tenantId, sweepId);
    if (sweep === undefined) return;
    const definition = sweep.definition as StoredDefinition;
    const trials = await this.#deps.sweeps.trials(tenantId, sweepId);
    for (const trial of trials) this.#trialSweeps.set(trial.jobId, { tenantId, sweepId });
    this.#notify(sweepId);
    if (sweep.status !== 'running') return;
    const jobs = new Map<string, JobRecord>();
    for (const trial of trials) {
      const job = await this.#deps.jobs.record(tenantId, trial.jobId).catch(() => undefined);
      if (job !== undefined) jobs.set(trial.jobId, job);
    }
    const unfinished = trials.filter((trial) => {
      const job = jobs.get(trial.jobId);
      return job !== undefined && !isFinal(job.status);
    }).length;
    const pending = await this.#pendingTrials(definition, trials, jobs);
    let slots = definition.parallelism - unfinished;
    for (const next of pending) {
      if (slots <= 0) break;
      const body = trialJobBody(definition, next.params, next.epochs);
      let jobId: string;
      try {
        jobId = (await this.#deps.jobs.submit(tenantId, body, null, definition.keyId ?? null, { keepResult: true })).id;
      } catch (error) {
        // The tenant's job quota is full, possibly with jobs that are not this sweep's: look again shortly.
        if (AiaasError.isInstance(error) && error.code === 'QUOTA_EXCEEDED') {
          this.#retryLater(tenantId, sweepId);
          break;
        }
        throw error;
      }
      this.#trialSweeps.set(jobId, { tenantId, sweepId });
      await this.#deps.sweeps.addTrial(tenantId, { sweepId, jobId, trial: next.trial, rung: next.rung, params: next.params });
      slots--;
      // Cancelled while this trial was being submitted: the cancel may have missed it.
      if ((await this.#deps.sweeps.get(tenantId, sweepId))?.status !== 'running') {
        await this.#deps.jobs.cancel(tenantId, jobId).catch(() => undefined);
        return;
      }
    }
    if (pending.length > 0 || unfinished > 0) {
      this.#notify(sweepId);
      return;
    }
    const views = await this.#trialViews(sweep);
    const succeeded = views.some((trial) => trial.metric !== null);
    if (succeeded && definition.register && sweep.resultVersionId === null) {
      await this.#registerBest(sweep, views).catch((error: unknown) => this.#deps.logger.error({ err: error, sweepId }, 'registering the best trial failed'));
    }
    await this.#deps.sweeps.finish(tenantId, sweepId, succeeded ? 'succeeded' : 'failed');
    this.#notify(sweepId);
  }

  /** Trials to submit next, in order: the rest of the configurations, or successive halving's next round. */
  async #pendingTrials(
    definition: SweepDefinition,
    trials: readonly SweepTrialRecord[],
    jobs: ReadonlyMap<string, JobRecord>,
  ): Promise<{ trial: number; rung: number; params: TrialParameters; epochs?: number }[]> {
    const configs = configurations(definition);
    const strategy = definition.strategy;
    if (strategy.type !== 'successiveHalving') {
      const started = new Set(trials.map((trial) => trial.trial));
      return configs.map((params, trial) => ({ trial, rung: 0, params })).filter((entry) => !started.has(entry.trial));
    }
    const lastRung = trials.reduce((max, trial) => Math.max(max, trial.rung), 0);
    const inRung = (rung: number) => trials.filter((trial) => trial.rung === rung);
    const submittedFirst = new Set(inRung(0).map((trial) => trial.trial));
    const firstRound = configs.map((params, trial) => ({ trial, rung: 0, params, epochs: roundEpochs(strategy, 0) })).filter((entry) => !submittedFirst.has(entry.trial));
    if (firstRound.length > 0) return firstRound;
    const current = inRung(lastRung);
    if (current.some((trial) => !isFinal(jobs.get(trial.jobId)?.status ?? 'failed'))) return [];
    // The round is over: its best go on with eta× the epochs, until one is left or the epochs are at their cap.
    if (current.length <= 1 || roundEpochs(strategy, lastRung) >= strategy.maxEpochs) return [];
    const scored: { trial: SweepTrialRecord; metric: number }[] = [];
    for (const trial of current) {
      const metric = await this.#metricOf(trial.jobId, jobs.get(trial.jobId), definition);
      if (metric !== null) scored.push({ trial, metric });
    }
    if (scored.length === 0) return [];
    const order = better(definition.metric.direction);
    scored.sort((a, b) => order(a.metric, b.metric) || a.trial.trial - b.trial.trial);
    const keep = scored.slice(0, promoted(strategy, current.length));
    return keep.map(({ trial }) => ({ trial: trial.trial, rung: lastRung + 1, params: trial.params as TrialParameters, epochs: roundEpochs(strategy, lastRung + 1) }));
  }

  async #metricOf(jobId: string, job: JobRecord | undefined, definition: SweepDefinition): Promise<number | null> {
    if (job === undefined || job.status !== 'succeeded' || job.resultRefs === null) return null;
    let summary = this.#summaries.get(jobId);
    if (summary === undefined) {
      const ref = job.resultRefs['metrics.json'];
      summary = ref === undefined ? null : (JSON.parse(new TextDecoder().decode(await this.#deps.readArtifact(job.tenantId, ref))) as TrainingSummary);
      this.#summaries.set(jobId, summary);
    }
    return summary === null ? null : (metricValue(summary, definition.metric.name) ?? null);
  }

  async #trialViews(sweep: SweepRecord): Promise<TrialView[]> {
    const definition = sweep.definition as SweepDefinition;
    const views: TrialView[] = [];
    for (const trial of await this.#deps.sweeps.trials(sweep.tenantId, sweep.id)) {
      const job = await this.#deps.jobs.record(sweep.tenantId, trial.jobId).catch(() => undefined);
      if (job === undefined) continue;
      const error = job.error as { code?: unknown; message?: unknown } | null;
      views.push({
        trial: trial.trial,
        rung: trial.rung,
        jobId: trial.jobId,
        params: trial.params as TrialParameters,
        status: job.status,
        epoch: job.epoch,
        totalEpochs: job.totalEpochs,
        loss: job.loss,
        metric: await this.#metricOf(trial.jobId, job, definition),
        error: error !== null && typeof error === 'object' && typeof error.code === 'string' ? { code: error.code, message: String(error.message ?? '') } : null,
      });
    }
    const order = better(definition.metric.direction);
    // A later round's result outranks an earlier round's of the same configuration (more epochs).
    return views.sort((a, b) => {
      if (a.metric !== null && b.metric !== null) return b.rung - a.rung || order(a.metric, b.metric) || a.trial - b.trial;
      if (a.metric !== null) return -1;
      if (b.metric !== null) return 1;
      return statusOrder[a.status] - statusOrder[b.status] || a.rung - b.rung || a.trial - b.trial;
    });
  }

  async #view(sweep: SweepRecord, leaderboard: TrialView[]): Promise<SweepView> {
    const definition = sweep.definition as SweepDefinition;
    const resultVersion = sweep.resultVersionId === null ? undefined : await this.#deps.versionNumber(sweep.tenantId, sweep.resultVersionId);
    return {
      id: sweep.id,
      model: sweep.modelName,
      status: sweep.status,
      strategy: definition.strategy,
      metric: definition.metric,
      space: definition.space,
      maxTrials: definition.maxTrials,
      parallelism: definition.parallelism,
      register: definition.register,
      leaderboard,
      best: leaderboard.find((trial) => trial.metric !== null) ?? null,
      resultVersion: sweep.resultVersionId === null || resultVersion === undefined ? null : { id: sweep.resultVersionId, version: resultVersion },
      createdAt: sweep.createdAt,
      finishedAt: sweep.finishedAt,
    };
  }
}

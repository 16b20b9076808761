import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { defaultJobMemoryLimitBytes } from '../config.ts';
import { AiaasError } from '../errors.ts';
import { forkIsolated, siblingModule, type IsolatedExit, type IsolatedProcess } from '../runtimes/isolated-process.ts';
import { jobKinds, type JobRecord, type JobRepository } from '../storage/repositories/jobs.ts';
import type { JobKind } from '../storage/schema.ts';
import type { JobEventType, JobKindHandler } from './job-types.ts';

export type { JobEventType };
import type { JobSettings } from './job-request.ts';
import type { DriftBaseline } from '../quality/drift-baseline.ts';
import type { DatasetSource, FromWorker, SavedModelPayload, ToWorker, TrainingSummary, WorkerStart } from './worker-protocol.ts';

/** What the runner needs from the rest of the server; the server context provides it. */
export interface JobRunnerDependencies {
  jobs: JobRepository;
  /** Decrypted bytes of a dataset, or undefined when it no longer exists. */
  loadDatasetSource(tenantId: string, datasetId: string): Promise<DatasetSource | undefined>;
  putArtifact(tenantId: string, bytes: Uint8Array): Promise<string>;
  getArtifact(tenantId: string, ref: string): Promise<Uint8Array>;
  /** Removes a superseded checkpoint; without it every epoch would leave an orphan file behind. */
  deleteArtifact(ref: string): Promise<void>;
  registerVersion(
    tenantId: string,
    modelName: string,
    files: SavedModelPayload,
    options: { jobId: string; metrics: TrainingSummary; baseline: DriftBaseline },
  ): Promise<{ versionId: string; version: number }>;
  /** A `keepResult` job's saved model (and drift baseline) as stored artifacts: file name → ref. */
  keepResult?(tenantId: string, files: SavedModelPayload, baseline: DriftBaseline): Promise<Record<string, string>>;
  logger: Logger;
  /** Hears what training used: sample-epochs as epochs end, and the training process's running time. */
  recordTrainingUsage?(usage: TrainingUsage): void;
  /** Runs the jobs of kinds other than `train` (training is the runner's own worker-thread path). */
  handlers?: Partial<Record<Exclude<JobKind, 'train'>, JobKindHandler>>;
  /** Hears of every job that reached a final status (metering its worker time). */
  onJobFinished?: (tenantId: string, jobId: string) => Promise<void>;
}

export interface TrainingUsage {
  tenantId: string;
  /** The key that submitted the job; null for jobs older than the usage ledger. */
  keyId: string | null;
  modelName: string;
  sampleEpochs: number;
  workerSeconds: number;
}

export interface JobRunnerOptions {
  /** Training, evaluation and the other non-download jobs run at once (`jobConcurrency`). */
  concurrency: number;
  /** Model downloads run at once (`pullConcurrency`): a pool of their own, so downloads and training never wait on each other's slots. */
  pullConcurrency?: number;
  leaseMs: number;
  /** How often an idle runner looks for queued work (a submit wakes it at once). */
  pollMs?: number;
  /** RSS limit of one job's training process (`jobMemoryLimitBytes`); above it the job fails with JOB_MEMORY_EXCEEDED. */
  memoryLimitBytes?: number;
  /** How often that process's RSS is sampled. */
  memoryPollMs?: number;
}


/** Why a handler's signal was aborted; the runner decides the job's final status from it. */
type StopReason = 'cancelled' | 'lease-lost' | 'server-stopping';

type Listener = (jobId: string) => void;

/** Jobs that share a concurrency limit; each pool claims only its own kinds. */
interface JobPool {
  readonly kinds: readonly JobKind[];
  readonly limit: number;
  /** Jobs this pool holds, from the claim on: counts against `limit` before their worker exists. */
  readonly claimed: Set<string>;
  claiming: boolean;
}

const downloadKinds: readonly JobKind[] = ['pull'];

const trainingChild = siblingModule(import.meta.url, 'training-child');
const mebibyte = 1024 * 1024;

type TrainingProcess = IsolatedProcess<ToWorker, FromWorker>;

/** Why a training process ended without its final message, as the job's error. */
function exitFailure(exit: IsolatedExit, memoryLimitBytes: number): { code: string; message: string; details?: Record<string, unknown> } {
  // A JavaScript heap overflow (`--max-old-space-size`) is the same limit reached from the other side.
  if (exit.limit === 'memory' || /heap out of memory/i.test(exit.outputTail)) {
    const limit = Math.round(memoryLimitBytes / mebibyte);
    return {
      code: 'JOB_MEMORY_EXCEEDED',
      message: `the training process needed more than the job memory limit of ${limit} MiB (jobMemoryLimitBytes) and was stopped; use a smaller model or batch size, or ask the operator to raise the limit`,
      details: { limitBytes: memoryLimitBytes, peakResidentBytes: exit.peakResidentBytes },
    };
  }
  const how = exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
  return { code: 'INTERNAL', message: `the training process ended unexpectedly (${how}); the server log has the details` };
}

/**
 * Takes queued jobs (or running ones whose lease expired: a crashed server's) and trains each in a
 * child process with a memory limit. Checkpoints and results are stored by the server, encrypted,
 * through the deps.
 */
export class JobRunner {
  readonly owner = `runner-${randomUUID()}`;
  private readonly deps: JobRunnerDependencies;
  private readonly options: Required<JobRunnerOptions>;
  private readonly active = new Map<string, { tenantId: string; cancel(): void; terminate(): Promise<void> }>();
  private readonly pools: readonly JobPool[];
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(deps: JobRunnerDependencies, options: JobRunnerOptions) {
    this.deps = deps;
    this.options = { pollMs: 1000, memoryLimitBytes: defaultJobMemoryLimitBytes, memoryPollMs: 100, pullConcurrency: 2, ...options };
    this.pools = [
      { kinds: jobKinds.filter((kind) => !downloadKinds.includes(kind)), limit: this.options.concurrency, claimed: new Set(), claiming: false },
      { kinds: downloadKinds, limit: this.options.pullConcurrency, claimed: new Set(), claiming: false },
    ];
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.options.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Stop taking work and end running training processes; their leases are released so a restart resumes them at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const running = [...this.active.entries()];
    this.active.clear();
    await Promise.all(
      running.map(async ([jobId, { terminate, tenantId }]) => {
        await terminate();
        await this.deps.jobs.renewLease(tenantId, jobId, this.owner, 0).catch(() => undefined);
      }),
    );
  }

  /** Called when a job's events change, so open event streams can push without polling. */
  onJobEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(jobId: string): void {
    for (const listener of this.listeners) listener(jobId);
  }

  async appendEvent(tenantId: string, jobId: string, type: JobEventType, payload: unknown): Promise<void> {
    await this.deps.jobs.appendEvent(tenantId, jobId, type, payload);
    this.notify(jobId);
    if (type === 'job-finished' && this.deps.onJobFinished !== undefined) {
      await this.deps.onJobFinished(tenantId, jobId).catch((error: unknown) => this.deps.logger.error({ err: error, jobId }, 'could not meter a finished job'));
    }
  }

  cancel(jobId: string): void {
    this.active.get(jobId)?.cancel();
  }

  wake(): void {
    for (const pool of this.pools) this.wakePool(pool);
  }

  private wakePool(pool: JobPool): void {
    if (this.stopped || pool.claiming || pool.claimed.size >= pool.limit) return;
    pool.claiming = true;
    this.deps.jobs
      .claimNext(this.owner, this.options.leaseMs, undefined, pool.kinds)
      .then((job) => {
        pool.claiming = false;
        if (!job) return;
        pool.claimed.add(job.id);
        this.run(job)
          .catch(async (error: unknown) => {
            // Without this the job would stay `running` and be re-claimed (and fail again) after every lease.
            this.deps.logger.error({ err: error, jobId: job.id }, 'job runner failed');
            const failure = AiaasError.isInstance(error) ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: 'the job could not be started; the server log has the details' };
            await this.fail(job, failure).catch(() => undefined);
          })
          .finally(() => {
            pool.claimed.delete(job.id);
            this.wakePool(pool);
          });
        this.wakePool(pool);
      })
      .catch((error: unknown) => {
        pool.claiming = false;
        this.deps.logger.error({ err: error }, 'claiming a job failed');
      });
  }

  private async fail(job: JobRecord, error: { code: string; message: string; details?: Record<string, unknown> }): Promise<void> {
    const finished = await this.deps.jobs.finish(job.tenantId, job.id, { status: 'failed', owner: this.owner, error });
    if (finished) await this.appendEvent(job.tenantId, job.id, 'job-finished', { status: 'failed', error });
  }

  private async run(job: JobRecord): Promise<void> {
    if (job.kind !== 'train') {
      await this.runHandled(job, job.kind);
      return;
    }
    const { tenantId } = job;
    const log = this.deps.logger.child({ jobId: job.id, tenantId });
    const settings = job.settings as JobSettings;
    const train = await this.deps.loadDatasetSource(tenantId, job.datasetId);
    const test = job.testDatasetId ? await this.deps.loadDatasetSource(tenantId, job.testDatasetId) : undefined;
    const validationId = settings.validationDatasetId;
    const validation = validationId === undefined ? undefined : await this.deps.loadDatasetSource(tenantId, validationId);
    if (!train || (job.testDatasetId && !test) || (validationId !== undefined && !validation)) {
      const missing = !train ? job.datasetId : job.testDatasetId && !test ? job.testDatasetId : validationId;
      await this.fail(job, { code: 'DATASET_NOT_FOUND', message: `dataset ${missing} was deleted before the job ran` });
      return;
    }
    const checkpoint = job.checkpointRef ? await this.deps.getArtifact(tenantId, job.checkpointRef) : undefined;
    let latestCheckpoint: string | null = job.checkpointRef;
    const start: WorkerStart = {
      type: 'start',
      spec: job.spec,
      settings,
      train: { ...train, ...(settings.label === undefined ? {} : { label: settings.label }) },
      ...(test ? { test: { ...test, ...(settings.label === undefined ? {} : { label: settings.label }) } } : {}),
      ...(validation ? { validation: { ...validation, ...(settings.label === undefined ? {} : { label: settings.label }) } } : {}),
      ...(checkpoint ? { checkpoint } : {}),
    };
    await this.appendEvent(tenantId, job.id, 'job-started', { epoch: job.epoch, totalEpochs: job.totalEpochs, owner: this.owner });
    log.info({ resumeFromEpoch: job.epoch }, 'training job started');

    if (this.stopped) {
      // Stopped while preparing: hand the job back at once instead of starting a process.
      await this.deps.jobs.renewLease(tenantId, job.id, this.owner, 0);
      return;
    }
    const child: TrainingProcess = forkIsolated<ToWorker, FromWorker>(trainingChild, {
      memoryLimitBytes: this.options.memoryLimitBytes,
      memoryPollMs: this.options.memoryPollMs,
      onOutput: (text) => log.warn({ output: text.slice(0, 2000) }, 'training process output'),
    });
    // Worker time is billed as it accrues (each epoch) and at the end, so a crash loses at most an epoch's.
    let meteredAt = performance.now();
    let finalMetered = false;
    const meter = (sampleEpochs: number): void => {
      const now = performance.now();
      this.deps.recordTrainingUsage?.({ tenantId, keyId: job.keyId, modelName: job.modelName, sampleEpochs, workerSeconds: (now - meteredAt) / 1000 });
      meteredAt = now;
    };
    this.active.set(job.id, {
      tenantId,
      cancel: () => child.send({ type: 'cancel' }),
      terminate: async () => {
        child.kill();
        await child.exited;
      },
    });
    // Epochs after the last checkpoint are trained again on resume, so their history entries go too.
    const history: unknown[] = job.metricsHistory.slice(0, job.epoch);
    let settled = false;
    // Another runner owns the job now: this one stops without touching its row.
    let leaseLost = false;
    let chain = Promise.resolve();
    const renew = setInterval(() => {
      this.deps.jobs
        .renewLease(tenantId, job.id, this.owner, this.options.leaseMs)
        .then((renewed) => {
          if (!renewed) {
            log.warn('lease lost; stopping the training process');
            leaseLost = true;
            child.kill();
          } else if (renewed.cancelRequested) child.send({ type: 'cancel' });
        })
        .catch((error: unknown) => log.error({ err: error }, 'renewing the job lease failed'));
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));

    const handle = async (message: FromWorker): Promise<void> => {
      switch (message.type) {
        case 'resumed':
          await this.appendEvent(tenantId, job.id, 'job-resumed', { fromEpoch: message.epoch, step: message.step });
          return;
        case 'progress':
          await this.deps.jobs.updateProgress(tenantId, job.id, this.owner, { step: message.event.step, loss: message.event.loss });
          await this.appendEvent(tenantId, job.id, 'job-progress', message.event);
          return;
        case 'epoch':
          meter(message.samples);
          history.push(message.event);
          await this.deps.jobs.updateProgress(tenantId, job.id, this.owner, { step: message.event.step, loss: message.event.loss, metricsHistory: history });
          await this.appendEvent(tenantId, job.id, 'epoch-end', message.event);
          return;
        case 'checkpoint': {
          // The artifact is durable before the row points at it, so a crash never leaves a dangling ref.
          const ref = await this.deps.putArtifact(tenantId, message.bytes);
          const held = await this.deps.jobs.updateProgress(tenantId, job.id, this.owner, { epoch: message.epoch, step: message.step, checkpointRef: ref });
          // A checkpoint file goes once no row names it: the one this replaces, or, when another
          // runner took the job over, this one.
          const unreferenced = held ? latestCheckpoint : ref;
          if (held) latestCheckpoint = ref;
          if (unreferenced !== null) {
            await this.deps.deleteArtifact(unreferenced).catch((error: unknown) => log.warn({ err: error }, 'could not remove a superseded checkpoint'));
          }
          await this.appendEvent(tenantId, job.id, 'checkpoint-saved', { epoch: message.epoch, step: message.step });
          return;
        }
        case 'done': {
          settled = true;
          if (settings.keepResult === true) {
            if (this.deps.keepResult === undefined) throw new AiaasError('INTERNAL', 'this server cannot keep a job result');
            const resultRefs = await this.deps.keepResult(tenantId, message.files, message.baseline);
            const finished = await this.deps.jobs.finish(tenantId, job.id, { status: 'succeeded', owner: this.owner, resultRefs });
            if (finished) await this.appendEvent(tenantId, job.id, 'job-finished', { status: 'succeeded', summary: message.summary });
            log.info({ summary: message.summary }, 'training job succeeded (result kept with the job)');
            return;
          }
          const { versionId, version } = await this.deps.registerVersion(tenantId, job.modelName, message.files, { jobId: job.id, metrics: message.summary, baseline: message.baseline });
          const finished = await this.deps.jobs.finish(tenantId, job.id, { status: 'succeeded', owner: this.owner, resultVersionId: versionId });
          if (finished) await this.appendEvent(tenantId, job.id, 'job-finished', { status: 'succeeded', version, versionId, summary: message.summary });
          log.info({ version, summary: message.summary }, 'training job succeeded');
          return;
        }
        case 'cancelled': {
          settled = true;
          // The epoch column follows checkpoints (it is where a resume starts); a cancelled job never
          // resumes, so it reports the epochs it finished, matching the loss and history it shows.
          await this.deps.jobs.updateProgress(tenantId, job.id, this.owner, { epoch: message.epoch, step: message.step });
          const finished = await this.deps.jobs.finish(tenantId, job.id, { status: 'cancelled', owner: this.owner });
          if (finished) await this.appendEvent(tenantId, job.id, 'job-finished', { status: 'cancelled', epoch: message.epoch, step: message.step });
          return;
        }
        case 'failed':
          settled = true;
          await this.fail(job, message.error);
          return;
      }
    };

    child.onMessage((message) => {
      chain = chain
        .then(async () => {
          const final = message.type === 'done' || message.type === 'cancelled' || message.type === 'failed';
          // Metered before the final status is written, so whoever sees the job finished sees all its
          // usage (the few milliseconds until the process exits are not billed).
          if (final && !finalMetered) {
            finalMetered = true;
            meter(0);
          }
          await handle(message);
          // A final message means the process has nothing left to do.
          if (final) child.kill();
        })
        .catch(async (error: unknown) => {
          settled = true;
          log.error({ err: error }, 'storing a training result failed');
          const failure = AiaasError.isInstance(error) ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: 'storing the training result failed' };
          await this.fail(job, failure).catch(() => undefined);
          child.kill();
        });
    });
    child.send(start);
    const exit = await child.exited;
    // A process that died without a final message still gets its running time billed.
    if (!finalMetered) {
      finalMetered = true;
      meter(0);
    }
    await chain;
    clearInterval(renew);
    log.info({ peakResidentBytes: exit.peakResidentBytes, limitBytes: this.options.memoryLimitBytes }, 'training process ended');
    if (!settled && !this.stopped && !leaseLost) {
      settled = true;
      const failure = exitFailure(exit, this.options.memoryLimitBytes);
      log.error({ code: exit.code, signal: exit.signal, limit: exit.limit, output: exit.outputTail }, 'training process ended without a result');
      await this.fail(job, failure);
    }
    this.active.delete(job.id);
  }

  /** A job of a kind with a handler: same lease, cancel and final-status rules as training. */
  private async runHandled(job: JobRecord, kind: Exclude<JobKind, 'train'>): Promise<void> {
    const { tenantId } = job;
    const log = this.deps.logger.child({ jobId: job.id, tenantId, kind });
    const handler = this.deps.handlers?.[kind];
    if (handler === undefined) {
      await this.fail(job, { code: 'INVALID_REQUEST', message: `this server cannot run ${kind} jobs` });
      return;
    }
    if (this.stopped) {
      await this.deps.jobs.renewLease(tenantId, job.id, this.owner, 0);
      return;
    }
    const controller = new AbortController();
    const stop = (reason: StopReason) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    let finished: Promise<unknown> = Promise.resolve();
    this.active.set(job.id, {
      tenantId,
      cancel: () => stop('cancelled'),
      terminate: async () => {
        stop('server-stopping');
        await finished.catch(() => undefined);
      },
    });
    const renew = setInterval(() => {
      this.deps.jobs
        .renewLease(tenantId, job.id, this.owner, this.options.leaseMs)
        .then((renewed) => {
          if (!renewed) stop('lease-lost');
          else if (renewed.cancelRequested) stop('cancelled');
        })
        .catch((error: unknown) => log.error({ err: error }, 'renewing the job lease failed'));
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    try {
      await this.appendEvent(tenantId, job.id, 'job-started', { kind, owner: this.owner });
      const running = handler.run(job, { signal: controller.signal, appendEvent: (type, payload) => this.appendEvent(tenantId, job.id, type, payload) });
      finished = running;
      const result = await running;
      if (controller.signal.aborted) throw controller.signal.reason;
      const done = await this.deps.jobs.finish(tenantId, job.id, { status: 'succeeded', owner: this.owner, resultVersionId: result.versionId ?? null });
      if (done) await this.appendEvent(tenantId, job.id, 'job-finished', { status: 'succeeded', ...result.summary });
      log.info(result.summary ?? {}, `${kind} job succeeded`);
    } catch (error) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason === 'server-stopping') {
        // Handed back at once: the next server (or this one, restarted) runs it again.
        await this.deps.jobs.renewLease(tenantId, job.id, this.owner, 0).catch(() => undefined);
      } else if (reason === 'cancelled') {
        const done = await this.deps.jobs.finish(tenantId, job.id, { status: 'cancelled', owner: this.owner });
        if (done) await this.appendEvent(tenantId, job.id, 'job-finished', { status: 'cancelled' });
      } else if (reason === 'lease-lost') {
        log.warn('lease lost; the job was stopped');
      } else {
        if (!AiaasError.isInstance(error)) log.error({ err: error }, `${kind} job failed`);
        const failure = AiaasError.isInstance(error)
          ? { code: error.code, message: error.message, ...(error.details ? { details: { ...error.details } } : {}) }
          : { code: 'INTERNAL', message: `the ${kind} job failed unexpectedly; the server log has the details` };
        await this.fail(job, failure);
      }
    } finally {
      clearInterval(renew);
      this.active.delete(job.id);
    }
  }
}

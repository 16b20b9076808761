import type { ExpressionBuilder, Kysely, Selectable } from 'kysely';
import { AiaasError } from '../../errors.ts';
import type { JobEventsTable, JobKind, JobStatus, JobsTable, Schema } from '../schema.ts';
import {
  fromJsonText,
  newId,
  pageLimit,
  pageOffset,
  toJsonText,
  toNullableJsonText,
  type Page,
} from '../support.ts';
import { sealRow, sealValue, type TextCipher } from '../text-cipher.ts';
import { repositorySettings, SealedRows } from './sealed-rows.ts';
import type { RepositoryOptions } from './tenants.ts';

export const jobStatuses: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const jobKinds: readonly JobKind[] = ['train', 'pull', 'quantize', 'evaluate', 'sweep'];
export type FinishedJobStatus = Extract<JobStatus, 'succeeded' | 'failed' | 'cancelled'>;

export interface JobRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly kind: JobKind;
  readonly modelName: string;
  /** The API key that submitted it; null for jobs older than the usage ledger. */
  readonly keyId: string | null;
  readonly status: JobStatus;
  readonly spec: unknown;
  readonly settings: unknown;
  readonly datasetId: string;
  readonly testDatasetId: string | null;
  readonly epoch: number;
  readonly step: number;
  readonly totalEpochs: number;
  readonly loss: number | null;
  readonly metricsHistory: readonly unknown[];
  readonly error: unknown;
  readonly checkpointRef: string | null;
  /** A sweep trial's saved model (file name → artifact ref), kept instead of a registered version. */
  readonly resultRefs: Readonly<Record<string, string>> | null;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: string | null;
  readonly resultVersionId: string | null;
  readonly cancelRequested: boolean;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

export interface NewJob {
  readonly id?: string;
  /** Default `train`. */
  readonly kind?: JobKind;
  readonly modelName: string;
  /** The API key submitting it. */
  readonly keyId?: string | null;
  readonly spec: unknown;
  readonly settings: unknown;
  readonly datasetId: string;
  readonly testDatasetId?: string | null;
  readonly totalEpochs: number;
}

export interface JobProgress {
  readonly epoch?: number;
  readonly step?: number;
  readonly loss?: number | null;
  readonly metricsHistory?: readonly unknown[];
  readonly checkpointRef?: string | null;
}

export interface JobEventRecord {
  readonly id: number;
  readonly tenantId: string;
  readonly jobId: string;
  readonly type: string;
  readonly payload: unknown;
  readonly createdAt: string;
}

function toJob(row: Selectable<JobsTable>): JobRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    kind: row.kind,
    modelName: row.model_name,
    keyId: row.key_id,
    status: row.status,
    spec: fromJsonText<unknown>(row.spec_json),
    settings: fromJsonText<unknown>(row.settings_json),
    datasetId: row.dataset_id,
    testDatasetId: row.test_dataset_id,
    epoch: Number(row.epoch),
    step: Number(row.step),
    totalEpochs: Number(row.total_epochs),
    loss: row.loss_text === null ? null : fromJsonText<number | null>(row.loss_text),
    metricsHistory: fromJsonText<unknown[]>(row.metrics_history_json),
    error: fromJsonText<unknown>(row.error_json),
    checkpointRef: row.checkpoint_ref,
    resultRefs: row.result_refs_json === null ? null : fromJsonText<Record<string, string>>(row.result_refs_json),
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    resultVersionId: row.result_version_id,
    cancelRequested: Number(row.cancel_requested) === 1,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function toEvent(row: Selectable<JobEventsTable>): JobEventRecord {
  return {
    id: Number(row.id),
    tenantId: row.tenant_id,
    jobId: row.job_id,
    type: row.type,
    payload: fromJsonText<unknown>(row.payload_json),
    createdAt: row.created_at,
  };
}

/** Queued, or running under a lease that expired before `nowIso` (its worker died). */
function claimable(nowIso: string, kinds: readonly JobKind[] | undefined) {
  return (where: ExpressionBuilder<Schema, 'jobs'>) => {
    const ready = where.or([
      where('status', '=', 'queued'),
      where.and([where('status', '=', 'running'), where('lease_expires_at', '<', nowIso)]),
    ]);
    return kinds === undefined ? ready : where.and([ready, where('kind', 'in', [...kinds])]);
  };
}

/**
 * The training queue lives in the `jobs` table. A worker holds a job through a
 * lease (owner + expiry) that it keeps renewing; a lease that runs out means the
 * worker died, and `claimNext` hands the job to someone else, who resumes from
 * `checkpointRef`. Every write a worker makes is conditioned on still holding
 * the lease, so a presumed-dead worker that wakes up cannot clobber the new one.
 */
export class JobRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #text: TextCipher;
  readonly #jobs: SealedRows<Selectable<JobsTable>, JobRecord>;
  readonly #events: SealedRows<Selectable<JobEventsTable>, JobEventRecord>;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    const { now, text } = repositorySettings(options);
    this.#db = db;
    this.#now = now;
    this.#text = text;
    this.#jobs = new SealedRows(text, 'jobs', toJob);
    this.#events = new SealedRows(text, 'job_events', toEvent);
  }

  #seal(tenantId: string, id: string, column: 'metrics_history_json' | 'error_json' | 'loss_text', text: string): Promise<string> {
    return sealValue(this.#text, tenantId, 'jobs', column, id, text);
  }

  async create(tenantId: string, input: NewJob): Promise<JobRecord> {
    const row: Selectable<JobsTable> = {
      id: input.id ?? newId('job'),
      tenant_id: tenantId,
      kind: input.kind ?? 'train',
      model_name: input.modelName,
      key_id: input.keyId ?? null,
      status: 'queued',
      spec_json: toJsonText(input.spec ?? null),
      settings_json: toJsonText(input.settings ?? null),
      dataset_id: input.datasetId,
      test_dataset_id: input.testDatasetId ?? null,
      epoch: 0,
      step: 0,
      total_epochs: input.totalEpochs,
      loss: null,
      loss_text: null,
      metrics_history_json: '[]',
      error_json: null,
      checkpoint_ref: null,
      lease_owner: null,
      lease_expires_at: null,
      result_version_id: null,
      result_refs_json: null,
      cancel_requested: 0,
      created_at: this.#now().toISOString(),
      started_at: null,
      finished_at: null,
    };
    await this.#db.insertInto('jobs').values(await this.#jobs.seal(row)).execute();
    return toJob(row);
  }

  async get(tenantId: string, id: string): Promise<JobRecord | undefined> {
    const row = await this.#db
      .selectFrom('jobs')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return this.#jobs.openFound(row);
  }

  /** Newest first; `modelNames` keeps only jobs of those models (an empty list matches none). */
  async list(tenantId: string, filter: Page & { status?: JobStatus; kind?: JobKind; modelNames?: readonly string[] } = {}): Promise<JobRecord[]> {
    let query = this.#db.selectFrom('jobs').selectAll().where('tenant_id', '=', tenantId);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
    if (filter.modelNames !== undefined) {
      if (filter.modelNames.length === 0) return [];
      query = query.where('model_name', 'in', [...filter.modelNames]);
    }
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(pageLimit(filter))
      .offset(pageOffset(filter))
      .execute();
    return this.#jobs.openAll(rows);
  }

  /** Job counts per tenant and status, for the metrics (only the pairs that have jobs). */
  async countByTenantAndStatus(): Promise<{ tenantId: string; status: JobStatus; count: number }[]> {
    const rows = await this.#db
      .selectFrom('jobs')
      .select((select) => ['tenant_id', 'status', select.fn.countAll<number>().as('count')])
      .groupBy(['tenant_id', 'status'])
      .orderBy('tenant_id')
      .orderBy('status')
      .execute();
    return rows.map((row) => ({ tenantId: row.tenant_id, status: row.status, count: Number(row.count) }));
  }

  /** Across all tenants when `tenantId` is omitted (for metrics and the scheduler). */
  async countByStatus(tenantId?: string): Promise<Record<JobStatus, number>> {
    let query = this.#db
      .selectFrom('jobs')
      .select((select) => ['status', select.fn.countAll<number>().as('count')])
      .groupBy('status');
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    const rows = await query.execute();
    const counts: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
    for (const row of rows) counts[row.status] = Number(row.count);
    return counts;
  }

  /**
   * Takes the oldest job that is queued, or running with an expired lease
   * (its worker crashed), and leases it to `owner` for `leaseMs`. Not tenant-scoped:
   * workers serve every tenant. One UPDATE statement picks and takes the job, and
   * it re-checks the claim condition on the row it updates, so of two processes
   * racing for one job exactly one wins (the loser gets zero rows and tries again);
   * holding no transaction across an await also keeps SQLite's write lock short.
   */
  /** `kinds`: only jobs of these kinds (a runner's pools each claim their own kinds); default any. */
  async claimNext(owner: string, leaseMs: number, now: Date = this.#now(), kinds?: readonly JobKind[]): Promise<JobRecord | undefined> {
    const nowIso = now.toISOString();
    const expiresAt = new Date(now.getTime() + leaseMs).toISOString();
    const attempts = 5;
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      const row = await this.#db
        .updateTable('jobs')
        .set((set) => ({
          status: 'running',
          lease_owner: owner,
          lease_expires_at: expiresAt,
          started_at: set.fn.coalesce('started_at', set.val(nowIso)),
        }))
        .where((where) =>
          where.and([
            where(
              'id',
              '=',
              // Inside the subquery, unqualified columns name the subquery's own `jobs` row.
              where.selectFrom('jobs').select('id').where(claimable(nowIso, kinds)).orderBy('created_at').orderBy('id').limit(1),
            ),
            claimable(nowIso, kinds)(where),
          ]),
        )
        .returningAll()
        .executeTakeFirst();
      if (row !== undefined) return this.#jobs.open(row);
      const anyClaimable = await this.#db.selectFrom('jobs').select('id').where(claimable(nowIso, kinds)).limit(1).executeTakeFirst();
      if (anyClaimable === undefined) return undefined;
    }
    return undefined;
  }

  /** Extends the lease; undefined means the lease was lost (job finished, cancelled elsewhere or re-claimed). */
  async renewLease(
    tenantId: string,
    id: string,
    owner: string,
    leaseMs: number,
    now: Date = this.#now(),
  ): Promise<JobRecord | undefined> {
    const row = await this.#db
      .updateTable('jobs')
      .set({ lease_expires_at: new Date(now.getTime() + leaseMs).toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('lease_owner', '=', owner)
      .returningAll()
      .executeTakeFirst();
    return this.#jobs.openFound(row);
  }

  /** Returns false when `owner` no longer holds the job. */
  async updateProgress(tenantId: string, id: string, owner: string, progress: JobProgress): Promise<boolean> {
    const set: {
      epoch?: number;
      step?: number;
      loss_text?: string | null;
      metrics_history_json?: string;
      checkpoint_ref?: string | null;
    } = {};
    if (progress.epoch !== undefined) set.epoch = progress.epoch;
    if (progress.step !== undefined) set.step = progress.step;
    if (progress.loss !== undefined) {
      set.loss_text = progress.loss === null ? null : await this.#seal(tenantId, id, 'loss_text', toJsonText(progress.loss));
    }
    if (progress.metricsHistory !== undefined) {
      set.metrics_history_json = await this.#seal(tenantId, id, 'metrics_history_json', toJsonText(progress.metricsHistory));
    }
    if (progress.checkpointRef !== undefined) set.checkpoint_ref = progress.checkpointRef;
    // An empty progress still answers "do I hold the lease?", hence the no-op assignment.
    const result = await this.#db
      .updateTable('jobs')
      .set(Object.keys(set).length > 0 ? set : { lease_owner: owner })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Moves a queued or running job to a final status and drops its lease. With
   * `owner`, only the lease holder may finish it. Returns false when the job was
   * already final, missing, or leased by someone else.
   */
  async finish(
    tenantId: string,
    id: string,
    input: { status: FinishedJobStatus; owner?: string; error?: unknown; resultVersionId?: string | null; resultRefs?: Readonly<Record<string, string>>; now?: Date },
  ): Promise<boolean> {
    const error = toNullableJsonText(input.error);
    let query = this.#db
      .updateTable('jobs')
      .set({
        status: input.status,
        error_json: error === null ? null : await this.#seal(tenantId, id, 'error_json', error),
        result_version_id: input.resultVersionId ?? null,
        ...(input.resultRefs === undefined ? {} : { result_refs_json: toJsonText(input.resultRefs) }),
        lease_owner: null,
        lease_expires_at: null,
        finished_at: (input.now ?? this.#now()).toISOString(),
      })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', 'in', ['queued', 'running']);
    if (input.owner !== undefined) query = query.where('lease_owner', '=', input.owner);
    const result = await query.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * A queued job is cancelled on the spot; a running one gets a flag its worker
   * honours at the next step. Throws JOB_NOT_CANCELLABLE for finished jobs;
   * undefined when missing or another tenant's. Each UPDATE re-checks the status
   * it expects, so a worker claiming or finishing the job concurrently (which a
   * read-then-write transaction under READ COMMITTED would miss) cannot be overridden.
   */
  async requestCancel(tenantId: string, id: string): Promise<JobRecord | undefined> {
    const cancelled = await this.#db
      .updateTable('jobs')
      .set({ status: 'cancelled', cancel_requested: 1, finished_at: this.#now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', '=', 'queued')
      .executeTakeFirst();
    let updated = cancelled.numUpdatedRows > 0n;
    if (!updated) {
      const flagged = await this.#db
        .updateTable('jobs')
        .set({ cancel_requested: 1 })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('status', '=', 'running')
        .executeTakeFirst();
      updated = flagged.numUpdatedRows > 0n;
    }
    const job = await this.get(tenantId, id);
    if (job !== undefined && !updated) {
      throw new AiaasError('JOB_NOT_CANCELLABLE', `Job ${id} already ${job.status}`, {
        details: { jobId: id, status: job.status },
      });
    }
    return job;
  }

  /**
   * Cancels every queued or running job of the tenant at once and returns their ids. For tenant
   * deletion: it reads no tenant text, which the destroyed key no longer opens, and it drops the
   * leases, so a worker still running one loses its lease at the next renewal.
   */
  async cancelUnfinished(tenantId: string): Promise<string[]> {
    const rows = await this.#db
      .updateTable('jobs')
      .set({ status: 'cancelled', cancel_requested: 1, lease_owner: null, lease_expires_at: null, finished_at: this.#now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('status', 'in', ['queued', 'running'])
      .returning('id')
      .execute();
    return rows.map((row) => row.id);
  }

  async appendEvent(tenantId: string, jobId: string, type: string, payload: unknown): Promise<JobEventRecord> {
    const plain = { tenant_id: tenantId, job_id: jobId, type, payload_json: toJsonText(payload ?? null), created_at: this.#now().toISOString() };
    const row = await this.#db
      .insertInto('job_events')
      .values(await sealRow(this.#text, 'job_events', plain))
      .returning('id')
      .executeTakeFirstOrThrow();
    return toEvent({ ...plain, id: row.id });
  }

  /** Events with id greater than `afterId`, oldest first: a client polls with the last id it saw. */
  async listEvents(
    tenantId: string,
    jobId: string,
    options: { afterId?: number; limit?: number } = {},
  ): Promise<JobEventRecord[]> {
    const rows = await this.#db
      .selectFrom('job_events')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('job_id', '=', jobId)
      .where('id', '>', options.afterId ?? 0)
      .orderBy('id')
      .limit(pageLimit({ limit: options.limit ?? 1000 }))
      .execute();
    return this.#events.openAll(rows);
  }
}

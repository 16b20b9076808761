import type { Kysely, Selectable } from 'kysely';
import type { Schema, SweepStatus, SweepsTable, SweepTrialsTable } from '../schema.ts';
import { fromJsonText, newId, toJsonText } from '../support.ts';
import { repositorySettings, SealedRows } from './sealed-rows.ts';
import type { RepositoryOptions } from './tenants.ts';

export interface SweepRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly modelName: string;
  readonly status: SweepStatus;
  readonly definition: unknown;
  readonly resultVersionId: string | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export interface SweepTrialRecord {
  readonly jobId: string;
  readonly sweepId: string;
  readonly trial: number;
  readonly rung: number;
  readonly params: unknown;
  readonly createdAt: string;
}

function toSweep(row: Selectable<SweepsTable>): SweepRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    modelName: row.model_name,
    status: row.status,
    definition: fromJsonText<unknown>(row.definition_json),
    resultVersionId: row.result_version_id,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

function toTrial(row: Selectable<SweepTrialsTable>): SweepTrialRecord {
  return { jobId: row.id, sweepId: row.sweep_id, trial: Number(row.trial), rung: Number(row.rung), params: fromJsonText<unknown>(row.params_json), createdAt: row.created_at };
}

/** Hyperparameter sweeps and their trials; the definition and each trial's values are sealed tenant text. */
export class SweepRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #sweeps: SealedRows<Selectable<SweepsTable>, SweepRecord>;
  readonly #trials: SealedRows<Selectable<SweepTrialsTable>, SweepTrialRecord>;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    const { now, text } = repositorySettings(options);
    this.#db = db;
    this.#now = now;
    this.#sweeps = new SealedRows(text, 'sweeps', toSweep);
    this.#trials = new SealedRows(text, 'sweep_trials', toTrial);
  }

  async create(tenantId: string, input: { modelName: string; definition: unknown }): Promise<SweepRecord> {
    const row: Selectable<SweepsTable> = {
      id: newId('sweep'),
      tenant_id: tenantId,
      model_name: input.modelName,
      status: 'running',
      definition_json: toJsonText(input.definition),
      result_version_id: null,
      created_at: this.#now().toISOString(),
      finished_at: null,
    };
    await this.#db.insertInto('sweeps').values(await this.#sweeps.seal(row)).execute();
    return toSweep(row);
  }

  async get(tenantId: string, id: string): Promise<SweepRecord | undefined> {
    const row = await this.#db.selectFrom('sweeps').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    return this.#sweeps.openFound(row);
  }

  async list(tenantId: string, limit = 100): Promise<SweepRecord[]> {
    const rows = await this.#db.selectFrom('sweeps').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at', 'desc').limit(limit).execute();
    return this.#sweeps.openAll(rows);
  }

  /** Every running sweep of live tenants (resumed when a server starts). */
  async listRunning(): Promise<{ tenantId: string; id: string }[]> {
    const rows = await this.#db
      .selectFrom('sweeps')
      .innerJoin('tenants', 'tenants.id', 'sweeps.tenant_id')
      .select(['sweeps.id', 'sweeps.tenant_id'])
      .where('sweeps.status', '=', 'running')
      .where('tenants.deleted_at', 'is', null)
      .execute();
    return rows.map((row) => ({ tenantId: row.tenant_id, id: row.id }));
  }

  /** Moves a running sweep to a final status; false when it was no longer running. */
  async finish(tenantId: string, id: string, status: Exclude<SweepStatus, 'running'>): Promise<boolean> {
    const result = await this.#db
      .updateTable('sweeps')
      .set({ status, finished_at: this.#now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', '=', 'running')
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async setResultVersion(tenantId: string, id: string, versionId: string): Promise<void> {
    await this.#db.updateTable('sweeps').set({ result_version_id: versionId }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
  }

  async addTrial(tenantId: string, input: { sweepId: string; jobId: string; trial: number; rung: number; params: unknown }): Promise<SweepTrialRecord> {
    const row: Selectable<SweepTrialsTable> = {
      id: input.jobId,
      sweep_id: input.sweepId,
      tenant_id: tenantId,
      trial: input.trial,
      rung: input.rung,
      params_json: toJsonText(input.params),
      created_at: this.#now().toISOString(),
    };
    await this.#db.insertInto('sweep_trials').values(await this.#trials.seal(row)).execute();
    return toTrial(row);
  }

  /** In creation order (rung, then trial). */
  async trials(tenantId: string, sweepId: string): Promise<SweepTrialRecord[]> {
    const rows = await this.#db
      .selectFrom('sweep_trials')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('sweep_id', '=', sweepId)
      .orderBy('rung')
      .orderBy('trial')
      .execute();
    return this.#trials.openAll(rows);
  }

  /** The sweep a job belongs to, if it is a trial. */
  async sweepOfJob(tenantId: string, jobId: string): Promise<string | undefined> {
    const row = await this.#db.selectFrom('sweep_trials').select('sweep_id').where('tenant_id', '=', tenantId).where('id', '=', jobId).executeTakeFirst();
    return row?.sweep_id;
  }
}

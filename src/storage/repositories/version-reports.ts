import type { Kysely, Selectable } from 'kysely';
import type { Schema, VersionReportKind, VersionReportsTable } from '../schema.ts';
import { fromJsonText, newId, toJsonText } from '../support.ts';
import { repositorySettings, SealedRows } from './sealed-rows.ts';
import type { RepositoryOptions } from './tenants.ts';

export interface VersionReportRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly versionId: string;
  readonly kind: VersionReportKind;
  readonly body: unknown;
  readonly createdAt: string;
}

function toRecord(row: Selectable<VersionReportsTable>): VersionReportRecord {
  return { id: row.id, tenantId: row.tenant_id, versionId: row.version_id, kind: row.kind, body: fromJsonText<unknown>(row.body_json), createdAt: row.created_at };
}

/** Documents kept with a model version (drift baselines, load-test reports); the body is sealed tenant text. */
export class VersionReportRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #rows: SealedRows<Selectable<VersionReportsTable>, VersionReportRecord>;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    const { now, text } = repositorySettings(options);
    this.#db = db;
    this.#now = now;
    this.#rows = new SealedRows(text, 'version_reports', toRecord);
  }

  async add(tenantId: string, versionId: string, kind: VersionReportKind, body: unknown): Promise<VersionReportRecord> {
    const row: Selectable<VersionReportsTable> = {
      id: newId(kind === 'bench' ? 'bench' : 'base'),
      tenant_id: tenantId,
      version_id: versionId,
      kind,
      body_json: toJsonText(body),
      created_at: this.#now().toISOString(),
    };
    await this.#db.insertInto('version_reports').values(await this.#rows.seal(row)).execute();
    return toRecord(row);
  }

  /** Newest first. */
  async list(tenantId: string, versionId: string, kind: VersionReportKind, limit = 100): Promise<VersionReportRecord[]> {
    const rows = await this.#db
      .selectFrom('version_reports')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('version_id', '=', versionId)
      .where('kind', '=', kind)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return this.#rows.openAll(rows);
  }

  async get(tenantId: string, versionId: string, id: string): Promise<VersionReportRecord | undefined> {
    const row = await this.#db.selectFrom('version_reports').selectAll().where('tenant_id', '=', tenantId).where('version_id', '=', versionId).where('id', '=', id).executeTakeFirst();
    return this.#rows.openFound(row);
  }

  async latest(tenantId: string, versionId: string, kind: VersionReportKind): Promise<VersionReportRecord | undefined> {
    return (await this.list(tenantId, versionId, kind, 1))[0];
  }
}

import type { Kysely, Selectable } from 'kysely';
import { AiaasError } from '../../errors.ts';
import type { DatasetFormat, DatasetsTable, Schema } from '../schema.ts';
import { fromJsonText, isUniqueViolation, newId, pageLimit, pageOffset, toJsonText, type Page } from '../support.ts';
import { repositorySettings, SealedRows } from './sealed-rows.ts';
import type { RepositoryOptions } from './tenants.ts';

export interface DatasetRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly format: DatasetFormat;
  readonly artifactRef: string;
  readonly labelsArtifactRef: string | null;
  /** Whatever the data layer describes the columns/shapes with; stored as JSON. */
  readonly schema: unknown;
  readonly rowCount: number;
  readonly bytes: number;
  readonly createdAt: string;
}

export interface NewDataset {
  readonly id?: string;
  readonly name: string;
  readonly format: DatasetFormat;
  readonly artifactRef: string;
  readonly labelsArtifactRef?: string | null;
  readonly schema: unknown;
  readonly rowCount: number;
  readonly bytes: number;
}

function toRecord(row: Selectable<DatasetsTable>): DatasetRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    format: row.format,
    artifactRef: row.artifact_ref,
    labelsArtifactRef: row.labels_artifact_ref,
    schema: fromJsonText<unknown>(row.schema_json),
    rowCount: Number(row.row_count),
    bytes: Number(row.bytes),
    createdAt: row.created_at,
  };
}

export class DatasetRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #rows: SealedRows<Selectable<DatasetsTable>, DatasetRecord>;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    const { now, text } = repositorySettings(options);
    this.#db = db;
    this.#now = now;
    this.#rows = new SealedRows(text, 'datasets', toRecord);
  }

  async create(tenantId: string, input: NewDataset): Promise<DatasetRecord> {
    const row: Selectable<DatasetsTable> = {
      id: input.id ?? newId('ds'),
      tenant_id: tenantId,
      name: input.name,
      format: input.format,
      artifact_ref: input.artifactRef,
      labels_artifact_ref: input.labelsArtifactRef ?? null,
      schema_json: toJsonText(input.schema ?? null),
      row_count: input.rowCount,
      bytes: input.bytes,
      created_at: this.#now().toISOString(),
    };
    try {
      await this.#db.insertInto('datasets').values(await this.#rows.seal(row)).execute();
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AiaasError('CONFLICT', `A dataset named '${input.name}' already exists`, { cause: error });
      }
      throw error;
    }
    return toRecord(row);
  }

  async get(tenantId: string, id: string): Promise<DatasetRecord | undefined> {
    const row = await this.#db
      .selectFrom('datasets')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return this.#rows.openFound(row);
  }

  async getByName(tenantId: string, name: string): Promise<DatasetRecord | undefined> {
    const row = await this.#db
      .selectFrom('datasets')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('name', '=', name)
      .executeTakeFirst();
    return this.#rows.openFound(row);
  }

  async list(tenantId: string, page?: Page): Promise<DatasetRecord[]> {
    const rows = await this.#db
      .selectFrom('datasets')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('created_at')
      .orderBy('id')
      .limit(pageLimit(page))
      .offset(pageOffset(page))
      .execute();
    return this.#rows.openAll(rows);
  }

  /**
   * Returns the deleted record (so the caller can release its artifacts once no
   * other row references them), or undefined when missing or another tenant's.
   */
  async delete(tenantId: string, id: string): Promise<DatasetRecord | undefined> {
    const row = await this.#db
      .deleteFrom('datasets')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return this.#rows.openFound(row);
  }

  /** Whether any dataset of any tenant still points at `ref` (artifacts are content-addressed, hence shared). */
  async isArtifactReferenced(ref: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('datasets')
      .select('id')
      .where((where) => where.or([where('artifact_ref', '=', ref), where('labels_artifact_ref', '=', ref)]))
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}

import type { Kysely, Selectable } from 'kysely';
import { AiaasError } from '../../errors.ts';
import type { AliasesTable, ModelFormat, ModelVersionSource, ModelVersionsTable, ModelsTable, Schema } from '../schema.ts';
import {
  fromJsonText,
  inTransaction,
  isUniqueViolation,
  newId,
  pageLimit,
  pageOffset,
  toJsonText,
  toNullableJsonText,
  transactionWithRetry,
  type Page,
} from '../support.ts';
import { sealValue, type TextCipher } from '../text-cipher.ts';
import { repositorySettings, SealedRows } from './sealed-rows.ts';
import type { RepositoryOptions } from './tenants.ts';

export interface ModelRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly description: string;
  /** Per-model batching overrides, shape owned by `src/inference/`; undefined = server defaults. */
  readonly batching: unknown;
  readonly createdAt: string;
  /** False: no key of the tenant may download its weights (export control). */
  readonly exportable: boolean;
  /** The owner's output policy document, null when none (validated by src/inference/output-policy.ts). */
  readonly outputPolicy: unknown;
}

export interface ModelVersionRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly modelId: string;
  readonly version: number;
  readonly source: ModelVersionSource;
  readonly format: ModelFormat;
  /** The model file's artifact: model.onnx, or the .gguf file for GGUF versions (the column predates GGUF). */
  readonly onnxRef: string;
  /** GGUF only: the chat template from the file's metadata. */
  readonly chatTemplate: string | null;
  /**
   * Resident bytes one instance of the model takes, measured in the validation child; null for
   * versions stored before measuring (until their first load measures them) and formats that do not measure.
   */
  readonly measuredMemoryBytes: number | null;
  /** e.g. `{ spec, safetensors, metrics }` artifact refs for versions trained here. */
  readonly savedModelRefs: Readonly<Record<string, string>> | undefined;
  readonly signature: unknown;
  readonly metrics: unknown;
  readonly jobId: string | null;
  readonly createdAt: string;
  /** False when derived from a non-exportable version: its weights stay in, whatever its model says. */
  readonly exportable: boolean;
  readonly parentVersionId: string | null;
  /** The signed provenance record's canonical JSON text and its base64 signature; null before 0003_provenance. */
  readonly provenance: { readonly text: string; readonly signature: string } | null;
  /** The quantize job's report, for a version made by one. */
  readonly quantization: unknown;
  /** The last cost calibration run's figures, when one has run. */
  readonly costCalibration: unknown;
}

export interface AliasRecord {
  readonly tenantId: string;
  readonly modelId: string;
  readonly name: string;
  /** The version a plain reader sees: the only one, or a split's heaviest. */
  readonly versionId: string;
  readonly version: number;
  readonly updatedAt: string;
  /** A weighted split of the traffic between versions (canary), or null. */
  readonly split: readonly AliasSplitEntry[] | null;
  /** The version that gets a copy of the traffic (its answers are only compared), or null. */
  readonly shadowVersionId: string | null;
  /** The promotion gate a move must pass; its shape is owned by src/quality/. */
  readonly gate: unknown;
}

export interface AliasSplitEntry {
  readonly versionId: string;
  /** The version's number (fixed for its id). */
  readonly version: number;
  readonly weight: number;
}

/** What an alias points at, by version number; the repository resolves the numbers in one transaction. */
export interface AliasRouting {
  /** Each version and its weight (> 0); one entry for a plain alias. */
  readonly split: readonly { version: number; weight: number }[];
  readonly shadowVersion: number | null;
  readonly gate: unknown;
}

export interface NewModelVersion {
  readonly source: ModelVersionSource;
  /** 'onnx' when omitted. */
  readonly format?: ModelFormat;
  readonly onnxRef: string;
  readonly chatTemplate?: string | null;
  readonly measuredMemoryBytes?: number | null;
  readonly savedModelRefs?: Readonly<Record<string, string>> | undefined;
  readonly signature: unknown;
  readonly metrics?: unknown;
  readonly jobId?: string | null;
  /** False when derived from a non-exportable version (default true). */
  readonly exportable?: boolean;
  readonly parentVersionId?: string | null;
}

export interface ResolvedModelVersion {
  readonly model: ModelRecord;
  readonly version: ModelVersionRecord;
}

/** The word that always means "highest version"; it can never be an alias name. */
export const latestSelector = 'latest';

function toModel(row: Selectable<ModelsTable>): ModelRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    description: row.description,
    batching: fromJsonText<unknown>(row.batching_json),
    createdAt: row.created_at,
    exportable: Number(row.exportable ?? 1) !== 0,
    outputPolicy: fromJsonText<unknown>(row.output_policy_json ?? null) ?? null,
  };
}

function toVersion(row: Selectable<ModelVersionsTable>): ModelVersionRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    modelId: row.model_id,
    version: Number(row.version),
    source: row.source,
    format: row.format ?? 'onnx',
    onnxRef: row.onnx_ref,
    chatTemplate: row.chat_template ?? null,
    measuredMemoryBytes: row.measured_memory_bytes === null || row.measured_memory_bytes === undefined ? null : Number(row.measured_memory_bytes),
    savedModelRefs: fromJsonText<Record<string, string>>(row.saved_model_refs_json),
    signature: fromJsonText<unknown>(row.signature_json),
    metrics: fromJsonText<unknown>(row.metrics_json),
    jobId: row.job_id,
    createdAt: row.created_at,
    exportable: Number(row.exportable ?? 1) !== 0,
    parentVersionId: row.parent_version_id ?? null,
    provenance: row.provenance_json != null && row.provenance_signature != null ? { text: row.provenance_json, signature: row.provenance_signature } : null,
    quantization: fromJsonText<unknown>(row.quantization_json) ?? null,
    costCalibration: fromJsonText<unknown>(row.cost_calibration_json) ?? null,
  };
}

function toAlias(row: Selectable<AliasesTable> & { version: number }): AliasRecord {
  return {
    tenantId: row.tenant_id,
    modelId: row.model_id,
    name: row.name,
    versionId: row.version_id,
    version: Number(row.version),
    updatedAt: row.updated_at,
    split: row.split_json === null ? null : fromJsonText<AliasSplitEntry[]>(row.split_json),
    shadowVersionId: row.shadow_version_id,
    gate: row.gate_json === null ? null : fromJsonText<unknown>(row.gate_json),
  };
}

const versionNumberPattern = /^[0-9]+$/;

/**
 * Aliases share the `name@selector` namespace with version numbers and
 * `latest`, so those spellings are reserved.
 */
export function validateAliasName(name: string): void {
  if (name.length === 0 || name.length > 64 || versionNumberPattern.test(name) || name === latestSelector) {
    throw new AiaasError('INVALID_REQUEST', `'${name}' cannot be an alias name`, {
      details: { reason: 'an alias must be 1-64 characters, not a number and not "latest"' },
    });
  }
}

/** The model aggregate: models, their numbered versions and the aliases that point at versions. */
export class ModelRepository {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #text: TextCipher;
  readonly #models: SealedRows<Selectable<ModelsTable>, ModelRecord>;
  readonly #versions: SealedRows<Selectable<ModelVersionsTable>, ModelVersionRecord>;

  constructor(db: Kysely<Schema>, options: RepositoryOptions = {}) {
    const { now, text } = repositorySettings(options);
    this.#db = db;
    this.#now = now;
    this.#text = text;
    this.#models = new SealedRows(text, 'models', toModel);
    this.#versions = new SealedRows(text, 'model_versions', toVersion);
  }

  /*
   * Inside a transaction rows are read raw and opened after commit: opening may fetch the
   * tenant's key through the database, whose one connection the transaction holds.
   */
  #versionRow(db: Kysely<Schema>, tenantId: string, modelId: string, version: number): Promise<Selectable<ModelVersionsTable> | undefined> {
    return db
      .selectFrom('model_versions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('model_id', '=', modelId)
      .where('version', '=', version)
      .executeTakeFirst();
  }

  async #modelExists(db: Kysely<Schema>, tenantId: string, modelId: string): Promise<boolean> {
    const row = await db.selectFrom('models').select('id').where('tenant_id', '=', tenantId).where('id', '=', modelId).executeTakeFirst();
    return row !== undefined;
  }

  // ---- models

  async create(
    tenantId: string,
    input: { name: string; description?: string; batching?: unknown; id?: string; exportable?: boolean; outputPolicy?: unknown },
  ): Promise<ModelRecord> {
    const row: Selectable<ModelsTable> = {
      id: input.id ?? newId('mdl'),
      tenant_id: tenantId,
      name: input.name,
      description: input.description ?? '',
      batching_json: toNullableJsonText(input.batching),
      created_at: this.#now().toISOString(),
      exportable: input.exportable === false ? 0 : 1,
      output_policy_json: toNullableJsonText(input.outputPolicy ?? undefined),
    };
    try {
      await this.#db.insertInto('models').values(await this.#models.seal(row)).execute();
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AiaasError('CONFLICT', `A model named '${input.name}' already exists`, { cause: error });
      }
      throw error;
    }
    return toModel(row);
  }

  async get(tenantId: string, id: string): Promise<ModelRecord | undefined> {
    const row = await this.#db
      .selectFrom('models')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    return this.#models.openFound(row);
  }

  async getByName(tenantId: string, name: string): Promise<ModelRecord | undefined> {
    const row = await this.#db
      .selectFrom('models')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('name', '=', name)
      .executeTakeFirst();
    return this.#models.openFound(row);
  }

  async list(tenantId: string, page?: Page): Promise<ModelRecord[]> {
    const rows = await this.#db
      .selectFrom('models')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .orderBy('name')
      .limit(pageLimit(page))
      .offset(pageOffset(page))
      .execute();
    return this.#models.openAll(rows);
  }

  /** `null` clears a field back to its default; `undefined` leaves it. */
  async update(
    tenantId: string,
    id: string,
    patch: { description?: string; batching?: unknown; exportable?: boolean; outputPolicy?: unknown },
  ): Promise<ModelRecord | undefined> {
    const set: { description?: string; batching_json?: string | null; exportable?: 0 | 1; output_policy_json?: string | null } = {};
    if (patch.exportable !== undefined) set.exportable = patch.exportable ? 1 : 0;
    if (patch.outputPolicy !== undefined) set.output_policy_json = toNullableJsonText(patch.outputPolicy);
    if (patch.description !== undefined) {
      set.description = await sealValue(this.#text, tenantId, 'models', 'description', id, patch.description);
    }
    if (patch.batching !== undefined) {
      const batching = toNullableJsonText(patch.batching);
      set.batching_json = batching === null ? null : await sealValue(this.#text, tenantId, 'models', 'batching_json', id, batching);
    }
    if (Object.keys(set).length > 0) {
      await this.#db.updateTable('models').set(set).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    }
    return this.get(tenantId, id);
  }

  /**
   * Deletes the model with its versions and aliases. Returns the versions that
   * were removed so the caller can release their artifacts, or undefined when
   * the model is missing or another tenant's.
   */
  async delete(tenantId: string, id: string): Promise<ModelVersionRecord[] | undefined> {
    const versions = await inTransaction(this.#db, async (transaction) => {
      if (!(await this.#modelExists(transaction, tenantId, id))) return undefined;
      const rows = await transaction
        .selectFrom('model_versions')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('model_id', '=', id)
        .orderBy('version')
        .execute();
      await transaction.deleteFrom('aliases').where('tenant_id', '=', tenantId).where('model_id', '=', id).execute();
      await transaction.deleteFrom('model_versions').where('tenant_id', '=', tenantId).where('model_id', '=', id).execute();
      await transaction.deleteFrom('models').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      return rows;
    });
    return versions === undefined ? undefined : this.#versions.openAll(versions);
  }

  // ---- versions

  /**
   * Allocates the next version number (max + 1) and inserts the version in one
   * transaction. Should another process win the race for the same number, the
   * unique (model_id, version) constraint rejects ours and we try again.
   */
  async addVersion(tenantId: string, modelId: string, input: NewModelVersion): Promise<ModelVersionRecord> {
    // Sealed before the transaction (see #versionRow); the version number is not part of the AAD.
    const plain: Selectable<ModelVersionsTable> = {
      id: newId('ver'),
      tenant_id: tenantId,
      model_id: modelId,
      version: 0,
      source: input.source,
      onnx_ref: input.onnxRef,
      saved_model_refs_json: toNullableJsonText(input.savedModelRefs),
      signature_json: toJsonText(input.signature ?? null),
      metrics_json: toNullableJsonText(input.metrics),
      job_id: input.jobId ?? null,
      created_at: this.#now().toISOString(),
      format: input.format ?? 'onnx',
      chat_template: input.chatTemplate ?? null,
      exportable: input.exportable === false ? 0 : 1,
      parent_version_id: input.parentVersionId ?? null,
      provenance_json: null,
      provenance_signature: null,
      measured_memory_bytes: input.measuredMemoryBytes ?? null,
      quantization_json: null,
      cost_calibration_json: null,
    };
    const sealed = await this.#versions.seal(plain);
    return transactionWithRetry(this.#db, async (transaction) => {
      if (!(await this.#modelExists(transaction, tenantId, modelId))) {
        throw new AiaasError('MODEL_NOT_FOUND', `Model '${modelId}' not found`, { details: { modelId } });
      }
      const highest = await transaction
        .selectFrom('model_versions')
        .select((select) => select.fn.max('version').as('highest'))
        .where('model_id', '=', modelId)
        .executeTakeFirst();
      const version = Number(highest?.highest ?? 0) + 1;
      await transaction.insertInto('model_versions').values({ ...sealed, version }).execute();
      return toVersion({ ...plain, version });
    });
  }

  /** Stores a version's signed provenance record (its text sealed like the version's other tenant text). */
  async setProvenance(tenantId: string, versionId: string, record: { text: string; signature: string }): Promise<void> {
    const text = await sealValue(this.#text, tenantId, 'model_versions', 'provenance_json', versionId, record.text);
    await this.#db
      .updateTable('model_versions')
      .set({ provenance_json: text, provenance_signature: record.signature })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', versionId)
      .execute();
  }

  /** Records a version's measured memory (a version stored before measuring, measured at its first load). */
  async setMeasuredMemory(tenantId: string, versionId: string, bytes: number): Promise<void> {
    await this.#db
      .updateTable('model_versions')
      .set({ measured_memory_bytes: bytes })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', versionId)
      .execute();
  }

  /** Newest first would suit a UI, but ascending matches how version numbers read. */
  async listVersions(tenantId: string, modelId: string): Promise<ModelVersionRecord[]> {
    const rows = await this.#db
      .selectFrom('model_versions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('model_id', '=', modelId)
      .orderBy('version')
      .execute();
    return this.#versions.openAll(rows);
  }

  async getVersion(tenantId: string, modelId: string, version: number): Promise<ModelVersionRecord | undefined> {
    const row = await this.#db
      .selectFrom('model_versions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('model_id', '=', modelId)
      .where('version', '=', version)
      .executeTakeFirst();
    return this.#versions.openFound(row);
  }

  /** Stores the report of the quantize job that made this version. */
  async setQuantizationReport(tenantId: string, versionId: string, report: unknown): Promise<void> {
    const sealed = await sealValue(this.#text, tenantId, 'model_versions', 'quantization_json', versionId, toJsonText(report));
    await this.#db.updateTable('model_versions').set({ quantization_json: sealed }).where('tenant_id', '=', tenantId).where('id', '=', versionId).execute();
  }

  /** Stores the figures of a version's latest cost calibration run (replacing earlier ones). */
  async setCostCalibration(tenantId: string, versionId: string, calibration: unknown): Promise<void> {
    await this.#db
      .updateTable('model_versions')
      .set({ cost_calibration_json: toJsonText(calibration) })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', versionId)
      .execute();
  }

  async getVersionById(tenantId: string, versionId: string): Promise<ModelVersionRecord | undefined> {
    const row = await this.#db
      .selectFrom('model_versions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '=', versionId)
      .executeTakeFirst();
    return this.#versions.openFound(row);
  }

  async latestVersion(tenantId: string, modelId: string): Promise<ModelVersionRecord | undefined> {
    const row = await this.#db
      .selectFrom('model_versions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('model_id', '=', modelId)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    return this.#versions.openFound(row);
  }

  /**
   * Deletes one version. Throws ALIAS_IN_USE while an alias points at it, so a
   * serving alias never dangles. Returns the deleted version, or undefined.
   */
  async deleteVersion(tenantId: string, modelId: string, version: number): Promise<ModelVersionRecord | undefined> {
    const deleted = await inTransaction(this.#db, async (transaction) => {
      const existing = await this.#versionRow(transaction, tenantId, modelId, version);
      if (existing === undefined) return undefined;
      // A split or a shadow serves the version too.
      const aliases = await transaction
        .selectFrom('aliases')
        .select('name')
        .where((where) =>
          where.or([where('version_id', '=', existing.id), where('shadow_version_id', '=', existing.id), where('split_json', 'like', `%"${existing.id}"%`)]),
        )
        .orderBy('name')
        .execute();
      if (aliases.length > 0) {
        const names = aliases.map((alias) => alias.name);
        throw new AiaasError(
          'ALIAS_IN_USE',
          `Version ${version} is referenced by alias ${names.map((name) => `'${name}'`).join(', ')}; move or delete the alias first`,
          { details: { version, aliases: names } },
        );
      }
      await transaction.deleteFrom('model_versions').where('id', '=', existing.id).execute();
      return existing;
    });
    return this.#versions.openFound(deleted);
  }

  // ---- aliases

  /** Creates or moves an alias to `version` atomically. Throws VERSION_NOT_FOUND when the version does not exist. */
  async setAlias(tenantId: string, modelId: string, name: string, version: number): Promise<AliasRecord> {
    validateAliasName(name);
    return inTransaction(this.#db, async (transaction) => {
      const target = await this.#versionRow(transaction, tenantId, modelId, version);
      if (target === undefined) {
        throw new AiaasError('VERSION_NOT_FOUND', `Version ${version} not found`, { details: { modelId, version } });
      }
      const updatedAt = this.#now().toISOString();
      await transaction
        .insertInto('aliases')
        .values({ tenant_id: tenantId, model_id: modelId, name, version_id: target.id, updated_at: updatedAt, split_json: null, shadow_version_id: null, gate_json: null })
        // Pointing at one version ends a split; the shadow and the gate stay.
        .onConflict((conflict) => conflict.columns(['model_id', 'name']).doUpdateSet({ version_id: target.id, updated_at: updatedAt, split_json: null }))
        .execute();
      return (await this.#aliasRow(transaction, tenantId, modelId, name))!;
    });
  }

  /**
   * Creates or replaces an alias's whole routing atomically: its split (the heaviest version, the
   * first on ties, becomes `version_id`), its shadow and its gate. VERSION_NOT_FOUND names the
   * first version number that does not exist.
   */
  async setAliasRouting(tenantId: string, modelId: string, name: string, routing: AliasRouting): Promise<AliasRecord> {
    validateAliasName(name);
    return inTransaction(this.#db, async (transaction) => {
      const idOf = async (version: number): Promise<string> => {
        const row = await this.#versionRow(transaction, tenantId, modelId, version);
        if (row === undefined) throw new AiaasError('VERSION_NOT_FOUND', `Version ${version} not found`, { details: { modelId, version } });
        return row.id;
      };
      const split: AliasSplitEntry[] = [];
      for (const entry of routing.split) split.push({ versionId: await idOf(entry.version), version: entry.version, weight: entry.weight });
      const primary = split.reduce((best, entry) => (entry.weight > best.weight ? entry : best), split[0]!);
      const shadow = routing.shadowVersion === null ? null : await idOf(routing.shadowVersion);
      const columns = {
        version_id: primary.versionId,
        updated_at: this.#now().toISOString(),
        split_json: split.length > 1 ? toJsonText(split) : null,
        shadow_version_id: shadow,
        gate_json: routing.gate === null || routing.gate === undefined ? null : toJsonText(routing.gate),
      };
      await transaction
        .insertInto('aliases')
        .values({ tenant_id: tenantId, model_id: modelId, name, ...columns })
        .onConflict((conflict) => conflict.columns(['model_id', 'name']).doUpdateSet(columns))
        .execute();
      return (await this.#aliasRow(transaction, tenantId, modelId, name))!;
    });
  }

  async #aliasRow(db: Kysely<Schema>, tenantId: string, modelId: string, name: string): Promise<AliasRecord | undefined> {
    const row = await db
      .selectFrom('aliases')
      .innerJoin('model_versions', 'model_versions.id', 'aliases.version_id')
      .selectAll('aliases')
      .select('model_versions.version')
      .where('aliases.tenant_id', '=', tenantId)
      .where('aliases.model_id', '=', modelId)
      .where('aliases.name', '=', name)
      .executeTakeFirst();
    return row === undefined ? undefined : toAlias(row);
  }

  async getAlias(tenantId: string, modelId: string, name: string): Promise<AliasRecord | undefined> {
    return this.#aliasRow(this.#db, tenantId, modelId, name);
  }

  async listAliases(tenantId: string, modelId: string): Promise<AliasRecord[]> {
    const rows = await this.#db
      .selectFrom('aliases')
      .innerJoin('model_versions', 'model_versions.id', 'aliases.version_id')
      .selectAll('aliases')
      .select('model_versions.version')
      .where('aliases.tenant_id', '=', tenantId)
      .where('aliases.model_id', '=', modelId)
      .orderBy('aliases.name')
      .execute();
    return rows.map(toAlias);
  }

  async deleteAlias(tenantId: string, modelId: string, name: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('aliases')
      .where('tenant_id', '=', tenantId)
      .where('model_id', '=', modelId)
      .where('name', '=', name)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /**
   * Turns `name[@selector]` into a concrete version: digits are a version
   * number, `undefined`/`'latest'` the highest version, anything else an alias.
   * Undefined when the model, version or alias does not exist for this tenant.
   */
  async resolve(
    tenantId: string,
    modelName: string,
    versionOrAlias?: string,
  ): Promise<ResolvedModelVersion | undefined> {
    const model = await this.getByName(tenantId, modelName);
    if (model === undefined) return undefined;
    let version: ModelVersionRecord | undefined;
    if (versionOrAlias === undefined || versionOrAlias === latestSelector) {
      version = await this.latestVersion(tenantId, model.id);
    } else if (versionNumberPattern.test(versionOrAlias)) {
      const number = Number(versionOrAlias);
      version = Number.isSafeInteger(number) ? await this.getVersion(tenantId, model.id, number) : undefined;
    } else {
      const alias = await this.getAlias(tenantId, model.id, versionOrAlias);
      version = alias === undefined ? undefined : await this.getVersionById(tenantId, alias.versionId);
    }
    return version === undefined ? undefined : { model, version };
  }
}

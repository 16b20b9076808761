import type { Kysely } from 'kysely';
import type { Schema } from '../schema.ts';

export interface UsageRecord {
  readonly tenantId: string;
  readonly modelName: string;
  readonly day: string;
  readonly requests: number;
}

/** Language-model tokens of one tenant, key, model version and UTC day. */
export interface TokenUsageRecord {
  readonly tenantId: string;
  readonly keyId: string;
  readonly modelName: string;
  readonly version: number;
  readonly day: string;
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export type TokenUsageIncrement = { -readonly [Field in Exclude<keyof TokenUsageRecord, 'tenantId'>]: TokenUsageRecord[Field] };

/** Inference calls are counted per tenant, model and UTC day rather than logged one by one. */
export class UsageRepository {
  readonly #db: Kysely<Schema>;

  constructor(db: Kysely<Schema>) {
    this.#db = db;
  }

  /** `day` is `YYYY-MM-DD` (UTC); see `usageDay`. */
  async increment(tenantId: string, modelName: string, day: string, count = 1): Promise<void> {
    await this.#db
      .insertInto('usage_counters')
      .values({ tenant_id: tenantId, model_name: modelName, day, requests: count })
      .onConflict((conflict) =>
        conflict
          .columns(['tenant_id', 'model_name', 'day'])
          .doUpdateSet((update) => ({ requests: update.eb('usage_counters.requests', '+', count) })),
      )
      .execute();
  }

  /** Adds requests and tokens to one (key, model, version, day) row of the tenant. */
  async incrementTokens(tenantId: string, increment: TokenUsageIncrement): Promise<void> {
    await this.#db
      .insertInto('token_usage')
      .values({
        tenant_id: tenantId,
        key_id: increment.keyId,
        model_name: increment.modelName,
        version: increment.version,
        day: increment.day,
        requests: increment.requests,
        prompt_tokens: increment.promptTokens,
        completion_tokens: increment.completionTokens,
      })
      .onConflict((conflict) =>
        conflict
          .columns(['tenant_id', 'key_id', 'model_name', 'version', 'day'])
          .doUpdateSet((update) => ({
            requests: update.eb('token_usage.requests', '+', increment.requests),
            prompt_tokens: update.eb('token_usage.prompt_tokens', '+', increment.promptTokens),
            completion_tokens: update.eb('token_usage.completion_tokens', '+', increment.completionTokens),
          })),
      )
      .execute();
  }

  /** Inclusive day range; both ends optional. */
  async listTokens(tenantId: string, filter: { from?: string; to?: string; modelName?: string } = {}): Promise<TokenUsageRecord[]> {
    let query = this.#db.selectFrom('token_usage').selectAll().where('tenant_id', '=', tenantId);
    if (filter.from !== undefined) query = query.where('day', '>=', filter.from);
    if (filter.to !== undefined) query = query.where('day', '<=', filter.to);
    if (filter.modelName !== undefined) query = query.where('model_name', '=', filter.modelName);
    const rows = await query.orderBy('day').orderBy('model_name').orderBy('version').orderBy('key_id').execute();
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      keyId: row.key_id,
      modelName: row.model_name,
      version: Number(row.version),
      day: row.day,
      requests: Number(row.requests),
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
    }));
  }

  /** Inclusive day range; both ends optional. */
  async list(tenantId: string, filter: { from?: string; to?: string; modelName?: string } = {}): Promise<UsageRecord[]> {
    let query = this.#db.selectFrom('usage_counters').selectAll().where('tenant_id', '=', tenantId);
    if (filter.from !== undefined) query = query.where('day', '>=', filter.from);
    if (filter.to !== undefined) query = query.where('day', '<=', filter.to);
    if (filter.modelName !== undefined) query = query.where('model_name', '=', filter.modelName);
    const rows = await query.orderBy('day').orderBy('model_name').execute();
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      modelName: row.model_name,
      day: row.day,
      requests: Number(row.requests),
    }));
  }
}

export function usageDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

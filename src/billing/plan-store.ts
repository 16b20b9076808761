/**
 * Plans and tenants' plan history in the database, with an in-memory copy of the plans and of
 * every tenant's current plan: admission asks "what plan is this tenant on?" on every request,
 * synchronously. The copy is this process's; another server process sharing the database sees a
 * change at its next start (documented in docs/billing.md).
 */
import type { Kysely } from 'kysely';
import { AiaasError } from '../errors.ts';
import type { Schema } from '../storage/schema.ts';
import { inTransaction } from '../storage/support.ts';
import { parsePlan, type Plan } from './plans.ts';

export type PlanSource = 'file' | 'api';

export interface StoredPlan {
  readonly plan: Plan;
  readonly source: PlanSource;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One row of a tenant's plan history; `effectiveTo` is null while in force. */
export interface PlanPeriod {
  readonly planName: string;
  readonly plan: Plan;
  readonly effectiveFrom: string;
  readonly effectiveTo: string | null;
}

export class PlanStore {
  readonly #db: Kysely<Schema>;
  readonly #now: () => Date;
  readonly #plans = new Map<string, StoredPlan>();
  readonly #current = new Map<string, Plan>();

  private constructor(db: Kysely<Schema>, now: () => Date) {
    this.#db = db;
    this.#now = now;
  }

  /**
   * Loads the stored plans and current assignments, after writing the plans file's plans (source
   * `file`, replacing what an earlier start wrote; tenants on a changed plan move to its new terms now).
   */
  static async open(db: Kysely<Schema>, options: { now: () => Date; filePlans?: readonly Plan[] }): Promise<PlanStore> {
    const store = new PlanStore(db, options.now);
    await store.#reload();
    for (const plan of options.filePlans ?? []) {
      const existing = store.#plans.get(plan.name);
      if (existing !== undefined && existing.source === 'file' && JSON.stringify(existing.plan) === JSON.stringify(plan)) continue;
      await store.#write(plan, 'file');
    }
    await store.#reload();
    return store;
  }

  async #reload(): Promise<void> {
    this.#plans.clear();
    for (const row of await this.#db.selectFrom('plans').selectAll().orderBy('name').execute()) {
      this.#plans.set(row.name, { plan: parsePlan(JSON.parse(row.document_json)), source: row.source, createdAt: row.created_at, updatedAt: row.updated_at });
    }
    this.#current.clear();
    for (const row of await this.#db.selectFrom('tenant_plans').select(['tenant_id', 'plan_json']).where('effective_to', 'is', null).execute()) {
      this.#current.set(row.tenant_id, parsePlan(JSON.parse(row.plan_json)));
    }
  }

  list(): StoredPlan[] {
    return [...this.#plans.values()];
  }

  get(name: string): StoredPlan | undefined {
    return this.#plans.get(name);
  }

  /** The plan in force for the tenant now; undefined: no plan, i.e. unlimited. */
  currentPlan(tenantId: string): Plan | undefined {
    return this.#current.get(tenantId);
  }

  /** Tenants on the plan now. */
  tenantsOn(name: string): string[] {
    return [...this.#current].filter(([, plan]) => plan.name === name).map(([tenantId]) => tenantId);
  }

  /** Creates or replaces an operator plan; a plan from the plans file is changed in the file, not here. */
  async put(plan: Plan): Promise<{ created: boolean }> {
    const existing = this.#plans.get(plan.name);
    if (existing?.source === 'file') {
      throw new AiaasError('CONFLICT', `plan "${plan.name}" comes from the plans file (--plans); change it there`, { details: { plan: plan.name, source: 'file' } });
    }
    await this.#write(plan, 'api');
    await this.#reload();
    return { created: existing === undefined };
  }

  async #write(plan: Plan, source: PlanSource): Promise<void> {
    const at = this.#now().toISOString();
    const document = JSON.stringify(plan);
    await inTransaction(this.#db, async (transaction) => {
      await transaction
        .insertInto('plans')
        .values({ name: plan.name, document_json: document, source, created_at: at, updated_at: at })
        .onConflict((conflict) => conflict.column('name').doUpdateSet({ document_json: document, source, updated_at: at }))
        .execute();
      // Tenants on the plan get its new terms from now on; their history keeps the old terms until now.
      const open = await transaction.selectFrom('tenant_plans').select(['id', 'tenant_id']).where('plan_name', '=', plan.name).where('effective_to', 'is', null).execute();
      for (const row of open) {
        await transaction.updateTable('tenant_plans').set({ effective_to: at }).where('id', '=', row.id).execute();
        await transaction.insertInto('tenant_plans').values({ tenant_id: row.tenant_id, plan_name: plan.name, plan_json: document, effective_from: at, effective_to: null }).execute();
      }
    });
  }

  /** Removes a plan no tenant is on (history rows keep their copy of it). */
  async delete(name: string): Promise<void> {
    const existing = this.#plans.get(name);
    if (existing === undefined) throw new AiaasError('NOT_FOUND', `plan "${name}" not found`, { details: { plan: name } });
    const users = this.tenantsOn(name);
    if (users.length > 0) {
      throw new AiaasError('CONFLICT', `plan "${name}" is in use by ${users.length} tenant(s); move them to another plan first`, { details: { plan: name, tenants: users.length } });
    }
    if (existing.source === 'file') throw new AiaasError('CONFLICT', `plan "${name}" comes from the plans file (--plans); remove it there`, { details: { plan: name, source: 'file' } });
    await this.#db.deleteFrom('plans').where('name', '=', name).execute();
    await this.#reload();
  }

  /** Moves the tenant to `planName` (null: no plan, unlimited) from now; the history keeps the change. */
  async assign(tenantId: string, planName: string | null): Promise<PlanPeriod | undefined> {
    const stored = planName === null ? undefined : this.#plans.get(planName);
    if (planName !== null && stored === undefined) throw new AiaasError('NOT_FOUND', `plan "${planName}" not found`, { details: { plan: planName } });
    const at = this.#now().toISOString();
    await inTransaction(this.#db, async (transaction) => {
      await transaction.updateTable('tenant_plans').set({ effective_to: at }).where('tenant_id', '=', tenantId).where('effective_to', 'is', null).execute();
      if (stored !== undefined) {
        await transaction
          .insertInto('tenant_plans')
          .values({ tenant_id: tenantId, plan_name: stored.plan.name, plan_json: JSON.stringify(stored.plan), effective_from: at, effective_to: null })
          .execute();
      }
    });
    if (stored === undefined) {
      this.#current.delete(tenantId);
      return undefined;
    }
    this.#current.set(tenantId, stored.plan);
    return { planName: stored.plan.name, plan: stored.plan, effectiveFrom: at, effectiveTo: null };
  }

  /** The tenant's plan periods overlapping [from, to) (ISO timestamps), oldest first; all without bounds. */
  async history(tenantId: string, range: { from?: string; to?: string } = {}): Promise<PlanPeriod[]> {
    let query = this.#db.selectFrom('tenant_plans').selectAll().where('tenant_id', '=', tenantId);
    if (range.to !== undefined) query = query.where('effective_from', '<', range.to);
    if (range.from !== undefined) {
      const from = range.from;
      query = query.where((builder) => builder.or([builder('effective_to', 'is', null), builder('effective_to', '>', from)]));
    }
    const rows = await query.orderBy('effective_from').orderBy('id').execute();
    return rows.map((row) => ({ planName: row.plan_name, plan: parsePlan(JSON.parse(row.plan_json)), effectiveFrom: row.effective_from, effectiveTo: row.effective_to }));
  }
}

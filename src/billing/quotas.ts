/**
 * Quota enforcement: per tenant and period (UTC calendar month) counters in `quota_usage`, reserved
 * against with ONE conditional UPDATE (`SET used = used + r WHERE used + r <= cap`), so concurrent
 * requests, in this process or another one sharing the database, can never together pass a hard
 * cap. Admission reserves the worst case (an inference's items; an LLM request's prompt tokens plus
 * its max_tokens) and the caller settles to what was actually used, or releases on failure.
 * Tenants without a plan are not metered here at all (unlimited).
 */
import type { Kysely, RawBuilder } from 'kysely';
import { sql } from 'kysely';
import { AiaasError } from '../errors.ts';
import { RateLimiter, rateLimitedError } from '../security/rate-limit.ts';
import type { Schema } from '../storage/schema.ts';
import type { PlanStore } from './plan-store.ts';
import { capNames, type CapName, type Plan } from './plans.ts';

/** Metered amounts of one request (or of a period). */
export interface QuotaUsage {
  predictions: number;
  promptTokens: number;
  completionTokens: number;
  trainingWorkerSeconds: number;
}

export const noUsage: Readonly<QuotaUsage> = Object.freeze({ predictions: 0, promptTokens: 0, completionTokens: 0, trainingWorkerSeconds: 0 });

/** `YYYY-MM` of the UTC calendar month holding `date`. */
export function periodOf(date: Date): string {
  return date.toISOString().slice(0, 7);
}

/** The first instant of a period, and of the one after it. */
export function periodBounds(period: string): { start: Date; end: Date } {
  const match = /^(\d{4})-(\d{2})$/.exec(period);
  const month = match === null ? Number.NaN : Number(match[2]);
  if (match === null || month < 1 || month > 12) throw new AiaasError('INVALID_REQUEST', `period must be YYYY-MM, got ${JSON.stringify(period.slice(0, 20))}`, { details: { field: 'period' } });
  const year = Number(match[1]);
  return { start: new Date(Date.UTC(year, month - 1, 1)), end: new Date(Date.UTC(year, month, 1)) };
}

/** Whole seconds from `now` to the next period (rounded up, at least 1). */
export function secondsToReset(now: Date): number {
  const { end } = periodBounds(periodOf(now));
  return Math.max(1, Math.ceil((end.getTime() - now.getTime()) / 1000));
}

/**
 * Charges in a common scale: micro-units × 9 000 000, the least common multiple of the unit
 * divisors (1 000 predictions, 1 000 000 tokens, 3 600 worker-seconds), so the spend cap is checked
 * in exact integers.
 */
const spendScale = 9_000_000;

/** The period's charges (overage beyond the included amounts) in micro-units × spendScale. */
export function scaledSpend(plan: Plan, used: QuotaUsage): number {
  const over = (amount: number, included: number): number => Math.max(0, amount - included);
  return (
    over(used.predictions, plan.included.predictions) * plan.prices.perThousandPredictions * (spendScale / 1000) +
    over(used.promptTokens, plan.included.promptTokens) * plan.prices.perMillionPromptTokens * (spendScale / 1_000_000) +
    over(used.completionTokens, plan.included.completionTokens) * plan.prices.perMillionCompletionTokens * (spendScale / 1_000_000) +
    over(used.trainingWorkerSeconds, plan.included.trainingWorkerSeconds) * plan.prices.perTrainingWorkerHour * (spendScale / 3600)
  );
}

function capValue(name: CapName, plan: Plan, used: QuotaUsage): number {
  switch (name) {
    case 'predictions':
      return used.predictions;
    case 'tokens':
      return used.promptTokens + used.completionTokens;
    case 'trainingWorkerSeconds':
      return used.trainingWorkerSeconds;
    case 'spendMicros':
      return Math.floor(scaledSpend(plan, used) / spendScale);
  }
}

/** Which caps a reservation can push a counter against. */
function capsTouched(plan: Plan, reserve: QuotaUsage): CapName[] {
  const touched: CapName[] = [];
  if (reserve.predictions > 0) touched.push('predictions');
  if (reserve.promptTokens + reserve.completionTokens > 0) touched.push('tokens');
  if (reserve.trainingWorkerSeconds > 0) touched.push('trainingWorkerSeconds');
  if (scaledSpend({ ...plan, included: { ...plan.included, predictions: 0, promptTokens: 0, completionTokens: 0, trainingWorkerSeconds: 0 } }, reserve) > 0) touched.push('spendMicros');
  return touched;
}

const headerNames: Record<CapName, string> = {
  predictions: 'predictions',
  tokens: 'tokens',
  trainingWorkerSeconds: 'training-worker-seconds',
  spendMicros: 'spend-micros',
};

/** The `x-ratelimit-{limit,remaining,reset}-<cap>` headers of every hard cap of the plan. */
export function quotaHeaders(plan: Plan, used: QuotaUsage, now: Date): Record<string, string> {
  const reset = String(secondsToReset(now));
  const headers: Record<string, string> = {};
  for (const name of capNames) {
    const cap = plan.hardCap[name];
    if (cap === undefined) continue;
    headers[`x-ratelimit-limit-${headerNames[name]}`] = String(cap);
    headers[`x-ratelimit-remaining-${headerNames[name]}`] = String(Math.max(0, cap - capValue(name, plan, used)));
    headers[`x-ratelimit-reset-${headerNames[name]}`] = reset;
  }
  return headers;
}

/** A reservation: settle it to the actual amounts once the work is done, or release it on failure. */
export interface Admission {
  settle(actual: Partial<QuotaUsage>): Promise<void>;
  release(): Promise<void>;
}

const unmetered: Admission = { settle: async () => undefined, release: async () => undefined };

/** What crossing a soft cap notifies (an audit entry and a webhook event); failures are logged by the caller. */
export type SoftCapListener = (event: { tenantId: string; period: string; plan: string; caps: CapName[]; used: QuotaUsage; softCap: Plan['softCap'] }) => Promise<void>;

export interface QuotaServiceOptions {
  db: Kysely<Schema>;
  plans: PlanStore;
  now: () => Date;
  onSoftCapCrossed?: SoftCapListener;
  onError?: (error: unknown, what: string) => void;
}

function full(usage: Partial<QuotaUsage>): QuotaUsage {
  const whole = (value: number | undefined): number => (value === undefined || !Number.isFinite(value) ? 0 : Math.max(0, Math.round(value)));
  return {
    predictions: whole(usage.predictions),
    promptTokens: whole(usage.promptTokens),
    completionTokens: whole(usage.completionTokens),
    trainingWorkerSeconds: whole(usage.trainingWorkerSeconds),
  };
}

export class QuotaService {
  readonly #db: Kysely<Schema>;
  readonly #plans: PlanStore;
  readonly #now: () => Date;
  readonly #onSoftCapCrossed: SoftCapListener | undefined;
  readonly #onError: (error: unknown, what: string) => void;
  /** One token bucket set per plan rate (a plan change gives the tenant a fresh bucket). */
  readonly #limiters = new Map<string, RateLimiter>();
  /** (tenant, period) rows known to exist, so admission does not insert-or-ignore on every request. */
  readonly #rows = new Set<string>();

  constructor(options: QuotaServiceOptions) {
    this.#db = options.db;
    this.#plans = options.plans;
    this.#now = options.now;
    this.#onSoftCapCrossed = options.onSoftCapCrossed;
    this.#onError = options.onError ?? (() => undefined);
  }

  planOf(tenantId: string): Plan | undefined {
    return this.#plans.currentPlan(tenantId);
  }

  /** The plan's per-tenant request rate; 429 RATE_LIMITED past it. */
  #checkRate(tenantId: string, plan: Plan): void {
    const rate = plan.rateLimit;
    if (rate === undefined) return;
    const key = `${rate.requestsPerSecond}/${rate.burst}`;
    let limiter = this.#limiters.get(key);
    if (limiter === undefined) {
      limiter = new RateLimiter({ capacity: rate.burst, refillPerSecond: rate.requestsPerSecond, now: () => this.#now().getTime() });
      this.#limiters.set(key, limiter);
    }
    const decision = limiter.take(`tenant:${tenantId}`);
    if (!decision.allowed) throw rateLimitedError(decision.retryAfterSeconds);
  }

  /**
   * Reserves `reserve` against the tenant's hard caps for this period, atomically; 429
   * QUOTA_EXCEEDED (Retry-After: the period reset, x-ratelimit-* headers) when it does not fit.
   */
  async admit(tenantId: string, reserve: Partial<QuotaUsage>): Promise<Admission> {
    const plan = this.planOf(tenantId);
    if (plan === undefined) return unmetered;
    this.#checkRate(tenantId, plan);
    const amount = full(reserve);
    const now = this.#now();
    const period = periodOf(now);
    await this.#ensureRow(tenantId, period);
    const conditions: RawBuilder<unknown>[] = [];
    for (const name of capsTouched(plan, amount)) {
      const cap = plan.hardCap[name];
      if (cap === undefined) continue;
      if (name === 'predictions') conditions.push(sql`predictions + ${amount.predictions} <= ${cap}`);
      else if (name === 'tokens') conditions.push(sql`prompt_tokens + completion_tokens + ${amount.promptTokens + amount.completionTokens} <= ${cap}`);
      else if (name === 'trainingWorkerSeconds') conditions.push(sql`training_worker_seconds + ${amount.trainingWorkerSeconds} <= ${cap}`);
      else conditions.push(sql`${this.#spendExpression(plan, amount)} <= ${cap} * ${spendScale}`);
    }
    const where = conditions.length === 0 ? sql`1 = 1` : sql.join(conditions, sql` AND `);
    const result = await sql`
      UPDATE quota_usage SET
        predictions = predictions + ${amount.predictions},
        prompt_tokens = prompt_tokens + ${amount.promptTokens},
        completion_tokens = completion_tokens + ${amount.completionTokens},
        training_worker_seconds = training_worker_seconds + ${amount.trainingWorkerSeconds}
      WHERE tenant_id = ${tenantId} AND period = ${period} AND ${where}`.execute(this.#db);
    if (Number(result.numAffectedRows ?? 0) === 0) throw await this.#exceeded(tenantId, plan, period, amount, now);
    let done = false;
    return {
      settle: async (actual) => {
        if (done) return;
        done = true;
        const used = full(actual);
        await this.#add(tenantId, period, {
          predictions: used.predictions - amount.predictions,
          promptTokens: used.promptTokens - amount.promptTokens,
          completionTokens: used.completionTokens - amount.completionTokens,
          trainingWorkerSeconds: used.trainingWorkerSeconds - amount.trainingWorkerSeconds,
        });
        await this.#checkSoftCap(tenantId, plan, period);
      },
      release: async () => {
        if (done) return;
        done = true;
        await this.#add(tenantId, period, {
          predictions: -amount.predictions,
          promptTokens: -amount.promptTokens,
          completionTokens: -amount.completionTokens,
          trainingWorkerSeconds: -amount.trainingWorkerSeconds,
        });
      },
    };
  }

  /**
   * For work whose cost is known only afterwards (a training job): refused when a cap it counts
   * against (worker-seconds, spend) is already reached; `limits.maxConcurrentJobs` is checked too.
   */
  async admitJob(tenantId: string, unfinishedJobs: number): Promise<void> {
    const plan = this.planOf(tenantId);
    if (plan === undefined) return;
    const maxJobs = plan.limits.maxConcurrentJobs;
    if (maxJobs !== undefined && unfinishedJobs >= maxJobs) {
      throw new AiaasError('QUOTA_EXCEEDED', `this tenant already has ${unfinishedJobs} unfinished jobs; its plan "${plan.name}" allows ${maxJobs}`, {
        details: { limit: 'maxConcurrentJobs', max: maxJobs, plan: plan.name },
        headers: { 'retry-after': '30' },
      });
    }
    const now = this.#now();
    const used = await this.usage(tenantId, periodOf(now));
    for (const name of ['trainingWorkerSeconds', 'spendMicros'] as const) {
      const cap = plan.hardCap[name];
      if (cap !== undefined && capValue(name, plan, used) >= cap) throw this.#quotaError(plan, used, now, name);
    }
  }

  /** A new model, checked against the plan's `limits.maxModels`. */
  async admitNewModel(tenantId: string): Promise<void> {
    const max = this.planOf(tenantId)?.limits.maxModels;
    if (max === undefined) return;
    const row = await this.#db.selectFrom('models').select((builder) => builder.fn.countAll<number>().as('count')).where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();
    if (Number(row.count) >= max) {
      throw new AiaasError('QUOTA_EXCEEDED', `this tenant has ${Number(row.count)} models; its plan allows ${max}. Delete one first`, { details: { limit: 'maxModels', max } });
    }
  }

  /** A new dataset of `bytes`, checked against the plan's `limits.maxDatasetBytes` (all the tenant's datasets together). */
  async admitDataset(tenantId: string, bytes: number): Promise<void> {
    const max = this.planOf(tenantId)?.limits.maxDatasetBytes;
    if (max === undefined) return;
    const row = await this.#db.selectFrom('datasets').select((builder) => builder.fn.sum<number>('bytes').as('bytes')).where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();
    const stored = Number(row.bytes ?? 0);
    if (stored + bytes > max) {
      throw new AiaasError('QUOTA_EXCEEDED', `this dataset (${bytes} bytes) would bring the tenant's datasets to ${stored + bytes} bytes; its plan allows ${max}`, { details: { limit: 'maxDatasetBytes', max, stored } });
    }
  }

  /** Adds work done outside an admission (a finished job's worker-seconds); may pass a cap, since it is done. */
  async record(tenantId: string, used: Partial<QuotaUsage>): Promise<void> {
    const plan = this.planOf(tenantId);
    if (plan === undefined) return;
    const period = periodOf(this.#now());
    await this.#ensureRow(tenantId, period);
    await this.#add(tenantId, period, full(used));
    await this.#checkSoftCap(tenantId, plan, period);
  }

  /** The tenant's counters for a period (reservations in flight included). */
  async usage(tenantId: string, period: string): Promise<QuotaUsage> {
    const row = await this.#db.selectFrom('quota_usage').selectAll().where('tenant_id', '=', tenantId).where('period', '=', period).executeTakeFirst();
    if (row === undefined) return { ...noUsage };
    return {
      predictions: Number(row.predictions),
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      trainingWorkerSeconds: Number(row.training_worker_seconds),
    };
  }

  /** What `GET /quota` shows: plan, counters, caps and what is left of them this period. */
  async status(tenantId: string): Promise<{ plan: Plan | null; period: string; resetsInSeconds: number; used: QuotaUsage; spendMicros: number; remaining: Partial<Record<CapName, number>> }> {
    const now = this.#now();
    const period = periodOf(now);
    const used = await this.usage(tenantId, period);
    const plan = this.planOf(tenantId);
    const remaining: Partial<Record<CapName, number>> = {};
    if (plan !== undefined) {
      for (const name of capNames) {
        const cap = plan.hardCap[name];
        if (cap !== undefined) remaining[name] = Math.max(0, cap - capValue(name, plan, used));
      }
    }
    return { plan: plan ?? null, period, resetsInSeconds: secondsToReset(now), used, spendMicros: plan === undefined ? 0 : capValue('spendMicros', plan, used), remaining };
  }

  #spendExpression(plan: Plan, amount: QuotaUsage): RawBuilder<unknown> {
    const { prices, included } = plan;
    return sql`(
      MAX(0, predictions + ${amount.predictions} - ${included.predictions}) * ${prices.perThousandPredictions * (spendScale / 1000)}
      + MAX(0, prompt_tokens + ${amount.promptTokens} - ${included.promptTokens}) * ${prices.perMillionPromptTokens * (spendScale / 1_000_000)}
      + MAX(0, completion_tokens + ${amount.completionTokens} - ${included.completionTokens}) * ${prices.perMillionCompletionTokens * (spendScale / 1_000_000)}
      + MAX(0, training_worker_seconds + ${amount.trainingWorkerSeconds} - ${included.trainingWorkerSeconds}) * ${prices.perTrainingWorkerHour * (spendScale / 3600)}
    )`;
  }

  async #ensureRow(tenantId: string, period: string): Promise<void> {
    const key = `${tenantId}\u0000${period}`;
    if (this.#rows.has(key)) return;
    await this.#db.insertInto('quota_usage').values({ tenant_id: tenantId, period, predictions: 0, prompt_tokens: 0, completion_tokens: 0, training_worker_seconds: 0, soft_cap_crossed_at: null }).onConflict((conflict) => conflict.columns(['tenant_id', 'period']).doNothing()).execute();
    if (this.#rows.size > 100_000) this.#rows.clear();
    this.#rows.add(key);
  }

  async #add(tenantId: string, period: string, delta: QuotaUsage): Promise<void> {
    if (delta.predictions === 0 && delta.promptTokens === 0 && delta.completionTokens === 0 && delta.trainingWorkerSeconds === 0) return;
    await sql`
      UPDATE quota_usage SET
        predictions = MAX(0, predictions + ${delta.predictions}),
        prompt_tokens = MAX(0, prompt_tokens + ${delta.promptTokens}),
        completion_tokens = MAX(0, completion_tokens + ${delta.completionTokens}),
        training_worker_seconds = MAX(0, training_worker_seconds + ${delta.trainingWorkerSeconds})
      WHERE tenant_id = ${tenantId} AND period = ${period}`.execute(this.#db);
  }

  async #exceeded(tenantId: string, plan: Plan, period: string, amount: QuotaUsage, now: Date): Promise<AiaasError> {
    const used = await this.usage(tenantId, period);
    const after: QuotaUsage = {
      predictions: used.predictions + amount.predictions,
      promptTokens: used.promptTokens + amount.promptTokens,
      completionTokens: used.completionTokens + amount.completionTokens,
      trainingWorkerSeconds: used.trainingWorkerSeconds + amount.trainingWorkerSeconds,
    };
    const cap = capsTouched(plan, amount).find((name) => plan.hardCap[name] !== undefined && capValue(name, plan, after) > plan.hardCap[name]!) ?? 'spendMicros';
    return this.#quotaError(plan, used, now, cap);
  }

  #quotaError(plan: Plan, used: QuotaUsage, now: Date, cap: CapName): AiaasError {
    const retryAfter = secondsToReset(now);
    const limit = plan.hardCap[cap];
    return new AiaasError('QUOTA_EXCEEDED', `The ${cap} quota of plan "${plan.name}" (${limit} this month) is used up; it resets at the start of the next UTC month`, {
      details: { plan: plan.name, cap, limit, used: capValue(cap, plan, used), retryAfterSeconds: retryAfter },
      headers: { 'retry-after': String(retryAfter), ...quotaHeaders(plan, used, now) },
    });
  }

  async #checkSoftCap(tenantId: string, plan: Plan, period: string): Promise<void> {
    const caps = capNames.filter((name) => plan.softCap[name] !== undefined);
    if (caps.length === 0) return;
    const used = await this.usage(tenantId, period);
    const crossed = caps.filter((name) => capValue(name, plan, used) >= plan.softCap[name]!);
    if (crossed.length === 0) return;
    // Exactly once per period, whichever request or process gets here first.
    const marked = await this.#db
      .updateTable('quota_usage')
      .set({ soft_cap_crossed_at: this.#now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('period', '=', period)
      .where('soft_cap_crossed_at', 'is', null)
      .executeTakeFirst();
    if (Number(marked.numUpdatedRows) === 0 || this.#onSoftCapCrossed === undefined) return;
    try {
      await this.#onSoftCapCrossed({ tenantId, period, plan: plan.name, caps: crossed, used, softCap: plan.softCap });
    } catch (error) {
      this.#onError(error, 'soft cap notification');
    }
  }
}

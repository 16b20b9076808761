/**
 * Plans: what a tenant pays per unit, what it gets included, where it is capped, and its limits.
 * Money is integer micro-units of the plan's currency (1 USD = 1 000 000), never a float. A plan
 * comes from the operator's plans file or the operator API; both go through `parsePlan`, which
 * refuses anything it does not know, so a typo in a price never silently means "free".
 */
import { AiaasError } from '../errors.ts';

/** Metered quantities a cap can bound within one period (a UTC calendar month). */
export interface UnitCaps {
  /** Inference items (batch elements) on V2 and TF-Serving. */
  readonly predictions?: number;
  /** Language-model tokens, prompt and completion together. */
  readonly tokens?: number;
  /** Training worker-seconds. */
  readonly trainingWorkerSeconds?: number;
  /** Charges of the period in micro-units (the overage beyond the included amounts). */
  readonly spendMicros?: number;
}

export interface PlanPrices {
  readonly perThousandPredictions: number;
  readonly perMillionPromptTokens: number;
  readonly perMillionCompletionTokens: number;
  readonly perTrainingWorkerHour: number;
  readonly perGigabyteMonthStored: number;
}

export interface PlanIncluded {
  readonly predictions: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly trainingWorkerSeconds: number;
  /** Gigabyte-months of storage (10^9 bytes held for a whole month) included. */
  readonly gigabyteMonthsStored: number;
}

export interface PlanLimits {
  readonly maxModels?: number;
  /** Sum of the bytes of the tenant's datasets. */
  readonly maxDatasetBytes?: number;
  /** Unfinished (queued or running) jobs. */
  readonly maxConcurrentJobs?: number;
  /** Largest `max_tokens` / `num_predict` one language-model request may ask for. */
  readonly maxLlmTokens?: number;
  /** Largest context (tokens) a language-model request may use. */
  readonly maxLlmContext?: number;
}

export interface PlanRateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
}

export interface Plan {
  readonly name: string;
  /** ISO 4217 code, e.g. USD; every amount of the plan is in micro-units of it. */
  readonly currency: string;
  readonly prices: PlanPrices;
  readonly included: PlanIncluded;
  /** Past it: 429 QUOTA_EXCEEDED until the period resets. */
  readonly hardCap: UnitCaps;
  /** Crossing it (once per period): an audit entry and a `quota.soft_cap_crossed` webhook. */
  readonly softCap: UnitCaps;
  /** Cost-incurring requests per second of the whole tenant (token bucket); absent: no plan limit. */
  readonly rateLimit?: PlanRateLimit;
  readonly limits: PlanLimits;
}

export const capNames = ['predictions', 'tokens', 'trainingWorkerSeconds', 'spendMicros'] as const satisfies readonly (keyof UnitCaps)[];
export type CapName = (typeof capNames)[number];

const priceNames = ['perThousandPredictions', 'perMillionPromptTokens', 'perMillionCompletionTokens', 'perTrainingWorkerHour', 'perGigabyteMonthStored'] as const;
const includedNames = ['predictions', 'promptTokens', 'completionTokens', 'trainingWorkerSeconds', 'gigabyteMonthsStored'] as const;
const limitNames = ['maxModels', 'maxDatasetBytes', 'maxConcurrentJobs', 'maxLlmTokens', 'maxLlmContext'] as const;
const planFields = ['name', 'currency', 'prices', 'included', 'hardCap', 'softCap', 'rateLimit', 'limits'] as const;

/** Plan names are like model names: short, URL-safe, case-sensitive. */
export const planNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function invalid(path: string, message: string): AiaasError {
  return new AiaasError('INVALID_REQUEST', `plan ${path}: ${message}`, { details: { field: path } });
}

function object(value: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(path, 'must be a JSON object');
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalid(`${path}.${key}`.replace(/^\./, ''), `unknown field; expected one of ${allowed.join(', ')}`);
  }
  return value as Record<string, unknown>;
}

/** A non-negative safe integer (money in micro-units, counts, bytes). */
function count(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(path, `must be a non-negative integer${typeof value === 'number' && !Number.isInteger(value) ? ' (money is integer micro-units, not a decimal)' : ''}`);
  }
  return value;
}

function positive(value: unknown, path: string): number {
  const parsed = count(value, path);
  if (parsed === 0) throw invalid(path, 'must be at least 1');
  return parsed;
}

function caps(value: unknown, path: string): UnitCaps {
  if (value === undefined) return {};
  const body = object(value, path, capNames);
  const result: Record<string, number> = {};
  for (const name of capNames) if (body[name] !== undefined) result[name] = count(body[name], `${path}.${name}`);
  return result;
}

/** Validates a plan document strictly; every problem is a 400 naming the field. */
export function parsePlan(value: unknown): Plan {
  const body = object(value, '', planFields);
  const name = body['name'];
  if (typeof name !== 'string' || !planNamePattern.test(name)) throw invalid('name', 'must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
  const currency = body['currency'] ?? 'USD';
  if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) throw invalid('currency', 'must be an ISO 4217 code such as USD');

  const pricesBody = object(body['prices'] ?? {}, 'prices', priceNames);
  const prices = Object.fromEntries(priceNames.map((field) => [field, count(pricesBody[field] ?? 0, `prices.${field}`)])) as unknown as PlanPrices;
  const includedBody = object(body['included'] ?? {}, 'included', includedNames);
  const included = Object.fromEntries(includedNames.map((field) => [field, count(includedBody[field] ?? 0, `included.${field}`)])) as unknown as PlanIncluded;

  const hardCap = caps(body['hardCap'], 'hardCap');
  const softCap = caps(body['softCap'], 'softCap');
  for (const cap of capNames) {
    const soft = softCap[cap];
    const hard = hardCap[cap];
    if (soft !== undefined && hard !== undefined && soft > hard) throw invalid(`softCap.${cap}`, `is above hardCap.${cap} (${hard}); a soft cap warns before the hard one`);
  }

  let rateLimit: PlanRateLimit | undefined;
  if (body['rateLimit'] !== undefined) {
    const rate = object(body['rateLimit'], 'rateLimit', ['requestsPerSecond', 'burst']);
    const perSecond = rate['requestsPerSecond'];
    if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0 || perSecond > 1e6) {
      throw invalid('rateLimit.requestsPerSecond', 'must be a number above 0 (and at most 1000000)');
    }
    rateLimit = { requestsPerSecond: perSecond, burst: positive(rate['burst'] ?? Math.max(1, Math.ceil(perSecond)), 'rateLimit.burst') };
  }

  const limitsBody = object(body['limits'] ?? {}, 'limits', limitNames);
  const limits: Record<string, number> = {};
  for (const field of limitNames) if (limitsBody[field] !== undefined) limits[field] = positive(limitsBody[field], `limits.${field}`);

  return { name, currency, prices, included, hardCap, softCap, ...(rateLimit === undefined ? {} : { rateLimit }), limits };
}

/** A plans file: `{"plans": [plan, …]}` or a bare array; names must be unique. */
export function parsePlansFile(value: unknown, source: string): Plan[] {
  const list = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['plans'] : undefined;
  if (!Array.isArray(list)) throw new AiaasError('CONFIG_INVALID', `${source}: expected {"plans": [ … ]} or an array of plans`);
  const plans: Plan[] = [];
  const seen = new Set<string>();
  list.forEach((entry, index) => {
    let plan: Plan;
    try {
      plan = parsePlan(entry);
    } catch (error) {
      const message = AiaasError.isInstance(error) ? error.message : String(error);
      throw new AiaasError('CONFIG_INVALID', `${source}: plans[${index}]: ${message}`);
    }
    if (seen.has(plan.name)) throw new AiaasError('CONFIG_INVALID', `${source}: plan "${plan.name}" is defined twice`);
    seen.add(plan.name);
    plans.push(plan);
  });
  return plans;
}

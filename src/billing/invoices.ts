/**
 * Invoices: one per tenant and UTC calendar month, computed from the usage ledger's totals and the
 * tenant's plan history. Each plan period inside the month is a segment; its included amounts are
 * prorated by the segment's seconds over the month's seconds, and the usage within the segment
 * beyond them is charged at that plan's prices. Every line is computed exactly (integer
 * arithmetic on BigInt fractions) and rounded half-up to a micro-unit once; totals are integer
 * sums of the lines. Nothing in an invoice depends on when it is computed, so a closed month
 * recomputes to the same bytes.
 */
import type { PlanPeriod } from './plan-store.ts';
import type { Plan } from './plans.ts';
import { periodBounds } from './quotas.ts';

/** Billable units of a tenant over a time range, as the usage ledger sums them. */
export interface BillableUsage {
  /** Inference items (batch elements) answered on V2 and TF-Serving. */
  predictions: number;
  promptTokens: number;
  completionTokens: number;
  /** May be fractional (the ledger keeps milliseconds). */
  trainingWorkerSeconds: number;
  /** Stored bytes sampled hourly: bytes × hours. */
  storedByteHours: number;
}

/** The ledger's read side as invoices use it: summed units over `[from, to)`. */
export type UsageTotals = (tenantId: string, range: { from: Date; to: Date }) => Promise<BillableUsage>;

export type InvoiceItem = 'predictions' | 'prompt-tokens' | 'completion-tokens' | 'training' | 'storage';

export interface InvoiceLine {
  plan: string;
  from: string;
  to: string;
  item: InvoiceItem;
  description: string;
  /** What `used`, `included` and `billable` count. */
  unit: string;
  used: string;
  /** The plan's included amount for the month, prorated to this segment. */
  included: string;
  billable: string;
  /** Micro-units per `priceUnit`. */
  unitPriceMicros: number;
  priceUnit: string;
  currency: string;
  /** Rounded half-up to a micro-unit. */
  amountMicros: number;
}

export interface Invoice {
  tenantId: string;
  period: string;
  /** final: the month is over; draft: it is not, and the numbers still grow. */
  status: 'final' | 'draft';
  from: string;
  to: string;
  lines: InvoiceLine[];
  /** Per currency, the integer sum of its lines. */
  totals: Array<{ currency: string; amountMicros: number }>;
  /** Parts of the month the tenant had no plan (unlimited, not billed). */
  unbilled: Array<{ from: string; to: string }>;
}

/** `numerator / denominator` rounded half-up (both non-negative, denominator positive). */
export function roundHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}

/** An exact fraction as a decimal with `digits` places (display only; amounts never use it). */
function decimal(numerator: bigint, denominator: bigint, digits = 3): string {
  const scale = 10n ** BigInt(digits);
  const scaled = roundHalfUp(numerator * scale, denominator);
  const whole = scaled / scale;
  const fraction = (scaled % scale).toString().padStart(digits, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}

interface ItemRule {
  item: InvoiceItem;
  description: string;
  unit: string;
  priceUnit: string;
  /** Used amount as an exact fraction of `unit`. */
  used(usage: BillableUsage, monthSeconds: bigint): [bigint, bigint];
  included(plan: Plan): bigint;
  price(plan: Plan): number;
  /** Units per price: the price is per this many units. */
  perUnits: bigint;
}

const milliseconds = (seconds: number): bigint => BigInt(Math.round(seconds * 1000));

const rules: readonly ItemRule[] = [
  {
    item: 'predictions',
    description: 'Predictions',
    unit: 'predictions',
    priceUnit: '1,000 predictions',
    used: (usage) => [BigInt(Math.round(usage.predictions)), 1n],
    included: (plan) => BigInt(plan.included.predictions),
    price: (plan) => plan.prices.perThousandPredictions,
    perUnits: 1000n,
  },
  {
    item: 'prompt-tokens',
    description: 'LLM prompt tokens',
    unit: 'tokens',
    priceUnit: '1M tokens',
    used: (usage) => [BigInt(Math.round(usage.promptTokens)), 1n],
    included: (plan) => BigInt(plan.included.promptTokens),
    price: (plan) => plan.prices.perMillionPromptTokens,
    perUnits: 1_000_000n,
  },
  {
    item: 'completion-tokens',
    description: 'LLM completion tokens',
    unit: 'tokens',
    priceUnit: '1M tokens',
    used: (usage) => [BigInt(Math.round(usage.completionTokens)), 1n],
    included: (plan) => BigInt(plan.included.completionTokens),
    price: (plan) => plan.prices.perMillionCompletionTokens,
    perUnits: 1_000_000n,
  },
  {
    item: 'training',
    description: 'Training worker time',
    unit: 'worker-seconds',
    priceUnit: 'worker-hour',
    used: (usage) => [milliseconds(usage.trainingWorkerSeconds), 1000n],
    included: (plan) => BigInt(plan.included.trainingWorkerSeconds),
    price: (plan) => plan.prices.perTrainingWorkerHour,
    perUnits: 3600n,
  },
  {
    item: 'storage',
    description: 'Storage',
    unit: 'GB-months',
    priceUnit: 'GB-month',
    // byte-hours / (10^9 bytes × the month's hours) = byte-hours × 3600 / (10^9 × month seconds).
    used: (usage, monthSeconds) => [BigInt(Math.round(usage.storedByteHours)) * 3600n, 1_000_000_000n * monthSeconds],
    included: (plan) => BigInt(plan.included.gigabyteMonthsStored),
    price: (plan) => plan.prices.perGigabyteMonthStored,
    perUnits: 1n,
  },
];

/**
 * One line: billable = max(0, used − included × segment/month), amount = billable × price / perUnits,
 * all as one exact fraction, rounded half-up once.
 */
export function lineAmount(rule: Pick<ItemRule, 'perUnits'>, used: [bigint, bigint], included: bigint, price: number, segmentSeconds: bigint, monthSeconds: bigint): { billable: [bigint, bigint]; includedShare: [bigint, bigint]; amountMicros: bigint } {
  const [usedNumerator, usedDenominator] = used;
  // Over a common denominator usedDenominator × monthSeconds.
  const denominator = usedDenominator * monthSeconds;
  const usedScaled = usedNumerator * monthSeconds;
  const includedScaled = included * segmentSeconds * usedDenominator;
  const billableNumerator = usedScaled > includedScaled ? usedScaled - includedScaled : 0n;
  return {
    billable: [billableNumerator, denominator],
    includedShare: [included * segmentSeconds, monthSeconds],
    amountMicros: roundHalfUp(billableNumerator * BigInt(price), denominator * rule.perUnits),
  };
}

/** The plan segments of a month: each history row clipped to it, in order. */
export function planSegments(history: readonly PlanPeriod[], start: Date, end: Date): Array<{ plan: Plan; from: Date; to: Date }> {
  const segments: Array<{ plan: Plan; from: Date; to: Date }> = [];
  for (const period of history) {
    const from = new Date(Math.max(Date.parse(period.effectiveFrom), start.getTime()));
    const to = new Date(Math.min(period.effectiveTo === null ? end.getTime() : Date.parse(period.effectiveTo), end.getTime()));
    if (to.getTime() > from.getTime()) segments.push({ plan: period.plan, from, to });
  }
  return segments;
}

export interface ComputeInvoiceInput {
  tenantId: string;
  period: string;
  history: readonly PlanPeriod[];
  usage: UsageTotals;
  now: Date;
}

export async function computeInvoice(input: ComputeInvoiceInput): Promise<Invoice> {
  const { start, end } = periodBounds(input.period);
  const monthSeconds = BigInt((end.getTime() - start.getTime()) / 1000);
  const segments = planSegments(input.history, start, end);
  const lines: InvoiceLine[] = [];
  for (const segment of segments) {
    // Whole seconds: plan changes are stored to the millisecond; proration is by seconds of the month.
    const segmentSeconds = BigInt(Math.round((segment.to.getTime() - segment.from.getTime()) / 1000));
    const usage = await input.usage(input.tenantId, { from: segment.from, to: segment.to });
    for (const rule of rules) {
      const used = rule.used(usage, monthSeconds);
      const included = rule.included(segment.plan);
      const price = rule.price(segment.plan);
      if (used[0] === 0n && included === 0n) continue;
      const line = lineAmount(rule, used, included, price, segmentSeconds, monthSeconds);
      lines.push({
        plan: segment.plan.name,
        from: segment.from.toISOString(),
        to: segment.to.toISOString(),
        item: rule.item,
        description: rule.description,
        unit: rule.unit,
        used: decimal(used[0], used[1]),
        included: decimal(line.includedShare[0], line.includedShare[1]),
        billable: decimal(line.billable[0], line.billable[1]),
        unitPriceMicros: price,
        priceUnit: rule.priceUnit,
        currency: segment.plan.currency,
        amountMicros: Number(line.amountMicros),
      });
    }
  }
  const sums = new Map<string, bigint>();
  for (const line of lines) sums.set(line.currency, (sums.get(line.currency) ?? 0n) + BigInt(line.amountMicros));
  const totals = [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([currency, amount]) => ({ currency, amountMicros: Number(amount) }));
  const unbilled: Array<{ from: string; to: string }> = [];
  let cursor = start.getTime();
  for (const segment of [...segments, { from: end, to: end }]) {
    if (segment.from.getTime() > cursor) unbilled.push({ from: new Date(cursor).toISOString(), to: segment.from.toISOString() });
    cursor = Math.max(cursor, segment.to.getTime());
  }
  return {
    tenantId: input.tenantId,
    period: input.period,
    status: input.now.getTime() >= end.getTime() ? 'final' : 'draft',
    from: start.toISOString(),
    to: end.toISOString(),
    lines,
    totals,
    unbilled,
  };
}

/** Invoices of tenants from their plan history and the ledger's totals. */
export class InvoiceService {
  readonly #history: (tenantId: string, range: { from: string; to: string }) => Promise<PlanPeriod[]>;
  readonly #usage: UsageTotals;
  readonly #now: () => Date;

  constructor(options: { history: (tenantId: string, range: { from: string; to: string }) => Promise<PlanPeriod[]>; usage: UsageTotals; now: () => Date }) {
    this.#history = options.history;
    this.#usage = options.usage;
    this.#now = options.now;
  }

  async invoice(tenantId: string, period: string): Promise<Invoice> {
    const { start, end } = periodBounds(period);
    const history = await this.#history(tenantId, { from: start.toISOString(), to: end.toISOString() });
    return computeInvoice({ tenantId, period, history, usage: this.#usage, now: this.#now() });
  }

  /** The tenant's invoices, newest first, from the month of `since` to this month (at most `limit`). */
  async list(tenantId: string, since: Date, limit = 24): Promise<Invoice[]> {
    const now = this.#now();
    const periods: string[] = [];
    const cursor = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const first = Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), 1);
    while (cursor.getTime() >= first && periods.length < limit) {
      periods.push(cursor.toISOString().slice(0, 7));
      cursor.setUTCMonth(cursor.getUTCMonth() - 1);
    }
    const invoices: Invoice[] = [];
    for (const period of periods) invoices.push(await this.invoice(tenantId, period));
    return invoices;
  }
}

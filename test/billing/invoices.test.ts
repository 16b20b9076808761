/**
 * Invoice arithmetic: proration by seconds across a mid-month plan change, half-up rounding of each
 * line to a micro-unit, totals as exact integer sums, storage and training units, and equal bytes on
 * recomputation in every format.
 */
import { describe, expect, it } from 'vitest';
import { formatMoney, invoiceCsv, invoiceHtml, invoiceJson } from '../../src/billing/invoice-render.ts';
import { computeInvoice, lineAmount, roundHalfUp, type BillableUsage, type UsageTotals } from '../../src/billing/invoices.ts';
import type { PlanPeriod } from '../../src/billing/plan-store.ts';
import { parsePlan } from '../../src/billing/plans.ts';

const november = { start: Date.parse('2026-11-01T00:00:00Z'), seconds: 30 * 86_400 };
const none: BillableUsage = { predictions: 0, promptTokens: 0, completionTokens: 0, trainingWorkerSeconds: 0, storedByteHours: 0 };

/** Usage per segment, keyed by the segment's start. */
function usageBy(table: Record<string, Partial<BillableUsage>>): UsageTotals & { calls: string[] } {
  const calls: string[] = [];
  const usage = async (_tenant: string, range: { from: Date; to: Date }): Promise<BillableUsage> => {
    calls.push(`${range.from.toISOString()}..${range.to.toISOString()}`);
    return { ...none, ...table[range.from.toISOString()] };
  };
  return Object.assign(usage, { calls });
}

const period = (plan: Record<string, unknown>, from: string, to: string | null): PlanPeriod => {
  const parsed = parsePlan(plan);
  return { planName: parsed.name, plan: parsed, effectiveFrom: from, effectiveTo: to };
};

describe('rounding', () => {
  it('rounds half-up to a micro-unit', () => {
    expect([roundHalfUp(1n, 2n), roundHalfUp(3n, 2n), roundHalfUp(5n, 2n), roundHalfUp(499_999n, 1_000_000n), roundHalfUp(0n, 7n), roundHalfUp(10n, 3n)]).toEqual([1n, 2n, 3n, 0n, 0n, 3n]);
    // 500 000 tokens at 1 micro-unit per 1M = 0.5 → 1; 499 999 → 0; 1 500 000 → 2.
    const tokens = { perUnits: 1_000_000n };
    expect(lineAmount(tokens, [500_000n, 1n], 0n, 1, 1n, 1n).amountMicros).toBe(1n);
    expect(lineAmount(tokens, [499_999n, 1n], 0n, 1, 1n, 1n).amountMicros).toBe(0n);
    expect(lineAmount(tokens, [1_500_000n, 1n], 0n, 1, 1n, 1n).amountMicros).toBe(2n);
  });

  it('formats micro-units without losing any', () => {
    expect([formatMoney(0, 'USD'), formatMoney(80_000, 'USD'), formatMoney(1_234_567, 'EUR'), formatMoney(12_000_000, 'USD')]).toEqual(['0.00 USD', '0.08 USD', '1.234567 EUR', '12.00 USD']);
  });
});

describe('computeInvoice', () => {
  const planA = { name: 'a', prices: { perThousandPredictions: 2_000_000, perMillionPromptTokens: 3 }, included: { predictions: 1000 } };
  const planB = { name: 'b', prices: { perThousandPredictions: 1_000_000, perMillionPromptTokens: 3 }, included: { predictions: 3000 } };

  it('prorates included amounts by seconds across a mid-month plan change, and charges each segment at its plan', async () => {
    const change = '2026-11-16T00:00:00.000Z';
    const usage = usageBy({ '2026-11-01T00:00:00.000Z': { predictions: 1500, promptTokens: 500_000 }, [change]: { predictions: 1501, promptTokens: 1_500_000 } });
    const invoice = await computeInvoice({
      tenantId: 'tenant_t',
      period: '2026-11',
      history: [period(planA, '2026-10-20T00:00:00.000Z', change), period(planB, change, null)],
      usage,
      now: new Date('2026-12-01T00:00:00Z'),
    });
    expect(usage.calls).toEqual(['2026-11-01T00:00:00.000Z..2026-11-16T00:00:00.000Z', '2026-11-16T00:00:00.000Z..2026-12-01T00:00:00.000Z']);
    expect(invoice.status).toBe('final');
    expect(invoice.lines.map(({ plan, item, used, included, billable, amountMicros }) => ({ plan, item, used, included, billable, amountMicros }))).toEqual([
      // Half the month: 500 of plan a's 1 000 included; 1 000 billable at 2 000 000 per 1 000.
      { plan: 'a', item: 'predictions', used: '1500', included: '500', billable: '1000', amountMicros: 2_000_000 },
      // 500 000 tokens at 3 per 1M = 1.5 → 2 (half-up).
      { plan: 'a', item: 'prompt-tokens', used: '500000', included: '0', billable: '500000', amountMicros: 2 },
      // Half of plan b's 3 000 = 1 500 included; 1 billable at 1 000 000 per 1 000.
      { plan: 'b', item: 'predictions', used: '1501', included: '1500', billable: '1', amountMicros: 1000 },
      // 1 500 000 tokens at 3 per 1M = 4.5 → 5.
      { plan: 'b', item: 'prompt-tokens', used: '1500000', included: '0', billable: '1500000', amountMicros: 5 },
    ]);
    expect(invoice.totals).toEqual([{ currency: 'USD', amountMicros: 2_000_000 + 2 + 1000 + 5 }]);
    expect(invoice.unbilled).toEqual([]);
  });

  it('prorates by the exact second at an uneven change time, rounding each line once', async () => {
    // 2026-11-10T07:13:20Z is 803 600 s into November (2 592 000 s).
    const change = '2026-11-10T07:13:20.000Z';
    const elapsed = (Date.parse(change) - november.start) / 1000;
    expect(elapsed).toBe(803_600);
    const plan = { name: 'p', prices: { perThousandPredictions: 1_000_003 }, included: { predictions: 7 } };
    const usage = usageBy({ '2026-11-01T00:00:00.000Z': { predictions: 10 }, [change]: { predictions: 20 } });
    const invoice = await computeInvoice({ tenantId: 't', period: '2026-11', history: [period(plan, '2026-11-01T00:00:00.000Z', change), period(plan, change, null)], usage, now: new Date('2027-01-01T00:00:00Z') });
    const expected = (used: bigint, segment: bigint): bigint => {
      const month = BigInt(november.seconds);
      const billable = used * month - 7n * segment;
      return (2n * billable * 1_000_003n + 1000n * month) / (2n * 1000n * month);
    };
    const amounts = invoice.lines.map((line) => BigInt(line.amountMicros));
    expect(amounts).toEqual([expected(10n, 803_600n), expected(20n, BigInt(november.seconds) - 803_600n)]);
    // The exact charges are 7 829.807… and 15 170.261… micro-units: rounded separately, then summed.
    expect(amounts).toEqual([7830n, 15170n]);
    expect(invoice.totals[0]!.amountMicros).toBe(7830 + 15170);
    // 7 × 803 600 / 2 592 000 = 2.170216…
    expect(invoice.lines[0]!.included).toBe('2.17');
  });

  it('bills storage in GB-months and training in worker-hours, and leaves unplanned time unbilled', async () => {
    const plan = { name: 's', currency: 'EUR', prices: { perGigabyteMonthStored: 20_000, perTrainingWorkerHour: 3_600_000 }, included: { gigabyteMonthsStored: 1 } };
    const from = '2026-11-11T00:00:00.000Z';
    // 3 GB held for the 20 days of the segment = 3e9 × 480 byte-hours = 2 GB-months; 1 GB-month × 20/30 included.
    const usage = usageBy({ [from]: { storedByteHours: 3e9 * 480, trainingWorkerSeconds: 1.5 } });
    const invoice = await computeInvoice({ tenantId: 't', period: '2026-11', history: [period(plan, from, null)], usage, now: new Date('2026-11-20T00:00:00Z') });
    expect(invoice.status).toBe('draft');
    expect(invoice.unbilled).toEqual([{ from: '2026-11-01T00:00:00.000Z', to: from }]);
    const byItem = Object.fromEntries(invoice.lines.map((line) => [line.item, line]));
    expect(byItem['storage']).toMatchObject({ used: '2', included: '0.667', billable: '1.333', currency: 'EUR' });
    // (2 − 2/3) × 20 000 = 26 666.67 → 26 667.
    expect(byItem['storage']!.amountMicros).toBe(26_667);
    // 1.5 s at 3 600 000 per hour = 1 500.
    expect(byItem['training']).toMatchObject({ used: '1.5', amountMicros: 1500 });
    expect(invoice.totals).toEqual([{ currency: 'EUR', amountMicros: 26_667 + 1500 }]);
  });

  it('sums totals per currency as exact integers of the lines', async () => {
    const change = '2026-11-05T12:00:00.000Z';
    const usage = usageBy({ '2026-11-01T00:00:00.000Z': { predictions: 333, promptTokens: 777, completionTokens: 999 }, [change]: { predictions: 444, completionTokens: 12_345 } });
    const dollars = { name: 'd', prices: { perThousandPredictions: 1_234_567, perMillionPromptTokens: 9_999_999, perMillionCompletionTokens: 7_777_777 } };
    const euros = { name: 'e', currency: 'EUR', prices: { perThousandPredictions: 999_999, perMillionCompletionTokens: 5_555_555 } };
    const invoice = await computeInvoice({ tenantId: 't', period: '2026-11', history: [period(dollars, '2026-11-01T00:00:00.000Z', change), period(euros, change, null)], usage, now: new Date('2026-12-02T00:00:00Z') });
    for (const total of invoice.totals) {
      const lines = invoice.lines.filter((line) => line.currency === total.currency);
      expect(Number.isInteger(total.amountMicros)).toBe(true);
      expect(total.amountMicros).toBe(lines.reduce((sum, line) => sum + line.amountMicros, 0));
    }
    expect(invoice.totals.map((total) => total.currency)).toEqual(['EUR', 'USD']);
  });

  it('gives the same bytes in JSON, CSV and HTML when a closed month is computed again', async () => {
    const history = [period(planA, '2026-11-01T00:00:00.000Z', '2026-11-16T00:00:00.000Z'), period(planB, '2026-11-16T00:00:00.000Z', null)];
    const usage = usageBy({ '2026-11-01T00:00:00.000Z': { predictions: 1500 }, '2026-11-16T00:00:00.000Z': { predictions: 9000 } });
    const first = await computeInvoice({ tenantId: 't', period: '2026-11', history, usage, now: new Date('2026-12-03T00:00:00Z') });
    const again = await computeInvoice({ tenantId: 't', period: '2026-11', history, usage, now: new Date('2027-03-09T10:11:12Z') });
    for (const render of [invoiceJson, invoiceCsv, (invoice: typeof first) => invoiceHtml(invoice, { tenantName: 'acme' })]) {
      expect(Buffer.compare(Buffer.from(render(first)), Buffer.from(render(again)))).toBe(0);
    }
    const csv = invoiceCsv(first).split('\r\n');
    expect(csv[0]).toBe('period,tenant_id,plan,from,to,item,unit,used,included,billable,unit_price_micros,price_unit,currency,amount_micros');
    expect(csv.at(-2)).toBe(`2026-11,t,,2026-11-01T00:00:00.000Z,2026-12-01T00:00:00.000Z,total,,,,,,,USD,${first.totals[0]!.amountMicros}`);
    const html = invoiceHtml(first);
    expect(html).not.toMatch(/<script|<link|https?:\/\/|src=/i);
  });
});

/** Costs: the tenant's monthly invoices (GET /api/v1/invoices), computed from its plan and the usage ledger. */
import { StackedColumns } from '../charts.tsx';
import { formatNumber } from '../format.ts';
import { useApi } from '../ui.tsx';

interface InvoiceLine {
  plan: string;
  item: string;
  description: string;
  unit: string;
  used: string;
  included: string;
  billable: string;
  unitPriceMicros: number;
  priceUnit: string;
  currency: string;
  amountMicros: number;
}

interface Invoice {
  period: string;
  status: 'final' | 'draft';
  totals: { currency: string; amountMicros: number }[];
  lines: InvoiceLine[];
}

function money(micros: number, currency: string): string {
  return `${(micros / 1_000_000).toLocaleString('en', { minimumFractionDigits: 2, maximumFractionDigits: 6 })} ${currency}`;
}

export function Costs() {
  const invoices = useApi<{ invoices: Invoice[] }>('/api/v1/invoices');
  if (invoices.error !== undefined) return <p class="muted small">Costs are not available to this key: {invoices.error}</p>;
  const list = invoices.data?.invoices ?? [];
  if (invoices.data === undefined) return null;
  const current = list[0];
  const currencies = [...new Set(list.flatMap((invoice) => invoice.totals.map((total) => total.currency)))];
  const months = [...list].reverse();
  const priced = list.some((invoice) => invoice.lines.length > 0);
  return (
    <section class="costs" aria-labelledby="costs-title">
      <h2 id="costs-title">Costs</h2>
      {!priced && <p class="muted">No plan prices this tenant's usage yet: an operator assigns plans (docs/billing.md, "Plans").</p>}
      {priced && currencies.length > 0 && (
        <StackedColumns
          title={`Invoice totals per month (${currencies.join(', ')})`}
          days={months.map((invoice) => invoice.period)}
          models={currencies}
          values={months.map((invoice) => currencies.map((currency) => (invoice.totals.find((total) => total.currency === currency)?.amountMicros ?? 0) / 1_000_000))}
          unit={currencies.join('/')}
          xLabel="month (UTC)"
        />
      )}
      {current !== undefined && current.lines.length > 0 && (
        <div class="table-wrap">
          <table id="invoice-table">
            <caption>
              {current.period} ({current.status === 'draft' ? 'draft: the month is still running' : 'final'}):{' '}
              {current.totals.map((total) => money(total.amountMicros, total.currency)).join(' + ')}
            </caption>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col">Plan</th>
                <th scope="col">Used</th>
                <th scope="col">Included</th>
                <th scope="col">Billable</th>
                <th scope="col">Price</th>
                <th scope="col">Amount</th>
              </tr>
            </thead>
            <tbody>
              {current.lines.map((line, index) => (
                <tr key={index}>
                  <th scope="row">{line.description}</th>
                  <td>{line.plan}</td>
                  <td class="number">
                    {line.used} {line.unit}
                  </td>
                  <td class="number">{line.included}</td>
                  <td class="number">{line.billable}</td>
                  <td class="number">
                    {formatNumber(line.unitPriceMicros / 1_000_000)} {line.currency} / {line.priceUnit}
                  </td>
                  <td class="number">{money(line.amountMicros, line.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

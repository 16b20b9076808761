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

/** A month in the list: its totals and how many lines it has. */
interface InvoiceSummary {
  period: string;
  status: 'final' | 'draft';
  totals: { currency: string; amountMicros: number }[];
  lines: number;
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
  const invoices = useApi<{ invoices: InvoiceSummary[] }>('/api/v1/invoices');
  const newest = invoices.data?.invoices[0];
  const detail = useApi<Invoice>(newest === undefined ? undefined : `/api/v1/invoices/${newest.period}`);
  if (invoices.error !== undefined) return <p class="muted small">Costs are not available to this key: {invoices.error}</p>;
  const list = invoices.data?.invoices ?? [];
  if (invoices.data === undefined) return null;
  const current = detail.data;
  const currencies = [...new Set(list.flatMap((invoice) => invoice.totals.map((total) => total.currency)))];
  const months = [...list].reverse();
  const priced = list.some((invoice) => invoice.lines > 0);
  return (
    <section class="costs" aria-labelledby="costs-title">
      <h2 id="costs-title">Costs</h2>
      {!priced && <p class="muted">No charges yet: usage is priced from the moment an operator puts the tenant on a plan (docs/billing.md, "Plans"), in whole minutes.</p>}
      <div class="table-wrap">
        <table id="invoices-table" class="compact">
          <caption>Invoices by month (UTC), newest first</caption>
          <thead>
            <tr>
              <th scope="col">Month</th>
              <th scope="col">Status</th>
              <th scope="col">Lines</th>
              <th scope="col">Total</th>
            </tr>
          </thead>
          <tbody>
            {list.map((invoice) => (
              <tr key={invoice.period} data-period={invoice.period}>
                <th scope="row">{invoice.period}</th>
                <td data-status={invoice.status}>{invoice.status === 'draft' ? 'draft (month running)' : 'final'}</td>
                <td class="number">{invoice.lines}</td>
                <td class="number">{invoice.totals.length === 0 ? '—' : invoice.totals.map((total) => money(total.amountMicros, total.currency)).join(' + ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
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
          <table id="invoice-lines">
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

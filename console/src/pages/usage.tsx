/** Usage: the ledger per model and day (GET /api/v1/usage?groupBy=model,day) as charts and a table. */
import { useState } from 'preact/hooks';
import { StackedColumns } from '../charts.tsx';
import { formatNumber } from '../format.ts';
import type { UsageRow } from '../types.ts';
import { EmptyState, ErrorNotice, Loading, PageHeader, useApi } from '../ui.tsx';
import { Costs } from './invoices.tsx';

const measures = [
  { field: 'requests', label: 'Requests', unit: 'requests' },
  { field: 'items', label: 'Items predicted', unit: 'items' },
  { field: 'computeMs', label: 'Compute time', unit: 'ms' },
  { field: 'promptTokens', label: 'Prompt tokens', unit: 'tokens' },
  { field: 'completionTokens', label: 'Completion tokens', unit: 'tokens' },
  { field: 'trainingSampleEpochs', label: 'Training sample-epochs', unit: 'sample-epochs' },
] as const;

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function UsagePage() {
  const [days, setDays] = useState(14);
  const [measure, setMeasure] = useState<(typeof measures)[number]['field']>('requests');
  const to = new Date();
  const from = new Date(to.getTime() - (days - 1) * 86_400_000);
  const usage = useApi<{ usage: UsageRow[] }>(`/api/v1/usage?groupBy=model,day&from=${isoDay(from)}&to=${isoDay(to)}`);
  const rows = usage.data?.usage ?? [];
  const dayList = Array.from({ length: days }, (_value, index) => isoDay(new Date(from.getTime() + index * 86_400_000)));
  const models = [...new Set(rows.map((row) => row.model ?? '(none)'))].sort();
  const chosen = measures.find((entry) => entry.field === measure)!;
  const values = dayList.map((day) => models.map((model) => rows.filter((row) => row.day === day && (row.model ?? '(none)') === model).reduce((sum, row) => sum + (row[measure] ?? 0), 0)));
  const totals = models.map((model) => {
    const own = rows.filter((row) => (row.model ?? '(none)') === model);
    const sum = (field: keyof UsageRow) => own.reduce((total, row) => total + Number(row[field] ?? 0), 0);
    return { model, requests: sum('requests'), failed: sum('failedRequests'), items: sum('items'), computeMs: sum('computeMs'), tokens: sum('promptTokens') + sum('completionTokens'), training: sum('trainingSampleEpochs') };
  });
  return (
    <section>
      <PageHeader title="Usage" />
      <div class="filters">
        <label for="usage-days">Period</label>
        <select id="usage-days" value={days} onChange={(event) => setDays(Number(event.currentTarget.value))}>
          <option value={7}>last 7 days</option>
          <option value={14}>last 14 days</option>
          <option value={30}>last 30 days</option>
          <option value={90}>last 90 days</option>
        </select>
        <label for="usage-measure">Measure</label>
        <select id="usage-measure" value={measure} onChange={(event) => setMeasure(event.currentTarget.value as typeof measure)}>
          {measures.map((entry) => (
            <option key={entry.field} value={entry.field}>
              {entry.label}
            </option>
          ))}
        </select>
      </div>
      <ErrorNotice>{usage.error}</ErrorNotice>
      {usage.loading && usage.data === undefined && <Loading what="usage" />}
      {usage.data !== undefined && rows.length === 0 && <EmptyState>No usage recorded in this period.</EmptyState>}
      {rows.length > 0 && (
        <>
          <StackedColumns title={`${chosen.label} per day and model`} days={dayList} models={models} values={values} unit={chosen.unit} />
          <div class="table-wrap">
            <table id="usage-table">
              <caption>Totals for the period</caption>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Requests</th>
                  <th scope="col">Failed</th>
                  <th scope="col">Items</th>
                  <th scope="col">Compute</th>
                  <th scope="col">Tokens</th>
                  <th scope="col">Training sample-epochs</th>
                </tr>
              </thead>
              <tbody>
                {totals.map((total) => (
                  <tr key={total.model}>
                    <th scope="row">{total.model}</th>
                    <td class="number">{formatNumber(total.requests)}</td>
                    <td class="number">{formatNumber(total.failed)}</td>
                    <td class="number">{formatNumber(total.items)}</td>
                    <td class="number">{formatNumber(total.computeMs, 3)} ms</td>
                    <td class="number">{formatNumber(total.tokens)}</td>
                    <td class="number">{formatNumber(total.training)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <Costs />
    </section>
  );
}

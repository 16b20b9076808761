/**
 * An invoice as JSON, CSV and a printable HTML page. All three are pure functions of the invoice,
 * so equal invoices give equal bytes. The HTML has no script and no external asset; its one inline
 * stylesheet is allowed by the hash in `invoiceContentSecurityPolicy`, so the page renders under a
 * strict CSP (`default-src 'none'`).
 */
import { createHash } from 'node:crypto';
import type { Invoice } from './invoices.ts';

/** Micro-units as a decimal amount with at least two places: 1234500 → "1.2345". */
export function formatMoney(micros: number, currency: string): string {
  const negative = micros < 0;
  const absolute = BigInt(Math.abs(micros));
  const whole = absolute / 1_000_000n;
  let fraction = (absolute % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
  return `${negative ? '-' : ''}${whole}.${fraction} ${currency}`;
}

export function invoiceJson(invoice: Invoice): string {
  return `${JSON.stringify(invoice, null, 2)}\n`;
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const csvColumns = ['period', 'tenant_id', 'plan', 'from', 'to', 'item', 'unit', 'used', 'included', 'billable', 'unit_price_micros', 'price_unit', 'currency', 'amount_micros'] as const;

export function invoiceCsv(invoice: Invoice): string {
  const rows: (string | number)[][] = [[...csvColumns]];
  for (const line of invoice.lines) {
    rows.push([invoice.period, invoice.tenantId, line.plan, line.from, line.to, line.item, line.unit, line.used, line.included, line.billable, line.unitPriceMicros, line.priceUnit, line.currency, line.amountMicros]);
  }
  for (const total of invoice.totals) rows.push([invoice.period, invoice.tenantId, '', invoice.from, invoice.to, 'total', '', '', '', '', '', '', total.currency, total.amountMicros]);
  return rows.map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** A decimal string with thousands separators (display): 1234567.5 → 1,234,567.5. */
function grouped(text: string): string {
  const [whole, fraction] = text.split('.');
  const withSeparators = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction === undefined ? withSeparators : `${withSeparators}.${fraction}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

const stylesheet = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef0f3; color: #1c2330; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 32px auto; background: #fff; padding: 44px 48px; border-radius: 6px; box-shadow: 0 1px 3px rgba(16, 24, 40, 0.12); }
header { display: flex; justify-content: space-between; align-items: flex-start; border-bottom: 2px solid #1c2330; padding-bottom: 20px; margin-bottom: 24px; }
h1 { margin: 0; font-size: 28px; letter-spacing: 0.02em; }
.issuer { color: #5b6576; margin-top: 4px; }
dl { display: grid; grid-template-columns: auto auto; gap: 2px 16px; margin: 0; text-align: right; }
dt { color: #5b6576; }
dd { margin: 0; font-weight: 600; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; text-transform: uppercase; letter-spacing: 0.06em; }
.status.final { background: #e3f4e8; color: #17633a; }
.status.draft { background: #fff3d6; color: #8a5a00; }
h2 { font-size: 15px; margin: 28px 0 8px; }
.segment { color: #5b6576; font-weight: normal; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: 0.05em; color: #5b6576; border-bottom: 1px solid #cfd4dc; padding: 6px 8px; }
td { border-bottom: 1px solid #eceef2; padding: 7px 8px; vertical-align: top; }
td.number, th.number { text-align: right; white-space: nowrap; }
td.item { white-space: nowrap; font-weight: 500; }
td.unit { color: #5b6576; white-space: nowrap; }
td.price { text-align: right; color: #5b6576; }
tfoot td { border-bottom: none; font-weight: 700; font-size: 16px; padding-top: 14px; }
.empty { color: #5b6576; font-style: italic; }
.note { color: #5b6576; font-size: 12px; margin-top: 28px; }
@media print {
  body { background: #fff; }
  main { margin: 0; box-shadow: none; padding: 0; max-width: none; }
  tr { break-inside: avoid; }
}
`;

const stylesheetHash = createHash('sha256').update(stylesheet).digest('base64');

/** The CSP an HTML invoice is served with: nothing but its own inline stylesheet. */
export const invoiceContentSecurityPolicy = `default-src 'none'; style-src 'sha256-${stylesheetHash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;

export function invoiceHtml(invoice: Invoice, options: { tenantName?: string } = {}): string {
  const segments = new Map<string, typeof invoice.lines>();
  for (const line of invoice.lines) {
    const key = `${line.plan}\u0000${line.from}\u0000${line.to}`;
    segments.set(key, [...(segments.get(key) ?? []), line]);
  }
  const day = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  const sections: string[] = [];
  for (const lines of segments.values()) {
    const first = lines[0]!;
    const rows = lines
      .map(
        (line) =>
          `<tr><td class="item">${escapeHtml(line.description)}</td><td class="number">${escapeHtml(grouped(line.used))}</td><td class="unit">${escapeHtml(line.unit)}</td><td class="number">${escapeHtml(grouped(line.included))}</td><td class="number">${escapeHtml(grouped(line.billable))}</td><td class="price">${escapeHtml(formatMoney(line.unitPriceMicros, line.currency))} / ${escapeHtml(line.priceUnit)}</td><td class="number">${escapeHtml(formatMoney(line.amountMicros, line.currency))}</td></tr>`,
      )
      .join('\n');
    sections.push(`<h2>Plan ${escapeHtml(first.plan)} <span class="segment">${escapeHtml(day(first.from))} – ${escapeHtml(day(first.to))}</span></h2>
<table>
<thead><tr><th>Item</th><th class="number">Used</th><th>Unit</th><th class="number">Included</th><th class="number">Billable</th><th class="number">Price</th><th class="number">Amount</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`);
  }
  const totals = invoice.totals.map((total) => `<tr><td colspan="6">Total ${escapeHtml(total.currency)}</td><td class="number">${escapeHtml(formatMoney(total.amountMicros, total.currency))}</td></tr>`).join('\n');
  const unbilled = invoice.unbilled.map((range) => `${escapeHtml(day(range.from))} – ${escapeHtml(day(range.to))}`).join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Invoice ${escapeHtml(invoice.period)} — ${escapeHtml(options.tenantName ?? invoice.tenantId)}</title>
<style>${stylesheet}</style>
</head>
<body>
<main>
<header>
<div><h1>Invoice</h1><div class="issuer">aiaas — AI models as a service</div></div>
<dl>
<dt>Tenant</dt><dd>${escapeHtml(options.tenantName ?? invoice.tenantId)}</dd>
<dt>Tenant id</dt><dd>${escapeHtml(invoice.tenantId)}</dd>
<dt>Period</dt><dd>${escapeHtml(invoice.period)} (UTC)</dd>
<dt>Status</dt><dd><span class="status ${invoice.status}">${invoice.status}</span></dd>
</dl>
</header>
${sections.length === 0 ? '<p class="empty">No billable usage in this period.</p>' : sections.join('\n')}
${invoice.totals.length === 0 ? '' : `<table><tfoot>\n${totals}\n</tfoot></table>`}
<p class="note">Included amounts are prorated by the seconds of the month each plan was in force. Each line is rounded half-up to a micro-unit; totals are the sums of the lines.${unbilled === '' ? '' : ` Not billed (no plan): ${unbilled}.`}</p>
</main>
</body>
</html>
`;
}

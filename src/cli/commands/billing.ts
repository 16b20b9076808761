import type { Plan } from '../../sdk/types.ts';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliFailure, CliUsageError, choiceOption, stringOption, type CommandDefinition } from '../command.ts';
import { json, timestamp, writeListing } from '../format.ts';
import { readJsonFile } from './jobs.ts';

/** Micro-units as a decimal amount: 1500000 → "1.500000". */
function money(micros: number, currency: string): string {
  const sign = micros < 0 ? '-' : '';
  const absolute = Math.abs(micros);
  return `${sign}${Math.floor(absolute / 1_000_000)}.${String(absolute % 1_000_000).padStart(6, '0')} ${currency}`;
}

/** A plans file as the server's --plans takes it ({"plans": [...]} or an array), or one plan. */
function plansOf(document: unknown): Array<Partial<Plan> & { name: string }> {
  const list = Array.isArray(document) ? document : typeof document === 'object' && document !== null && Array.isArray((document as { plans?: unknown }).plans) ? (document as { plans: unknown[] }).plans : [document];
  return list.map((entry, index) => {
    if (typeof entry !== 'object' || entry === null || typeof (entry as { name?: unknown }).name !== 'string') {
      throw new CliFailure('INVALID_PLAN', `plan ${index} has no "name"`);
    }
    return entry as Partial<Plan> & { name: string };
  });
}

export const billingCommands: readonly CommandDefinition[] = [
  {
    path: ['plans', 'ls'],
    summary: 'list billing plans (operator admins)',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const plans = await context.client().billing.listPlans({ signal: context.signal });
      writeListing(context, 'plans', plans, ['NAME', 'SOURCE', 'TENANTS', 'PER 1K PREDICTIONS', 'HARD CAPS', 'UPDATED'], (entry) => [
        entry.plan.name,
        entry.source,
        String(entry.tenants),
        money(entry.plan.prices.perThousandPredictions, entry.plan.currency),
        Object.entries(entry.plan.hardCap).map(([cap, value]) => `${cap}=${value}`).join(' ') || '-',
        timestamp(entry.updatedAt),
      ]);
      return 0;
    },
  },
  {
    path: ['plans', 'set'],
    summary: 'create or replace plans from a JSON file (operator admins)',
    usage: 'FILE',
    description: 'FILE holds one plan, an array of plans, or {"plans": [...]} (the server\'s --plans format). Money is integer micro-units; see docs/billing.md.',
    positionals: ['FILE'],
    server: true,
    json: true,
    examples: ['aiaas plans set plans.json'],
    async run(context) {
      const plans = plansOf(await readJsonFile(context.io, context.positionals[0] as string, 'plans file'));
      const stored = [];
      for (const plan of plans) {
        stored.push(await context.client().billing.putPlan(plan, { signal: context.signal }));
        if (!context.json) context.io.stdout.write(`plan ${plan.name} saved\n`);
      }
      if (context.json) context.io.stdout.write(json(stored));
      return 0;
    },
  },
  {
    path: ['plans', 'rm'],
    summary: 'delete a plan no tenant is on (operator admins)',
    usage: 'NAME',
    positionals: ['NAME'],
    server: true,
    async run(context) {
      await context.client().billing.deletePlan(context.positionals[0] as string, { signal: context.signal });
      context.io.stdout.write(`plan ${context.positionals[0] as string} deleted\n`);
      return 0;
    },
  },
  {
    path: ['tenants', 'plan'],
    summary: "show a tenant's plan history, or move it to a plan (operator admins)",
    usage: 'TENANT_ID [PLAN | --none]',
    description: 'With PLAN the tenant is on it from now; --none removes its plan (unlimited). Without either, prints its plan history.',
    positionals: ['TENANT_ID', 'PLAN?'],
    options: { none: { type: 'boolean', description: 'remove the plan: the tenant becomes unlimited' } },
    server: true,
    json: true,
    examples: ['aiaas tenants plan tenant_abc123 starter'],
    async run(context) {
      const tenantId = context.positionals[0] as string;
      const plan = context.positionals[1];
      const none = context.values['none'] === true;
      if (plan !== undefined && none) throw new CliUsageError('give a PLAN or --none, not both', 'tenants plan');
      const billing = context.client().billing;
      const view = plan === undefined && !none ? await billing.tenantPlan(tenantId, { signal: context.signal }) : await billing.setTenantPlan(tenantId, none ? null : (plan as string), { signal: context.signal });
      if (context.json) {
        context.io.stdout.write(json(view));
        return 0;
      }
      context.io.stdout.write(`tenant ${view.tenantId}: ${view.plan ?? 'no plan (unlimited)'}\n`);
      writeListing(context, 'plan history', view.history, ['PLAN', 'FROM', 'TO'], (period) => [period.plan, timestamp(period.effectiveFrom), period.effectiveTo === null ? 'now' : timestamp(period.effectiveTo)]);
      return 0;
    },
  },
  {
    path: ['quota'],
    summary: "this tenant's plan, this month's use and what is left of each cap",
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const quota = await context.client().billing.quota({ signal: context.signal });
      if (context.json) {
        context.io.stdout.write(json(quota));
        return 0;
      }
      const lines = [`plan: ${quota.plan?.name ?? 'none (unlimited)'}`, `period: ${quota.period} (resets in ${quota.resetsInSeconds} s)`];
      lines.push(`predictions: ${quota.used.predictions}`, `tokens: ${quota.used.promptTokens} prompt, ${quota.used.completionTokens} completion`, `training worker-seconds: ${quota.used.trainingWorkerSeconds}`);
      if (quota.plan !== null) lines.push(`charges so far: ${money(quota.spendMicros, quota.plan.currency)}`);
      for (const [cap, left] of Object.entries(quota.remaining)) lines.push(`remaining ${cap}: ${left}`);
      context.io.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    },
  },
  {
    path: ['invoices'],
    summary: "monthly invoices: list them, or print one as a table, JSON, CSV or HTML",
    usage: '[PERIOD] [--format table|json|csv|html] [--out FILE] [--tenant ID]',
    description: 'Without PERIOD (YYYY-MM), lists the invoices, newest first. With it, prints that month\'s invoice; --out writes it to FILE instead (an HTML invoice prints from a browser).',
    positionals: ['PERIOD?'],
    options: {
      format: { type: 'string', valueName: 'FORMAT', description: 'table (default), json, csv or html' },
      out: { type: 'string', valueName: 'FILE', description: 'write the invoice to FILE' },
      tenant: { type: 'string', valueName: 'ID', description: "operator admins: another tenant's invoices" },
    },
    server: true,
    json: true,
    examples: ['aiaas invoices', 'aiaas invoices 2026-11 --format html --out invoice.html'],
    async run(context) {
      const command = 'invoices';
      const period = context.positionals[0];
      const tenant = stringOption(context.values, 'tenant');
      const format = choiceOption(context.values, 'format', ['table', 'json', 'csv', 'html'] as const, command) ?? (context.json ? 'json' : 'table');
      const out = stringOption(context.values, 'out');
      const billing = context.client().billing;
      const options = { signal: context.signal, ...(tenant === undefined ? {} : { tenant }) };
      if (period === undefined) {
        if (out !== undefined || (format !== 'table' && format !== 'json')) throw new CliUsageError('--out and --format csv|html need a PERIOD', command);
        const list = await billing.invoices(options);
        writeListing({ io: context.io, json: format === 'json' }, 'invoices', list, ['PERIOD', 'STATUS', 'LINES', 'TOTAL'], (invoice) => [
          invoice.period,
          invoice.status,
          String(invoice.lines),
          invoice.totals.map((total) => money(total.amountMicros, total.currency)).join(', ') || money(0, ''),
        ]);
        return 0;
      }
      if (!/^\d{4}-\d{2}$/.test(period)) throw new CliUsageError(`PERIOD must be YYYY-MM, got "${period}"`, command);
      let text: string;
      if (format === 'csv' || format === 'html') text = await billing.invoiceText(period, format, options);
      else {
        const invoice = await billing.invoice(period, options);
        if (format === 'json') text = json(invoice);
        else {
          const rows = invoice.lines.map((line) => `${line.plan.padEnd(12)} ${line.description.padEnd(34)} ${line.billable.padStart(14)} ${line.unit.padEnd(14)} ${money(line.amountMicros, line.currency).padStart(18)}`);
          const totals = invoice.totals.map((total) => `${'total'.padEnd(96)} ${money(total.amountMicros, total.currency).padStart(18)}`);
          text = [`invoice ${invoice.period} (${invoice.status}) for ${invoice.tenantId}`, ...(rows.length === 0 ? ['no billable usage'] : rows), ...totals].join('\n') + '\n';
        }
      }
      if (out === undefined) context.io.stdout.write(text);
      else {
        const path = resolve(context.io.cwd, out);
        await writeFile(path, text);
        context.io.stderr.write(`wrote ${path}\n`);
      }
      return 0;
    },
  },
];

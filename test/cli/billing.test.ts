/** `aiaas plans`, `aiaas tenants plan` and `aiaas quota` against a real server. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { createTenant, startTestServer, type TestServer } from '../http/helpers.ts';
import { captureIo } from './helpers.ts';

let server: TestServer;
let url: string;
let directory: string;

beforeAll(async () => {
  server = await startTestServer();
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  directory = await mkdtemp(join(tmpdir(), 'aiaas-cli-plans-'));
});
afterAll(async () => {
  await server?.close();
  await rm(directory, { recursive: true, force: true });
});

async function run(key: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo({ env: { AIAAS_SERVER: url, AIAAS_API_KEY: key }, cwd: directory });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('aiaas plans / tenants plan / quota', () => {
  it('sets plans from a file, lists them, moves a tenant, shows its quota, and deletes an unused plan', async () => {
    await writeFile(join(directory, 'plans.json'), JSON.stringify({ plans: [{ name: 'gold', prices: { perThousandPredictions: 1_500_000 }, hardCap: { predictions: 500 } }, { name: 'spare' }] }));
    const set = await run(server.adminKey, 'plans', 'set', 'plans.json');
    expect(set).toMatchObject({ code: 0, out: 'plan gold saved\nplan spare saved\n' });

    const listed = await run(server.adminKey, 'plans', 'ls');
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/^NAME\s+SOURCE\s+TENANTS/);
    expect(listed.out).toMatch(/gold\s+api\s+0\s+1\.500000 USD\s+predictions=500/);

    const tenant = await createTenant(server, 'cli-billed');
    const moved = await run(server.adminKey, 'tenants', 'plan', tenant.id, 'gold');
    expect(moved.code).toBe(0);
    expect(moved.out).toContain(`tenant ${tenant.id}: gold`);
    const history = JSON.parse((await run(server.adminKey, 'tenants', 'plan', tenant.id, '--json')).out);
    expect(history).toMatchObject({ tenantId: tenant.id, plan: 'gold', history: [{ plan: 'gold', effectiveTo: null }] });

    const quota = await run(tenant.adminKey, 'quota');
    expect(quota.code).toBe(0);
    expect(quota.out).toContain('plan: gold');
    expect(quota.out).toContain('remaining predictions: 500');

    const inUse = await run(server.adminKey, 'plans', 'rm', 'gold');
    expect(inUse.code).toBe(1);
    expect(inUse.err).toContain('CONFLICT');
    expect((await run(server.adminKey, 'plans', 'rm', 'spare')).code).toBe(0);
    expect((await run(server.adminKey, 'tenants', 'plan', tenant.id, '--none')).out).toContain('no plan (unlimited)');
    expect((await run(server.adminKey, 'tenants', 'plan', tenant.id, 'gold', '--none')).code).toBe(2);
  });

  it('lists invoices and prints one as a table, CSV or an HTML file', async () => {
    const tenant = await createTenant(server, 'cli-invoiced');
    const period = new Date().toISOString().slice(0, 7);
    const listed = await run(tenant.adminKey, 'invoices');
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(new RegExp(`^PERIOD\\s+STATUS\\s+LINES\\s+TOTAL\\n${period}\\s+draft\\s+0\\s+`));
    const table = await run(tenant.adminKey, 'invoices', period);
    expect(table.out).toBe(`invoice ${period} (draft) for ${tenant.id}\nno billable usage\n`);
    const csv = await run(tenant.adminKey, 'invoices', period, '--format', 'csv');
    expect(csv.out.split('\r\n')[0]).toBe('period,tenant_id,plan,from,to,item,unit,used,included,billable,unit_price_micros,price_unit,currency,amount_micros');
    const html = await run(tenant.adminKey, 'invoices', period, '--format', 'html', '--out', 'invoice.html');
    expect(html.code).toBe(0);
    expect(html.err).toContain('invoice.html');
    const page = await readFile(join(directory, 'invoice.html'), 'utf8');
    expect(page.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(page).toContain('No billable usage in this period.');
    expect((await run(tenant.adminKey, 'invoices', 'last-month')).code).toBe(2);
    expect((await run(tenant.adminKey, 'invoices', '--format', 'csv')).code).toBe(2);
  });
});

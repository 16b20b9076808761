/**
 * Invoices over the real server: inferences metered by the usage ledger, a plan change in the middle
 * of the month, and the invoice of the closed month as JSON, CSV and HTML, byte-identical when
 * asked again; access rules and content negotiation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, classifierModel, createKey, createTenant, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

let clock = new Date('2026-11-10T00:00:00.000Z');
let server: TestServer;
let tenant: { id: string; adminKey: string };

const monthSeconds = 30n * 86_400n;
const infer = (rows: number) =>
  call(server.app, tenant.adminKey, 'POST', '/v2/models/blobs/infer', { inputs: [{ name: 'input', shape: [rows, 4], datatype: 'FP32', data: Array.from({ length: rows * 4 }, () => 0.5) }] });

/** billable × price / 1 000 over the month's seconds, half-up: the expected line amount. */
function expectedAmount(used: bigint, included: bigint, segmentSeconds: bigint, price: bigint): number {
  const billable = used * monthSeconds - included * segmentSeconds;
  const positive = billable > 0n ? billable : 0n;
  return Number((2n * positive * price + 1000n * monthSeconds) / (2n * 1000n * monthSeconds));
}

beforeAll(async () => {
  server = await startTestServer({ rateLimitBurst: 1000 }, { now: () => clock });
  tenant = await createTenant(server, 'billed');
  const uploaded = await uploadOnnxModel(server, tenant.adminKey, 'blobs', classifierModel().exportOnnx());
  if (uploaded.statusCode !== 201) throw new Error(uploaded.body);
  await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/small', { name: 'small', prices: { perThousandPredictions: 3_000_001 }, included: { predictions: 2 } });
  await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/large', { name: 'large', prices: { perThousandPredictions: 1_000_000 }, included: { predictions: 30 } });
  await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'small' });
  expect((await infer(3)).statusCode).toBe(200);
  expect((await infer(4)).statusCode).toBe(200);
  clock = new Date('2026-11-20T12:00:00.000Z');
  await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'large' });
  expect((await infer(25)).statusCode).toBe(200);
  clock = new Date('2026-12-02T08:00:00.000Z');
});
afterAll(async () => server?.close());

describe('GET /api/v1/invoices/:period', () => {
  it('bills each part of the month at its plan, prorated by seconds, from the ledger', async () => {
    const response = await call(server.app, tenant.adminKey, 'GET', '/api/v1/invoices/2026-11');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    const invoice = response.json();
    expect(invoice).toMatchObject({ tenantId: tenant.id, period: '2026-11', status: 'final', unbilled: [{ from: '2026-11-01T00:00:00.000Z', to: '2026-11-10T00:00:00.000Z' }] });
    const small = 10n * 86_400n + 12n * 3600n;
    const large = monthSeconds - 19n * 86_400n - 12n * 3600n;
    const lines = invoice.lines.map(({ plan, item, used, amountMicros }: Record<string, unknown>) => ({ plan, item, used, amountMicros }));
    expect(lines).toEqual([
      { plan: 'small', item: 'predictions', used: '7', amountMicros: expectedAmount(7n, 2n, small, 3_000_001n) },
      { plan: 'large', item: 'predictions', used: '25', amountMicros: expectedAmount(25n, 30n, large, 1_000_000n) },
    ]);
    // Each plan held 10.5 of 30 days. small: 7 − 2 × 0.35 = 6.3 billable × 3 000 001 / 1 000 = 18 900.0063 → 18 900;
    // large: 25 − 30 × 0.35 = 14.5 billable × 1 000 000 / 1 000 = 14 500.
    expect(lines.map((line: { amountMicros: number }) => line.amountMicros)).toEqual([18_900, 14_500]);
    expect(invoice.totals).toEqual([{ currency: 'USD', amountMicros: 33_400 }]);
  });

  it('recomputes a closed month to the same bytes in JSON, CSV and HTML, by ?format= or Accept', async () => {
    for (const [query, accept, type] of [
      ['', 'application/json', 'application/json'],
      ['?format=csv', '*/*', 'text/csv'],
      ['', 'text/csv', 'text/csv'],
      ['?format=html', '*/*', 'text/html'],
      ['', 'text/html,application/xhtml+xml', 'text/html'],
    ] as const) {
      const first = await call(server.app, tenant.adminKey, 'GET', `/api/v1/invoices/2026-11${query}`, undefined, { accept });
      clock = new Date(clock.getTime() + 3_600_000);
      const second = await call(server.app, tenant.adminKey, 'GET', `/api/v1/invoices/2026-11${query}`, undefined, { accept });
      expect(first.headers['content-type']).toBe(`${type}; charset=utf-8`);
      expect(Buffer.compare(first.rawPayload, second.rawPayload)).toBe(0);
      if (type === 'text/html') {
        expect(first.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; frame-ancestors 'none'/);
        expect(first.body).not.toMatch(/<script|<link|https?:\/\/|src=/i);
        expect(first.body).toContain('0.0334 USD');
      }
      if (type === 'text/csv') expect(first.body.split('\r\n').at(-2)).toBe(`2026-11,${tenant.id},,2026-11-01T00:00:00.000Z,2026-12-01T00:00:00.000Z,total,,,,,,,USD,33400`);
    }
  });

  it('lists the months, refuses model-restricted keys and other tenants, and lets operator admins choose the tenant', async () => {
    const list = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/invoices')).json().invoices;
    expect(list.map((entry: { period: string; status: string }) => [entry.period, entry.status])).toEqual([['2026-12', 'draft'], ['2026-11', 'final']]);
    const restricted = await createKey(server, tenant.adminKey, 'viewer', { allowedModels: ['blobs'] });
    expect((await call(server.app, restricted.key, 'GET', '/api/v1/invoices/2026-11')).statusCode).toBe(403);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/invoices/2026-11?tenant=' + server.context.bootstrap.tenantId)).statusCode).toBe(403);
    const operator = await call(server.app, server.adminKey, 'GET', `/api/v1/invoices/2026-11?tenant=${tenant.id}`);
    expect(operator.json().totals).toEqual([{ currency: 'USD', amountMicros: 33_400 }]);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/invoices/2026-13')).statusCode).toBe(400);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/invoices/november')).statusCode).toBe(400);
  });
});

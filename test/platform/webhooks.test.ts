/**
 * Webhooks against a real local HTTP receiver: signed deliveries (the receiver checks the HMAC),
 * a retry after a 500, persisted delivery state, the soft-cap event end to end, and the model pulls'
 * SSRF rules when a URL is set and again at delivery.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook, WebhookService } from '../../src/platform/webhooks.ts';
import { call, classifierModel, createTenant, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A receiver that answers the statuses given, in order (then 200), and records every request. */
async function startReceiver(statuses: number[]): Promise<{ url: string; received: Received[]; next(count: number): Promise<void>; close(): Promise<void> }> {
  const received: Received[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.statusCode = statuses.shift() ?? 200;
      response.end('ok');
      for (const waiter of waiters.filter((entry) => received.length >= entry.count)) waiter.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    next: (count) => (received.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** What a receiver does: recompute the HMAC over "t.body" and compare in constant time. */
function verify(secret: string, header: string | undefined, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (match === null) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

describe('webhook deliveries', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ webhookAllowPrivate: true, rateLimitBurst: 1000 }, { webhookRetryBaseMs: 20 });
  });
  afterAll(async () => server?.close());

  it('signs each delivery, retries after a 500, and shows the secret only once', async () => {
    const receiver = await startReceiver([500]);
    try {
      const tenant = await createTenant(server, 'hooked');
      const put = await call(server.app, tenant.adminKey, 'PUT', '/api/v1/webhooks', { url: receiver.url, events: ['webhook.test', 'quota.soft_cap_crossed'] });
      expect(put.statusCode).toBe(200);
      const { secret } = put.json();
      expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      const shown = await call(server.app, tenant.adminKey, 'GET', '/api/v1/webhooks');
      expect(shown.json()).toEqual({ url: receiver.url, events: ['quota.soft_cap_crossed', 'webhook.test'], createdAt: put.json().createdAt });
      expect(shown.body).not.toContain(secret);
      // Sealed at rest under the tenant's key.
      const row = await server.context.database.db.selectFrom('webhooks').select('secret_text').where('tenant_id', '=', tenant.id).executeTakeFirstOrThrow();
      expect(row.secret_text.startsWith('enc:v1:')).toBe(true);

      expect((await call(server.app, tenant.adminKey, 'POST', '/api/v1/webhooks/test')).json()).toEqual({ queued: true });
      await receiver.next(2);
      await server.context.webhooks.idle();
      const [first, second] = receiver.received;
      expect(first!.body).toBe(second!.body);
      for (const delivery of [first!, second!]) {
        expect(delivery.headers['content-type']).toBe('application/json');
        expect(verify(secret, delivery.headers['x-aiaas-signature'] as string, delivery.body)).toBe(true);
        expect(verify('whsec_wrong', delivery.headers['x-aiaas-signature'] as string, delivery.body)).toBe(false);
      }
      expect(JSON.parse(second!.body)).toMatchObject({ event: 'webhook.test', tenantId: tenant.id, data: { message: expect.any(String) } });
      const deliveries = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/webhooks/deliveries')).json().deliveries;
      expect(deliveries).toHaveLength(1);
      expect(deliveries[0]).toMatchObject({ event: 'webhook.test', status: 'delivered', attempts: 2, lastError: null });

      expect((await call(server.app, tenant.adminKey, 'DELETE', '/api/v1/webhooks')).statusCode).toBe(204);
      expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/webhooks')).statusCode).toBe(404);
    } finally {
      await receiver.close();
    }
  });

  it('keeps undelivered events in the database: a new service (a restarted server) delivers them', async () => {
    const receiver = await startReceiver([503]);
    const tenant = await createTenant(server, 'restarted');
    const cipher = { seal: async (_tenant: string, _place: unknown, text: string) => text, open: async (_tenant: string, _place: unknown, text: string) => text };
    const options = { db: server.context.database.db, cipher, policy: { allowedHosts: [], allowPrivate: true }, now: () => new Date(), pollMs: 0, retryBaseMs: 0 };
    const before = new WebhookService(options);
    try {
      await before.set(tenant.id, { url: receiver.url, events: ['webhook.test'] });
      await before.notify(tenant.id, 'webhook.test', { n: 1 });
      await before.idle();
      await before.close();
      expect(receiver.received).toHaveLength(1);
      expect((await before.deliveries(tenant.id))[0]).toMatchObject({ status: 'pending', attempts: 1, lastError: 'the receiver answered 503' });
      const after = new WebhookService(options);
      after.kick();
      await receiver.next(2);
      await after.idle();
      await after.close();
      expect((await after.deliveries(tenant.id))[0]).toMatchObject({ status: 'delivered', attempts: 2 });
      expect(receiver.received[1]!.body).toBe(receiver.received[0]!.body);
    } finally {
      await receiver.close();
    }
  });

  it('sends quota.soft_cap_crossed once when a tenant crosses its soft cap', async () => {
    const receiver = await startReceiver([]);
    try {
      const tenant = await createTenant(server, 'soft');
      const uploaded = await uploadOnnxModel(server, tenant.adminKey, 'blobs', classifierModel().exportOnnx());
      expect(uploaded.statusCode).toBe(201);
      await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/soft', { name: 'soft', softCap: { predictions: 3 } });
      await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'soft' });
      const { secret } = (await call(server.app, tenant.adminKey, 'PUT', '/api/v1/webhooks', { url: receiver.url, events: ['quota.soft_cap_crossed'] })).json();
      for (let index = 0; index < 6; index++) {
        const response = await call(server.app, tenant.adminKey, 'POST', '/v2/models/blobs/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
        expect(response.statusCode).toBe(200);
      }
      await receiver.next(1);
      await server.context.webhooks.idle();
      expect(receiver.received).toHaveLength(1);
      const event = JSON.parse(receiver.received[0]!.body);
      expect(event).toMatchObject({ event: 'quota.soft_cap_crossed', tenantId: tenant.id, data: { plan: 'soft', caps: ['predictions'], used: { predictions: 3 }, softCap: { predictions: 3 } } });
      expect(verify(secret, receiver.received[0]!.headers['x-aiaas-signature'] as string, receiver.received[0]!.body)).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});

describe('webhook SSRF rules (those of model pulls)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => server?.close());

  it('refuses loopback, link-local and private addresses, other schemes and unknown events', async () => {
    for (const [url, reason] of [
      ['http://127.0.0.1:9/hook', 'private-address'],
      ['http://169.254.169.254/latest/meta-data', 'private-address'],
      ['http://[::1]/hook', 'private-address'],
      ['http://10.1.2.3/hook', 'private-address'],
      ['http://localhost/hook', 'private-address'],
      ['ftp://example.com/hook', 'scheme'],
      ['https://user:pass@example.com/hook', 'scheme'],
    ] as const) {
      const response = await call(server.app, server.adminKey, 'PUT', '/api/v1/webhooks', { url, events: ['webhook.test'] });
      expect({ url, status: response.statusCode, code: response.json().error.code, reason: response.json().error.details?.reason }).toEqual({ url, status: 403, code: 'WEBHOOK_URL_REFUSED', reason });
    }
    const unknown = await call(server.app, server.adminKey, 'PUT', '/api/v1/webhooks', { url: 'https://example.com/hook', events: ['quota.everything'] });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.details).toEqual({ field: 'events' });
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/webhooks')).statusCode).toBe(404);
  });

  it('checks the address again at delivery: a stored loopback URL is never called', async () => {
    const receiver = await startReceiver([]);
    const service = new WebhookService({
      db: server.context.database.db,
      cipher: { seal: async (_tenant, _place, text) => text, open: async (_tenant, _place, text) => text },
      policy: { allowedHosts: [], allowPrivate: false },
      now: () => new Date(),
      pollMs: 0,
      maxAttempts: 1,
    });
    try {
      const tenantId = server.context.bootstrap.tenantId;
      await server.context.database.db
        .insertInto('webhooks')
        .values({ tenant_id: tenantId, url: receiver.url, events_json: JSON.stringify(['webhook.test']), secret_text: 'whsec_x', created_at: new Date().toISOString() })
        .execute();
      await service.notify(tenantId, 'webhook.test', {});
      await service.idle();
      expect(receiver.received).toHaveLength(0);
      const [delivery] = await service.deliveries(tenantId);
      expect(delivery).toMatchObject({ status: 'failed', attempts: 1 });
      expect(delivery!.lastError).toContain('127.0.0.1');
    } finally {
      await service.close();
      await receiver.close();
    }
  });

  it('signs as documented: hex HMAC-SHA256 of "t.body"', () => {
    expect(signWebhook('secret', 1700000000, '{"a":1}')).toBe(`t=1700000000,v1=${createHmac('sha256', 'secret').update('1700000000.{"a":1}').digest('hex')}`);
  });
});

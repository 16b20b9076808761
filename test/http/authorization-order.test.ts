/**
 * Authorization comes before validation: a caller without a route's permission learns nothing about
 * what the route accepts (403, not a 400 describing the body's shape), and one without a key gets 401.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeDescriptions, routeKey } from '../../src/http/openapi.ts';
import { call, createKey, createTenant, startTestServer, type TestServer } from './helpers.ts';

let server: TestServer;
let viewerKey: string;
let inferenceKey: string;
let tenantAdminKey: string;

beforeAll(async () => {
  server = await startTestServer();
  const tenant = await createTenant(server, 'order');
  tenantAdminKey = tenant.adminKey;
  viewerKey = (await createKey(server, tenant.adminKey, 'viewer')).key;
  inferenceKey = (await createKey(server, tenant.adminKey, 'inference')).key;
});
afterAll(async () => server.close());

const invalidModel = { name: 42, unexpected: { deeply: ['nested'] } };

describe('permission before schema validation', () => {
  it('answers a viewer POSTing an invalid body to a models:write route with 403, not 400', async () => {
    const response = await call(server.app, viewerKey, 'POST', '/api/v1/models', invalidModel);
    expect(response.statusCode).toBe(403);
    expect(response.json().error.code).toBe('FORBIDDEN');
    expect(response.json().error.details).toEqual({ permission: 'models:write', role: 'viewer' });
    expect(response.body).not.toMatch(/unexpected|name/);
  });

  it('answers an invalid query string and invalid params with 403 for a key without the permission', async () => {
    expect((await call(server.app, viewerKey, 'GET', '/api/v1/keys?bogus=1')).statusCode).toBe(403);
    expect((await call(server.app, viewerKey, 'PUT', '/api/v1/models/m/aliases/bad%20alias', { nonsense: true })).statusCode).toBe(403);
    expect((await call(server.app, tenantAdminKey, 'GET', '/api/v1/tenants?bogus=1')).statusCode).toBe(403);
  });

  it('answers 401 without a key, whatever the body', async () => {
    const response = await call(server.app, undefined, 'POST', '/api/v1/models', invalidModel);
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('UNAUTHENTICATED');
  });

  it('still validates for a caller who holds the permission (400 naming the problem)', async () => {
    const response = await call(server.app, tenantAdminKey, 'POST', '/api/v1/models', invalidModel);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('INVALID_REQUEST');
  });

  it('holds for every /api/v1 route that needs a permission: an inference-only key sending garbage gets 403', async () => {
    const checked: string[] = [];
    const answeredOtherwise: string[] = [];
    for (const route of server.app.registeredRoutes) {
      const key = routeKey(route);
      const permission = routeDescriptions[key]?.permission;
      if (!route.url.startsWith('/api/v1/') || route.method === 'HEAD' || permission === undefined || permission === 'none' || permission === 'any' || permission === 'inference') continue;
      const url = `${route.url.replace(/:[A-Za-z0-9_]+/g, '!bad!')}?bogus=1`;
      const method = route.method as 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
      const response = await call(server.app, inferenceKey, method, url, method === 'GET' || method === 'DELETE' ? undefined : { bogus: [1] });
      checked.push(key);
      if (response.statusCode !== 403) answeredOtherwise.push(`${key}: ${response.statusCode} ${response.body.slice(0, 120)}`);
    }
    expect(checked.length).toBeGreaterThan(60);
    expect(answeredOtherwise).toEqual([]);
  });
});

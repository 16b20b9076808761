import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodeKeyword } from '../../src/http/schemas/validation.ts';
import { call, startTestServer, type TestServer } from './helpers.ts';

let server: TestServer;
let document: OpenApiDocument;

interface Operation {
  operationId: string;
  parameters?: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: Record<string, unknown> }> }>;
}
interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Record<string, unknown>> };
}

beforeAll(async () => {
  server = await startTestServer();
  document = (await call(server.app, undefined, 'GET', '/openapi.json')).json();
});
afterAll(async () => server.close());

function operations(): [string, string, Operation][] {
  return Object.entries(document.paths).flatMap(([path, byMethod]) => Object.entries(byMethod).map(([method, operation]): [string, string, Operation] => [method, path, operation]));
}

/** Routes that take no request body at all. */
const bodiless = new Set(['post /api/v1/jobs/{id}/cancel', 'post /v2/repository/models/{name}/load', 'post /v2/repository/models/{name}/unload', 'post /api/v1/admin/backups', 'post /api/v1/webhooks/test', 'post /api/v1/sweeps/{id}/cancel', 'post /api/v1/sweeps/{id}/register', 'post /api/v1/models/{name}/versions/{version}/cost/calibrate']);

describe('/openapi.json', () => {
  it('gives every registered route its parameters, request body and per-status response schemas', () => {
    expect(document.openapi).toMatch(/^3\.1\./);
    const routes = server.app.registeredRoutes;
    expect(routes.length).toBeGreaterThan(50);
    for (const route of routes) expect(route.schema, `${route.method} ${route.url} declares no schema`).toBeDefined();
    const ids = new Set<string>();
    for (const [method, path, operation] of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      ids.add(operation.operationId);
      // Every path parameter is declared, every parameter with a schema.
      const pathNames = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
      const declared = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path');
      expect(declared.map((parameter) => parameter.name), where).toEqual(pathNames);
      for (const parameter of operation.parameters ?? []) expect(Object.keys(parameter.schema).length, `${where} ${parameter.name}`).toBeGreaterThan(0);
      // A request body with a non-empty schema per content type, unless the route takes none.
      if (['post', 'put', 'patch'].includes(method) && !bodiless.has(`${method} ${path}`)) {
        const bodies = Object.values(operation.requestBody?.content ?? {});
        expect(bodies.length, `${where} has no request body`).toBeGreaterThan(0);
        for (const body of bodies) expect(Object.keys(body.schema).length, where).toBeGreaterThan(0);
      }
      // At least one success status (2xx, or the root's redirect), each with a non-empty schema unless it has no body; errors by reference.
      // A redirect (GET / to the console) is its route's success.
      const successes = Object.keys(operation.responses).filter((status) => /^2\d\d$/.test(status) || (status === '302' && path === '/'));
      expect(successes.length, where).toBeGreaterThan(0);
      for (const status of successes) {
        const response = operation.responses[status]!;
        expect(response.description, `${where} ${status}`).not.toBe('UNDOCUMENTED');
        for (const content of Object.values(response.content ?? {})) expect(Object.keys(content.schema).length, `${where} ${status}`).toBeGreaterThan(0);
      }
      const errorSchema = operation.responses.default?.content?.['application/json']?.schema.$ref;
      const ollama = path.startsWith('/api/') && !path.startsWith('/api/v1/');
      const expected = path.startsWith('/v1/') ? 'OpenAiError' : path.startsWith('/v2') || path.startsWith('/tfserving') || ollama ? 'ProtocolError' : 'Error';
      expect(errorSchema, where).toBe(`#/components/schemas/${expected}`);
    }
    expect(ids.size).toBe(operations().length);
  });

  it('holds only valid JSON Schema (2020-12, as OpenAPI 3.1 uses) whose references resolve', () => {
    const ajv = new Ajv2020.default({ strict: true, allowUnionTypes: true });
    ajv.addKeyword(errorCodeKeyword);
    ajv.addSchema({ $id: 'components', ...document.components.schemas }, 'components');
    const schemas: [string, Record<string, unknown>][] = Object.entries(document.components.schemas);
    for (const [method, path, operation] of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      for (const parameter of operation.parameters ?? []) schemas.push([`${where} ${parameter.name}`, parameter.schema]);
      for (const [type, body] of Object.entries(operation.requestBody?.content ?? {})) schemas.push([`${where} body ${type}`, body.schema]);
      for (const [status, response] of Object.entries(operation.responses)) {
        for (const [type, content] of Object.entries(response.content ?? {})) {
          const ref = content.schema.$ref;
          if (typeof ref === 'string') {
            expect(document.components.schemas[ref.replace('#/components/schemas/', '')], `${where} ${status}`).toBeDefined();
            continue;
          }
          schemas.push([`${where} ${status} ${type}`, content.schema]);
        }
      }
    }
    // Many operations share a schema: each distinct one is compiled once.
    const distinct = new Map(schemas.map(([where, schema]) => [JSON.stringify(schema), where]));
    for (const [text, where] of distinct) expect(() => ajv.compile(JSON.parse(text)), where).not.toThrow();
  });
});

describe('request validation from the declared schemas', () => {
  it('refuses a wrongly typed field with INVALID_REQUEST naming the field', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'typed', description: 5 });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatchObject({ code: 'INVALID_REQUEST', details: { where: 'body', field: 'description' } });
    expect(response.json().error.message).toBe("'description' must be a string; got 5");
    // Nothing was coerced into being: the model does not exist.
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/typed')).statusCode).toBe(404);
  });

  it('refuses unknown fields and query parameters, listing the allowed ones', async () => {
    const field = await call(server.app, server.adminKey, 'POST', '/api/v1/tenants', { name: 'acme', plan: 'gold' });
    expect(field.statusCode).toBe(400);
    expect(field.json().error).toMatchObject({ code: 'INVALID_REQUEST', message: "Unknown field 'plan'", details: { where: 'body', field: 'plan', allowed: ['name'] } });
    const query = await call(server.app, server.adminKey, 'GET', '/api/v1/audit?after=0&url=http://example.com');
    expect(query.statusCode).toBe(400);
    expect(query.json().error).toMatchObject({ code: 'INVALID_REQUEST', details: { where: 'querystring', parameter: 'url', allowed: ['after', 'limit'] } });
  });

  it('cuts echoed names short', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/tenants', { name: 'acme', ['k'.repeat(100_000)]: 1 });
    expect(response.statusCode).toBe(400);
    expect(response.body.length).toBeLessThan(1000);
  });

  it('keeps V2 tensor errors as INVALID_TENSOR in the protocol error shape', async () => {
    const response = await call(server.app, server.adminKey, 'POST', '/v2/models/any/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, -3], data: [1] }] });
    expect(response.statusCode).toBe(400);
    expect(response.headers['x-aiaas-error-code']).toBe('INVALID_TENSOR');
    expect(response.json()).toEqual({ error: "'inputs.0.shape.1' must be an integer ≥ 0; got -3" });
  });
});

import { describe, expect, it } from 'vitest';
import { AiaasApiError, AiaasClient, AiaasConnectionError, apiErrorFrom, parseJsonAllowingNonFinite } from '../../src/sdk/index.ts';

describe('apiErrorFrom', () => {
  it('reads the platform shape', () => {
    const error = apiErrorFrom(
      404,
      new Headers(),
      JSON.stringify({ error: { code: 'MODEL_NOT_FOUND', message: "model 'x' not found", details: { name: 'x' } } }),
    );
    expect(AiaasApiError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND', message: "model 'x' not found", details: { name: 'x' } });
  });

  it('reads the V2/TF-Serving shape with the code header and Retry-After', () => {
    const error = apiErrorFrom(503, new Headers({ 'x-aiaas-error-code': 'QUEUE_FULL', 'retry-after': '2' }), JSON.stringify({ error: 'queue full' }));
    expect(error).toMatchObject({ status: 503, code: 'QUEUE_FULL', message: 'queue full', details: undefined, retryAfterSeconds: 2 });
  });

  it('falls back to a code from the status when the answer has none', () => {
    expect(apiErrorFrom(400, new Headers(), JSON.stringify({ error: 'bad shape' }))).toMatchObject({ code: 'INVALID_REQUEST', message: 'bad shape' });
    expect(apiErrorFrom(502, new Headers(), '<html>Bad Gateway</html>')).toMatchObject({ status: 502, code: 'INTERNAL', message: 'HTTP 502' });
    expect(apiErrorFrom(401, new Headers(), '')).toMatchObject({ code: 'UNAUTHENTICATED', message: 'HTTP 401' });
    expect(apiErrorFrom(418, new Headers(), 'short and plain')).toMatchObject({ code: 'HTTP_418', message: 'short and plain' });
  });
});

describe('client error mapping', () => {
  it('maps both error shapes from real responses and sends the key', async () => {
    const requests: Request[] = [];
    const client = new AiaasClient({
      baseUrl: 'http://aiaas.test/',
      apiKey: 'aiaas_secret',
      fetch: async (input, init) => {
        const request = new Request(input, init);
        requests.push(request);
        if (request.url.includes('/v2/')) {
          return new Response(JSON.stringify({ error: "input 'x': wrong shape" }), { status: 400, headers: { 'x-aiaas-error-code': 'INVALID_TENSOR' } });
        }
        return Response.json({ error: { code: 'FORBIDDEN', message: 'needs keys:manage', details: { permission: 'keys:manage' } } }, { status: 403 });
      },
    });
    await expect(client.keys.list()).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN', details: { permission: 'keys:manage' } });
    await expect(client.inferV2('m', { inputs: [] }, { version: 'production' })).rejects.toMatchObject({ status: 400, code: 'INVALID_TENSOR', message: "input 'x': wrong shape" });
    expect(requests.map((request) => request.url)).toEqual(['http://aiaas.test/api/v1/keys', 'http://aiaas.test/v2/models/m/versions/production/infer']);
    expect(requests[0]!.headers.get('authorization')).toBe('Bearer aiaas_secret');
  });

  it('reports an unreachable server as a connection error', async () => {
    const client = new AiaasClient({
      baseUrl: 'http://127.0.0.1:9',
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
      },
    });
    const error = await client.health().catch((caught: unknown) => caught);
    expect(AiaasConnectionError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED', message: 'could not reach http://127.0.0.1:9: connect ECONNREFUSED 127.0.0.1:9' });
  });
});

describe('parseJsonAllowingNonFinite', () => {
  it('revives bare NaN and Infinity outside strings only', () => {
    const value = parseJsonAllowingNonFinite('{"predictions": [[NaN, -Infinity, Infinity, 1.5]], "note": "NaN stays \\"text\\""}');
    expect(value).toEqual({ predictions: [[Number.NaN, -Infinity, Infinity, 1.5]], note: 'NaN stays "text"' });
    expect(() => parseJsonAllowingNonFinite('{oops')).toThrow(SyntaxError);
  });
});

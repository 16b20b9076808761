/**
 * Plans on the language-model routes over the real server and a generated GGUF model: a generation
 * reserves its prompt tokens plus max_tokens and settles to what it used; past the token cap the
 * OpenAI routes answer OpenAI's error shape and Ollama's its own; the plan bounds max_tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { call, createTenant, startTestServer, type TestServer } from '../http/helpers.ts';

let server: TestServer;
let tenant: { id: string; adminKey: string };

const chat = (maxTokens: number) => ({ model: 'tiny', messages: [{ role: 'user', content: 'hello there' }], max_tokens: maxTokens, temperature: 0 });

beforeAll(async () => {
  server = await startTestServer({ llmThreads: 1, llmParallel: 1, llmContextLength: 512, llmDefaultMaxTokens: 16, llmMaxTokens: 64, rateLimitBurst: 1000 });
  tenant = await createTenant(server, 'chatty');
  await call(server.app, tenant.adminKey, 'POST', '/api/v1/models', { name: 'tiny' });
  const uploaded = await call(server.app, tenant.adminKey, 'POST', '/api/v1/models/tiny/versions', Buffer.from(randomLlamaGguf({ seed: 5 })), { 'content-type': 'application/octet-stream' });
  if (uploaded.statusCode !== 201) throw new Error(uploaded.body);
});
afterAll(async () => server?.close());

describe('token quotas on the language-model routes', () => {
  it('settles a generation to the tokens it used, refuses one whose worst case does not fit, in each protocol\'s shape', async () => {
    await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/tokens', { name: 'tokens', hardCap: { tokens: 60 }, limits: { maxLlmTokens: 32 } });
    await call(server.app, server.adminKey, 'PUT', `/api/v1/tenants/${tenant.id}/plan`, { plan: 'tokens' });

    const first = await call(server.app, tenant.adminKey, 'POST', '/v1/chat/completions', chat(4));
    expect(first.statusCode).toBe(200);
    const usage = first.json().usage;
    expect(usage.completion_tokens).toBe(4);
    // The reservation (prompt estimate + 4) was settled to the actual count.
    const used = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/quota')).json().used;
    expect(used.promptTokens + used.completionTokens).toBe(usage.total_tokens);

    // The plan caps max_tokens below the server's 64.
    const tooLong = await call(server.app, tenant.adminKey, 'POST', '/v1/chat/completions', chat(40));
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error.message).toContain('at most 32');

    // Worst case (prompt + 32) no longer fits in what is left of 60.
    const refused = await call(server.app, tenant.adminKey, 'POST', '/v1/chat/completions', chat(32));
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ error: { message: expect.stringContaining('tokens quota'), type: 'insufficient_quota', param: null, code: 'insufficient_quota' } });
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    expect(refused.headers['x-ratelimit-limit-tokens']).toBe('60');
    expect(refused.headers['x-ratelimit-remaining-tokens']).toBe(String(60 - usage.total_tokens));

    const ollama = await call(server.app, tenant.adminKey, 'POST', '/api/generate', { model: 'tiny', prompt: 'hello there', stream: false, options: { num_predict: 32 } });
    expect(ollama.statusCode).toBe(429);
    expect(Object.keys(ollama.json())).toEqual(['error']);
    expect(typeof ollama.json().error).toBe('string');

    // Nothing was reserved for good by the refused requests.
    const after = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/quota')).json().used;
    expect(after).toEqual(used);
  });
});

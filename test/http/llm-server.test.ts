/**
 * Language models end to end over the real server: a generated GGUF llama uploaded through the
 * model upload route, then served on /v1 (official `openai` client) and /api (official `ollama`
 * client) with the platform's keys, tenants, allow-lists, metering and metrics.
 */
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LanguageModelRuntime } from '../../src/inference/model-manager.ts';
import type { GenerateEvent } from '../../src/runtimes/generative.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { call, classifierModel, createKey, createTenant, startTestServer, uploadOnnxModel, withStream, type TestServer } from './helpers.ts';

const gguf = randomLlamaGguf({ seed: 5 });
const llmFlags = { llmThreads: 1, llmParallel: 2, llmContextLength: 512, llmDefaultMaxTokens: 16, llmMaxTokens: 64 };

async function uploadGguf(server: TestServer, key: string, name: string, bytes: Uint8Array = gguf) {
  const created = await call(server.app, key, 'POST', '/api/v1/models', { name });
  if (created.statusCode !== 201 && created.statusCode !== 409) throw new Error(`model create failed: ${created.body}`);
  return call(server.app, key, 'POST', `/api/v1/models/${name}/versions`, Buffer.from(bytes), { 'content-type': 'application/octet-stream' });
}

let server: TestServer;
let baseUrl: string;
const openai = (apiKey: string = server.adminKey) => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0 });
const ollama = (apiKey: string = server.adminKey) => new Ollama({ host: baseUrl, headers: { authorization: `Bearer ${apiKey}` } });

beforeAll(async () => {
  server = await startTestServer(llmFlags);
  baseUrl = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const uploaded = await uploadGguf(server, server.adminKey, 'tiny');
  if (uploaded.statusCode !== 201) throw new Error(uploaded.body);
});

afterAll(async () => {
  await server?.close();
});

describe('GGUF registration', () => {
  it('stores a .gguf upload as a gguf version whose signature is its metadata, the chat template sealed in the database', async () => {
    const response = await call(server.app, server.adminKey, 'GET', '/api/v1/models/tiny/versions/1');
    expect(response.statusCode).toBe(200);
    const version = response.json();
    expect(version.format).toBe('gguf');
    expect(version.files).toEqual(['model.gguf']);
    expect(version.signature).toMatchObject({
      format: 'gguf',
      ggufVersion: 3,
      architecture: 'llama',
      contextLength: 2048,
      embeddingLength: 64,
      quantization: 'F32',
      fileBytes: gguf.byteLength,
      hasChatTemplate: true,
    });
    expect(version.signature.parameterCount).toBeGreaterThan(100_000);
    expect(version.chatTemplate).toContain('<|im_start|>');
    const row = await server.context.database.db.selectFrom('model_versions').select(['format', 'chat_template']).where('id', '=', version.id).executeTakeFirstOrThrow();
    expect(row.format).toBe('gguf');
    expect(row.chat_template!.startsWith('enc:v1:')).toBe(true);
    expect(row.chat_template).not.toContain('im_start');
    const download = await call(server.app, server.adminKey, 'GET', '/api/v1/models/tiny/versions/1/files/model.gguf');
    expect(Buffer.compare(download.rawPayload, Buffer.from(gguf))).toBe(0);
  });

  it('refuses a corrupted-GGUF corpus with 400 INVALID_MODEL_FILE and keeps serving', async () => {
    const corpus = corruptedCorpus(gguf);
    for (const [name, bytes] of Object.entries(corpus)) {
      const response = await uploadGguf(server, server.adminKey, 'broken', bytes);
      expect({ name, status: response.statusCode, code: response.json().error.code }).toEqual({ name, status: 400, code: 'INVALID_MODEL_FILE' });
    }
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/broken/versions')).json().versions).toEqual([]);
    expect((await call(server.app, undefined, 'GET', '/healthz')).statusCode).toBe(200);
    const completion = await openai().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'still there?' }], max_tokens: 2 });
    expect(completion.usage!.completion_tokens).toBe(2);
  });
});

describe('OpenAI-compatible routes on the server', () => {
  it('lists only language models and answers MODEL_NOT_FOUND for an ONNX model; the V2 route refuses the GGUF one', async () => {
    const onnx = await uploadOnnxModel(server, server.adminKey, 'classifier', classifierModel().exportOnnx());
    expect(onnx.statusCode).toBe(201);
    const ids: string[] = [];
    for await (const model of openai().models.list()) ids.push(model.id);
    expect(ids).toEqual(['tiny']);
    const error = await openai().chat.completions.create({ model: 'classifier', messages: [{ role: 'user', content: 'x' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const v2 = await call(server.app, server.adminKey, 'POST', '/v2/models/tiny/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [0] }] });
    expect(v2.statusCode).toBe(404);
  });

  it('chats, streamed and not, with usage; the stream adds up to the same answer', async () => {
    const request = { model: 'tiny', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 6, temperature: 0 };
    const whole = await openai().chat.completions.create(request);
    expect(whole.choices[0]!.finish_reason).toBe('length');
    expect(whole.usage!.completion_tokens).toBe(6);
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of await openai().chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(usage).toEqual(whole.usage);
  });

  it('names the version that answered in x-aiaas-model-version, streamed and not, on OpenAI and Ollama routes', async () => {
    const headers = { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' };
    const body = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 };
    const whole = await fetch(`${baseUrl}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(body) });
    expect(whole.headers.get('x-aiaas-model-version')).toBe('1');
    await whole.text();
    const streamed = await fetch(`${baseUrl}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ ...body, stream: true }) });
    expect(streamed.headers.get('x-aiaas-model-version')).toBe('1');
    await streamed.text();
    const generated = await fetch(`${baseUrl}/api/generate`, { method: 'POST', headers, body: JSON.stringify({ model: 'tiny', prompt: 'hi', options: { num_predict: 2 } }) });
    expect(generated.headers.get('x-aiaas-model-version')).toBe('1');
    await generated.text();
  });

  it('forces a named tool call and follows a json_schema', async () => {
    const tool = await openai().chat.completions.create({
      model: 'tiny@latest',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { days: { type: 'integer' } }, required: ['days'] } } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 64,
      seed: 2,
    });
    expect(tool.choices[0]!.finish_reason).toBe('tool_calls');
    const call = tool.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(call.type === 'function' && Number.isInteger((JSON.parse(call.function.arguments) as { days: unknown }).days)).toBe(true);
    const json = await openai().chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'json' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } } },
      max_tokens: 64,
      seed: 4,
    });
    expect(typeof (JSON.parse(json.choices[0]!.message.content!) as { ok: unknown }).ok).toBe('boolean');
  });

  it('embeds', async () => {
    const embeddings = await openai().embeddings.create({ model: 'tiny', input: ['a', 'b c'] });
    expect(embeddings.data.map((item) => item.embedding.length)).toEqual([64, 64]);
    expect(embeddings.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('stops a generation the client aborts and frees its sequence', async () => {
    const before = server.context.metrics.generations.get({ tenant: server.context.bootstrap.tenantId, model: 'tiny', version: '1', protocol: 'openai', outcome: 'aborted' });
    const controller = new AbortController();
    const stream = await openai().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'go' }], max_tokens: 64, stream: true, seed: 9 }, { signal: controller.signal });
    let chunks = 0;
    try {
      for await (const _chunk of stream) if (++chunks === 2) controller.abort();
    } catch {
      // the client reports its own abort
    }
    await expect
      .poll(() => server.context.metrics.generations.get({ tenant: server.context.bootstrap.tenantId, model: 'tiny', version: '1', protocol: 'openai', outcome: 'aborted' }))
      .toBe(before + 1);
    await expect.poll(() => server.context.manager.languageModelLoad()).toEqual([expect.objectContaining({ running: 0, waiting: 0 })]);
  });

  it('renders a bad key as OpenAI\'s 401 and another tenant\'s or a disallowed model as model_not_found', async () => {
    const unauthenticated = await openai('aiaas_not-a-real-key').chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }] }).catch((caught: unknown) => caught);
    expect(unauthenticated).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((unauthenticated as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
    expect((unauthenticated as InstanceType<typeof OpenAI.AuthenticationError>).type).toBe('invalid_request_error');

    const other = await createTenant(server, 'other-co');
    const foreign = await openai(other.adminKey).chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }] }).catch((caught: unknown) => caught);
    expect((foreign as InstanceType<typeof OpenAI.NotFoundError>).status).toBe(404);
    expect((foreign as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const otherIds: string[] = [];
    for await (const model of openai(other.adminKey).models.list()) otherIds.push(model.id);
    expect(otherIds).toEqual([]);

    const restricted = await createKey(server, server.adminKey, 'inference', { allowedModels: ['classifier'] });
    const disallowed = await openai(restricted.key).embeddings.create({ model: 'tiny', input: 'x' }).catch((caught: unknown) => caught);
    expect((disallowed as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const viewer = await createKey(server, server.adminKey, 'viewer');
    const forbidden = await openai(viewer.key).embeddings.create({ model: 'tiny', input: 'x' }).catch((caught: unknown) => caught);
    expect((forbidden as InstanceType<typeof OpenAI.PermissionDeniedError>).status).toBe(403);
  });
});

describe('Ollama-compatible routes on the server', () => {
  it('chats and generates, lists, shows and reports the loaded model', async () => {
    const chat = await ollama().chat({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 3, temperature: 0 } });
    expect(chat.eval_count).toBe(3);
    let text = '';
    for await (const part of await ollama().generate({ model: 'tiny:1', prompt: 'hi', stream: true, options: { num_predict: 3, temperature: 0 } })) text += part.response;
    expect(text.length).toBeGreaterThan(0);
    expect((await ollama().list()).models.map((model) => model.name)).toEqual(['tiny:latest']);
    const shown = await ollama().show({ model: 'tiny' });
    expect(shown.details.family).toBe('llama');
    expect(shown.template).toContain('<|im_start|>');
    const ps = await ollama().ps();
    expect(ps.models.map((model) => model.name)).toEqual(['tiny:latest']);
    expect(ps.models[0]!.size).toBeGreaterThan(gguf.byteLength);
  });

  it('honours keep_alive: a duration sets when the idle model unloads, 0 unloads it, -1 keeps it', async () => {
    const started = Date.now();
    await ollama().chat({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: false, keep_alive: '10m', options: { num_predict: 2 } });
    const expires = new Date((await ollama().ps()).models[0]!.expires_at).getTime();
    // Ten minutes after the request ended (the margin covers the request itself, not a timing assumption on the server).
    expect(expires).toBeGreaterThanOrEqual(started + 10 * 60_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 10 * 60_000);
    // Ollama's documented unload: an empty prompt with keep_alive 0.
    const unloaded = await ollama().generate({ model: 'tiny', prompt: '', keep_alive: 0 });
    expect(unloaded.done_reason).toBe('unload');
    expect((await ollama().ps()).models).toEqual([]);
    await ollama().generate({ model: 'tiny', prompt: 'hi', stream: false, keep_alive: -1, options: { num_predict: 1 } });
    expect(new Date((await ollama().ps()).models[0]!.expires_at).getFullYear()).toBeGreaterThan(9999);
    const bad = await ollama().generate({ model: 'tiny', prompt: 'hi', stream: false, keep_alive: 'soon' }).catch((error: unknown) => error);
    expect((bad as { status_code?: number }).status_code).toBe(400);
  });

  it('answers a bad key and a missing model in Ollama\'s shape', async () => {
    const response = await fetch(`${baseUrl}/api/chat`, { method: 'POST', headers: { authorization: 'Bearer aiaas_nope', 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', messages: [] }) });
    expect(response.status).toBe(401);
    expect(Object.keys((await response.json()) as object)).toEqual(['error']);
    const missing = await ollama().generate({ model: 'ghost', prompt: 'x', stream: false }).catch((caught: unknown) => caught);
    expect((missing as { status_code?: number }).status_code).toBe(404);
    expect((missing as Error).message).toBe("model 'ghost' not found");
  });

  it('reads a body as JSON whatever its content type, as Ollama does (curl -d sends a form type)', async () => {
    const headers = { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/x-www-form-urlencoded' };
    const response = await fetch(`${baseUrl}/api/generate`, { method: 'POST', headers, body: JSON.stringify({ model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 1 } }) });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { done: boolean }).done).toBe(true);
    const broken = await fetch(`${baseUrl}/api/generate`, { method: 'POST', headers, body: '{"model": ' });
    expect(broken.status).toBe(400);
    expect(Object.keys((await broken.json()) as object)).toEqual(['error']);
  });

  it('deletes a version with models:write only', async () => {
    expect((await uploadGguf(server, server.adminKey, 'scratch')).statusCode).toBe(201);
    const inferenceKey = await createKey(server, server.adminKey, 'inference');
    const refused = await ollama(inferenceKey.key).delete({ model: 'scratch' }).catch((caught: unknown) => caught);
    expect((refused as { status_code?: number }).status_code).toBe(403);
    await ollama().delete({ model: 'scratch' });
    expect((await call(server.app, server.adminKey, 'GET', '/api/v1/models/scratch')).statusCode).toBe(404);
  });

  it('has no route overlapping the management API under /api/v1', () => {
    const ollamaPaths = server.app.registeredRoutes.filter((route) => route.url.startsWith('/api/') && !route.url.startsWith('/api/v1/')).map((route) => route.url);
    expect(ollamaPaths.sort()).toEqual(['/api/chat', '/api/delete', '/api/embed', '/api/generate', '/api/ps', '/api/pull', '/api/show', '/api/tags', '/api/version']);
  });
});

describe('metering and metrics', () => {
  it('counts the bytes of streamed answers (SSE and NDJSON) as bytes out, exactly as sent', async () => {
    const tenant = await createTenant(server, 'streamed');
    expect((await uploadGguf(server, tenant.adminKey, 'streaming')).statusCode).toBe(201);
    const post = (path: string, body: object) =>
      fetch(`${baseUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${tenant.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const sse = await post('/v1/chat/completions', { model: 'streaming', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true });
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sseBytes = Buffer.byteLength(await sse.text());
    const ndjson = await post('/api/generate', { model: 'streaming', prompt: 'hi', options: { num_predict: 2 } });
    expect(ndjson.headers.get('content-type')).toBe('application/x-ndjson');
    const ndjsonBytes = Buffer.byteLength(await ndjson.text());
    const rows = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=protocol')).json().usage;
    expect(rows.map((row: { protocol: string; requests: number; bytesOut: number }) => [row.protocol, row.requests, row.bytesOut])).toEqual([
      ['ollama', 1, ndjsonBytes],
      ['openai', 1, sseBytes],
    ]);
  });

  it('counts prompt and completion tokens per key, model and version exactly as the responses reported them', async () => {
    const tenant = await createTenant(server, 'metered');
    expect((await uploadGguf(server, tenant.adminKey, 'counted')).statusCode).toBe(201);
    const key = await createKey(server, tenant.adminKey, 'inference');
    const first = await openai(key.key).chat.completions.create({ model: 'counted', messages: [{ role: 'user', content: 'one' }], max_tokens: 3 });
    const second = await openai(key.key).completions.create({ model: 'counted', prompt: 'two words', max_tokens: 4 });
    const third = await ollama(key.key).chat({ model: 'counted', messages: [{ role: 'user', content: 'three' }], stream: false, options: { num_predict: 2 } });
    const usage = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=model,version,key')).json();
    expect(usage.usage).toEqual([
      expect.objectContaining({
        model: 'counted',
        version: 1,
        keyId: key.id,
        requests: 3,
        failedRequests: 0,
        items: 3,
        promptTokens: first.usage!.prompt_tokens + second.usage!.prompt_tokens + third.prompt_eval_count,
        completionTokens: first.usage!.completion_tokens + second.usage!.completion_tokens + third.eval_count,
      }),
    ]);
    expect(usage.usage[0].computeMs).toBeGreaterThan(0);
    const byProtocol = (await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage?groupBy=protocol')).json().usage;
    expect(byProtocol.map((row: { protocol: string; requests: number; completionTokens: number }) => [row.protocol, row.requests, row.completionTokens])).toEqual([
      ['ollama', 1, third.eval_count],
      ['openai', 2, first.usage!.completion_tokens + second.usage!.completion_tokens],
    ]);
    expect((await call(server.app, tenant.adminKey, 'GET', '/api/v1/usage')).json().usage).toEqual([expect.objectContaining({ model: 'counted', requests: 3 })]);

    const metrics = (await call(server.app, tenant.adminKey, 'GET', '/metrics')).body;
    // A random-weight model may end a generation before its first token; only the others have a time to first token.
    const withTokens = [first.usage!.completion_tokens, second.usage!.completion_tokens].filter((tokens) => tokens > 0).length;
    expect(metrics).toMatch(new RegExp(`aiaas_llm_generations_total\\{tenant="${tenant.id}",model="counted",version="1",protocol="openai",outcome="ok"\\} 2`));
    if (withTokens > 0) expect(metrics).toMatch(new RegExp(`aiaas_llm_time_to_first_token_seconds_count\\{tenant="${tenant.id}",model="counted",version="1",protocol="openai"\\} ${withTokens}`));
    expect(metrics).toMatch(new RegExp(`aiaas_llm_completion_tokens_total\\{tenant="${tenant.id}",model="counted",version="1",protocol="openai"\\} ${first.usage!.completion_tokens + second.usage!.completion_tokens}`));
    expect(metrics).toMatch(new RegExp(`aiaas_llm_completion_tokens_total\\{tenant="${tenant.id}",model="counted",version="1",protocol="ollama"\\} ${third.eval_count}`));
    expect(metrics).toMatch(new RegExp(`aiaas_llm_running_requests\\{tenant="${tenant.id}",model="counted",version="1"\\} 0`));
    expect(metrics).toContain('aiaas_llm_inter_token_seconds_bucket');
    expect(metrics).toContain('aiaas_llm_tokens_per_second_bucket');
    expect(metrics).not.toContain('model="tiny"');
  });
});

describe('a full model', () => {
  let small: TestServer;
  let smallUrl: string;
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));

  beforeAll(async () => {
    // Holds each generation after its first event (its sequence taken) until the test releases it.
    const wrap = (runtime: LanguageModelRuntime): LanguageModelRuntime =>
      withStream(runtime, async function* (request, signal): AsyncGenerator<GenerateEvent> {
        const events = runtime.stream(request, signal)[Symbol.asyncIterator]();
        const first = await events.next();
        await held;
        if (first.done !== true) yield first.value;
        for (let step = await events.next(); step.done !== true; step = await events.next()) yield step.value;
      });
    small = await startTestServer({ ...llmFlags, llmParallel: 1, llmMaxWaiting: 0 }, { wrapLanguageModel: wrap });
    smallUrl = await small.app.listen({ host: '127.0.0.1', port: 0 });
    expect((await uploadGguf(small, small.adminKey, 'tiny')).statusCode).toBe(201);
  });

  afterAll(async () => {
    release();
    await small?.close();
  });

  it('answers 503 (OpenAI: server_overloaded) while its one sequence is busy and nothing may wait', async () => {
    const client = new OpenAI({ baseURL: `${smallUrl}/v1`, apiKey: small.adminKey, maxRetries: 0 });
    const first = client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'a' }], max_tokens: 2 });
    // The first request loads the model, then takes the one sequence and is held there.
    await expect.poll(() => small.context.manager.languageModelLoad(), { timeout: 60_000 }).toEqual([expect.objectContaining({ running: 1 })]);
    const second = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'b' }], max_tokens: 2 }).catch((caught: unknown) => caught);
    expect((second as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((second as InstanceType<typeof OpenAI.APIError>).code).toBe('server_overloaded');
    const ollamaBusy = await fetch(`${smallUrl}/api/generate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${small.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'c', stream: false }),
    });
    expect(ollamaBusy.status).toBe(503);
    expect(Object.keys((await ollamaBusy.json()) as object)).toEqual(['error']);
    release();
    expect((await first).usage!.completion_tokens).toBe(2);
  });
});

describe('rate limits on the LLM routes', () => {
  it('renders the per-key limit as OpenAI\'s and Ollama\'s 429', async () => {
    const limited = await startTestServer({ rateLimitBurst: 2, rateLimitPerSecond: 0.001 });
    try {
      const url = await limited.app.listen({ host: '127.0.0.1', port: 0 });
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: limited.adminKey, maxRetries: 0 });
      expect((await client.models.list()).data).toEqual([]);
      expect((await new Ollama({ host: url, headers: { authorization: `Bearer ${limited.adminKey}` } }).list()).models).toEqual([]);
      const openAiLimited = await client.models.list().catch((caught: unknown) => caught);
      expect(openAiLimited).toBeInstanceOf(OpenAI.RateLimitError);
      expect((openAiLimited as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');
      const ollamaLimited = await fetch(`${url}/api/tags`, { headers: { authorization: `Bearer ${limited.adminKey}` } });
      expect(ollamaLimited.status).toBe(429);
      expect(Object.keys((await ollamaLimited.json()) as object)).toEqual(['error']);
    } finally {
      await limited.close();
    }
  });
});

/** Valid-looking GGUF files broken in one way each: truncation, huge counts, bad offsets, wrong types. */
function corruptedCorpus(valid: Uint8Array): Record<string, Uint8Array> {
  const copy = (): Buffer => Buffer.from(valid);
  const find = (bytes: Buffer, text: string): number => {
    const at = bytes.indexOf(Buffer.from(text, 'utf8'));
    if (at < 0) throw new Error(`${text} not in the fixture`);
    return at;
  };
  const patched = (patch: (bytes: Buffer) => void): Buffer => {
    const bytes = copy();
    patch(bytes);
    return bytes;
  };
  // A tensor descriptor: name, u32 rank, rank × u64 dimensions, u32 type, u64 offset.
  const tensorFields = (bytes: Buffer, name: string): { type: number; offset: number; firstDimension: number } => {
    const nameAt = bytes.lastIndexOf(Buffer.from(name, 'utf8'));
    const rankAt = nameAt + Buffer.byteLength(name);
    const rank = bytes.readUInt32LE(rankAt);
    const typeAt = rankAt + 4 + rank * 8;
    return { firstDimension: rankAt + 4, type: typeAt, offset: typeAt + 4 };
  };
  return {
    'header only': copy().subarray(0, 20),
    'truncated in the metadata': copy().subarray(0, 300),
    'truncated tensor data': copy().subarray(0, valid.byteLength - 64),
    'huge tensor count': patched((bytes) => bytes.writeBigUInt64LE(1n << 40n, 8)),
    'huge metadata count': patched((bytes) => bytes.writeBigUInt64LE(1n << 60n, 16)),
    'huge key length': patched((bytes) => bytes.writeBigUInt64LE(1n << 62n, 24)),
    'huge array length': patched((bytes) => {
      const keyEnd = find(bytes, 'tokenizer.ggml.tokens') + 'tokenizer.ggml.tokens'.length;
      bytes.writeBigUInt64LE(1n << 40n, keyEnd + 8);
    }),
    'unknown metadata value type': patched((bytes) => bytes.writeUInt32LE(99, find(bytes, 'general.architecture') + 'general.architecture'.length)),
    'architecture of the wrong type': patched((bytes) => bytes.writeUInt32LE(4, find(bytes, 'general.architecture') + 'general.architecture'.length)),
    'unknown tensor type': patched((bytes) => bytes.writeUInt32LE(99, tensorFields(bytes, 'output_norm.weight').type)),
    'tensor offset past the end': patched((bytes) => bytes.writeBigUInt64LE(BigInt(valid.byteLength * 4), tensorFields(bytes, 'output_norm.weight').offset)),
    'misaligned tensor offset': patched((bytes) => bytes.writeBigUInt64LE(3n, tensorFields(bytes, 'output_norm.weight').offset)),
    'huge tensor dimension': patched((bytes) => bytes.writeBigUInt64LE(1n << 50n, tensorFields(bytes, 'output_norm.weight').firstDimension)),
    'unsupported version': patched((bytes) => bytes.writeUInt32LE(1, 4)),
  };
}

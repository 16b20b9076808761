/**
 * The OpenAI- and Ollama-compatible routes over a real llama.cpp runtime and a generated GGUF model,
 * driven by the official `openai` and `ollama` npm clients over a real socket. Model resolution is
 * the routes' injected dependency; here one tenant-free model, the registry wiring is tested with the server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { getLlama, type Llama } from 'node-llama-cpp';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import type { LanguageModelDeps, LanguageModelEntry } from '../../src/http/protocols/llm-support.ts';
import { ollamaRoutes } from '../../src/http/routes/ollama.ts';
import { openAiRoutes } from '../../src/http/routes/openai.ts';
import type { GenerationUsage } from '../../src/runtimes/generative.ts';
import { LlamaCppRuntime } from '../../src/runtimes/gguf/llama-cpp-runtime.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';

let directory: string;
let llama: Llama;
let runtime: LlamaCppRuntime;
let app: FastifyInstance;
let baseUrl: string;
const usage: Array<{ model: string; usage: GenerationUsage; outcome: string }> = [];
const outcomes: string[] = [];

const entry: LanguageModelEntry = { name: 'tiny', version: '1', versionId: 'v1', createdAt: new Date('2026-11-01T00:00:00Z'), aliases: ['production'], fileBytes: 1, sha256: 'sha256:ab' };

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-llm-routes-'));
  await writeFile(join(directory, 'tiny.gguf'), randomLlamaGguf({ seed: 11 }));
  llama = await getLlama({ gpu: 'auto', build: 'never' });
  runtime = await LlamaCppRuntime.open(llama, join(directory, 'tiny.gguf'), { parallel: 1, maxWaiting: 0, contextLength: 512, threads: 1 });
  const deps: LanguageModelDeps = {
    async resolve(_request, name, selector) {
      if (name !== 'tiny' || (selector !== undefined && !['1', 'production', 'latest'].includes(selector))) {
        throw new AiaasError('MODEL_NOT_FOUND', `Model '${name}' not found`);
      }
      return entry;
    },
    list: async () => [entry],
    open: async () => runtime,
    loaded: async () => [{ entry, memoryBytes: runtime.memoryBytes() }],
    limits: () => ({ defaultMaxTokens: 16, maxTokens: 64, maxContextLength: 512 }),
    recordUsage: (_request, model, used, outcome) => usage.push({ model: model.name, usage: used, outcome }),
    metrics: { generationFinished: (_labels, measures) => outcomes.push(measures.outcome) },
  };
  app = Fastify();
  await app.register(openAiRoutes, { ...deps, prefix: '/v1' });
  await app.register(ollamaRoutes, deps);
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await runtime?.dispose();
  await llama?.dispose();
  await rm(directory, { recursive: true, force: true });
});

describe('OpenAI-compatible routes through the openai client', () => {
  const client = () => new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'unused-here', maxRetries: 0 });

  it('lists models with their aliases', async () => {
    const ids = [];
    for await (const model of client().models.list()) ids.push(model.id);
    expect(ids.sort()).toEqual(['tiny', 'tiny@production']);
    expect((await client().models.retrieve('tiny@production')).id).toBe('tiny@production');
  });

  it('answers a chat completion with usage and a finish reason', async () => {
    const completion = await client().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, temperature: 0 });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage!.completion_tokens).toBe(5);
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + 5);
  });

  it('streams chunks that add up to the non-streamed answer, with a usage chunk and [DONE]', async () => {
    const request = { model: 'tiny@1', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8, temperature: 0 };
    const whole = await client().chat.completions.create(request);
    const stream = await client().chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let streamedUsage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) streamedUsage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(streamedUsage).toEqual(whole.usage);
  });

  it('forces a named tool call and returns it as tool_calls', async () => {
    const completion = await client().chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { days: { type: 'integer' } }, required: ['days'] } } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 64,
      seed: 2,
    });
    const call = completion.choices[0]!.message.tool_calls![0]!;
    expect(completion.choices[0]!.finish_reason).toBe('tool_calls');
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
    expect(call.type === 'function' && Number.isInteger((JSON.parse(call.function.arguments) as { days: unknown }).days)).toBe(true);
  });

  it('returns JSON that follows a json_schema response format', async () => {
    const completion = await client().chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'json' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } } },
      max_tokens: 64,
      seed: 4,
    });
    expect(typeof (JSON.parse(completion.choices[0]!.message.content!) as { ok: unknown }).ok).toBe('boolean');
  });

  it('answers legacy completions and embeddings (float and base64)', async () => {
    const completion = await client().completions.create({ model: 'tiny', prompt: 'the', max_tokens: 3, temperature: 0, echo: true });
    expect(completion.choices[0]!.text.startsWith('the')).toBe(true);
    expect(completion.usage!.completion_tokens).toBe(3);
    const floats = await client().embeddings.create({ model: 'tiny', input: ['a', 'b c'], encoding_format: 'float' });
    expect(floats.data.map((item) => item.embedding.length)).toEqual([64, 64]);
    const base64 = await fetch(`${baseUrl}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', input: 'a', encoding_format: 'base64' }) });
    const bytes = new Uint8Array(Buffer.from(((await base64.json()) as { data: Array<{ embedding: string }> }).data[0]!.embedding, 'base64'));
    const decoded = new Float32Array(bytes.buffer);
    expect(Array.from(decoded)).toEqual(floats.data[0]!.embedding.map((value) => Math.fround(value)));
  });

  it('answers errors in OpenAI\'s shape and status', async () => {
    const missing = await client().chat.completions.create({ model: 'ghost', messages: [{ role: 'user', content: 'x' }] }).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const tooLong = await client().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'a '.repeat(700) }] }).catch((error: unknown) => error);
    expect((tooLong as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
    const n2 = await client().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], n: 2 }).catch((error: unknown) => error);
    expect((n2 as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
    expect((n2 as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    const overMax = await client().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 65 }).catch((error: unknown) => error);
    expect((overMax as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('max_tokens');
  });

  it('stops generating when the client aborts mid-stream, and meters what was generated', async () => {
    usage.length = 0;
    outcomes.length = 0;
    const controller = new AbortController();
    const stream = await client().chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'go' }], max_tokens: 64, stream: true, seed: 9 }, { signal: controller.signal });
    let chunks = 0;
    try {
      for await (const _chunk of stream) if (++chunks === 3) controller.abort();
    } catch {
      // the client reports its own abort either way
    }
    await expect.poll(() => outcomes).toEqual(['aborted']);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.usage.completionTokens).toBeLessThan(64);
    expect(runtime.load()).toEqual({ running: 0, waiting: 0 });
  });
});

describe('Ollama-compatible routes through the ollama client', () => {
  const client = () => new Ollama({ host: baseUrl });

  it('generates, streamed and not, with Ollama counts', async () => {
    await expect.poll(() => runtime.load().running).toBe(0);
    const whole = await client().generate({ model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 4, temperature: 0 } });
    expect(whole.done).toBe(true);
    expect(whole.done_reason).toBe('length');
    expect(whole.eval_count).toBe(4);
    let text = '';
    let last;
    for await (const part of await client().generate({ model: 'tiny:production', prompt: 'hi', stream: true, options: { num_predict: 4, temperature: 0 } })) {
      text += part.response;
      last = part;
    }
    expect(text).toBe(whole.response);
    expect(last!.done).toBe(true);
  });

  it('chats with a JSON schema format and lists, shows and reports models', async () => {
    const chat = await client().chat({ model: 'tiny:latest', messages: [{ role: 'user', content: 'json' }], format: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, stream: false, options: { num_predict: 40, seed: 1 } });
    expect(Number.isInteger((JSON.parse(chat.message.content) as { n: unknown }).n)).toBe(true);
    const tags = await client().list();
    expect(tags.models.map((model) => model.name).sort()).toEqual(['tiny:latest', 'tiny:production']);
    expect(tags.models[0]!.details.format).toBe('gguf');
    const shown = await client().show({ model: 'tiny' });
    expect(shown.template).toContain('<|im_start|>');
    const embedded = await client().embed({ model: 'tiny', input: ['x', 'y'] });
    expect(embedded.embeddings).toHaveLength(2);
    expect((await client().ps()).models[0]!.name).toBe('tiny:latest');
    expect((await client().version()).version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('answers a missing model with 404 and Ollama\'s message', async () => {
    const error = await client().generate({ model: 'ghost', prompt: 'x', stream: false }).catch((caught: unknown) => caught);
    expect((error as { status_code?: number }).status_code).toBe(404);
    expect((error as Error).message).toBe("model 'ghost' not found");
  });
});

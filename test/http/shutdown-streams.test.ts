/**
 * Shutdown with a streamed chat open: the server ends the generation after its grace period, the
 * stream gets its last event and [DONE], and app.close() completes instead of waiting on the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LanguageModelRuntime } from '../../src/inference/model-manager.ts';
import type { GenerateEvent } from '../../src/runtimes/generative.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { call, startTestServer, withStream, type TestServer } from './helpers.ts';

const gguf = randomLlamaGguf({ seed: 5 });
let server: TestServer;
let baseUrl: string;
let markHeld: () => void = () => undefined;
const held = new Promise<void>((resolve) => (markHeld = resolve));

beforeAll(async () => {
  // A real GGUF generation, held after its first token until its signal aborts: a client that never
  // lets go, whatever the model would have generated on its own.
  const wrap = (runtime: LanguageModelRuntime): LanguageModelRuntime =>
    withStream(runtime, async function* (request, signal): AsyncGenerator<GenerateEvent> {
      const events = runtime.stream(request, signal)[Symbol.asyncIterator]();
      const first = await events.next();
      if (first.done !== true) yield first.value;
      markHeld();
      await new Promise<void>((resolve) => {
        if (signal === undefined) return;
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      for (let step = await events.next(); step.done !== true; step = await events.next()) yield step.value;
    });
  server = await startTestServer({ llmThreads: 1, llmParallel: 1, llmContextLength: 512, llmDefaultMaxTokens: 16, llmMaxTokens: 64, shutdownGraceMs: 0 }, { wrapLanguageModel: wrap });
  baseUrl = await server.app.listen({ host: '127.0.0.1', port: 0 });
  expect((await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'tiny' })).statusCode).toBe(201);
  const uploaded = await call(server.app, server.adminKey, 'POST', '/api/v1/models/tiny/versions', Buffer.from(gguf), { 'content-type': 'application/octet-stream' });
  expect(uploaded.statusCode).toBe(201);
});

afterAll(async () => {
  await server?.close();
});

describe('shutdown with a streamed chat open', () => {
  it('aborts the generation, ends the stream with a last event and [DONE], and app.close() completes', async () => {
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'go on forever' }], max_tokens: 64, stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let body = '';
    while (!body.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      body += decoder.decode(value, { stream: true });
    }
    await held;
    expect(server.context.manager.languageModelLoad()).toEqual([expect.objectContaining({ running: 1 })]);

    let closed = false;
    const closing = server.app.close().then(() => (closed = true));
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      body += decoder.decode(value, { stream: true });
    }
    await closing;
    expect(closed).toBe(true);
    const events = body.split('\n\n').filter((event) => event.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const last = JSON.parse(events.at(-2)!.slice('data: '.length)) as { choices: { finish_reason: string | null }[] };
    expect(last.choices[0]!.finish_reason).not.toBeNull();
  }, 40_000); // far below keepAliveTimeout (72 s), which a leftover keep-alive connection would make close() wait for
});

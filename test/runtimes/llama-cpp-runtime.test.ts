import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import type { GenerateEvent } from '../../src/runtimes/generative.ts';
import { LlamaCppRuntime, toChatHistory } from '../../src/runtimes/gguf/llama-cpp-runtime.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';

let directory: string;
let llama: Llama;
let runtime: LlamaCppRuntime;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-llama-'));
  await writeFile(join(directory, 'tiny.gguf'), randomLlamaGguf({ seed: 7 }));
  llama = await getLlama({ gpu: 'auto', build: 'never' });
  runtime = await LlamaCppRuntime.open(llama, join(directory, 'tiny.gguf'), { parallel: 2, maxWaiting: 1, contextLength: 512, threads: 1 });
});

afterAll(async () => {
  await runtime?.dispose();
  await llama?.dispose();
  await rm(directory, { recursive: true, force: true });
});

describe('LlamaCppRuntime on a generated random llama', () => {
  it('describes the model from its GGUF metadata', () => {
    const info = runtime.info();
    expect(info).toMatchObject({ architecture: 'llama', trainedContextLength: 2048, contextLength: 512, quantization: 'F32', chatFormat: 'ChatML', embeddingLength: 64 });
    expect(info.parameterCount).toBeGreaterThan(100_000);
    expect(runtime.memoryBytes()).toBeGreaterThan(info.parameterCount! * 4);
  });

  it('stops at max tokens with finish reason length and counts tokens', async () => {
    const result = await runtime.generate({ prompt: { kind: 'text', text: 'hello world' }, maxTokens: 7, temperature: 0 });
    expect(result.finishReason).toBe('length');
    expect(result.usage.completionTokens).toBe(7);
    expect(result.usage.promptTokens).toBe(runtime.countTokens('hello world') + 1); // + BOS
  });

  it('is deterministic at temperature 0 and reports log probabilities', async () => {
    const request = { prompt: { kind: 'text' as const, text: 'the' }, maxTokens: 5, temperature: 0, logprobs: { top: 3 } };
    const first = await runtime.generate(request);
    const second = await runtime.generate(request);
    expect(second.text).toBe(first.text);
    expect(first.logprobs).toHaveLength(5);
    for (const entry of first.logprobs!) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top).toHaveLength(3);
      // Greedy decoding picks the most probable token.
      expect(entry.logprob).toBeCloseTo(entry.top[0]!.logprob, 6);
    }
  });

  it('cuts the output at a stop string', async () => {
    const free = await runtime.generate({ prompt: { kind: 'text', text: 'the' }, maxTokens: 20, temperature: 0 });
    const stop = free.text.slice(3, 5);
    expect(stop.length).toBe(2);
    const stopped = await runtime.generate({ prompt: { kind: 'text', text: 'the' }, maxTokens: 20, temperature: 0, stop: [stop] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
  });

  it('follows a JSON schema through a grammar', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' }, count: { type: 'integer' } }, required: ['answer', 'count'] };
    const result = await runtime.generate({ prompt: { kind: 'chat', messages: [{ role: 'user', content: 'json' }] }, maxTokens: 120, seed: 3, responseFormat: { type: 'json_schema', schema } });
    expect(result.finishReason).toBe('stop');
    const parsed = JSON.parse(result.text) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(['answer', 'count']);
    expect(Number.isInteger(parsed['count'])).toBe(true);
  });

  it('forces a named tool call whose arguments follow the tool schema', async () => {
    const result = await runtime.generate({
      prompt: {
        kind: 'chat',
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [{ name: 'get_weather', parameters: { type: 'object', properties: { days: { type: 'integer' } }, required: ['days'] } }],
        toolChoice: { name: 'get_weather' },
      },
      maxTokens: 60,
      seed: 5,
    });
    expect(result.finishReason).toBe('tool_calls');
    expect(result.toolCalls).toHaveLength(1);
    expect(result.toolCalls[0]!.name).toBe('get_weather');
    expect(result.toolCalls[0]!.id).toMatch(/^call_/);
    expect(Number.isInteger((JSON.parse(result.toolCalls[0]!.arguments) as { days: unknown }).days)).toBe(true);
  });

  it('stops a stream when its signal aborts', async () => {
    const controller = new AbortController();
    const events: GenerateEvent[] = [];
    for await (const event of runtime.stream({ prompt: { kind: 'text', text: 'x' }, maxTokens: 400, temperature: 0 }, controller.signal)) {
      events.push(event);
      if (events.length === 2) controller.abort();
    }
    const finish = events.at(-1)!;
    expect(finish).toMatchObject({ type: 'finish', finishReason: 'abort' });
    expect(finish.type === 'finish' && finish.usage.completionTokens).toBeLessThan(10);
    expect(runtime.load()).toEqual({ running: 0, waiting: 0 });
  });

  it('refuses work beyond its sequences and wait queue with QUEUE_FULL', async () => {
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => runtime.generate({ prompt: { kind: 'text', text: 'x' }, maxTokens: 8 })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    const rejected = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
    expect(AiaasError.isInstance(rejected.reason) && rejected.reason.code).toBe('QUEUE_FULL');
  });

  it('refuses a prompt longer than the context', async () => {
    const error = await runtime.generate({ prompt: { kind: 'text', text: 'a '.repeat(600) }, maxTokens: 1 }).catch((caught: unknown) => caught);
    expect(AiaasError.isInstance(error) && error.code).toBe('CONTEXT_LENGTH_EXCEEDED');
  });

  it('embeds each input as a vector of the embedding length', async () => {
    const result = await runtime.embed(['hello', 'world peace']);
    expect(result.embeddings.map((vector) => vector.length)).toEqual([64, 64]);
    expect(result.embeddings[0]).not.toEqual(result.embeddings[1]);
    expect(result.promptTokens).toBe(runtime.countTokens('hello') + runtime.countTokens('world peace'));
  });

  it('maps tool results onto the assistant call they answer', () => {
    const history = toChatHistory([
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
      { role: 'tool', toolCallId: 'call_1', content: 'rain' },
    ]);
    expect(history[1]).toEqual({ type: 'model', response: [{ type: 'functionCall', name: 'get_weather', params: { city: 'Oslo' }, result: 'rain' }] });
    expect(history.at(-1)).toEqual({ type: 'model', response: [] });
    expect(() => toChatHistory([{ role: 'tool', toolCallId: 'nope', content: 'x' }])).toThrow(/no earlier assistant message/);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { LlamaCppRuntime, toChatHistory } from '../../src/runtimes/gguf/llama-cpp-runtime.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { runEmbeddingRuntimeContract, runGenerativeRuntimeContract } from './generative-runtime.contract.ts';

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

/** A fresh runtime on the shared model; `threads: 1` because llama.cpp's spinning threads crawl on a shared machine. */
const openForContract = (): Promise<LlamaCppRuntime> => LlamaCppRuntime.open(llama, join(directory, 'tiny.gguf'), { parallel: 2, maxWaiting: 1, contextLength: 256, threads: 1 });

// Generation, streaming, stops, determinism, aborts, context limits and embeddings: the shared contracts.
runGenerativeRuntimeContract({ name: 'LlamaCppRuntime on a random llama', open: openForContract });
runEmbeddingRuntimeContract({ name: 'LlamaCppRuntime on a random llama', open: openForContract });

// What only this implementation promises: GGUF metadata, grammars, tool syntax, its wait queue.
describe('LlamaCppRuntime on a generated random llama', () => {
  it('describes the model from its GGUF metadata', () => {
    const info = runtime.info();
    expect(info).toMatchObject({ architecture: 'llama', trainedContextLength: 2048, contextLength: 512, quantization: 'F32', chatFormat: 'ChatML', embeddingLength: 64 });
    expect(info.parameterCount).toBeGreaterThan(100_000);
    expect(runtime.memoryBytes()).toBeGreaterThan(info.parameterCount! * 4);
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

  it('refuses work beyond its sequences and wait queue with QUEUE_FULL', async () => {
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => runtime.generate({ prompt: { kind: 'text', text: 'x' }, maxTokens: 8 })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    const rejected = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
    expect(AiaasError.isInstance(rejected.reason) && rejected.reason.code).toBe('QUEUE_FULL');
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

/**
 * The contracts every language-model runtime keeps: `GenerativeRuntime` and `EmbeddingRuntime` of
 * src/runtimes/generative.ts, in the style of hono's shared router tests. A runtime's test file calls
 * `runGenerativeRuntimeContract` / `runEmbeddingRuntimeContract` with a factory; the suite opens one
 * runtime for its cases and disposes it afterwards. The cases assume nothing about the model's
 * quality (test models are random weights): only what the interface promises.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import type { EmbeddingRuntime, GenerateEvent, GenerateRequest, GenerativeRuntime } from '../../src/runtimes/generative.ts';

export interface GenerativeRuntimeContractOptions {
  /** Shown in the describe block: the implementation and its settings. */
  name: string;
  /** A runtime with room for at least two generations at once and a context of a few hundred tokens. */
  open(): Promise<GenerativeRuntime>;
}

export interface EmbeddingRuntimeContractOptions {
  name: string;
  open(): Promise<EmbeddingRuntime>;
}

async function collect(stream: AsyncIterable<GenerateEvent>, onEvent?: (event: GenerateEvent, index: number) => void): Promise<GenerateEvent[]> {
  const events: GenerateEvent[] = [];
  for await (const event of stream) {
    events.push(event);
    onEvent?.(event, events.length - 1);
  }
  return events;
}

const text = (prompt: string, more: Omit<GenerateRequest, 'prompt' | 'maxTokens'> & { maxTokens: number }): GenerateRequest => ({ prompt: { kind: 'text', text: prompt }, ...more });

export function runGenerativeRuntimeContract(options: GenerativeRuntimeContractOptions): void {
  describe(`GenerativeRuntime contract: ${options.name}`, () => {
    let runtime: GenerativeRuntime;

    beforeAll(async () => {
      runtime = await options.open();
    });
    afterAll(async () => {
      await runtime?.dispose();
    });

    it('describes itself: version, architecture, context lengths, chat format, memory', () => {
      expect(runtime.specificationVersion).toBe('v1');
      const info = runtime.info();
      expect(info.architecture).toMatch(/\S/);
      expect(info.chatFormat).toMatch(/\S/);
      expect(Number.isInteger(info.contextLength) && info.contextLength > 0).toBe(true);
      expect(Number.isInteger(info.trainedContextLength) && info.trainedContextLength > 0).toBe(true);
      expect(runtime.memoryBytes()).toBeGreaterThan(0);
      expect(runtime.countTokens('hello world')).toBeGreaterThan(0);
      expect(runtime.load()).toEqual({ running: 0, waiting: 0 });
    });

    it('stops at maxTokens with finish reason length and counts both sides of the usage', async () => {
      const result = await runtime.generate(text('hello world', { maxTokens: 7, temperature: 0 }));
      expect(result.finishReason).toBe('length');
      expect(result.usage.completionTokens).toBe(7);
      // The prompt's own tokens, plus any the runtime adds (a BOS token, a template): never fewer.
      expect(result.usage.promptTokens).toBeGreaterThanOrEqual(runtime.countTokens('hello world'));
      expect(result.toolCalls).toEqual([]);
    });

    it('streams text deltas, then exactly one finish event, last, whose usage counts the tokens streamed', async () => {
      const request = text('the', { maxTokens: 6, temperature: 0, logprobs: { top: 0 } });
      const events = await collect(runtime.stream(request));
      const finishes = events.filter((event) => event.type === 'finish');
      expect(finishes).toHaveLength(1);
      expect(events.at(-1)).toBe(finishes[0]);
      const deltas = events.slice(0, -1);
      expect(deltas.length).toBeGreaterThan(0);
      expect(deltas.every((event) => event.type === 'text-delta' && event.text !== '')).toBe(true);
      // One log probability per generated token: the deltas carry exactly the tokens the usage counts.
      const streamedTokens = deltas.reduce((sum, event) => sum + (event.type === 'text-delta' ? (event.logprobs?.length ?? 0) : 0), 0);
      const finish = finishes[0]!;
      expect(finish.type === 'finish' && finish.usage.completionTokens).toBe(streamedTokens);
      expect(finish.type === 'finish' && finish.finishReason).toBe('length');
      // `generate` is the same stream, gathered.
      const gathered = await runtime.generate(request);
      expect(gathered.text).toBe(deltas.map((event) => (event.type === 'text-delta' ? event.text : '')).join(''));
      expect(finish.type === 'finish' && finish.usage).toEqual(gathered.usage);
    });

    it('is deterministic at temperature 0, and greedy: each token is the most probable one', async () => {
      const request = text('the', { maxTokens: 5, temperature: 0, logprobs: { top: 3 } });
      const first = await runtime.generate(request);
      const second = await runtime.generate(request);
      expect(second.text).toBe(first.text);
      expect(second.logprobs).toEqual(first.logprobs);
      expect(first.logprobs).toHaveLength(5);
      for (const entry of first.logprobs!) {
        expect(entry.logprob).toBeLessThanOrEqual(0);
        expect(entry.top).toHaveLength(3);
        expect(entry.logprob).toBeCloseTo(entry.top[0]!.logprob, 6);
      }
    });

    it('cuts the output before a stop string, with finish reason stop', async () => {
      const free = await runtime.generate(text('the', { maxTokens: 20, temperature: 0 }));
      const stop = free.text.slice(3, 5);
      expect(stop).toHaveLength(2);
      const stopped = await runtime.generate(text('the', { maxTokens: 20, temperature: 0, stop: [stop] }));
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
      expect(stopped.text).not.toContain(stop);
    });

    it('ends an aborted stream with finish reason abort and frees its capacity', async () => {
      const controller = new AbortController();
      const maxTokens = 400;
      const events = await collect(runtime.stream(text('x', { maxTokens, temperature: 0 }), controller.signal), (_event, index) => {
        if (index === 1) controller.abort();
      });
      const finish = events.at(-1)!;
      expect(finish).toMatchObject({ type: 'finish', finishReason: 'abort' });
      expect(finish.type === 'finish' && finish.usage.completionTokens).toBeLessThan(maxTokens);
      expect(events.filter((event) => event.type === 'finish')).toHaveLength(1);
      expect(runtime.load()).toEqual({ running: 0, waiting: 0 });
      // The freed capacity serves the next request.
      expect((await runtime.generate(text('x', { maxTokens: 2, temperature: 0 }))).usage.completionTokens).toBe(2);
    });

    it('refuses a prompt longer than the context with CONTEXT_LENGTH_EXCEEDED and stays usable', async () => {
      const { contextLength } = runtime.info();
      let prompt = 'a ';
      while (runtime.countTokens(prompt) <= contextLength) prompt += prompt;
      const error = await runtime.generate(text(prompt, { maxTokens: 1 })).catch((caught: unknown) => caught);
      expect(AiaasError.isInstance(error) && error.code).toBe('CONTEXT_LENGTH_EXCEEDED');
      expect(runtime.load()).toEqual({ running: 0, waiting: 0 });
      expect((await runtime.generate(text('a', { maxTokens: 1, temperature: 0 }))).usage.completionTokens).toBe(1);
    });
  });
}

export function runEmbeddingRuntimeContract(options: EmbeddingRuntimeContractOptions): void {
  describe(`EmbeddingRuntime contract: ${options.name}`, () => {
    let runtime: EmbeddingRuntime;

    beforeAll(async () => {
      runtime = await options.open();
    });
    afterAll(async () => {
      await runtime?.dispose();
    });

    it('returns one finite vector per input, all of one length, and counts the prompt tokens', async () => {
      expect(runtime.specificationVersion).toBe('v1');
      const both = await runtime.embed(['hello', 'world peace']);
      expect(both.embeddings).toHaveLength(2);
      const dimensions = both.embeddings[0]!.length;
      expect(dimensions).toBeGreaterThan(0);
      expect(both.embeddings[1]).toHaveLength(dimensions);
      expect(both.embeddings.flat().every(Number.isFinite)).toBe(true);
      expect(both.embeddings[0]).not.toEqual(both.embeddings[1]);

      // Each input alone gives the same vector and its share of the tokens.
      const hello = await runtime.embed(['hello']);
      const peace = await runtime.embed(['world peace']);
      expect(hello.embeddings[0]!.length).toBe(dimensions);
      expect(hello.embeddings[0]!.map((value, index) => value - both.embeddings[0]![index]!).every((difference) => Math.abs(difference) < 1e-4)).toBe(true);
      expect(hello.promptTokens).toBeGreaterThan(0);
      expect(peace.promptTokens).toBeGreaterThan(0);
      expect(both.promptTokens).toBe(hello.promptTokens + peace.promptTokens);
    });
  });
}

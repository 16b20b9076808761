/**
 * npm run bench:llm — generates a random-weight llama of about 100M parameters (Q8_0) with the
 * project's GGUF writer, then measures in one run:
 *   1. node-llama-cpp called directly on the file (one sequence, the same threads and context),
 *   2. one stream through the server's `/v1/chat/completions` (`stream: true`): tokens/s and the
 *      ratio to (1) — goal ≥ 0.95 — and the time to first token,
 *   3. four concurrent streams: aggregate tokens/s — goal ≥ 2× one stream (continuous batching).
 * Prints JSON. Token rates count completion tokens from the first streamed token to the last, so
 * prompt processing shows in the time to first token only. Temperature 0 and a fixed seed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaChatSession } from 'node-llama-cpp';
import { writeRandomLlamaGguf } from '../src/runtimes/gguf/random-llama.ts';
import { AiaasClient } from '../src/sdk/index.ts';
import { generateMasterKey } from '../src/security/key-ring.ts';
import { benchServerEnvironment, freePort, startChild, waitReady } from './support.ts';

const maxTokens = Number(process.env.BENCH_TOKENS ?? 128);
const threads = Number(process.env.BENCH_THREADS ?? availableParallelism());
const contextLength = 1024;
const prompt = 'Tell me a long story about the sea.';

const directory = await mkdtemp(join(tmpdir(), 'aiaas-bench-llm-'));
const modelPath = join(directory, 'random-100m-q8.gguf');
const generated = await writeRandomLlamaGguf(modelPath, {
  embeddingLength: 768,
  blockCount: 12,
  headCount: 12,
  feedForwardLength: 2560,
  contextLength: 2048,
  weightType: 'Q8_0',
  seed: 42,
});

interface StreamMeasure {
  completionTokens: number;
  timeToFirstTokenMs: number;
  tokensPerSecond: number;
  totalMs: number;
}

/** Direct: node-llama-cpp's own chat session on the file, timed by its text chunks. */
async function direct(): Promise<StreamMeasure> {
  const llama = await getLlama({ gpu: 'auto', build: 'never' });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: contextLength, sequences: 1, threads });
  const session = new LlamaChatSession({ contextSequence: context.getSequence() });
  const started = performance.now();
  let first: number | undefined;
  let last = started;
  const meter = session.sequence.tokenMeter.getState();
  await session.prompt(prompt, {
    maxTokens,
    temperature: 0,
    seed: 1,
    onTextChunk: () => {
      const now = performance.now();
      first ??= now;
      last = now;
    },
  });
  const used = session.sequence.tokenMeter.getState();
  const completionTokens = used.usedOutputTokens - meter.usedOutputTokens;
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return measure(completionTokens, started, first ?? last, last);
}

function measure(completionTokens: number, started: number, first: number, last: number): StreamMeasure {
  const streaming = Math.max(1e-3, (last - first) / 1000);
  return {
    completionTokens,
    timeToFirstTokenMs: Math.round(first - started),
    // The first token's time is in the time to first token; the rate covers the tokens after it.
    tokensPerSecond: Number(((completionTokens - 1) / streaming).toFixed(1)),
    totalMs: Math.round(last - started),
  };
}

/** One streamed chat completion over HTTP, timed by its SSE chunks. */
async function serverStream(baseUrl: string, apiKey: string, model: string): Promise<StreamMeasure> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: prompt }], max_tokens: maxTokens, temperature: 0, seed: 1, stream: true, stream_options: { include_usage: true } }),
  });
  if (!response.ok || response.body === null) throw new Error(`chat completion failed: ${response.status} ${await response.text()}`);
  let first: number | undefined;
  let last = started;
  let completionTokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(0, end).replace(/^data: /, '');
      buffer = buffer.slice(end + 2);
      if (line === '[DONE]') continue;
      const event = JSON.parse(line) as { choices: Array<{ delta?: { content?: string } }>; usage?: { completion_tokens: number } | null };
      if (event.usage) completionTokens = event.usage.completion_tokens;
      if ((event.choices[0]?.delta?.content ?? '') !== '') {
        const now = performance.now();
        first ??= now;
        last = now;
      }
    }
  }
  return measure(completionTokens, started, first ?? last, last);
}

const children: ChildProcess[] = [];
try {
  const directResult = await direct();
  const dataDir = join(directory, 'data');
  const apiKey = `aiaas_${'L'.repeat(43)}`;
  const port = await freePort();
  const { child } = await startChild(
    ['bin/aiaas.js', 'serve', '--port', String(port), '--data-dir', dataDir],
    benchServerEnvironment(generateMasterKey(), apiKey, {
      AIAAS_LLM_THREADS: String(threads),
      AIAAS_LLM_PARALLEL: '4',
      AIAAS_LLM_CONTEXT_LENGTH: String(contextLength),
      AIAAS_LLM_MAX_TOKENS: String(Math.max(maxTokens, 4096)),
    }),
    /listening|127\.0\.0\.1:\d+/,
  );
  children.push(child);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitReady(baseUrl);
  const client = new AiaasClient({ baseUrl, apiKey });
  await client.models.create({ name: 'llama-100m' });
  await client.versions.upload('llama-100m', { source: new Uint8Array(await readFile(modelPath)) });
  // Load it (and warm the path) before timing.
  await serverStream(baseUrl, apiKey, 'llama-100m');
  const one = await serverStream(baseUrl, apiKey, 'llama-100m');
  const concurrentStarted = performance.now();
  const four = await Promise.all([0, 1, 2, 3].map(() => serverStream(baseUrl, apiKey, 'llama-100m')));
  const concurrentSeconds = (performance.now() - concurrentStarted) / 1000;
  const aggregateTokens = four.reduce((sum, stream) => sum + stream.completionTokens, 0);
  const aggregate = Number((aggregateTokens / concurrentSeconds).toFixed(1));
  console.log(
    JSON.stringify(
      {
        benchmark: 'llm-random-llama-q8',
        model: { parameters: generated.parameterCount, fileBytes: generated.bytes, weightType: 'Q8_0' },
        settings: { threads, contextLength, maxTokens, temperature: 0 },
        direct: directResult,
        server: {
          oneStream: one,
          ratioToDirect: Number((one.tokensPerSecond / directResult.tokensPerSecond).toFixed(3)),
          fourStreams: { streams: four, aggregateTokensPerSecond: aggregate, wallSeconds: Number(concurrentSeconds.toFixed(2)) },
          aggregateOverOneStream: Number((aggregate / one.tokensPerSecond).toFixed(2)),
        },
      },
      null,
      2,
    ),
  );
} finally {
  for (const child of children) child.kill('SIGTERM');
  await rm(directory, { recursive: true, force: true });
}

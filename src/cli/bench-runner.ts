/**
 * The load generator behind `aiaas bench` (like Triton's perf_analyzer): for each concurrency
 * level, that many clients send requests back to back for a fixed time; every latency is kept
 * (sorted once at the end: exact percentiles, no histogram error), with the server's own queue
 * and compute time from its `Server-Timing` header when it sends one.
 */
import { parseServerTiming, percentiles } from '../quality/latency.ts';
import type { BenchLevel } from '../sdk/types.ts';

export interface BenchRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface BenchRunOptions {
  concurrency: readonly number[];
  durationMs: number;
  /** The i-th request's body (cycled by the caller's choice: synthetic inputs or dataset rows). */
  request(index: number): BenchRequest;
  /** Streamed chat completions: measures time to first token and tokens per second too. */
  streaming?: boolean;
  signal?: AbortSignal | undefined;
  fetch?: typeof fetch;
  /** Called after each level (progress output). */
  onLevel?(level: BenchLevel): void;
}

interface Sample {
  latencyMs: number;
  queueMs?: number;
  computeMs?: number;
  firstTokenMs?: number;
  tokens?: number;
  /** From the first token to the end. */
  decodeMs?: number;
}

/** Reads a streamed chat completion (SSE) to its end: first content chunk time and the completion token count. */
async function readStream(response: Response, started: number): Promise<{ firstTokenMs: number | undefined; tokens: number }> {
  let firstTokenMs: number | undefined;
  let chunks = 0;
  let usageTokens: number | undefined;
  let buffer = '';
  const decoder = new TextDecoder();
  if (response.body === null) return { firstTokenMs, tokens: 0 };
  for await (const part of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(part, { stream: true });
    let boundary = buffer.indexOf('\n\n');
    while (boundary !== -1) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      boundary = buffer.indexOf('\n\n');
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .join('\n');
      if (data === '' || data === '[DONE]') continue;
      try {
        const chunk = JSON.parse(data) as { choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens?: number } | null };
        if (chunk.usage?.completion_tokens !== undefined) usageTokens = chunk.usage.completion_tokens;
        const content = chunk.choices?.[0]?.delta?.content;
        if (typeof content === 'string' && content !== '') {
          chunks++;
          firstTokenMs ??= performance.now() - started;
        }
      } catch {
        // A malformed event counts as no token.
      }
    }
  }
  return { firstTokenMs, tokens: usageTokens ?? chunks };
}

async function runLevel(concurrency: number, options: BenchRunOptions, counter: { next: number }): Promise<BenchLevel> {
  const fetchFunction = options.fetch ?? fetch;
  const samples: Sample[] = [];
  const errorCodes: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const aborted = (): boolean => options.signal?.aborted === true;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline && !aborted()) {
      const request = options.request(counter.next++);
      const sent = performance.now();
      try {
        const response = await fetchFunction(request.url, { method: 'POST', headers: request.headers, body: request.body, ...(options.signal === undefined ? {} : { signal: options.signal }) });
        const timing = parseServerTiming(response.headers.get('server-timing'));
        const sample: Sample = { latencyMs: 0 };
        if (options.streaming === true && response.ok) {
          const { firstTokenMs, tokens } = await readStream(response, sent);
          if (firstTokenMs !== undefined) {
            sample.firstTokenMs = firstTokenMs;
            sample.tokens = tokens;
          }
        } else {
          await response.arrayBuffer();
        }
        sample.latencyMs = performance.now() - sent;
        if (sample.firstTokenMs !== undefined) sample.decodeMs = sample.latencyMs - sample.firstTokenMs;
        if (timing.queue !== undefined) sample.queueMs = timing.queue;
        if (timing.compute !== undefined) sample.computeMs = timing.compute;
        if (response.ok) samples.push(sample);
        else {
          errors++;
          errorCodes[String(response.status)] = (errorCodes[String(response.status)] ?? 0) + 1;
        }
      } catch (error) {
        if (aborted()) return;
        errors++;
        const code = (error as { cause?: { code?: unknown } }).cause?.code;
        const key = typeof code === 'string' ? code : 'network';
        errorCodes[key] = (errorCodes[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsedSeconds = (performance.now() - started) / 1000;
  const defined = (values: (number | undefined)[]) => values.filter((value): value is number => value !== undefined);
  const level: BenchLevel = {
    concurrency,
    durationSeconds: elapsedSeconds,
    requests: samples.length + errors,
    errors,
    errorCodes,
    throughput: elapsedSeconds > 0 ? samples.length / elapsedSeconds : 0,
    latencyMs: percentiles(samples.map((sample) => sample.latencyMs)),
    serverQueueMs: percentiles(defined(samples.map((sample) => sample.queueMs))),
    serverComputeMs: percentiles(defined(samples.map((sample) => sample.computeMs))),
  };
  if (options.streaming === true) {
    const streamed = samples.filter((sample) => sample.firstTokenMs !== undefined);
    level.timeToFirstTokenMs = percentiles(defined(streamed.map((sample) => sample.firstTokenMs)));
    // A stream's speed after its first token (the first one also paid for queueing and the prompt).
    const speeds = streamed.filter((sample) => (sample.tokens ?? 0) > 1 && (sample.decodeMs ?? 0) > 0).map((sample) => ((sample.tokens! - 1) * 1000) / sample.decodeMs!);
    const totalTokens = streamed.reduce((sum, sample) => sum + (sample.tokens ?? 0), 0);
    const speedSummary = percentiles(speeds);
    level.tokensPerSecond = speedSummary === null ? null : { mean: speedSummary.mean, p50: speedSummary.p50, total: elapsedSeconds > 0 ? totalTokens / elapsedSeconds : 0 };
  }
  return level;
}

/** Runs every level in turn and returns their results in the same order. */
export async function runBench(options: BenchRunOptions): Promise<BenchLevel[]> {
  const levels: BenchLevel[] = [];
  const counter = { next: 0 };
  for (const concurrency of options.concurrency) {
    if (options.signal?.aborted === true) break;
    const level = await runLevel(concurrency, options, counter);
    levels.push(level);
    options.onLevel?.(level);
  }
  return levels;
}

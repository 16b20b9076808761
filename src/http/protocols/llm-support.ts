/**
 * What the OpenAI and Ollama routes share: their injected dependencies (resolving a tenant's language
 * model, opening its runtime, limits, metering), and running one generation with the client's
 * connection tied to an AbortSignal, so a client that goes away stops its generation at once and
 * frees its sequence.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EmbeddingResult, EmbeddingRuntime, GenerateEvent, GenerateRequest, GenerationUsage, GenerativeModelInfo, GenerativeRuntime } from '../../runtimes/generative.ts';
import type { TokenLimits } from './openai.ts';

/** How a metered generation or embedding was called. */
export interface GenerationCall {
  protocol: 'openai' | 'ollama';
  /** Milliseconds the model worked on it (generation from start to finish, or the embedding call). */
  computeMs?: number;
}

export interface LanguageModelEntry {
  /** The owning tenant; labels the model's metric series. */
  tenantId?: string;
  name: string;
  /** Version number as a string. */
  version: string;
  versionId: string;
  createdAt: Date;
  /** Aliases pointing at this version. */
  aliases: string[];
  fileBytes: number;
  sha256: string;
  /** Known without loading (stored at upload from the GGUF metadata). */
  info?: Partial<GenerativeModelInfo>;
}

export type LanguageModelRuntime = GenerativeRuntime & EmbeddingRuntime;

export interface LlmMetricsSink {
  generationFinished(
    labels: { tenant?: string; model: string; version: string; protocol: 'openai' | 'ollama' },
    measures: { timeToFirstTokenSeconds?: number; interTokenSeconds: number[]; completionTokens: number; durationSeconds: number; outcome: 'ok' | 'error' | 'aborted' },
  ): void;
}

export interface LanguageModelDeps {
  /** Checks the caller may run inference, scopes to its tenant and allow-list; throws MODEL_NOT_FOUND otherwise. */
  resolve(request: FastifyRequest, name: string, selector?: string): Promise<LanguageModelEntry>;
  /** The caller's language models: one entry per model's `latest`, plus one per alias. */
  list(request: FastifyRequest): Promise<LanguageModelEntry[]>;
  /** The loaded runtime, loading on first use. */
  open(entry: LanguageModelEntry): Promise<LanguageModelRuntime>;
  /** Loaded language models with their memory, for Ollama's /api/ps. */
  loaded(request: FastifyRequest): Promise<Array<{ entry: LanguageModelEntry; memoryBytes: number; expiresAt?: Date }>>;
  limits(entry: LanguageModelEntry): TokenLimits & { maxContextLength: number };
  /** Ollama's `keep_alive`: how long the model stays loaded once idle (0 unloads it now, negative keeps it). */
  keepAlive?(entry: LanguageModelEntry, milliseconds: number): Promise<void>;
  /** Metering: prompt and completion tokens per tenant, key, model, version and protocol, with the call's running time. */
  recordUsage?(request: FastifyRequest, entry: LanguageModelEntry, usage: GenerationUsage, outcome: 'ok' | 'error', call: GenerationCall): void;
  /** Metering: the body bytes of a streamed answer (SSE, NDJSON), once it ends. */
  recordStreamedBytes?(request: FastifyRequest, bytes: number): void;
  metrics?: LlmMetricsSink;
  now?: () => Date;
  /**
   * Quota admission (src/billing/quotas.ts): reserves the worst case before the model runs, throws
   * 429 QUOTA_EXCEEDED when it does not fit; the reservation is settled to the tokens used, or
   * released when the request fails.
   */
  admit?(request: FastifyRequest, entry: LanguageModelEntry, reserve: GenerationUsage): Promise<TokenReservation>;
}

export interface TokenReservation {
  settle(actual: GenerationUsage): Promise<void>;
  release(): Promise<void>;
}

/** The prompt's tokens as the model counts them (the chat template's few tokens aside: settling corrects them). */
export function estimatePromptTokens(runtime: Pick<GenerativeRuntime, 'countTokens'>, prompt: GenerateRequest['prompt']): number {
  if (prompt.kind === 'text') return runtime.countTokens(prompt.text);
  let tokens = 0;
  for (const message of prompt.messages) tokens += runtime.countTokens(message.content) + (message.role === 'assistant' && message.toolCalls !== undefined ? runtime.countTokens(JSON.stringify(message.toolCalls)) : 0);
  if (prompt.tools !== undefined && prompt.tools.length > 0) tokens += runtime.countTokens(JSON.stringify(prompt.tools));
  return tokens;
}

/** Settles or releases a reservation once the work is over; a failure to write it is logged, not thrown at the client. */
async function finishReservation(request: FastifyRequest, reservation: TokenReservation | undefined, usage: GenerationUsage | undefined): Promise<void> {
  if (reservation === undefined) return;
  try {
    if (usage === undefined) await reservation.release();
    else await reservation.settle(usage);
  } catch (error) {
    request.log.error({ err: error }, 'could not settle a quota reservation');
  }
}

/** An AbortSignal that fires when the client disconnects before the response is complete. */
export function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return controller.signal;
}

/**
 * Runs a generation, yielding its events, and reports usage and metrics once at the end whatever
 * happens. The first event is awaited by the caller before it commits to a streaming response, so
 * an error before the first token (queue full, context too long) is still a plain HTTP error.
 */
export async function* meteredStream(
  deps: LanguageModelDeps,
  request: FastifyRequest,
  entry: LanguageModelEntry,
  runtime: LanguageModelRuntime,
  generate: GenerateRequest,
  protocol: 'openai' | 'ollama',
  signal: AbortSignal,
): AsyncGenerator<GenerateEvent> {
  const started = performance.now();
  let lastTokenAt: number | undefined;
  let firstTokenSeconds: number | undefined;
  const interTokenSeconds: number[] = [];
  let usage: GenerationUsage = { promptTokens: 0, completionTokens: 0 };
  let outcome: 'ok' | 'error' | 'aborted' = 'error';
  // Before the model runs: a refused request costs nothing and is a plain HTTP error (nothing streamed yet).
  const reservation = await deps.admit?.(request, entry, { promptTokens: estimatePromptTokens(runtime, generate.prompt), completionTokens: generate.maxTokens });
  try {
    for await (const event of runtime.stream(generate, signal)) {
      if (event.type !== 'finish') {
        const now = performance.now();
        if (lastTokenAt === undefined) firstTokenSeconds = (now - started) / 1000;
        else interTokenSeconds.push((now - lastTokenAt) / 1000);
        lastTokenAt = now;
      } else {
        usage = event.usage;
        outcome = event.finishReason === 'abort' ? 'aborted' : 'ok';
      }
      yield event;
    }
  } finally {
    const labels = { ...(entry.tenantId === undefined ? {} : { tenant: entry.tenantId }), model: entry.name, version: entry.version, protocol };
    deps.metrics?.generationFinished(labels, {
      ...(firstTokenSeconds === undefined ? {} : { timeToFirstTokenSeconds: firstTokenSeconds }),
      interTokenSeconds,
      completionTokens: usage.completionTokens,
      durationSeconds: (performance.now() - started) / 1000,
      outcome,
    });
    // Tokens a client made the server compute are billed even when it left early; failures are not billed.
    deps.recordUsage?.(request, entry, usage, outcome === 'error' ? 'error' : 'ok', { protocol, computeMs: performance.now() - started });
    await finishReservation(request, reservation, outcome === 'error' ? undefined : usage);
  }
}

/** Runs an embedding call under a quota reservation of its inputs' tokens and reports its usage: its prompt tokens when it succeeds, a failure when it throws. */
export async function meteredEmbed(
  deps: LanguageModelDeps,
  request: FastifyRequest,
  entry: LanguageModelEntry,
  runtime: LanguageModelRuntime,
  inputs: string[],
  protocol: 'openai' | 'ollama',
  signal: AbortSignal,
): Promise<EmbeddingResult> {
  // Before the model runs: a refused call costs nothing.
  const reservation = await deps.admit?.(request, entry, { promptTokens: inputs.reduce((sum, input) => sum + runtime.countTokens(input), 0), completionTokens: 0 });
  const started = performance.now();
  let result: EmbeddingResult;
  try {
    result = await runtime.embed(inputs, signal);
  } catch (error) {
    deps.recordUsage?.(request, entry, { promptTokens: 0, completionTokens: 0 }, 'error', { protocol });
    await finishReservation(request, reservation, undefined);
    throw error;
  }
  deps.recordUsage?.(request, entry, { promptTokens: result.promptTokens, completionTokens: 0 }, 'ok', { protocol, computeMs: performance.now() - started });
  await finishReservation(request, reservation, { promptTokens: result.promptTokens, completionTokens: 0 });
  return result;
}

/** A streamed response's body: written past Fastify (no onSend), so it counts its own bytes. */
export interface ResponseStream {
  write(text: string): void;
  /** Ends the response with a last piece, if any; `onEnd` hears the body's byte count first. */
  end(text?: string): void;
}

/**
 * Starts a streamed HTTP response with the headers Fastify would have sent, then hands over the
 * socket. `onEnd` gets the bytes of the body before its last piece is written (the usage ledger's
 * bytes out of a stream, recorded before the answer is complete).
 */
export function beginStream(reply: FastifyReply, contentType: string, onEnd?: (bytes: number) => void): ResponseStream {
  reply.hijack();
  const headers: Record<string, string | number | string[]> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value;
  reply.raw.writeHead(200, { ...headers, 'content-type': contentType, 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  let bytes = 0;
  return {
    write(text) {
      if (reply.raw.writableEnded) return;
      bytes += Buffer.byteLength(text, 'utf8');
      reply.raw.write(text);
    },
    end(text) {
      if (reply.raw.writableEnded) return;
      if (text !== undefined) bytes += Buffer.byteLength(text, 'utf8');
      onEnd?.(bytes);
      reply.raw.end(text);
    },
  };
}

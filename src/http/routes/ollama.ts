/**
 * Ollama-compatible routes at Ollama's own paths (`/api/generate`, `/api/chat`, `/api/embed`,
 * `/api/tags`, `/api/show`, `/api/ps`, `/api/version`), beside the management API under `/api/v1`,
 * so an Ollama client's host is the server's root URL. Errors are `{"error": "..."}`.
 * Pulling and deleting models (`/api/pull`, `/api/delete`) need the registry and are registered
 * by the composition root through `OllamaModelAdmin`.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AiaasError } from '../../errors.ts';
import type { GenerateEvent } from '../../runtimes/generative.ts';
import { beginStream, clientGone, meteredEmbed, meteredStream, type LanguageModelDeps, type LanguageModelEntry } from '../protocols/llm-support.ts';
import {
  ollamaModelName,
  parseOllamaChat,
  parseOllamaEmbed,
  parseOllamaGenerate,
  renderOllamaDetails,
  renderOllamaFinal,
  renderOllamaModel,
  splitOllamaModel,
  type ParsedOllamaGeneration,
} from '../protocols/ollama.ts';
import { applyTokenLimits } from '../protocols/openai.ts';
import { boundedForClient } from '../errors.ts';
import { errorCodeHeader } from '../protocols/route-support.ts';
import { assertJsonDepth } from '../json-depth.ts';
import { ollamaSchemas } from '../schemas/llm.ts';
import { installSchemaCompilers } from '../schemas/validation.ts';

/** The Ollama version this adapter follows (its `docs/api.md`), reported by `/api/version`. */
export const ollamaApiVersion = '0.6.4';

export interface OllamaModelAdmin {
  /** `/api/pull` with `{model, url, sha256?}`: streams progress objects until `{"status":"success"}`. Absent: no /api/pull. */
  pull?(request: FastifyRequest, model: { name: string; selector?: string }, source: { url: string; sha256?: string }, signal: AbortSignal): AsyncIterable<Record<string, unknown>>;
  /** `/api/delete`: removes a version (`NAME:VERSION`), or the whole model for `NAME` / `NAME:latest`. */
  remove(request: FastifyRequest, model: { name: string; selector?: string }): Promise<void>;
}

export interface OllamaRouteDeps extends LanguageModelDeps {
  admin?: OllamaModelAdmin;
}

function toAiaasError(error: unknown, request: FastifyRequest): AiaasError {
  if (AiaasError.isInstance(error)) return error;
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new AiaasError('PAYLOAD_TOO_LARGE', 'request body too large');
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) return new AiaasError('INVALID_REQUEST', 'invalid JSON body');
  request.log.error({ err: error }, 'Ollama-compatible route failed');
  return new AiaasError('INTERNAL', 'internal error');
}

function ollamaMessage(error: AiaasError, model?: string): string {
  // Ollama's clients show this text; its own wording for a missing model is "model 'x' not found".
  if ((error.code === 'MODEL_NOT_FOUND' || error.code === 'VERSION_NOT_FOUND') && model !== undefined) return `model '${model.slice(0, 200)}' not found`;
  return error.message;
}

export async function ollamaRoutes(app: FastifyInstance, deps: OllamaRouteDeps): Promise<void> {
  installSchemaCompilers(app);
  // Ollama's server reads every body as JSON whatever its content type, and its documented examples rely on
  // it: `curl …/api/chat -d '{…}'` sends application/x-www-form-urlencoded.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    try {
      assertJsonDepth(body as string);
    } catch (error) {
      done(error as Error);
      return;
    }
    parseJson(request, body as string, done);
  });
  app.setErrorHandler((error, request, reply) => {
    // Bounded like every other error answer: no megabytes of the request echoed back.
    const aiaasError = boundedForClient(toAiaasError(error, request));
    const body = request.body as { model?: unknown } | undefined;
    const model = typeof body?.model === 'string' ? body.model : undefined;
    void reply
      .status(aiaasError.status)
      .headers({ ...aiaasError.headers, [errorCodeHeader]: aiaasError.code })
      .send({ error: ollamaMessage(aiaasError, model) });
  });

  const now = deps.now ?? (() => new Date());

  const tagOf = (selector: string | undefined): string => selector ?? 'latest';

  /** Runs /api/generate or /api/chat: NDJSON lines while streaming, one object otherwise. */
  const generation = async (
    request: FastifyRequest,
    reply: FastifyReply,
    parsed: ParsedOllamaGeneration,
    render: (event: Extract<GenerateEvent, { type: 'text-delta' | 'tool-call-delta' }>, base: Record<string, unknown>) => Record<string, unknown>,
    finalBase: (text: string, toolCalls: Array<{ function: { name: string; arguments: unknown } }>) => Record<string, unknown>,
  ): Promise<unknown> => {
    const started = performance.now();
    const entry = await deps.resolve(request, parsed.model.name, parsed.model.selector);
    const limits = deps.limits(entry);
    if (parsed.contextLength !== undefined && parsed.contextLength > limits.maxContextLength) {
      throw new AiaasError('INVALID_REQUEST', `options.num_ctx may be at most ${limits.maxContextLength} for this model`);
    }
    const loadStarted = performance.now();
    const runtime = await deps.open(entry);
    const loadNs = (performance.now() - loadStarted) * 1e6;
    parsed.generate.maxTokens = applyTokenLimits(parsed.maxTokens, limits);
    const events = meteredStream(deps, request, entry, runtime, parsed.generate, 'ollama', clientGone(reply));
    const base = (): Record<string, unknown> => ({ model: parsed.reference, created_at: now().toISOString() });
    let text = '';
    const toolCalls: Array<{ function: { name: string; arguments: unknown } }> = [];
    const argumentTexts: string[] = [];
    let firstTokenAt: number | undefined;
    const finish = (event: Extract<GenerateEvent, { type: 'finish' }>): Record<string, unknown> => {
      toolCalls.forEach((call, index) => {
        try {
          call.function.arguments = JSON.parse(argumentTexts[index] ?? '{}');
        } catch {
          call.function.arguments = {};
        }
      });
      const end = performance.now();
      const firstToken = firstTokenAt ?? end;
      return renderOllamaFinal({ ...base(), ...finalBase(text, toolCalls) }, event.finishReason, event.usage, {
        totalNs: (end - started) * 1e6,
        loadNs,
        promptEvalNs: (firstToken - loadStarted) * 1e6 - loadNs,
        evalNs: (end - firstToken) * 1e6,
      });
    };
    const absorb = (event: Extract<GenerateEvent, { type: 'text-delta' | 'tool-call-delta' }>): void => {
      firstTokenAt ??= performance.now();
      if (event.type === 'text-delta') text += event.text;
      else {
        if (toolCalls[event.index] === undefined) toolCalls[event.index] = { function: { name: event.name, arguments: {} } };
        argumentTexts[event.index] = (argumentTexts[event.index] ?? '') + event.argumentsDelta;
      }
    };

    // keep_alive applies once the request is done, whatever its outcome.
    const applyKeepAlive = async (): Promise<void> => {
      if (parsed.keepAliveMs !== undefined) await deps.keepAlive?.(entry, parsed.keepAliveMs);
    };
    if (!parsed.stream) {
      try {
        for await (const event of events) {
          if (event.type === 'finish') return finish(event);
          absorb(event);
        }
      } finally {
        await applyKeepAlive();
      }
      throw new AiaasError('INTERNAL', 'The generation ended without a finish event');
    }
    const first = await events.next();
    const stream = beginStream(reply, 'application/x-ndjson', (bytes) => deps.recordStreamedBytes?.(request, bytes));
    const write = (value: unknown): void => stream.write(`${JSON.stringify(value)}\n`);
    try {
      const handle = (event: GenerateEvent): void => {
        if (event.type === 'finish') {
          // Tool calls go out whole in the final line, as Ollama sends them.
          write(finish(event));
          return;
        }
        absorb(event);
        if (event.type === 'text-delta') write(render(event, { ...base(), done: false }));
      };
      if (first.done !== true) handle(first.value);
      for await (const event of events) handle(event);
    } catch (error) {
      const aiaasError = AiaasError.isInstance(error) ? error : new AiaasError('INTERNAL', 'the generation failed');
      if (!AiaasError.isInstance(error)) request.log.error({ err: error }, 'streamed generation failed');
      write({ error: aiaasError.message });
    } finally {
      stream.end();
      await applyKeepAlive();
    }
    return reply;
  };

  app.post('/api/generate', { schema: ollamaSchemas.generate }, async (request, reply) => {
    const parsed = parseOllamaGenerate(request.body);
    const prompt = (request.body as { prompt?: unknown }).prompt;
    if (prompt === undefined || prompt === '') {
      // An empty prompt loads the model (Ollama's documented way to preload) and answers at once.
      const entry = await deps.resolve(request, parsed.model.name, parsed.model.selector);
      // With keep_alive 0 this is Ollama's documented way to unload a model.
      if (parsed.keepAliveMs === 0) {
        await deps.keepAlive?.(entry, 0);
        return { model: parsed.reference, created_at: now().toISOString(), response: '', done: true, done_reason: 'unload' };
      }
      await deps.open(entry);
      if (parsed.keepAliveMs !== undefined) await deps.keepAlive?.(entry, parsed.keepAliveMs);
      return { model: parsed.reference, created_at: now().toISOString(), response: '', done: true, done_reason: 'load' };
    }
    return await generation(
      request,
      reply,
      parsed,
      (event, base) => ({ ...base, response: event.type === 'text-delta' ? event.text : '' }),
      (text) => ({ response: parsed.stream ? '' : text }),
    );
  });

  app.post('/api/chat', { schema: ollamaSchemas.chat }, async (request, reply) => {
    const parsed = parseOllamaChat(request.body);
    return await generation(
      request,
      reply,
      parsed,
      (event, base) => ({ ...base, message: { role: 'assistant', content: event.type === 'text-delta' ? event.text : '' } }),
      (text, toolCalls) => ({ message: { role: 'assistant', content: parsed.stream ? '' : text, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) } }),
    );
  });

  app.post('/api/embed', { schema: ollamaSchemas.embed }, async (request, reply) => {
    const parsed = parseOllamaEmbed(request.body);
    const started = performance.now();
    const entry = await deps.resolve(request, parsed.model.name, parsed.model.selector);
    const loadStarted = performance.now();
    const runtime = await deps.open(entry);
    const loadNs = (performance.now() - loadStarted) * 1e6;
    const result = await meteredEmbed(deps, request, entry, runtime, parsed.inputs, 'ollama', clientGone(reply));
    if (parsed.keepAliveMs !== undefined) await deps.keepAlive?.(entry, parsed.keepAliveMs);
    return { model: parsed.reference, embeddings: result.embeddings, total_duration: Math.round((performance.now() - started) * 1e6), load_duration: Math.round(loadNs), prompt_eval_count: result.promptTokens };
  });

  app.get('/api/tags', { schema: ollamaSchemas.tags }, async (request) => {
    const models: Array<Record<string, unknown>> = [];
    for (const entry of await deps.list(request)) {
      models.push(renderOllamaModel(entry, 'latest'));
      for (const alias of entry.aliases) if (alias !== 'latest') models.push(renderOllamaModel(entry, alias));
    }
    return { models };
  });

  app.post('/api/show', { schema: ollamaSchemas.show }, async (request) => {
    const body = request.body as { model?: unknown; name?: unknown } | undefined;
    const reference = splitOllamaModel(body?.model ?? body?.name);
    const entry = await deps.resolve(request, reference.name, reference.selector);
    const runtime = await deps.open(entry);
    const info = runtime.info();
    const capabilities = ['completion', 'tools', 'embedding'];
    return {
      license: '',
      modelfile: `# Served by aiaas\nFROM ${ollamaModelName(entry, tagOf(reference.selector))}\n`,
      parameters: '',
      template: info.chatTemplate ?? '',
      system: '',
      details: renderOllamaDetails({ ...entry, info: { ...entry.info, ...info } }),
      messages: [],
      modified_at: entry.createdAt.toISOString(),
      model_info: {
        'general.architecture': info.architecture,
        'general.parameter_count': info.parameterCount ?? null,
        [`${info.architecture}.context_length`]: info.trainedContextLength,
        [`${info.architecture}.embedding_length`]: info.embeddingLength ?? null,
      },
      capabilities,
    };
  });

  app.get('/api/ps', { schema: ollamaSchemas.ps }, async (request) => {
    const loaded = await deps.loaded(request);
    return {
      models: loaded.map(({ entry, memoryBytes, expiresAt }) => ({
        ...renderOllamaModel(entry, 'latest'),
        size: memoryBytes,
        size_vram: 0,
        expires_at: (expiresAt ?? new Date(8.64e15)).toISOString(),
      })),
    };
  });

  app.get('/api/version', { schema: ollamaSchemas.version }, async () => ({ version: ollamaApiVersion }));

  const admin = deps.admin;
  const pull = admin?.pull?.bind(admin);
  if (pull !== undefined) {
    app.post('/api/pull', { schema: ollamaSchemas.pull }, async (request, reply) => {
      const body = request.body as { model?: unknown; url?: unknown; sha256?: unknown; stream?: unknown } | undefined;
      const model = splitOllamaModel(body?.model);
      if (typeof body?.url !== 'string') throw new AiaasError('INVALID_REQUEST', 'url is required: this server pulls GGUF files from a URL, not from a model library');
      if (body.sha256 !== undefined && (typeof body.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(body.sha256))) throw new AiaasError('INVALID_REQUEST', 'sha256 must be 64 hex digits');
      const progress = pull(request, model, { url: body.url, ...(typeof body.sha256 === 'string' ? { sha256: body.sha256 } : {}) }, clientGone(reply))[Symbol.asyncIterator]();
      if (body.stream === false) {
        let last: Record<string, unknown> = { status: 'success' };
        for (let step = await progress.next(); step.done !== true; step = await progress.next()) last = step.value;
        return last;
      }
      const first = await progress.next();
      const stream = beginStream(reply, 'application/x-ndjson');
      const write = (value: unknown): void => stream.write(`${JSON.stringify(value)}\n`);
      try {
        if (first.done !== true) write(first.value);
        for (let step = await progress.next(); step.done !== true; step = await progress.next()) write(step.value);
      } catch (error) {
        write({ error: AiaasError.isInstance(error) ? error.message : 'pull failed' });
        if (!AiaasError.isInstance(error)) request.log.error({ err: error }, 'pull failed');
      } finally {
        stream.end();
      }
      return reply;
    });
  }
  if (admin !== undefined) {
    app.delete('/api/delete', { schema: ollamaSchemas.delete }, async (request, reply) => {
      const body = request.body as { model?: unknown; name?: unknown } | undefined;
      await admin.remove(request, splitOllamaModel(body?.model ?? body?.name));
      return reply.status(200).send();
    });
  }
}

export type { LanguageModelEntry };

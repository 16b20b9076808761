/**
 * OpenAI-compatible routes under `/v1`: models, chat completions, legacy completions, embeddings.
 * Register with `app.register(openAiRoutes, { ...deps, prefix: '/v1' })` (the prefix scopes the
 * OpenAI-shaped not-found handler); errors under these routes render in OpenAI's
 * shape `{"error": {"message", "type", "param", "code"}}` with the catalogue's status.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AiaasError } from '../../errors.ts';
import type { GenerateEvent, GenerateResult } from '../../runtimes/generative.ts';
import { beginStream, clientGone, meteredEmbed, meteredStream, type LanguageModelDeps, type LanguageModelEntry, type LanguageModelRuntime } from '../protocols/llm-support.ts';
import {
  applyTokenLimits,
  ChatChunkRenderer,
  newCompletionId,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  renderChatCompletion,
  renderCompletion,
  renderCompletionChunk,
  renderEmbeddings,
  renderModel,
  renderOpenAiError,
  splitModelReference,
} from '../protocols/openai.ts';
import { boundedForClient } from '../errors.ts';
import { errorCodeHeader } from '../protocols/route-support.ts';
import { openAiSchemas } from '../schemas/llm.ts';
import { installSchemaCompilers } from '../schemas/validation.ts';

function toAiaasError(error: unknown, request: FastifyRequest): AiaasError {
  if (AiaasError.isInstance(error)) return error;
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new AiaasError('PAYLOAD_TOO_LARGE', 'Request body too large');
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new AiaasError('INVALID_REQUEST', 'The request body is not valid JSON');
  }
  request.log.error({ err: error }, 'OpenAI-compatible route failed');
  return new AiaasError('INTERNAL', 'Internal error');
}

async function collect(events: AsyncIterable<GenerateEvent>): Promise<GenerateResult> {
  let text = '';
  const toolCalls: GenerateResult['toolCalls'] = [];
  const logprobs: NonNullable<GenerateResult['logprobs']> = [];
  let sawLogprobs = false;
  for await (const event of events) {
    if (event.type === 'text-delta') {
      text += event.text;
      if (event.logprobs !== undefined) {
        sawLogprobs = true;
        logprobs.push(...event.logprobs);
      }
    } else if (event.type === 'tool-call-delta') {
      const existing = toolCalls[event.index];
      if (existing === undefined) toolCalls[event.index] = { id: event.id, name: event.name, arguments: event.argumentsDelta };
      else existing.arguments += event.argumentsDelta;
    } else {
      return { text, toolCalls, finishReason: event.finishReason, usage: event.usage, ...(sawLogprobs ? { logprobs } : {}) };
    }
  }
  throw new AiaasError('INTERNAL', 'The generation ended without a finish event');
}

export async function openAiRoutes(app: FastifyInstance, deps: LanguageModelDeps): Promise<void> {
  installSchemaCompilers(app);
  app.setErrorHandler((error, request, reply) => {
    // Bounded like every other error answer: no megabytes of the request echoed back.
    const aiaasError = boundedForClient(toAiaasError(error, request));
    void reply
      .status(aiaasError.status)
      .headers({ ...aiaasError.headers, [errorCodeHeader]: aiaasError.code })
      .send(renderOpenAiError(aiaasError));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .header(errorCodeHeader, 'NOT_FOUND')
      .send(renderOpenAiError(new AiaasError('NOT_FOUND', `Unknown route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`)));
  });

  const now = deps.now ?? (() => new Date());
  const open = async (request: FastifyRequest, reference: string): Promise<{ entry: LanguageModelEntry; runtime: LanguageModelRuntime }> => {
    const { name, selector } = splitModelReference(reference);
    const entry = await deps.resolve(request, name, selector);
    return { entry, runtime: await deps.open(entry) };
  };

  app.get('/models', { schema: openAiSchemas.listModels }, async (request) => {
    const entries = await deps.list(request);
    const ids = new Map<string, LanguageModelEntry>();
    for (const entry of entries) {
      ids.set(entry.name, ids.get(entry.name) ?? entry);
      for (const alias of entry.aliases) ids.set(`${entry.name}@${alias}`, entry);
    }
    return { object: 'list', data: [...ids].map(([id, entry]) => renderModel(id, Math.floor(entry.createdAt.getTime() / 1000), 'aiaas')) };
  });

  app.get<{ Params: { model: string } }>('/models/:model', { schema: openAiSchemas.getModel }, async (request) => {
    const reference = request.params.model;
    const { name, selector } = splitModelReference(reference);
    const entry = await deps.resolve(request, name, selector);
    return renderModel(reference, Math.floor(entry.createdAt.getTime() / 1000), 'aiaas');
  });

  /** Sends a stream as server-sent events, OpenAI's way: `data: {json}` lines, then `data: [DONE]`. */
  const streamEvents = async (
    reply: FastifyReply,
    events: AsyncGenerator<GenerateEvent>,
    render: (event: GenerateEvent) => unknown[],
  ): Promise<void> => {
    // Waiting for the first event keeps errors before any token (queue full, context length) plain HTTP errors.
    const first = await events.next();
    const stream = beginStream(reply, 'text/event-stream; charset=utf-8', (bytes) => deps.recordStreamedBytes?.(reply.request, bytes));
    const write = (value: unknown): void => stream.write(`data: ${JSON.stringify(value)}\n\n`);
    try {
      if (first.done !== true) for (const chunk of render(first.value)) write(chunk);
      for await (const event of events) for (const chunk of render(event)) write(chunk);
    } catch (error) {
      const aiaasError = AiaasError.isInstance(error) ? error : new AiaasError('INTERNAL', 'The generation failed');
      if (!AiaasError.isInstance(error)) reply.log.error({ err: error }, 'streamed generation failed');
      write(renderOpenAiError(aiaasError));
    } finally {
      stream.end('data: [DONE]\n\n');
    }
  };

  app.post('/chat/completions', { schema: openAiSchemas.chatCompletions }, async (request, reply) => {
    const parsed = parseChatCompletionRequest(request.body);
    const { entry, runtime } = await open(request, parsed.model);
    parsed.generate.maxTokens = applyTokenLimits(parsed.maxTokens, deps.limits(entry));
    const context = { id: newCompletionId('chatcmpl'), created: Math.floor(now().getTime() / 1000), model: parsed.model };
    const events = meteredStream(deps, request, entry, runtime, parsed.generate, 'openai', clientGone(reply));
    if (!parsed.stream) return renderChatCompletion(context, await collect(events));
    const renderer = new ChatChunkRenderer(context, parsed.includeUsage);
    await streamEvents(reply, events, (event) => renderer.render(event));
    return reply;
  });

  app.post('/completions', { schema: openAiSchemas.completions }, async (request, reply) => {
    const parsed = parseCompletionRequest(request.body);
    const { entry, runtime } = await open(request, parsed.model);
    parsed.generate.maxTokens = applyTokenLimits(parsed.maxTokens, deps.limits(entry));
    const context = { id: newCompletionId('cmpl'), created: Math.floor(now().getTime() / 1000), model: parsed.model };
    const events = meteredStream(deps, request, entry, runtime, parsed.generate, 'openai', clientGone(reply));
    if (!parsed.stream) return renderCompletion(context, parsed, await collect(events));
    let offset = parsed.echo ? parsed.prompt.length : 0;
    let echoed = !parsed.echo;
    await streamEvents(reply, events, (event) => {
      const chunks: unknown[] = [];
      if (!echoed) {
        chunks.push(renderCompletionChunk(context, parsed.prompt, null));
        echoed = true;
      }
      if (event.type === 'text-delta') {
        chunks.push(renderCompletionChunk(context, event.text, null, event.logprobs, offset));
        offset += event.text.length;
      } else if (event.type === 'finish') {
        chunks.push(renderCompletionChunk(context, '', event.finishReason));
        if (parsed.includeUsage) chunks.push({ ...renderCompletionChunk(context, '', null), choices: [], usage: { prompt_tokens: event.usage.promptTokens, completion_tokens: event.usage.completionTokens, total_tokens: event.usage.promptTokens + event.usage.completionTokens } });
      }
      return chunks;
    });
    return reply;
  });

  app.post('/embeddings', { schema: openAiSchemas.embeddings }, async (request, reply) => {
    const parsed = parseEmbeddingRequest(request.body);
    const { entry, runtime } = await open(request, parsed.model);
    const result = await meteredEmbed(deps, request, entry, runtime, parsed.inputs, 'openai', clientGone(reply));
    return renderEmbeddings(parsed.model, result.embeddings, result.promptTokens, parsed.encoding);
  });
}

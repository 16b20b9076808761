/**
 * OpenAI's REST API (chat completions, legacy completions, embeddings, models) as a thin adapter over
 * the GenerativeRuntime types: requests are checked field by field against OpenAI's API reference and
 * turned into a `GenerateRequest`; results and stream events become OpenAI's JSON. Fields we cannot
 * honour are refused with 400 naming the `param`, never silently ignored, except those that only
 * label a request (`user`, `metadata`, `store`, `service_tier`, `parallel_tool_calls`).
 */
import { randomBytes } from 'node:crypto';
import { AiaasError, type ErrorCode } from '../../errors.ts';
import type {
  ChatMessage,
  ChatToolCall,
  FinishReason,
  GenerateEvent,
  GenerateRequest,
  GenerateResult,
  ResponseFormat,
  TokenLogprob,
  ToolChoice,
  ToolDefinition,
} from '../../runtimes/generative.ts';

export interface TokenLimits {
  /** `max_tokens` when the request gives none. */
  defaultMaxTokens: number;
  /** The most `max_tokens` may ask for. */
  maxTokens: number;
}

/** An OpenAI-shaped request error: `param` names the offending field. */
export function invalidParam(param: string, message: string): AiaasError {
  return new AiaasError('INVALID_REQUEST', message, { details: { param } });
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalNumber(body: Json, param: string, range: [number, number]): number | undefined {
  const value = body[param];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < range[0] || value > range[1]) {
    throw invalidParam(param, `${param} must be a number from ${range[0]} to ${range[1]}`);
  }
  return value;
}

function optionalInteger(body: Json, param: string, range: [number, number]): number | undefined {
  const value = optionalNumber(body, param, range);
  if (value !== undefined && !Number.isInteger(value)) throw invalidParam(param, `${param} must be an integer`);
  return value;
}

function optionalBoolean(body: Json, param: string): boolean | undefined {
  const value = body[param];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalidParam(param, `${param} must be a boolean`);
  return value;
}

export function requireModel(body: unknown): string {
  if (!isObject(body)) throw invalidParam('', 'The request body must be a JSON object');
  const model = body['model'];
  if (typeof model !== 'string' || model.length === 0 || model.length > 256) throw invalidParam('model', 'model must be a non-empty string (NAME, NAME@VERSION or NAME@ALIAS)');
  return model;
}

/** `NAME`, `NAME@VERSION` or `NAME@ALIAS` → name and selector (latest when absent). */
export function splitModelReference(reference: string): { name: string; selector?: string } {
  const at = reference.lastIndexOf('@');
  if (at <= 0) return { name: reference };
  return { name: reference.slice(0, at), selector: reference.slice(at + 1) };
}

function parseStop(body: Json): string[] | undefined {
  const stop = body['stop'];
  if (stop === undefined || stop === null) return undefined;
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || list.length > 4 || !list.every((entry) => typeof entry === 'string' && entry.length <= 256)) {
    throw invalidParam('stop', 'stop must be a string or an array of up to 4 strings');
  }
  return list as string[];
}

/** The max-token count a request asked for (first of `params` present), checked later against the model's limits. */
function requestedMaxTokens(body: Json, params: readonly string[]): RequestedMaxTokens {
  for (const param of params) {
    const value = optionalInteger(body, param, [1, Number.MAX_SAFE_INTEGER]);
    if (value !== undefined) return { value, param };
  }
  return { param: params[params.length - 1]! };
}

export interface RequestedMaxTokens {
  value?: number;
  param: string;
}

/** The request's max tokens under the model's limits: its default when absent, 400 above its maximum. */
export function applyTokenLimits(requested: RequestedMaxTokens, limits: TokenLimits): number {
  if (requested.value === undefined) return Math.min(limits.defaultMaxTokens, limits.maxTokens);
  if (requested.value > limits.maxTokens) throw invalidParam(requested.param, `${requested.param} may be at most ${limits.maxTokens} for this model`);
  return requested.value;
}

function refuseUnsupported(body: Json, checks: ReadonlyArray<[string, (value: unknown) => boolean, string]>): void {
  for (const [param, acceptable, message] of checks) {
    const value = body[param];
    if (value !== undefined && value !== null && !acceptable(value)) throw invalidParam(param, message);
  }
}

function sampling(body: Json): Pick<GenerateRequest, 'temperature' | 'topP' | 'seed' | 'presencePenalty' | 'frequencyPenalty'> {
  const request: Pick<GenerateRequest, 'temperature' | 'topP' | 'seed' | 'presencePenalty' | 'frequencyPenalty'> = {};
  const temperature = optionalNumber(body, 'temperature', [0, 2]);
  if (temperature !== undefined) request.temperature = temperature;
  const topP = optionalNumber(body, 'top_p', [0, 1]);
  if (topP !== undefined) request.topP = topP;
  const seed = optionalInteger(body, 'seed', [-(2 ** 53), 2 ** 53]);
  if (seed !== undefined) request.seed = seed >>> 0;
  const presence = optionalNumber(body, 'presence_penalty', [-2, 2]);
  if (presence !== undefined && presence !== 0) request.presencePenalty = presence;
  const frequency = optionalNumber(body, 'frequency_penalty', [-2, 2]);
  if (frequency !== undefined && frequency !== 0) request.frequencyPenalty = frequency;
  return request;
}

function textContent(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, index) => {
        if (isObject(part) && part['type'] === 'text' && typeof part['text'] === 'string') return part['text'];
        const type = isObject(part) ? String(part['type']).slice(0, 40) : typeof part;
        throw invalidParam(`${param}[${index}]`, `Content parts of type ${type} are not supported; only text parts are`);
      })
      .join('');
  }
  throw invalidParam(param, `${param} must be a string or an array of text parts`);
}

function parseToolCalls(value: unknown, param: string): ChatToolCall[] {
  if (!Array.isArray(value)) throw invalidParam(param, `${param} must be an array`);
  return value.map((call, index) => {
    const fn = isObject(call) ? call['function'] : undefined;
    if (!isObject(call) || typeof call['id'] !== 'string' || !isObject(fn) || typeof fn['name'] !== 'string' || typeof fn['arguments'] !== 'string') {
      throw invalidParam(`${param}[${index}]`, 'A tool call needs id, function.name and function.arguments (a JSON string)');
    }
    return { id: call['id'], name: fn['name'], arguments: fn['arguments'] };
  });
}

export function parseChatMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw invalidParam('messages', 'messages must be a non-empty array');
  return value.map((message, index): ChatMessage => {
    const param = `messages[${index}]`;
    if (!isObject(message)) throw invalidParam(param, `${param} must be an object`);
    const role = message['role'];
    switch (role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textContent(message['content'], `${param}.content`) };
      case 'user':
        return { role: 'user', content: textContent(message['content'], `${param}.content`) };
      case 'assistant': {
        const content = message['content'] === null || message['content'] === undefined ? '' : textContent(message['content'], `${param}.content`);
        const toolCalls = message['tool_calls'] === undefined || message['tool_calls'] === null ? undefined : parseToolCalls(message['tool_calls'], `${param}.tool_calls`);
        return toolCalls === undefined ? { role: 'assistant', content } : { role: 'assistant', content, toolCalls };
      }
      case 'tool': {
        const toolCallId = message['tool_call_id'];
        if (typeof toolCallId !== 'string') throw invalidParam(`${param}.tool_call_id`, 'A tool message needs tool_call_id');
        return { role: 'tool', content: textContent(message['content'], `${param}.content`), toolCallId };
      }
      default:
        throw invalidParam(`${param}.role`, `${param}.role must be system, developer, user, assistant or tool`);
    }
  });
}

function parseTools(body: Json): { tools?: ToolDefinition[]; toolChoice?: ToolChoice } {
  const tools = body['tools'];
  const choice = body['tool_choice'];
  if (tools === undefined || tools === null) {
    if (choice !== undefined && choice !== null && choice !== 'none' && choice !== 'auto') throw invalidParam('tool_choice', 'tool_choice needs tools');
    return {};
  }
  if (!Array.isArray(tools) || tools.length > 128) throw invalidParam('tools', 'tools must be an array of up to 128 function tools');
  const definitions = tools.map((tool, index): ToolDefinition => {
    const fn = isObject(tool) ? tool['function'] : undefined;
    if (!isObject(tool) || tool['type'] !== 'function' || !isObject(fn) || typeof fn['name'] !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(fn['name'])) {
      throw invalidParam(`tools[${index}]`, 'Each tool must be {"type":"function","function":{"name": [A-Za-z0-9_-]{1,64}, ...}}');
    }
    const definition: ToolDefinition = { name: fn['name'] };
    if (typeof fn['description'] === 'string') definition.description = fn['description'];
    if (fn['parameters'] !== undefined) {
      if (!isObject(fn['parameters'])) throw invalidParam(`tools[${index}].function.parameters`, 'parameters must be a JSON Schema object');
      definition.parameters = fn['parameters'];
    }
    return definition;
  });
  let toolChoice: ToolChoice = 'auto';
  if (choice === 'none' || choice === 'auto' || choice === 'required') toolChoice = choice;
  else if (isObject(choice) && choice['type'] === 'function' && isObject(choice['function']) && typeof choice['function']['name'] === 'string') {
    const name = choice['function']['name'];
    if (!definitions.some((tool) => tool.name === name)) throw invalidParam('tool_choice', `tool_choice names ${JSON.stringify(name.slice(0, 64))}, which is not in tools`);
    toolChoice = { name };
  } else if (choice !== undefined && choice !== null) {
    throw invalidParam('tool_choice', 'tool_choice must be "none", "auto", "required" or {"type":"function","function":{"name":...}}');
  }
  return { tools: definitions, toolChoice };
}

function parseResponseFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalidParam('response_format', 'response_format must be an object');
  switch (value['type']) {
    case 'text':
      return { type: 'text' };
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      const jsonSchema = value['json_schema'];
      if (!isObject(jsonSchema) || !isObject(jsonSchema['schema'])) throw invalidParam('response_format.json_schema.schema', 'json_schema needs a schema object');
      return { type: 'json_schema', schema: jsonSchema['schema'] };
    }
    default:
      throw invalidParam('response_format.type', 'response_format.type must be text, json_object or json_schema');
  }
}

const notSupported = (what: string) => `${what} is not supported by this server`;

export interface ParsedChatRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: RequestedMaxTokens;
  /** `maxTokens` is 0 until `applyTokenLimits` sets it for the resolved model. */
  generate: GenerateRequest;
}

export function parseChatCompletionRequest(body: unknown): ParsedChatRequest {
  const model = requireModel(body);
  const json = body as Json;
  refuseUnsupported(json, [
    ['n', (value) => value === 1, 'n must be 1: this server generates one choice per request'],
    ['logit_bias', (value) => isObject(value) && Object.keys(value).length === 0, notSupported('logit_bias')],
    ['audio', () => false, notSupported('audio output')],
    ['modalities', (value) => Array.isArray(value) && value.every((entry) => entry === 'text'), 'Only the text modality is supported'],
    ['prediction', () => false, notSupported('prediction')],
    ['functions', () => false, 'functions is deprecated: use tools'],
    ['function_call', () => false, 'function_call is deprecated: use tool_choice'],
  ]);
  const stream = optionalBoolean(json, 'stream') ?? false;
  const streamOptions = json['stream_options'];
  if (streamOptions !== undefined && streamOptions !== null && (!isObject(streamOptions) || !stream)) {
    throw invalidParam('stream_options', 'stream_options is an object, allowed only with stream: true');
  }
  const includeUsage = isObject(streamOptions) && streamOptions['include_usage'] === true;
  const generate: GenerateRequest = {
    prompt: { kind: 'chat', messages: parseChatMessages(json['messages']), ...parseTools(json) },
    maxTokens: 0,
    ...sampling(json),
  };
  const stop = parseStop(json);
  if (stop !== undefined) generate.stop = stop;
  const format = parseResponseFormat(json['response_format']);
  if (format !== undefined) generate.responseFormat = format;
  if (optionalBoolean(json, 'logprobs') === true) generate.logprobs = { top: optionalInteger(json, 'top_logprobs', [0, 20]) ?? 0 };
  else if (json['top_logprobs'] !== undefined && json['top_logprobs'] !== null) throw invalidParam('top_logprobs', 'top_logprobs needs logprobs: true');
  return { model, stream, includeUsage, maxTokens: requestedMaxTokens(json, ['max_completion_tokens', 'max_tokens']), generate };
}

export interface ParsedCompletionRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  echo: boolean;
  prompt: string;
  maxTokens: RequestedMaxTokens;
  generate: GenerateRequest;
}

export function parseCompletionRequest(body: unknown): ParsedCompletionRequest {
  const model = requireModel(body);
  const json = body as Json;
  refuseUnsupported(json, [
    ['n', (value) => value === 1, 'n must be 1: this server generates one choice per request'],
    ['best_of', (value) => value === 1, 'best_of must be 1'],
    ['suffix', () => false, notSupported('suffix (insertion)')],
    ['logit_bias', (value) => isObject(value) && Object.keys(value).length === 0, notSupported('logit_bias')],
  ]);
  let prompt = json['prompt'];
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  if (typeof prompt !== 'string') throw invalidParam('prompt', 'prompt must be a string (or an array of one string)');
  const stream = optionalBoolean(json, 'stream') ?? false;
  const streamOptions = json['stream_options'];
  const includeUsage = stream && isObject(streamOptions) && streamOptions['include_usage'] === true;
  const generate: GenerateRequest = {
    prompt: { kind: 'text', text: prompt },
    maxTokens: 0,
    ...sampling(json),
  };
  const stop = parseStop(json);
  if (stop !== undefined) generate.stop = stop;
  const logprobs = optionalInteger(json, 'logprobs', [0, 5]);
  if (logprobs !== undefined) generate.logprobs = { top: logprobs };
  // OpenAI's legacy completions default to 16 tokens.
  const maxTokens = requestedMaxTokens(json, ['max_tokens']);
  return { model, stream, includeUsage, echo: optionalBoolean(json, 'echo') ?? false, prompt, maxTokens: maxTokens.value === undefined ? { ...maxTokens, value: 16 } : maxTokens, generate };
}

export interface ParsedEmbeddingRequest {
  model: string;
  inputs: string[];
  encoding: 'float' | 'base64';
}

export function parseEmbeddingRequest(body: unknown): ParsedEmbeddingRequest {
  const model = requireModel(body);
  const json = body as Json;
  const input = json['input'];
  const inputs = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > 2048 || !inputs.every((entry) => typeof entry === 'string')) {
    throw invalidParam('input', 'input must be a string or an array of 1 to 2048 strings (token arrays are not supported)');
  }
  const encoding = json['encoding_format'] ?? 'float';
  if (encoding !== 'float' && encoding !== 'base64') throw invalidParam('encoding_format', 'encoding_format must be float or base64');
  if (json['dimensions'] !== undefined && json['dimensions'] !== null) throw invalidParam('dimensions', notSupported('dimensions (shortened embeddings)'));
  return { model, inputs: inputs as string[], encoding };
}

// ---- responses ----

export function newCompletionId(prefix: 'chatcmpl' | 'cmpl'): string {
  return `${prefix}-${randomBytes(15).toString('base64url')}`;
}

export function renderUsage(usage: { promptTokens: number; completionTokens: number }): Json {
  return { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens };
}

function renderFinishReason(reason: FinishReason): string {
  // An aborted generation only reaches a client that is still there when the server stopped it.
  return reason === 'abort' ? 'stop' : reason;
}

function renderChatLogprobs(logprobs: readonly TokenLogprob[]): Json {
  return {
    content: logprobs.map((entry) => ({
      token: entry.token,
      logprob: entry.logprob,
      bytes: entry.bytes,
      top_logprobs: entry.top.map((alternative) => ({ token: alternative.token, logprob: alternative.logprob, bytes: alternative.bytes })),
    })),
    refusal: null,
  };
}

function renderToolCalls(calls: readonly ChatToolCall[]): Json[] {
  return calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }));
}

export interface ResponseContext {
  id: string;
  created: number;
  model: string;
}

export function renderChatCompletion(context: ResponseContext, result: GenerateResult): Json {
  const message: Json = { role: 'assistant', content: result.toolCalls.length > 0 && result.text === '' ? null : result.text, refusal: null };
  if (result.toolCalls.length > 0) message['tool_calls'] = renderToolCalls(result.toolCalls);
  return {
    id: context.id,
    object: 'chat.completion',
    created: context.created,
    model: context.model,
    choices: [{ index: 0, message, logprobs: result.logprobs === undefined ? null : renderChatLogprobs(result.logprobs), finish_reason: renderFinishReason(result.finishReason) }],
    usage: renderUsage(result.usage),
    system_fingerprint: null,
  };
}

/** Turns runtime events into chat.completion.chunk objects (OpenAI's streaming shape). */
export class ChatChunkRenderer {
  readonly #context: ResponseContext;
  readonly #includeUsage: boolean;
  #sentRole = false;
  readonly #startedCalls = new Set<number>();

  constructor(context: ResponseContext, includeUsage: boolean) {
    this.#context = context;
    this.#includeUsage = includeUsage;
  }

  #chunk(delta: Json, finishReason: string | null, logprobs: Json | null = null): Json {
    if (!this.#sentRole) {
      delta = { role: 'assistant', ...delta };
      this.#sentRole = true;
    }
    const chunk: Json = {
      id: this.#context.id,
      object: 'chat.completion.chunk',
      created: this.#context.created,
      model: this.#context.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs, finish_reason: finishReason }],
    };
    if (this.#includeUsage) chunk['usage'] = null;
    return chunk;
  }

  /** The chunks to send for one event (the finish event yields the final chunk, then the usage chunk). */
  render(event: GenerateEvent): Json[] {
    switch (event.type) {
      case 'text-delta':
        return [this.#chunk({ content: event.text }, null, event.logprobs === undefined ? null : renderChatLogprobs(event.logprobs))];
      case 'tool-call-delta': {
        const first = !this.#startedCalls.has(event.index);
        this.#startedCalls.add(event.index);
        const call: Json = first
          ? { index: event.index, id: event.id, type: 'function', function: { name: event.name, arguments: event.argumentsDelta } }
          : { index: event.index, function: { arguments: event.argumentsDelta } };
        return [this.#chunk({ ...(first ? { content: null } : {}), tool_calls: [call] }, null)];
      }
      case 'finish': {
        const chunks = [this.#chunk({}, renderFinishReason(event.finishReason))];
        if (this.#includeUsage) {
          chunks.push({
            id: this.#context.id,
            object: 'chat.completion.chunk',
            created: this.#context.created,
            model: this.#context.model,
            system_fingerprint: null,
            choices: [],
            usage: renderUsage(event.usage),
          });
        }
        return chunks;
      }
    }
  }
}

function renderCompletionLogprobs(logprobs: readonly TokenLogprob[], textOffset: number): Json {
  const offsets: number[] = [];
  let offset = textOffset;
  for (const entry of logprobs) {
    offsets.push(offset);
    offset += entry.token.length;
  }
  return {
    tokens: logprobs.map((entry) => entry.token),
    token_logprobs: logprobs.map((entry) => entry.logprob),
    top_logprobs: logprobs.map((entry) => Object.fromEntries(entry.top.map((alternative) => [alternative.token, alternative.logprob]))),
    text_offset: offsets,
  };
}

export function renderCompletion(context: ResponseContext, parsed: ParsedCompletionRequest, result: GenerateResult): Json {
  const prefix = parsed.echo ? parsed.prompt : '';
  return {
    id: context.id,
    object: 'text_completion',
    created: context.created,
    model: context.model,
    choices: [
      {
        text: prefix + result.text,
        index: 0,
        logprobs: result.logprobs === undefined ? null : renderCompletionLogprobs(result.logprobs, prefix.length),
        finish_reason: renderFinishReason(result.finishReason),
      },
    ],
    usage: renderUsage(result.usage),
    system_fingerprint: null,
  };
}

export function renderCompletionChunk(context: ResponseContext, text: string, finishReason: FinishReason | null, logprobs?: readonly TokenLogprob[], textOffset = 0): Json {
  return {
    id: context.id,
    object: 'text_completion',
    created: context.created,
    model: context.model,
    choices: [{ text, index: 0, logprobs: logprobs === undefined ? null : renderCompletionLogprobs(logprobs, textOffset), finish_reason: finishReason === null ? null : renderFinishReason(finishReason) }],
    system_fingerprint: null,
  };
}

export function renderEmbeddings(model: string, embeddings: readonly number[][], promptTokens: number, encoding: 'float' | 'base64'): Json {
  return {
    object: 'list',
    data: embeddings.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: encoding === 'float' ? vector : Buffer.from(new Float32Array(vector).buffer).toString('base64'),
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

export function renderModel(id: string, createdSeconds: number, ownedBy: string): Json {
  return { id, object: 'model', created: createdSeconds, owned_by: ownedBy };
}

/** OpenAI's error object for a catalogue error: `type` and `code` as OpenAI's clients match them. */
export function renderOpenAiError(error: AiaasError): Json {
  // Schema validation names the field as `field`; the parsers name it `param`, as OpenAI does.
  const named = error.details?.['param'] ?? error.details?.['field'];
  const param = typeof named === 'string' ? named : null;
  const mapping: Partial<Record<ErrorCode, { type: string; code: string | null }>> = {
    UNAUTHENTICATED: { type: 'invalid_request_error', code: 'invalid_api_key' },
    FORBIDDEN: { type: 'invalid_request_error', code: 'insufficient_permissions' },
    MODEL_NOT_FOUND: { type: 'invalid_request_error', code: 'model_not_found' },
    VERSION_NOT_FOUND: { type: 'invalid_request_error', code: 'model_not_found' },
    NOT_FOUND: { type: 'invalid_request_error', code: null },
    CONTEXT_LENGTH_EXCEEDED: { type: 'invalid_request_error', code: 'context_length_exceeded' },
    RATE_LIMITED: { type: 'requests', code: 'rate_limit_exceeded' },
    QUOTA_EXCEEDED: { type: 'insufficient_quota', code: 'insufficient_quota' },
    QUEUE_FULL: { type: 'server_error', code: 'server_overloaded' },
    MODEL_NOT_READY: { type: 'server_error', code: 'model_not_ready' },
    MODEL_LOAD_FAILED: { type: 'server_error', code: 'model_load_failed' },
  };
  const mapped = mapping[error.code] ?? (error.status >= 500 ? { type: 'server_error', code: null } : { type: 'invalid_request_error', code: null });
  return { error: { message: error.message, type: mapped.type, param, code: mapped.code } };
}

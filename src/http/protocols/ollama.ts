/**
 * Ollama's REST API (`docs/api.md` of ollama/ollama) as a thin adapter over the GenerativeRuntime
 * types: `/api/generate`, `/api/chat`, `/api/embed` requests become `GenerateRequest`s; results become
 * Ollama's JSON objects and NDJSON stream lines. Model names are `NAME:TAG`, TAG an alias or a
 * version number (`latest` when absent).
 */
import { AiaasError } from '../../errors.ts';
import type { ChatMessage, FinishReason, GenerateRequest, GenerationUsage, ResponseFormat, ToolDefinition } from '../../runtimes/generative.ts';
import type { LanguageModelEntry } from './llm-support.ts';
import type { RequestedMaxTokens } from './openai.ts';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): AiaasError {
  return new AiaasError('INVALID_REQUEST', message);
}

/** `NAME:TAG` → name and selector; `latest` (or no tag) is the newest version unless an alias is named `latest`. */
export function splitOllamaModel(reference: unknown): { name: string; selector?: string } {
  if (typeof reference !== 'string' || reference.length === 0 || reference.length > 256) throw invalid('model is required (NAME or NAME:TAG)');
  const colon = reference.lastIndexOf(':');
  if (colon <= 0) return { name: reference };
  const tag = reference.slice(colon + 1);
  return tag === '' ? { name: reference.slice(0, colon) } : { name: reference.slice(0, colon), selector: tag };
}

export function ollamaModelName(entry: LanguageModelEntry, tag: string): string {
  return `${entry.name}:${tag}`;
}

function number(options: Json, key: string, range: [number, number]): number | undefined {
  const value = options[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < range[0] || value > range[1]) {
    throw invalid(`options.${key} must be a number from ${range[0]} to ${range[1]}`);
  }
  return value;
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Ollama's `keep_alive`: a number of seconds, or a Go duration string ("5m", "1h30m", "300ms"); 0
 * unloads the model when the request is done, a negative value keeps it loaded. Undefined when absent.
 */
export function parseKeepAlive(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value * 1000;
  if (typeof value === 'string') {
    const text = value.trim();
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
    const match = /^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
    if (match !== null) {
      let total = 0;
      for (const part of match[2]!.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(part[1]) * durationUnits[part[2]!]!;
      return match[1] === '-' ? -total : total;
    }
  }
  throw invalid('keep_alive must be a number of seconds or a duration such as "5m", "1h30m" or "-1"');
}

export interface ParsedOllamaGeneration {
  model: { name: string; selector?: string };
  reference: string;
  stream: boolean;
  maxTokens: RequestedMaxTokens;
  /** `keep_alive` in milliseconds, applied when the request is done. */
  keepAliveMs?: number;
  /** `options.num_ctx`, checked against the model's maximum context. */
  contextLength?: number;
  generate: GenerateRequest;
}

function parseOptions(body: Json): { sampling: Omit<GenerateRequest, 'prompt' | 'maxTokens'>; maxTokens: RequestedMaxTokens; contextLength?: number } {
  const options = body['options'] ?? {};
  if (!isObject(options)) throw invalid('options must be an object');
  const sampling: Omit<GenerateRequest, 'prompt' | 'maxTokens'> = {};
  const temperature = number(options, 'temperature', [0, 100]);
  if (temperature !== undefined) sampling.temperature = temperature;
  const topP = number(options, 'top_p', [0, 1]);
  if (topP !== undefined) sampling.topP = topP;
  const topK = number(options, 'top_k', [0, 1_000_000]);
  if (topK !== undefined) sampling.topK = Math.round(topK);
  const seed = number(options, 'seed', [-(2 ** 53), 2 ** 53]);
  if (seed !== undefined) sampling.seed = Math.trunc(seed) >>> 0;
  const repeatPenalty = number(options, 'repeat_penalty', [0, 100]);
  if (repeatPenalty !== undefined && repeatPenalty !== 1) sampling.repeatPenalty = repeatPenalty;
  const presence = number(options, 'presence_penalty', [-100, 100]);
  if (presence !== undefined && presence !== 0) sampling.presencePenalty = presence;
  const frequency = number(options, 'frequency_penalty', [-100, 100]);
  if (frequency !== undefined && frequency !== 0) sampling.frequencyPenalty = frequency;
  const stop = options['stop'];
  if (stop !== undefined && stop !== null) {
    if (!Array.isArray(stop) || !stop.every((entry) => typeof entry === 'string')) throw invalid('options.stop must be an array of strings');
    sampling.stop = stop as string[];
  }
  // num_predict: -1 means "until the context is full"; Ollama's default is unlimited too, bounded here by the model's maximum.
  const numPredict = number(options, 'num_predict', [-2, Number.MAX_SAFE_INTEGER]);
  const maxTokens: RequestedMaxTokens = numPredict === undefined || numPredict < 0 ? { param: 'options.num_predict' } : { value: Math.max(1, Math.round(numPredict)), param: 'options.num_predict' };
  const numContext = number(options, 'num_ctx', [1, Number.MAX_SAFE_INTEGER]);
  return { sampling, maxTokens, ...(numContext === undefined ? {} : { contextLength: Math.round(numContext) }) };
}

function parseFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === 'json') return { type: 'json_object' };
  if (isObject(value)) return { type: 'json_schema', schema: value };
  throw invalid('format must be "json" or a JSON schema object');
}

function parseStream(body: Json): boolean {
  const stream = body['stream'];
  if (stream === undefined || stream === null) return true;
  if (typeof stream !== 'boolean') throw invalid('stream must be a boolean');
  return stream;
}

function refuseImages(value: unknown): void {
  if (Array.isArray(value) && value.length > 0) throw invalid('images are not supported: the served models are text-only');
}

export function parseOllamaGenerate(body: unknown): ParsedOllamaGeneration {
  if (!isObject(body)) throw invalid('The request body must be a JSON object');
  const model = splitOllamaModel(body['model']);
  refuseImages(body['images']);
  if (body['suffix'] !== undefined && body['suffix'] !== '') throw invalid('suffix (fill-in-the-middle) is not supported');
  if (body['template'] !== undefined && body['template'] !== '') throw invalid('template overrides are not supported; the model\'s own chat template applies');
  const prompt = body['prompt'] ?? '';
  if (typeof prompt !== 'string') throw invalid('prompt must be a string');
  const system = body['system'];
  if (system !== undefined && typeof system !== 'string') throw invalid('system must be a string');
  const { sampling, maxTokens, contextLength } = parseOptions(body);
  const format = parseFormat(body['format']);
  // raw: the prompt goes to the model as it is; otherwise Ollama applies the chat template to one user turn.
  const generate: GenerateRequest =
    body['raw'] === true
      ? { prompt: { kind: 'text', text: prompt }, maxTokens: 0, ...sampling }
      : {
          prompt: { kind: 'chat', messages: [...(typeof system === 'string' && system !== '' ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content: prompt }] },
          maxTokens: 0,
          ...sampling,
        };
  if (format !== undefined) generate.responseFormat = format;
  const keepAliveMs = parseKeepAlive(body['keep_alive']);
  return { model, reference: String(body['model']), stream: parseStream(body), maxTokens, ...(keepAliveMs === undefined ? {} : { keepAliveMs }), ...(contextLength === undefined ? {} : { contextLength }), generate };
}

function parseOllamaMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) throw invalid('messages must be an array');
  let callCounter = 0;
  const lastCallIds: string[] = [];
  return value.map((message, index): ChatMessage => {
    if (!isObject(message) || typeof message['content'] !== 'string' && message['content'] !== undefined) throw invalid(`messages[${index}] needs a role and a string content`);
    refuseImages(message['images']);
    const content = typeof message['content'] === 'string' ? message['content'] : '';
    switch (message['role']) {
      case 'system':
        return { role: 'system', content };
      case 'user':
        return { role: 'user', content };
      case 'assistant': {
        const calls = message['tool_calls'];
        if (calls === undefined || calls === null) return { role: 'assistant', content };
        if (!Array.isArray(calls)) throw invalid(`messages[${index}].tool_calls must be an array`);
        lastCallIds.length = 0;
        const toolCalls = calls.map((call, callIndex) => {
          const fn = isObject(call) ? call['function'] : undefined;
          if (!isObject(fn) || typeof fn['name'] !== 'string') throw invalid(`messages[${index}].tool_calls[${callIndex}] needs function.name`);
          const id = `call_${++callCounter}`;
          lastCallIds.push(id);
          return { id, name: fn['name'], arguments: JSON.stringify(fn['arguments'] ?? {}) };
        });
        return { role: 'assistant', content, toolCalls };
      }
      case 'tool': {
        // Ollama answers tool calls in order (optionally naming the tool); match them to the last assistant turn's calls.
        const toolCallId = lastCallIds.shift();
        if (toolCallId === undefined) throw invalid(`messages[${index}] is a tool result with no open tool call before it`);
        return { role: 'tool', content, toolCallId };
      }
      default:
        throw invalid(`messages[${index}].role must be system, user, assistant or tool`);
    }
  });
}

function parseOllamaTools(value: unknown): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalid('tools must be an array');
  return value.map((tool, index) => {
    const fn = isObject(tool) ? tool['function'] : undefined;
    if (!isObject(fn) || typeof fn['name'] !== 'string') throw invalid(`tools[${index}] needs function.name`);
    const definition: ToolDefinition = { name: fn['name'] };
    if (typeof fn['description'] === 'string') definition.description = fn['description'];
    if (isObject(fn['parameters'])) definition.parameters = fn['parameters'];
    return definition;
  });
}

export function parseOllamaChat(body: unknown): ParsedOllamaGeneration {
  if (!isObject(body)) throw invalid('The request body must be a JSON object');
  const model = splitOllamaModel(body['model']);
  const messages = parseOllamaMessages(body['messages'] ?? []);
  if (messages.length === 0) throw invalid('messages must not be empty');
  const tools = parseOllamaTools(body['tools']);
  const { sampling, maxTokens, contextLength } = parseOptions(body);
  const generate: GenerateRequest = { prompt: { kind: 'chat', messages, ...(tools === undefined ? {} : { tools, toolChoice: 'auto' as const }) }, maxTokens: 0, ...sampling };
  const format = parseFormat(body['format']);
  if (format !== undefined) generate.responseFormat = format;
  const keepAliveMs = parseKeepAlive(body['keep_alive']);
  return { model, reference: String(body['model']), stream: parseStream(body), maxTokens, ...(keepAliveMs === undefined ? {} : { keepAliveMs }), ...(contextLength === undefined ? {} : { contextLength }), generate };
}

export function parseOllamaEmbed(body: unknown): { model: { name: string; selector?: string }; reference: string; inputs: string[]; truncate: boolean; keepAliveMs?: number } {
  if (!isObject(body)) throw invalid('The request body must be a JSON object');
  const model = splitOllamaModel(body['model']);
  const input = body['input'];
  const inputs = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > 2048 || !inputs.every((entry) => typeof entry === 'string')) {
    throw invalid('input must be a string or an array of 1 to 2048 strings');
  }
  if (body['dimensions'] !== undefined) throw invalid('dimensions is not supported');
  const keepAliveMs = parseKeepAlive(body['keep_alive']);
  return { model, reference: String(body['model']), inputs: inputs as string[], truncate: body['truncate'] !== false, ...(keepAliveMs === undefined ? {} : { keepAliveMs }) };
}

/** Durations in nanoseconds, as Ollama reports them. */
export interface OllamaTimings {
  totalNs: number;
  loadNs: number;
  promptEvalNs: number;
  evalNs: number;
}

export function renderOllamaFinal(
  base: Json,
  finishReason: FinishReason,
  usage: GenerationUsage,
  timings: OllamaTimings,
): Json {
  return {
    ...base,
    done: true,
    done_reason: finishReason === 'length' ? 'length' : 'stop',
    total_duration: Math.round(timings.totalNs),
    load_duration: Math.round(timings.loadNs),
    prompt_eval_count: usage.promptTokens,
    prompt_eval_duration: Math.round(timings.promptEvalNs),
    eval_count: usage.completionTokens,
    eval_duration: Math.round(timings.evalNs),
  };
}

function parameterSize(count: number | undefined): string {
  if (count === undefined) return '';
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  return `${(count / 1e3).toFixed(1)}K`;
}

export function renderOllamaDetails(entry: LanguageModelEntry): Json {
  const family = entry.info?.architecture ?? 'unknown';
  return {
    parent_model: '',
    format: 'gguf',
    family,
    families: [family],
    parameter_size: parameterSize(entry.info?.parameterCount),
    quantization_level: entry.info?.quantization ?? '',
  };
}

export function renderOllamaModel(entry: LanguageModelEntry, tag: string): Json {
  const name = ollamaModelName(entry, tag);
  return { name, model: name, modified_at: entry.createdAt.toISOString(), size: entry.fileBytes, digest: entry.sha256.replace(/^sha256:/, ''), details: renderOllamaDetails(entry) };
}

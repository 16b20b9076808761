/**
 * GGUF language models on llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU binaries). The runtime runs
 * in the server process: node-llama-cpp evaluates on native threads, off the event loop. One context
 * per loaded model holds `parallel` sequences; concurrent generations each take a sequence and
 * llama.cpp batches their tokens together (continuous batching). Beyond that, a bounded wait queue;
 * beyond the queue, QUEUE_FULL.
 *
 * Generation is our own token loop over `evaluateWithMetadata` rather than `LlamaChatSession`, so that
 * stop strings, log probabilities, grammars, usage counts and aborts are exact. Chat with tools and
 * `tool_choice: auto` uses node-llama-cpp's `LlamaChat`, which knows each chat format's call syntax.
 */
import { randomBytes } from 'node:crypto';
import {
  LlamaChat,
  LlamaGrammarEvaluationState,
  LlamaText,
  resolveChatWrapper,
  GeneralChatWrapper,
  type ChatHistoryItem,
  type ChatModelFunctionCall,
  type ChatModelFunctions,
  type ChatWrapper,
  type GbnfJsonSchema,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { AiaasError } from '../../errors.ts';
import type {
  ChatMessage,
  EmbeddingResult,
  EmbeddingRuntime,
  FinishReason,
  GenerateEvent,
  GenerateRequest,
  GenerateResult,
  GenerativeModelInfo,
  GenerativeRuntime,
  TokenLogprob,
  ToolDefinition,
} from '../generative.ts';
import { fileTypeName } from './gguf-signature.ts';

export interface LlamaCppRuntimeOptions {
  /** Tokens of context each sequence gets; the model's trained length when omitted (capped by `maxContextLength`). */
  contextLength?: number;
  maxContextLength?: number;
  /** Sequences generating at once (continuous batching across them). */
  parallel: number;
  /** Generations that may wait for a sequence before new ones are refused with QUEUE_FULL. */
  maxWaiting: number;
  threads?: number;
}

interface Waiter {
  resolve: (sequence: LlamaContextSequence) => void;
  reject: (error: unknown) => void;
}

/** Hands out a context's sequences, one generation each, with a bounded wait queue. */
class SequencePool {
  readonly #free: LlamaContextSequence[];
  readonly #waiting: Waiter[] = [];
  readonly #maxWaiting: number;
  readonly #total: number;

  constructor(sequences: LlamaContextSequence[], maxWaiting: number) {
    this.#free = [...sequences];
    this.#total = sequences.length;
    this.#maxWaiting = maxWaiting;
  }

  get running(): number {
    return this.#total - this.#free.length;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  async acquire(signal: AbortSignal | undefined): Promise<LlamaContextSequence> {
    const free = this.#free.pop();
    if (free !== undefined) return free;
    if (this.#waiting.length >= this.#maxWaiting) {
      throw new AiaasError('QUEUE_FULL', `All ${this.#total} sequences are busy and ${this.#waiting.length} requests are waiting; retry later`, {
        headers: { 'retry-after': '1' },
      });
    }
    return await new Promise<LlamaContextSequence>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#waiting.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const index = this.#waiting.indexOf(waiter);
          if (index >= 0) this.#waiting.splice(index, 1);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  release(sequence: LlamaContextSequence): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next.resolve(sequence);
    else this.#free.push(sequence);
  }

  rejectWaiting(error: unknown): void {
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }
}

const utf8 = new TextEncoder();

/** The part of `text` that may be emitted now: no half UTF-8 character, no partial stop string. */
function emittableLength(text: string, stops: readonly string[]): number {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0xfffd) end--;
  let holdBack = 0;
  for (const stop of stops) {
    for (let length = Math.min(stop.length - 1, end); length > holdBack; length--) {
      if (text.endsWith(stop.slice(0, length), end)) {
        holdBack = length;
        break;
      }
    }
  }
  return end - holdBack;
}

function firstStop(text: string, stops: readonly string[], from: number): number {
  let found = -1;
  for (const stop of stops) {
    if (stop.length === 0) continue;
    const index = text.indexOf(stop, Math.max(0, from - stop.length));
    if (index >= 0 && (found < 0 || index < found)) found = index;
  }
  return found;
}

function newToolCallId(): string {
  return `call_${randomBytes(12).toString('base64url')}`;
}

function parseJsonArguments(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new AiaasError('INVALID_REQUEST', `The arguments of the tool call to ${name} are not valid JSON`);
  }
}

/** OpenAI-style messages → node-llama-cpp chat history, ending with an open model turn. */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const pendingCalls = new Map<string, ChatModelFunctionCall>();
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        history.push({ type: 'system', text: message.content });
        break;
      case 'user':
        history.push({ type: 'user', text: message.content });
        break;
      case 'assistant': {
        const response: Array<string | ChatModelFunctionCall> = [];
        if (message.content !== '') response.push(message.content);
        for (const call of message.toolCalls ?? []) {
          const functionCall: ChatModelFunctionCall = { type: 'functionCall', name: call.name, params: parseJsonArguments(call.arguments, call.name), result: undefined };
          pendingCalls.set(call.id, functionCall);
          response.push(functionCall);
        }
        history.push({ type: 'model', response });
        break;
      }
      case 'tool': {
        const call = pendingCalls.get(message.toolCallId);
        if (call === undefined) {
          throw new AiaasError('INVALID_REQUEST', `A tool message answers tool_call_id ${JSON.stringify(message.toolCallId).slice(0, 80)}, which no earlier assistant message made`);
        }
        call.result = message.content;
        pendingCalls.delete(message.toolCallId);
        break;
      }
    }
  }
  history.push({ type: 'model', response: [] });
  return history;
}

interface PreparedGeneration {
  tokens: Token[];
  /** Token sequences that end a chat turn (the chat format's own triggers). */
  stopTokenSequences: Token[][];
  stops: string[];
  grammar?: LlamaGrammar;
  /** Set when the output is the arguments of a forced tool call. */
  forcedTool?: { mode: 'named'; name: string } | { mode: 'required' };
  /** Chat with tools and tool_choice auto: node-llama-cpp's LlamaChat drives it. */
  autoTools?: { history: ChatHistoryItem[]; functions: ChatModelFunctions };
}

export class LlamaCppRuntime implements GenerativeRuntime, EmbeddingRuntime {
  readonly specificationVersion = 'v1' as const;
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #pool: SequencePool;
  readonly #chatWrapper: ChatWrapper;
  readonly #chatFormat: string;
  readonly #info: GenerativeModelInfo;
  readonly #threads: number | undefined;
  #embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  #disposed = false;

  private constructor(llama: Llama, model: LlamaModel, context: LlamaContext, options: LlamaCppRuntimeOptions) {
    this.#llama = llama;
    this.#model = model;
    this.#context = context;
    this.#threads = options.threads;
    const sequences: LlamaContextSequence[] = [];
    for (let index = 0; index < options.parallel; index++) sequences.push(context.getSequence());
    this.#pool = new SequencePool(sequences, options.maxWaiting);
    const metadata = model.fileInfo.metadata;
    const template = metadata.tokenizer?.chat_template;
    const resolved = resolveChatWrapper(model, { fallbackToOtherWrappersOnJinjaError: true, noJinja: false });
    // A model without a chat template gets the documented fallback: node-llama-cpp's GeneralChatWrapper
    // ("### User:" / "### Assistant:" turns), which any base model can at least continue.
    this.#chatWrapper = typeof template === 'string' && resolved !== undefined ? resolved : new GeneralChatWrapper();
    this.#chatFormat = this.#chatWrapper.wrapperName;
    const architecture = String(metadata.general?.architecture ?? 'unknown');
    const embeddingLength = model.fileInsights.embeddingVectorSize;
    this.#info = {
      architecture,
      trainedContextLength: model.trainContextSize,
      contextLength: context.contextSize / options.parallel,
      parameterCount: model.fileInsights.totalLayers === undefined ? undefined : countParameters(model),
      quantization: typeof metadata.general?.file_type === 'number' ? fileTypeName(metadata.general.file_type) : undefined,
      chatTemplate: typeof template === 'string' ? template : undefined,
      chatFormat: this.#chatFormat,
      embeddingLength: embeddingLength ?? undefined,
    };
  }

  /** Opens a GGUF file; `parallel` sequences share one context of `parallel × contextLength` tokens. */
  static async open(llama: Llama, path: string, options: LlamaCppRuntimeOptions): Promise<LlamaCppRuntime> {
    const model = await llama.loadModel({ modelPath: path, gpuLayers: llama.gpu === false ? 0 : 'auto' });
    try {
      const perSequence = Math.min(options.contextLength ?? model.trainContextSize, options.maxContextLength ?? Number.POSITIVE_INFINITY, model.trainContextSize);
      const context = await model.createContext({
        contextSize: perSequence * options.parallel,
        sequences: options.parallel,
        threads: options.threads,
      });
      return new LlamaCppRuntime(llama, model, context, options);
    } catch (error) {
      await model.dispose();
      throw error;
    }
  }

  info(): GenerativeModelInfo {
    return this.#info;
  }

  countTokens(text: string): number {
    return this.#model.tokenize(text).length;
  }

  load(): { running: number; waiting: number } {
    return { running: this.#pool.running, waiting: this.#pool.waiting };
  }

  /** Weights (memory-mapped file) plus the context's KV cache and buffers. */
  memoryBytes(): number {
    return this.#model.size + this.#context.memoryUsage.ram;
  }

  async #prepare(request: GenerateRequest): Promise<PreparedGeneration> {
    const stops = (request.stop ?? []).filter((stop) => stop.length > 0);
    const grammar = await this.#grammarFor(request);
    if (request.prompt.kind === 'text') {
      const bos = this.#model.tokens.bos;
      const tokens = this.#model.tokenize(request.prompt.text);
      return { tokens: this.#model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens, stopTokenSequences: [], stops, grammar };
    }
    const { messages, tools = [], toolChoice = 'auto' } = request.prompt;
    const history = toChatHistory(messages);
    const activeTools = toolChoice === 'none' ? [] : tools;
    if (activeTools.length > 0 && toolChoice === 'auto') {
      if (request.responseFormat !== undefined && request.responseFormat.type !== 'text') {
        throw new AiaasError('INVALID_REQUEST', 'response_format cannot be combined with tools and tool_choice "auto"');
      }
      if (request.logprobs !== undefined) throw new AiaasError('INVALID_REQUEST', 'logprobs cannot be combined with tools and tool_choice "auto"');
      const functions: ChatModelFunctions = Object.fromEntries(
        activeTools.map((tool) => [tool.name, { description: tool.description, params: tool.parameters as GbnfJsonSchema | undefined }]),
      );
      return { tokens: [], stopTokenSequences: [], stops, autoTools: { history, functions } };
    }
    const state = this.#chatWrapper.generateContextState({ chatHistory: history });
    const tokens = state.contextText.tokenize(this.#model.tokenizer);
    const stopTokenSequences = state.stopGenerationTriggers.map((trigger) => LlamaText(trigger).tokenize(this.#model.tokenizer, 'trimLeadingSpace'));
    if (activeTools.length > 0) {
      const forced = await this.#forcedToolGrammar(activeTools, toolChoice);
      return { tokens, stopTokenSequences, stops, grammar: forced.grammar, forcedTool: forced.tool };
    }
    return { tokens, stopTokenSequences, stops, grammar };
  }

  async #grammarFor(request: GenerateRequest): Promise<LlamaGrammar | undefined> {
    const format = request.responseFormat;
    if (format === undefined || format.type === 'text') return undefined;
    if (format.type === 'json_object') return await this.#llama.getGrammarFor('json');
    try {
      return await grammarForSchema(this.#llama, format.schema);
    } catch (error) {
      throw new AiaasError('INVALID_REQUEST', `response_format.json_schema is not supported: ${(error as Error).message}`.slice(0, 300));
    }
  }

  async #forcedToolGrammar(
    tools: readonly ToolDefinition[],
    choice: Exclude<ToolDefinition['name'], never> | 'required' | { name: string } | 'auto' | 'none',
  ): Promise<{ grammar: LlamaGrammar; tool: { mode: 'named'; name: string } | { mode: 'required' } }> {
    const schemaOf = (tool: ToolDefinition): Record<string, unknown> => tool.parameters ?? { type: 'object', properties: {} };
    try {
      if (typeof choice === 'object') {
        const tool = tools.find((candidate) => candidate.name === choice.name);
        if (tool === undefined) throw new AiaasError('INVALID_REQUEST', `tool_choice names ${JSON.stringify(choice.name).slice(0, 80)}, which is not in tools`);
        return { grammar: await grammarForSchema(this.#llama, schemaOf(tool)), tool: { mode: 'named', name: tool.name } };
      }
      const schema = {
        oneOf: tools.map((tool) => ({
          type: 'object',
          properties: { name: { const: tool.name }, arguments: schemaOf(tool) },
          required: ['name', 'arguments'],
        })),
      };
      return { grammar: await grammarForSchema(this.#llama, schema), tool: { mode: 'required' } };
    } catch (error) {
      if (AiaasError.isInstance(error)) throw error;
      throw new AiaasError('INVALID_REQUEST', `A tool's parameters schema is not supported: ${(error as Error).message}`.slice(0, 300));
    }
  }

  async *stream(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerateEvent> {
    if (this.#disposed) throw new AiaasError('MODEL_NOT_READY', 'The model was unloaded; retry');
    const prepared = await this.#prepare(request);
    const contextLength = this.#info.contextLength;
    if (prepared.tokens.length >= contextLength) {
      throw new AiaasError('CONTEXT_LENGTH_EXCEEDED', `The prompt has ${prepared.tokens.length} tokens; this model's context holds ${contextLength}`, {
        details: { promptTokens: prepared.tokens.length, contextLength },
      });
    }
    const sequence = await this.#pool.acquire(signal);
    try {
      await sequence.clearHistory();
      if (prepared.autoTools !== undefined) {
        yield* this.#streamWithAutoTools(sequence, prepared.autoTools, request, signal);
        return;
      }
      yield* this.#streamTokens(sequence, prepared, request, signal);
    } finally {
      this.#pool.release(sequence);
    }
  }

  async *#streamTokens(sequence: LlamaContextSequence, prepared: PreparedGeneration, request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerateEvent> {
    const started = performance.now();
    const room = this.#info.contextLength - prepared.tokens.length;
    const maxTokens = Math.min(request.maxTokens, room);
    const generated: Token[] = [];
    const wantLogprobs = request.logprobs !== undefined;
    const grammarEvaluationState = prepared.grammar === undefined ? undefined : new LlamaGrammarEvaluationState({ model: this.#model, grammar: prepared.grammar });
    const penalize = request.repeatPenalty !== undefined || request.presencePenalty !== undefined || request.frequencyPenalty !== undefined;
    const iterator = sequence.evaluateWithMetadata(
      prepared.tokens,
      { probabilities: wantLogprobs },
      {
        temperature: request.temperature ?? 0.8,
        topP: request.topP,
        topK: request.topK,
        seed: request.seed,
        grammarEvaluationState,
        repeatPenalty: penalize
          ? {
              punishTokens: () => generated.slice(-64),
              penalty: request.repeatPenalty ?? 1,
              presencePenalty: request.presencePenalty,
              frequencyPenalty: request.frequencyPenalty,
            }
          : undefined,
      },
    );
    const toolCallId = prepared.forcedTool === undefined ? undefined : newToolCallId();
    let text = '';
    let emitted = 0;
    let finishReason: FinishReason = 'length';
    let firstTokenMs: number | undefined;
    let pendingLogprobs: TokenLogprob[] = [];
    const emit = (upTo: number): GenerateEvent | undefined => {
      if (upTo <= emitted) return undefined;
      const delta = text.slice(emitted, upTo);
      emitted = upTo;
      if (prepared.forcedTool?.mode === 'named') {
        return { type: 'tool-call-delta', index: 0, id: toolCallId!, name: prepared.forcedTool.name, argumentsDelta: delta };
      }
      if (prepared.forcedTool?.mode === 'required') return undefined; // emitted whole once parsed
      const event: GenerateEvent = wantLogprobs ? { type: 'text-delta', text: delta, logprobs: pendingLogprobs } : { type: 'text-delta', text: delta };
      pendingLogprobs = [];
      return event;
    };
    try {
      for await (const output of iterator) {
        if (signal?.aborted === true) {
          finishReason = 'abort';
          break;
        }
        firstTokenMs ??= performance.now() - started;
        generated.push(output.token);
        if (wantLogprobs) pendingLogprobs.push(this.#logprobOf(output.token, (output as { probabilities?: Map<Token, number> }).probabilities, request.logprobs!.top));
        const turnEnd = prepared.stopTokenSequences.find((stopTokens) => stopTokens.length > 0 && endsWith(generated, stopTokens));
        const visible = turnEnd === undefined ? generated : generated.slice(0, generated.length - turnEnd.length);
        const previousLength = text.length;
        text = this.#model.detokenize(visible);
        const stopAt = firstStop(text, prepared.stops, previousLength);
        if (stopAt >= 0) {
          text = text.slice(0, stopAt);
          finishReason = 'stop';
          break;
        }
        if (turnEnd !== undefined) {
          finishReason = 'stop';
          break;
        }
        if (grammarEvaluationState !== undefined && prepared.grammar !== undefined && this.#grammarComplete(prepared.grammar, text)) {
          finishReason = 'stop';
          break;
        }
        if (generated.length >= maxTokens) break;
        const event = emit(emittableLength(text, prepared.stops));
        if (event !== undefined) yield event;
      }
      // The iterator ends by itself on an end-of-generation token.
      if (finishReason === 'length' && generated.length < maxTokens && signal?.aborted !== true) finishReason = 'stop';
    } finally {
      await iterator.return();
    }
    if (finishReason === 'abort') {
      yield { type: 'finish', finishReason, usage: { promptTokens: prepared.tokens.length, completionTokens: generated.length }, timeToFirstTokenMs: firstTokenMs };
      return;
    }
    const last = emit(text.length);
    if (last !== undefined) yield last;
    // A forced call cut short by max_tokens stays `length` with its partial arguments, as OpenAI reports it.
    if (prepared.forcedTool !== undefined && finishReason === 'stop') {
      finishReason = 'tool_calls';
      if (prepared.forcedTool.mode === 'required') {
        const call = JSON.parse(text) as { name: string; arguments: unknown };
        yield { type: 'tool-call-delta', index: 0, id: toolCallId!, name: call.name, argumentsDelta: JSON.stringify(call.arguments) };
      }
    }
    yield { type: 'finish', finishReason, usage: { promptTokens: prepared.tokens.length, completionTokens: generated.length }, timeToFirstTokenMs: firstTokenMs };
  }

  /** A JSON grammar's output is done once it parses; stopping there saves the trailing whitespace tokens. */
  #grammarComplete(_grammar: LlamaGrammar, text: string): boolean {
    const trimmed = text.trim();
    if (!(trimmed.endsWith('}') || trimmed.endsWith(']'))) return false;
    try {
      JSON.parse(trimmed);
      return true;
    } catch {
      return false;
    }
  }

  #logprobOf(token: Token, probabilities: Map<Token, number> | undefined, top: number): TokenLogprob {
    const piece = (candidate: Token): string => this.#model.detokenize([candidate], true);
    const logOf = (probability: number): number => (probability > 0 ? Math.log(probability) : -9999);
    const alternatives: TokenLogprob['top'] = [];
    if (probabilities !== undefined) {
      for (const [candidate, probability] of probabilities) {
        if (alternatives.length >= top) break;
        const text = piece(candidate);
        alternatives.push({ token: text, logprob: logOf(probability), bytes: Array.from(utf8.encode(text)) });
      }
    }
    const text = piece(token);
    return { token: text, logprob: logOf(probabilities?.get(token) ?? 0), bytes: Array.from(utf8.encode(text)), top: alternatives };
  }

  async *#streamWithAutoTools(
    sequence: LlamaContextSequence,
    autoTools: NonNullable<PreparedGeneration['autoTools']>,
    request: GenerateRequest,
    signal?: AbortSignal,
  ): AsyncGenerator<GenerateEvent> {
    const started = performance.now();
    const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: this.#chatWrapper, autoDisposeSequence: false });
    const before = sequence.tokenMeter.getState();
    const chunks: string[] = [];
    let settled = false;
    let wake: (() => void) | undefined;
    let firstTokenMs: number | undefined;
    const done = chat
      .generateResponse(autoTools.history, {
        functions: autoTools.functions,
        maxTokens: Math.min(request.maxTokens, this.#info.contextLength),
        temperature: request.temperature ?? 0.8,
        topP: request.topP,
        topK: request.topK,
        seed: request.seed,
        customStopTriggers: request.stop,
        signal,
        stopOnAbortSignal: true,
        onTextChunk: (chunk) => {
          firstTokenMs ??= performance.now() - started;
          chunks.push(chunk);
          wake?.();
        },
      })
      .finally(() => {
        settled = true;
        wake?.();
      });
    try {
      while (!settled || chunks.length > 0) {
        if (chunks.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const text = chunks.splice(0).join('');
        if (text !== '') yield { type: 'text-delta', text };
      }
      const result = await done;
      const usedNow = sequence.tokenMeter.getState();
      const usage = { promptTokens: usedNow.usedInputTokens - before.usedInputTokens, completionTokens: usedNow.usedOutputTokens - before.usedOutputTokens };
      const calls = result.functionCalls ?? [];
      for (const [index, call] of calls.entries()) {
        yield { type: 'tool-call-delta', index, id: newToolCallId(), name: call.functionName, argumentsDelta: JSON.stringify((call as { params: unknown }).params ?? {}) };
      }
      const stopReason = result.metadata.stopReason;
      const finishReason: FinishReason = calls.length > 0 ? 'tool_calls' : stopReason === 'maxTokens' ? 'length' : stopReason === 'abort' ? 'abort' : 'stop';
      yield { type: 'finish', finishReason, usage, timeToFirstTokenMs: firstTokenMs };
    } finally {
      chat.dispose({ disposeSequence: false });
    }
  }

  async generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    let text = '';
    const toolCalls: GenerateResult['toolCalls'] = [];
    const logprobs: TokenLogprob[] = [];
    for await (const event of this.stream(request, signal)) {
      if (event.type === 'text-delta') {
        text += event.text;
        if (event.logprobs !== undefined) logprobs.push(...event.logprobs);
      } else if (event.type === 'tool-call-delta') {
        const existing = toolCalls[event.index];
        if (existing === undefined) toolCalls[event.index] = { id: event.id, name: event.name, arguments: event.argumentsDelta };
        else existing.arguments += event.argumentsDelta;
      } else {
        return { text, toolCalls, finishReason: event.finishReason, usage: event.usage, logprobs: request.logprobs === undefined ? undefined : logprobs };
      }
    }
    throw new AiaasError('INTERNAL', 'The generation ended without a finish event');
  }

  async embed(inputs: string[], signal?: AbortSignal): Promise<EmbeddingResult> {
    this.#embeddingContext ??= this.#model.createEmbeddingContext({ contextSize: Math.min(this.#info.contextLength, 2048), threads: this.#threads });
    const context = await this.#embeddingContext;
    const embeddingContextLength = Math.min(this.#info.contextLength, 2048);
    const embeddings: number[][] = [];
    let promptTokens = 0;
    for (const input of inputs) {
      if (signal?.aborted === true) throw signal.reason;
      const tokens = this.#model.tokenize(input);
      if (tokens.length > embeddingContextLength) {
        throw new AiaasError('CONTEXT_LENGTH_EXCEEDED', `An input has ${tokens.length} tokens; the embedding context holds ${embeddingContextLength}`, {
          details: { promptTokens: tokens.length, contextLength: embeddingContextLength },
        });
      }
      promptTokens += tokens.length;
      const embedding = await context.getEmbeddingFor(tokens);
      embeddings.push([...embedding.vector]);
    }
    return { embeddings, promptTokens };
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#pool.rejectWaiting(new AiaasError('MODEL_NOT_READY', 'The model was unloaded while the request waited; retry'));
    if (this.#embeddingContext !== undefined) await (await this.#embeddingContext).dispose();
    await this.#context.dispose();
    await this.#model.dispose();
  }
}

/** node-llama-cpp types its schema parameter by the literal schema; ours arrive from JSON at run time. */
async function grammarForSchema(llama: Llama, schema: Record<string, unknown>): Promise<LlamaGrammar> {
  const create = llama.createGrammarForJsonSchema as (this: Llama, schema: GbnfJsonSchema) => Promise<LlamaGrammar>;
  return await create.call(llama, schema as GbnfJsonSchema);
}

function endsWith(tokens: readonly Token[], suffix: readonly Token[]): boolean {
  if (suffix.length > tokens.length) return false;
  const offset = tokens.length - suffix.length;
  return suffix.every((token, index) => tokens[offset + index] === token);
}

function countParameters(model: LlamaModel): number {
  let total = 0;
  for (const tensor of model.fileInfo.fullTensorInfo ?? []) total += tensor.dimensions.reduce<number>((product, dimension) => product * Number(dimension), 1);
  return total;
}

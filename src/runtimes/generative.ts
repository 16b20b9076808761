/**
 * Capability interfaces for language models, kept apart from the tensor `Runtime` and versioned like
 * vercel/ai's `LanguageModelV2`: protocol adapters (OpenAI, Ollama) speak these types, runtimes
 * (llama.cpp today) implement them, and neither knows the other.
 */

export interface ChatToolCall {
  id: string;
  name: string;
  /** The arguments as the JSON text the model produced. */
  arguments: string;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ChatToolCall[] }
  | { role: 'tool'; content: string; toolCallId: string };

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export type ResponseFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: Record<string, unknown> };

export type GeneratePrompt =
  | { kind: 'chat'; messages: ChatMessage[]; tools?: ToolDefinition[]; toolChoice?: ToolChoice }
  | { kind: 'text'; text: string };

export interface GenerateRequest {
  prompt: GeneratePrompt;
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stop?: string[];
  presencePenalty?: number;
  frequencyPenalty?: number;
  repeatPenalty?: number;
  responseFormat?: ResponseFormat;
  /** Return each generated token's log probability and this many alternatives (0 = only the chosen one). */
  logprobs?: { top: number };
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'abort';

export interface GenerationUsage {
  promptTokens: number;
  completionTokens: number;
}

export type GenerateEvent =
  | { type: 'text-delta'; text: string; logprobs?: TokenLogprob[] }
  | { type: 'tool-call-delta'; index: number; id: string; name: string; argumentsDelta: string }
  | { type: 'finish'; finishReason: FinishReason; usage: GenerationUsage; timeToFirstTokenMs?: number };

export interface GenerateResult {
  text: string;
  toolCalls: ChatToolCall[];
  finishReason: FinishReason;
  usage: GenerationUsage;
  logprobs?: TokenLogprob[];
}

export interface GenerativeModelInfo {
  architecture: string;
  /** Context length the model was trained with (GGUF metadata). */
  trainedContextLength: number;
  /** Context length each sequence gets on this server. */
  contextLength: number;
  parameterCount?: number;
  quantization?: string;
  chatTemplate?: string;
  /** Which chat format is applied: the template's own, or the documented fallback. */
  chatFormat: string;
  embeddingLength?: number;
}

export interface GenerativeRuntime {
  readonly specificationVersion: 'v1';
  info(): GenerativeModelInfo;
  countTokens(text: string): number;
  /** Streams a generation; aborting `signal` stops it at the next token and frees its sequence. */
  stream(request: GenerateRequest, signal?: AbortSignal): AsyncIterable<GenerateEvent>;
  generate(request: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult>;
  /** Generations running and waiting right now. */
  load(): { running: number; waiting: number };
  memoryBytes(): number;
  dispose(): Promise<void>;
}

export interface EmbeddingResult {
  embeddings: number[][];
  promptTokens: number;
}

export interface EmbeddingRuntime {
  readonly specificationVersion: 'v1';
  embed(inputs: string[], signal?: AbortSignal): Promise<EmbeddingResult>;
  dispose(): Promise<void>;
}

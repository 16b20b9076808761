/**
 * The OpenAI-compatible (/v1) and Ollama-compatible (/api/<verb>) routes. Fastify checks only the
 * envelope here (the model name, that messages are an array, ...) and lets unknown fields through:
 * the protocol parsers (src/http/protocols/openai.ts, ollama.ts) are the real validation, field by
 * field, with the protocols' own error shapes and `param` names. Responses are documented as sent.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { AnyJson, Nullable, type RouteSchema } from './common.ts';

const open = { additionalProperties: true } as const;

const ModelName = Type.String({ minLength: 1, description: 'NAME, NAME@VERSION or NAME@ALIAS' });
const OllamaModelName = Type.String({ minLength: 1, description: 'NAME or NAME:TAG (a version number, an alias or latest)' });

const Usage = Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() });
const FinishReason = Type.Union([Type.Literal('stop'), Type.Literal('length'), Type.Literal('tool_calls'), Type.Null()]);
const ToolCall = Type.Object({
  id: Type.String(),
  type: Type.Literal('function'),
  function: Type.Object({ name: Type.String(), arguments: Type.String({ description: 'JSON text' }) }),
});

export const OpenAiModel = Type.Object({ id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String() });

export const ChatCompletionRequest = Type.Object(
  {
    model: ModelName,
    messages: Type.Array(AnyJson('system, user, assistant or tool message')),
    stream: Type.Optional(Type.Boolean()),
  },
  { ...open, description: 'Every other field as OpenAI defines it; docs/llm.md lists what is supported' },
);

export const ChatCompletion = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(
    Type.Object({
      index: Type.Integer(),
      message: Type.Object({
        role: Type.Literal('assistant'),
        content: Nullable(Type.String()),
        refusal: Type.Optional(Nullable(Type.String())),
        tool_calls: Type.Optional(Type.Array(ToolCall)),
      }),
      logprobs: Nullable(AnyJson('{content: [{token, logprob, bytes, top_logprobs}]}')),
      finish_reason: FinishReason,
    }),
  ),
  usage: Usage,
  system_fingerprint: Nullable(Type.String()),
});

export const CompletionRequest = Type.Object(
  { model: ModelName, prompt: AnyJson('A string, or an array of one string'), stream: Type.Optional(Type.Boolean()) },
  { ...open, description: 'Every other field as OpenAI defines it; docs/llm.md lists what is supported' },
);

export const Completion = Type.Object({
  id: Type.String(),
  object: Type.Literal('text_completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({ text: Type.String(), index: Type.Integer(), logprobs: Nullable(AnyJson('tokens, token_logprobs, top_logprobs, text_offset')), finish_reason: FinishReason })),
  usage: Usage,
  system_fingerprint: Nullable(Type.String()),
});

export const EmbeddingRequest = Type.Object(
  {
    model: ModelName,
    input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })]),
    encoding_format: Type.Optional(Type.Union([Type.Literal('float'), Type.Literal('base64')])),
  },
  open,
);

export const EmbeddingList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ object: Type.Literal('embedding'), index: Type.Integer(), embedding: Type.Union([Type.Array(Type.Number()), Type.String({ description: 'base64 of little-endian float32' })]) })),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

/** OpenAI's error body; every /v1 route answers errors in it. */
export const OpenAiErrorBody = Type.Object(
  { error: Type.Object({ message: Type.String(), type: Type.String(), param: Nullable(Type.String()), code: Nullable(Type.String()) }) },
  { title: 'OpenAiError' },
);

const eventStream = (description: string): TSchema => Type.String({ description });

/** A JSON answer or, with `stream: true`, another content type. */
function jsonOrStream(json: TSchema, streamType: string, streamDescription: string): { content: Record<string, { schema: TSchema }> } {
  return { content: { 'application/json': { schema: json }, [streamType]: { schema: eventStream(streamDescription) } } };
}

export const openAiSchemas = {
  listModels: { response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(OpenAiModel) }) } },
  getModel: { params: Type.Object({ model: Type.String({ description: 'NAME, NAME@VERSION or NAME@ALIAS' }) }), response: { 200: OpenAiModel } },
  chatCompletions: {
    body: ChatCompletionRequest,
    response: { 200: jsonOrStream(ChatCompletion, 'text/event-stream', 'stream: true: `data: {chat.completion.chunk}` events, then `data: [DONE]`') },
  },
  completions: {
    body: CompletionRequest,
    response: { 200: jsonOrStream(Completion, 'text/event-stream', 'stream: true: `data: {text_completion}` events, then `data: [DONE]`') },
  },
  embeddings: { body: EmbeddingRequest, response: { 200: EmbeddingList } },
} satisfies Record<string, RouteSchema>;

const OllamaOptions = Type.Object({}, { ...open, description: 'temperature, top_p, top_k, seed, num_predict, num_ctx, stop, repeat_penalty, ...' });

const OllamaDetails = Type.Object({
  parent_model: Type.String(),
  format: Type.String(),
  family: Type.String(),
  families: Type.Array(Type.String()),
  parameter_size: Type.String(),
  quantization_level: Type.String(),
});

const OllamaModel = Type.Object({ name: Type.String(), model: Type.String(), modified_at: Type.String(), size: Type.Integer(), digest: Type.String(), details: OllamaDetails });

const OllamaFinal = Type.Object(
  {
    model: Type.String(),
    created_at: Type.String(),
    done: Type.Boolean(),
    done_reason: Type.Optional(Type.String()),
    total_duration: Type.Optional(Type.Integer()),
    load_duration: Type.Optional(Type.Integer()),
    prompt_eval_count: Type.Optional(Type.Integer()),
    prompt_eval_duration: Type.Optional(Type.Integer()),
    eval_count: Type.Optional(Type.Integer()),
    eval_duration: Type.Optional(Type.Integer()),
  },
  { ...open, description: 'generate: response; chat: message {role, content, tool_calls?}' },
);

const ndjson = 'application/x-ndjson';

export const ollamaSchemas = {
  generate: {
    body: Type.Object({ model: OllamaModelName, prompt: Type.Optional(Type.String()), stream: Type.Optional(Type.Boolean()), options: Type.Optional(OllamaOptions) }, open),
    response: { 200: jsonOrStream(OllamaFinal, ndjson, 'One JSON object per line; the last has done: true and the counts') },
  },
  chat: {
    body: Type.Object({ model: OllamaModelName, messages: Type.Array(AnyJson('{role, content, tool_calls?}')), stream: Type.Optional(Type.Boolean()), options: Type.Optional(OllamaOptions) }, open),
    response: { 200: jsonOrStream(OllamaFinal, ndjson, 'One JSON object per line; the last has done: true and the counts') },
  },
  embed: {
    body: Type.Object({ model: OllamaModelName, input: Type.Union([Type.String(), Type.Array(Type.String())]) }, open),
    response: {
      200: Type.Object({ model: Type.String(), embeddings: Type.Array(Type.Array(Type.Number())), total_duration: Type.Integer(), load_duration: Type.Integer(), prompt_eval_count: Type.Integer() }),
    },
  },
  tags: { response: { 200: Type.Object({ models: Type.Array(OllamaModel) }) } },
  show: {
    body: Type.Object({ model: Type.Optional(OllamaModelName), name: Type.Optional(OllamaModelName) }, open),
    response: {
      200: Type.Object({
        license: Type.String(),
        modelfile: Type.String(),
        parameters: Type.String(),
        template: Type.String(),
        system: Type.String(),
        details: OllamaDetails,
        messages: Type.Array(AnyJson('none')),
        modified_at: Type.String(),
        model_info: AnyJson('general.architecture, general.parameter_count, <architecture>.context_length, <architecture>.embedding_length'),
        capabilities: Type.Array(Type.String()),
      }),
    },
  },
  ps: { response: { 200: Type.Object({ models: Type.Array(Type.Object({ ...OllamaModel.properties, size_vram: Type.Integer(), expires_at: Type.String() })) }) } },
  version: { response: { 200: Type.Object({ version: Type.String() }) } },
  pull: {
    body: Type.Object({ model: OllamaModelName, url: Type.String(), sha256: Type.Optional(Type.String()), stream: Type.Optional(Type.Boolean()) }, open),
    response: { 200: jsonOrStream(Type.Object({ status: Type.String() }, open), ndjson, 'Progress objects, one per line, until {"status":"success"}') },
  },
  delete: {
    body: Type.Object({ model: Type.Optional(OllamaModelName), name: Type.Optional(OllamaModelName) }, open),
    response: { 200: Type.Null({ description: 'No body' }) },
  },
} satisfies Record<string, RouteSchema>;

/**
 * KServe V2 (Open Inference Protocol, REST) and Triton's model-repository extension. Fastify checks
 * the infer envelope only: `inputs[].data` is any JSON here, and the hand-written tensor parser
 * (src/http/protocols/v2.ts) walks it once, against the model's signature.
 */
import { Type } from '@sinclair/typebox';
import { tensorDataTypes } from '../protocols/tensor-json.ts';
import { NoBody, type RouteSchema } from './common.ts';
import { errorCodeKeyword } from './validation.ts';

export const V2Datatype = Type.Union(tensorDataTypes.map((datatype) => Type.Literal(datatype)));
export const V2Parameters = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]));

export const V2InputTensor = Type.Object({
  name: Type.String({ minLength: 1 }),
  datatype: V2Datatype,
  shape: Type.Array(Type.Integer({ minimum: 0 })),
  parameters: Type.Optional(V2Parameters),
  data: Type.Optional(
    Type.Unknown({
      description: 'Tensor elements, flat (row-major) or nested to the shape; checked by the tensor parser. Omitted when parameters.binary_data_size gives the bytes in the binary section',
    }),
  ),
}, { [errorCodeKeyword]: 'INVALID_TENSOR' });

export const V2InferRequest = Type.Object({
  id: Type.Optional(Type.String()),
  parameters: Type.Optional(V2Parameters),
  inputs: Type.Array(V2InputTensor, { minItems: 1 }),
  outputs: Type.Optional(Type.Array(Type.Object({ name: Type.String(), parameters: Type.Optional(V2Parameters) }))),
});

const V2Element = Type.Union([Type.Number(), Type.Boolean(), Type.String(), Type.Null()]);

export const V2OutputTensor = Type.Object({
  name: Type.String(),
  datatype: V2Datatype,
  shape: Type.Array(Type.Integer()),
  data: Type.Array(V2Element, { description: 'Flat, row-major; NaN and infinities as null' }),
});

export const V2InferResponse = Type.Object({
  model_name: Type.String(),
  model_version: Type.String(),
  id: Type.Optional(Type.String()),
  outputs: Type.Array(V2OutputTensor),
});

const V2MetadataTensor = Type.Object({ name: Type.String(), datatype: V2Datatype, shape: Type.Array(Type.Integer({ minimum: -1 })) });

export const V2ModelMetadata = Type.Object({
  name: Type.String(),
  versions: Type.Array(Type.String()),
  platform: Type.String(),
  inputs: Type.Array(V2MetadataTensor),
  outputs: Type.Array(V2MetadataTensor),
});

/** Triton's binary tensor data extension (server docs/protocol/extension_binary_data.md), as bytes on the wire. */
export const V2BinaryInferRequest = Type.String({
  contentEncoding: 'binary',
  description:
    'A JSON $inference_request of Inference-Header-Content-Length bytes (inputs with parameters.binary_data_size omit data), then those inputs\' bytes in the order they are listed: little-endian, row-major; BOOL one byte; FP16 raw half bits; BYTES elements each a 4-byte little-endian length then the bytes. With Inference-Header-Content-Length: 0 the whole body is the only input\'s bytes.',
});

export const V2BinaryInferResponse = Type.String({
  contentEncoding: 'binary',
  description:
    'Sent when an output is requested with parameters.binary_data (or the request sets binary_data_output): the JSON $inference_response of Inference-Header-Content-Length bytes, in which binary outputs carry parameters.binary_data_size instead of data, then their bytes in output order.',
});

export const V2ServerMetadata = Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) });

export const V2RepositoryIndexRequest = Type.Object({ ready: Type.Optional(Type.Boolean({ description: 'Only loaded models' })) });

export const V2RepositoryIndex = Type.Array(
  Type.Object({
    name: Type.String(),
    version: Type.String(),
    state: Type.Union([Type.Literal('READY'), Type.Literal('UNAVAILABLE')]),
    reason: Type.String(),
  }),
);


/**
 * A V2 $inference_request plus the explanation's options, each given at the top level or inside
 * `parameters` (not both); `baseline` as an array only at the top level. docs/quality.md.
 */
export const V2ExplainRequest = Type.Object({
  id: Type.Optional(Type.String()),
  parameters: Type.Optional(V2Parameters),
  inputs: Type.Array(V2InputTensor, { minItems: 1 }),
  method: Type.Optional(Type.Union([Type.Literal('integrated_gradients'), Type.Literal('occlusion'), Type.Literal('permutation')], { description: 'Default: integrated_gradients for engine models (spec.json + weights), else occlusion' })),
  target: Type.Optional(Type.Integer({ minimum: 0, description: "Flat index of the explained output element within one sample (the class); default each row's largest" })),
  output: Type.Optional(Type.String({ description: "Default the model's first output" })),
  input: Type.Optional(Type.String({ description: 'The explained input (FP32); default the first FP32 input' })),
  steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, description: 'Integrated gradients: Riemann steps (default 128)' })),
  rule: Type.Optional(Type.Union([Type.Literal('trapezoid'), Type.Literal('midpoint')], { description: 'Integrated gradients: default trapezoid' })),
  baseline: Type.Optional(Type.Union([Type.Number(), Type.Array(Type.Number())], { description: 'A constant or one sample of values (flat); default 0' })),
  window: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Array(Type.Integer({ minimum: 1 })), Type.String()], { description: 'Occlusion and permutation: window size (one number, or one per dimension; "1,4,4" in parameters)' })),
  stride: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Array(Type.Integer({ minimum: 1 })), Type.String()])),
  repeats: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Permutation: shuffles per feature group (default 5)' })),
  seed: Type.Optional(Type.Integer({ description: 'Permutation: seeds the shuffles (default 0)' })),
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('png')], { description: 'png: a heatmap over the input image (one sample)' })),
  scale: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, description: 'png: output pixels per input pixel' })),
});

export const V2ExplainResponse = Type.Object({
  model_name: Type.String(),
  model_version: Type.String(),
  id: Type.Optional(Type.String()),
  outputs: Type.Array(V2OutputTensor, { description: 'One tensor, "attributions", FP32, with the explained input\'s shape (permutation: one row)' }),
  explanation: Type.Object({
    method: Type.String(),
    input: Type.String(),
    output: Type.String(),
    targets: Type.Array(Type.Integer()),
    scores: Type.Array(Type.Union([Type.Number(), Type.Null()]), { description: 'F(x) of each row' }),
    baseline_scores: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.Null()]))),
    deltas: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.Null()]), { description: 'Σ attributions − (F(x) − F(baseline)): the integration error' })),
    steps: Type.Optional(Type.Integer()),
    rule: Type.Optional(Type.String()),
    window: Type.Optional(Type.Array(Type.Integer())),
  }),
});

const NameParams = Type.Object({ name: Type.String() });
const VersionParams = Type.Object({ name: Type.String(), version: Type.String({ description: 'A version number or an alias' }) });

const inferResponses = { content: { 'application/json': { schema: V2InferResponse }, 'application/octet-stream': { schema: V2BinaryInferResponse } } };

const explainResponses = {
  content: {
    'application/json': { schema: V2ExplainResponse },
    'image/png': { schema: Type.String({ contentEncoding: 'binary', description: 'With format png: the heatmap over the input image' }) },
  },
};

export const v2Schemas = {
  server: { response: { 200: V2ServerMetadata } },
  live: { response: { 200: NoBody } },
  ready: { response: { 200: NoBody } },
  modelMetadata: { params: NameParams, response: { 200: V2ModelMetadata } },
  versionMetadata: { params: VersionParams, response: { 200: V2ModelMetadata } },
  modelReady: { params: NameParams, response: { 200: NoBody } },
  versionReady: { params: VersionParams, response: { 200: NoBody } },
  modelInfer: { params: NameParams, body: V2InferRequest, documentedBody: { 'application/octet-stream': V2BinaryInferRequest }, response: { 200: inferResponses } },
  versionInfer: { params: VersionParams, body: V2InferRequest, documentedBody: { 'application/octet-stream': V2BinaryInferRequest }, response: { 200: inferResponses } },
  // The body is optional (Triton's clients post none), so it is documented, not validated.
  repositoryIndex: { documentedBody: { 'application/json': V2RepositoryIndexRequest }, response: { 200: V2RepositoryIndex } },
  load: { params: NameParams, response: { 200: NoBody } },
  modelExplain: { params: NameParams, body: V2ExplainRequest, response: { 200: explainResponses } },
  versionExplain: { params: VersionParams, body: V2ExplainRequest, response: { 200: explainResponses } },
  unload: { params: NameParams, response: { 200: NoBody } },
} satisfies Record<string, RouteSchema>;

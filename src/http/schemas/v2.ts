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

const NameParams = Type.Object({ name: Type.String() });
const VersionParams = Type.Object({ name: Type.String(), version: Type.String({ description: 'A version number or an alias' }) });

const inferResponses = { content: { 'application/json': { schema: V2InferResponse }, 'application/octet-stream': { schema: V2BinaryInferResponse } } };

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
  unload: { params: NameParams, response: { 200: NoBody } },
} satisfies Record<string, RouteSchema>;

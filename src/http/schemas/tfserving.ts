/**
 * TensorFlow Serving REST (api_rest.md). Fastify checks the predict envelope only; `instances` and
 * `inputs` are walked once by the tensor parser (src/http/protocols/tfserving.ts).
 */
import { Type } from '@sinclair/typebox';
import type { RouteSchema } from './common.ts';

/** One body schema for `:predict` and `:classify` (the verb is part of the path segment); the parsers check which fields the verb takes. */
export const TfServingPredictRequest = Type.Object({
  signature_name: Type.Optional(Type.String({ description: 'Only "serving_default" exists' })),
  instances: Type.Optional(Type.Array(Type.Unknown(), { minItems: 1, description: ':predict row format: one value (or object of named inputs) per row' })),
  inputs: Type.Optional(Type.Unknown({ description: ':predict columnar format: one tensor, or an object of named tensors' })),
  examples: Type.Optional(
    Type.Array(Type.Record(Type.String(), Type.Unknown()), {
      minItems: 1,
      description: ':classify: feature dicts, either {"<input name>": values} or one number per feature (the model\'s feature names, or f0…fN-1)',
    }),
  ),
  context: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: ':classify: features shared by every example (never repeated in one)' })),
});

export const TfServingPredictResponse = Type.Union([
  Type.Object({ predictions: Type.Array(Type.Unknown()) }),
  Type.Object({ outputs: Type.Unknown() }),
  Type.Object({
    results: Type.Array(Type.Array(Type.Array(Type.Union([Type.String(), Type.Number(), Type.Null()]), { minItems: 2, maxItems: 2, description: '[class label, score]' })), {
      description: ':classify: per example, [class label, score] for every class in index order; under a topK output policy only the best k labels, best first, with a null score',
    }),
  }),
]);

export const TfServingStatus = Type.Object({
  model_version_status: Type.Array(
    Type.Object({
      version: Type.String(),
      state: Type.String(),
      status: Type.Object({ error_code: Type.String(), error_message: Type.String() }),
    }),
  ),
});

const TensorInfo = Type.Object({
  dtype: Type.String(),
  tensor_shape: Type.Object({
    dim: Type.Array(Type.Object({ size: Type.String({ description: 'int64 as a string; -1: unknown' }), name: Type.String() })),
    unknown_rank: Type.Boolean(),
  }),
  name: Type.String(),
});

export const TfServingMetadata = Type.Object({
  model_spec: Type.Object({ name: Type.String(), signature_name: Type.String(), version: Type.String() }),
  metadata: Type.Object({
    signature_def: Type.Object({
      signature_def: Type.Record(
        Type.String(),
        Type.Object({
          inputs: Type.Record(Type.String(), TensorInfo),
          outputs: Type.Record(Type.String(), TensorInfo),
          method_name: Type.String(),
          defaults: Type.Object({}),
        }),
      ),
    }),
  }),
});

const Segment = Type.String({ description: '{target}:predict or {target}:classify' });
const NameParams = Type.Object({ name: Type.String() });
const SelectorParams = Type.Object({ name: Type.String(), selector: Type.String() });

export const tfServingSchemas = {
  predict: { params: Type.Object({ segment: Segment }), body: TfServingPredictRequest, response: { 200: TfServingPredictResponse } },
  predictVersion: { params: Type.Object({ name: Type.String(), segment: Segment }), body: TfServingPredictRequest, response: { 200: TfServingPredictResponse } },
  status: { params: NameParams, response: { 200: TfServingStatus } },
  selectorStatus: { params: SelectorParams, response: { 200: TfServingStatus } },
  selectorMetadata: { params: SelectorParams, response: { 200: TfServingMetadata } },
  metadata: { params: NameParams, response: { 200: TfServingMetadata } },
} satisfies Record<string, RouteSchema>;

/** Models, versions and aliases. */
import { Type } from '@sinclair/typebox';
import { EvaluationOptions, EvaluationSettings, Job, JobBody, JobStatusSchema, PullSettings } from './jobs.ts';
import { modelFileNames } from '../../platform/model-registry.ts';
import { tensorDataTypes } from '../protocols/tensor-json.ts';
import { AnyJson, BinaryBody, NoBody, Nullable, Timestamp, type RouteSchema } from './common.ts';

export const TensorDataTypeSchema = Type.Union(tensorDataTypes.map((datatype) => Type.Literal(datatype)));

export const TensorSignature = Type.Object({
  name: Type.String(),
  datatype: TensorDataTypeSchema,
  shape: Type.Array(Type.Integer({ minimum: -1 }), { description: '-1 marks a dynamic dimension' }),
});

export const ModelSignature = Type.Object({
  inputs: Type.Array(TensorSignature),
  outputs: Type.Array(TensorSignature),
  classNames: Type.Optional(
    Type.Array(Type.String(), { description: "Class names by output index, from model.onnx's aiaas.class_names metadata (a model trained on string labels)" }),
  ),
  featureNames: Type.Optional(
    Type.Array(Type.String(), { description: "Input feature names in flat order, from model.onnx's aiaas.feature_names metadata (a model trained on a CSV or flat JSON lines)" }),
  ),
});

/** Per-model batching overrides; the handler checks the ranges (docs/api.md). */
export const BatchingSettings = Type.Object(
  {
    maxBatchSize: Type.Optional(Type.Integer()),
    maxQueueDelayMicroseconds: Type.Optional(Type.Integer()),
    maxQueueSize: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

export const ModelFileNameSchema = Type.Union(modelFileNames.map((file) => Type.Literal(file)));

/** A model's output policy (docs/quality.md): top-k labels only, or probabilities rounded. */
export const OutputPolicySchema = Type.Object(
  {
    topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Score outputs become their k best class indices (INT64), nothing else' })),
    roundDigits: Type.Optional(Type.Integer({ minimum: 0, maximum: 8, description: 'Float outputs rounded to this many decimals (returned as FP64)' })),
  },
  { additionalProperties: false },
);

export const PromotionGate = Type.Object(
  {
    metric: Type.String({ description: 'A report figure: accuracy, macroF1, weightedF1, macroPrecision, macroRecall, topKAccuracy, rocAuc, prAuc, r2, logLoss, expectedCalibrationError, meanAbsoluteError, meanSquaredError, rootMeanSquaredError' }),
    datasetId: Type.String(),
    minimum: Type.Optional(Type.Number()),
    maximum: Type.Optional(Type.Number()),
    maxDropFromCurrent: Type.Optional(Type.Number({ minimum: 0, description: "How much worse than the alias's current version, in the metric's direction" })),
    outputs: Type.Optional(Type.String({ description: 'The output holding the scores, for the evaluations' })),
    label: Type.Optional(Type.String({ description: 'Label column, for the evaluations' })),
  },
  { additionalProperties: false },
);

export const Alias = Type.Object({
  name: Type.String(),
  version: Type.Integer({ description: "The version a plain reader sees: the only one, or the split's heaviest" }),
  updatedAt: Timestamp,
  split: Nullable(Type.Array(Type.Object({ version: Type.Integer(), weight: Type.Number() }), { description: 'Weighted split of the traffic (canary)' })),
  shadow: Nullable(Type.Integer({ description: "A version that gets a copy of the alias's traffic; its answers are only compared" })),
  gate: Nullable(PromotionGate),
});

const GateFigure = Type.Object({ version: Type.Integer(), value: Type.Number(), evaluationId: Type.String() });

export const GateDecision = Type.Object({
  passed: Type.Boolean(),
  metric: Type.String(),
  datasetId: Type.String(),
  candidate: GateFigure,
  current: Nullable(GateFigure),
  required: Type.Object({ atLeast: Type.Optional(Type.Number()), atMost: Type.Optional(Type.Number()) }),
});

export const Evaluation = Type.Object({
  id: Type.String({ description: "The evaluate job's id" }),
  model: Type.String(),
  version: Type.Integer(),
  datasetId: Type.String(),
  status: JobStatusSchema,
  jobId: Type.String(),
  settings: EvaluationSettings,
  report: AnyJson('The report once the job succeeded (docs/quality.md), else null'),
  error: AnyJson("The job's error when it failed, else null"),
  createdAt: Timestamp,
});

export const ShadowStatus = Type.Object({
  model: Type.String(),
  alias: Type.String(),
  shadow: Nullable(Type.Integer({ description: 'The version shadowing the alias now, null when none' })),
  comparisons: Type.Array(
    Type.Object({
      liveVersion: Type.String(),
      shadowVersion: Type.String(),
      requests: Type.Integer({ description: 'Live requests copied to the shadow and compared' }),
      rows: Type.Integer(),
      agreeingRows: Type.Integer(),
      agreementRate: Nullable(Type.Number({ description: 'agreeingRows / rows' })),
      comparison: Type.Union([Type.Literal('argmax'), Type.Literal('tolerance'), Type.Literal('mixed'), Type.Literal('none')]),
      shadowErrors: Type.Integer(),
      skipped: Type.Integer({ description: 'Live requests not copied because shadowMaxInFlight shadow inferences were running' }),
      liveLatencyMs: Type.Object({ mean: Nullable(Type.Number()), p50: Nullable(Type.Number()), p99: Nullable(Type.Number()) }),
      shadowLatencyMs: Type.Object({ mean: Nullable(Type.Number()), p50: Nullable(Type.Number()), p99: Nullable(Type.Number()) }),
    }),
  ),
});

export const Model = Type.Object({
  name: Type.String(),
  description: Type.String(),
  batching: Nullable(BatchingSettings),
  exportable: Type.Boolean({ description: 'False: no key of the tenant can download the weights; only the operator can (audited)' }),
  outputPolicy: Nullable(OutputPolicySchema),
  versions: Type.Array(Type.Integer(), { description: 'Version numbers, oldest first' }),
  aliases: Type.Array(Type.Object({ name: Type.String(), version: Type.Integer() })),
  createdAt: Timestamp,
});

/** A GGUF version's signature: its header metadata, read in isolation at upload. */
export const GgufSignature = Type.Object({
  format: Type.Literal('gguf'),
  ggufVersion: Type.Integer(),
  architecture: Type.String({ description: 'general.architecture, e.g. llama' }),
  name: Nullable(Type.String()),
  contextLength: Nullable(Type.Integer({ description: 'Trained context (<architecture>.context_length)' })),
  embeddingLength: Nullable(Type.Integer()),
  parameterCount: Type.Integer(),
  quantization: Type.String({ description: 'general.file_type by name (Q8_0, Q4_K_M, F16, …), else the dominant tensor type' }),
  tensorCount: Type.Integer(),
  fileBytes: Type.Integer(),
  hasChatTemplate: Type.Boolean(),
  sha256: Type.String({ description: 'Of the uploaded file, hex' }),
  kvCacheBytesPerToken: Type.Optional(Nullable(Type.Integer({ description: 'KV-cache bytes per token of context (f16 cache); absent for versions stored before it was recorded' }))),
});

const LatencyFigures = Type.Object({
  batch: Type.Integer(),
  rounds: Type.Integer(),
  floatMilliseconds: Type.Number({ description: 'p50 of the float model' }),
  quantizedMilliseconds: Type.Number({ description: 'p50 of the quantized model' }),
  ratio: Type.Number({ description: 'quantized / float; below 1 is faster' }),
});

export const QuantizationReport = Type.Object({
  mode: Type.Literal('dynamic-int8'),
  sourceVersion: Type.Integer({ description: 'The float version this one was made from' }),
  jobId: Type.String(),
  floatBytes: Type.Integer(),
  quantizedBytes: Type.Integer(),
  sizeRatio: Type.Number({ description: 'quantizedBytes / floatBytes' }),
  latencyRatio: Type.Number({ description: 'quantized / float p50 latency at batch 1, measured in the quantize job' }),
  latency: Type.Array(LatencyFigures),
  accuracy: Nullable(
    Type.Object({
      items: Type.Integer(),
      float: Type.Number(),
      quantized: Type.Number(),
      deltaPercentagePoints: Type.Number({ description: '(quantized − float) × 100' }),
    }),
  ),
  accuracyNote: Type.Optional(Type.String()),
  maxAbsoluteOutputDifference: Type.Number({ description: 'Largest |quantized − float| over every FP32 output element of the sample' }),
  maxAbsoluteFloatOutput: Type.Number(),
  sampleItems: Type.Integer(),
  sampleSource: Type.Union([Type.Literal('calibration'), Type.Literal('evaluation'), Type.Literal('synthetic')]),
  quantizedNodes: Type.Array(Type.Object({ node: Type.String(), opType: Type.String(), weight: Type.String(), channels: Type.Integer() })),
  floatNodes: Type.Array(Type.Object({ node: Type.String(), opType: Type.String(), reason: Type.String() }), { description: 'Nodes left in float32, and why (the first 200)' }),
  quantizedNodeCount: Type.Integer(),
  floatNodeCount: Type.Integer(),
  weightBytesBefore: Type.Integer(),
  weightBytesAfter: Type.Integer(),
});

export const CostCard = Type.Object({
  model: Type.String(),
  version: Type.Integer(),
  format: Type.Union([Type.Literal('onnx'), Type.Literal('gguf')]),
  parameters: Type.Integer(),
  fileBytes: Type.Integer(),
  flopsPerItem: Nullable(Type.Integer({ description: 'Operations per item at batch 1; a multiply-accumulate counts 2 (docs/models.md)' })),
  flopsComplete: Type.Boolean(),
  uncountedNodes: Type.Array(Type.Object({ node: Type.String(), opType: Type.String() })),
  calibration: Nullable(
    Type.Object({
      p50Milliseconds: Type.Number(),
      itemsPerSecond: Type.Number(),
      throughputBatch: Type.Integer(),
      runs: Type.Integer(),
      measuredAt: Timestamp,
    }),
  ),
  tokensPerSecond: Nullable(Type.Number({ description: 'GGUF: completion tokens per second of the last calibration run' })),
  kvCacheBytesPerToken: Nullable(Type.Integer({ description: 'GGUF: 2 × n_layer × n_kv_heads × head_dim × 2 bytes (f16 cache)' })),
  memoryBytes: Nullable(Type.Integer({ description: 'As the model manager accounts the loaded version; null when not loaded' })),
  measuredMemoryBytes: Nullable(Type.Integer({ description: 'One instance, measured at validation; null when not measured' })),
  pricePer1000Predictions: Nullable(
    Type.Object({
      plan: Type.String(),
      currency: Type.String(),
      micros: Type.Integer({ description: 'Micro-units of the currency per 1,000 predictions beyond the included ones' }),
      includedPredictions: Type.Integer(),
    }),
  ),
  priceNote: Type.String(),
});

export const QuantizeRequest = Type.Object(
  {
    mode: Type.Literal('dynamic-int8'),
    calibrationDatasetId: Type.Optional(Type.String()),
    evaluationDatasetId: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const ModelVersion = Type.Object({
  id: Type.String(),
  model: Type.String(),
  version: Type.Integer(),
  source: Type.Union([Type.Literal('upload'), Type.Literal('job')]),
  format: Type.Union([Type.Literal('onnx'), Type.Literal('gguf')], { description: 'Detected from the file at upload' }),
  signature: Type.Union([ModelSignature, GgufSignature]),
  chatTemplate: Type.Optional(Nullable(Type.String({ description: 'GGUF: tokenizer.chat_template, null when the file has none' }))),
  measuredMemoryBytes: Nullable(
    Type.Integer({
      description:
        'Resident bytes one instance of the model takes, measured when it was validated (RSS after opening it and one run on zero inputs, minus before); null until measured (versions stored before measuring are measured at their first load) and for GGUF',
    }),
  ),
  metrics: AnyJson('For a trained version, the training summary (test metrics included); else null or the uploaded metrics.json'),
  jobId: Nullable(Type.String()),
  files: Type.Array(Type.Union([ModelFileNameSchema, Type.Literal('model.gguf')]), { description: 'What GET …/files/{file} can fetch' }),
  aliases: Type.Array(Type.String(), { description: 'Aliases pointing at this version' }),
  createdAt: Timestamp,
  exportable: Type.Boolean({ description: 'False when the model is not exportable or the version derives from one that is not' }),
  parentVersionId: Nullable(Type.String({ description: 'The version this one derives from (quantized, fine-tuned)' })),
  provenance: Type.Boolean({ description: 'Whether a signed provenance record exists (GET …/provenance)' }),
  quantization: Nullable(QuantizationReport),
});

export const CreateModelRequest = Type.Object(
  {
    name: Type.String(),
    description: Type.Optional(Type.String()),
    batching: Type.Optional(BatchingSettings),
    exportable: Type.Optional(Type.Boolean({ description: 'Default true; false keeps the weights in (export control)' })),
    outputPolicy: Type.Optional(Nullable(OutputPolicySchema)),
  },
  { additionalProperties: false },
);

export const UpdateModelRequest = Type.Object(
  {
    description: Type.Optional(Type.String()),
    batching: Type.Optional(Nullable(BatchingSettings)),
    exportable: Type.Optional(Type.Boolean({ description: 'false marks the model not exportable; only the operator can set it back to true' })),
    outputPolicy: Type.Optional(Nullable(OutputPolicySchema)),
  },
  { additionalProperties: false },
);

export const SetAliasRequest = Type.Object(
  {
    version: Type.Optional(Type.Integer({ minimum: 1 })),
    split: Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]{1,15}$' }), Type.Number({ exclusiveMinimum: 0 }), { description: 'Version → relative weight, e.g. {"3": 90, "4": 10}' })),
    shadow: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
    gate: Type.Optional(Nullable(PromotionGate)),
    force: Type.Optional(Type.Boolean({ description: 'Admin only: move past a failing or unevaluated gate (audited)' })),
    waitSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 600, description: "How long to wait for the gate's evaluations (default gateWaitSeconds)" })),
  },
  { additionalProperties: false },
);

export const EvaluateRequest = Type.Object(EvaluationOptions, { additionalProperties: false });

const NameParams = Type.Object({ name: Type.String() });
const VersionParams = Type.Object({ name: Type.String(), version: Type.String({ description: 'A number, an alias or "latest"' }) });
const AliasParams = Type.Object({ name: Type.String(), alias: Type.String() });
const ModelBody = Type.Object({ model: Model });

export const modelSchemas = {
  create: { body: CreateModelRequest, response: { 201: ModelBody } },
  list: { response: { 200: Type.Object({ models: Type.Array(Model) }) } },
  get: { params: NameParams, response: { 200: Model } },
  update: { params: NameParams, body: UpdateModelRequest, response: { 200: ModelBody } },
  delete: { params: NameParams, response: { 204: NoBody } },
  addVersion: {
    params: NameParams,
    querystring: Type.Object({}, { additionalProperties: false }),
    documentedBody: {
      'application/octet-stream': BinaryBody,
      'application/x-tar': BinaryBody,
      'application/x-gguf': Type.String({ description: 'A .gguf file (any content type; recognised by its GGUF magic)', contentEncoding: 'binary' }),
      'multipart/form-data': Type.Object({ file: BinaryBody }),
      'application/json': PullSettings,
    },
    response: { 201: Type.Object({ version: ModelVersion }), 202: JobBody },
  },
  listVersions: { params: NameParams, response: { 200: Type.Object({ versions: Type.Array(ModelVersion) }) } },
  getVersion: { params: VersionParams, response: { 200: ModelVersion } },
  deleteVersion: { params: Type.Object({ name: Type.String(), version: Type.String({ description: 'A version number' }) }), response: { 204: NoBody } },
  provenance: {
    params: VersionParams,
    response: {
      200: Type.Object({
        record: AnyJson('The provenance record (format aiaas-provenance-1): datasets and their SHA-256, spec, hyperparameters, job, parent version, aiaas version, SHA-256 of every file'),
        signature: Type.String({ description: "base64 Ed25519 signature over the record's canonical JSON (sorted keys, no whitespace, UTF-8)" }),
        keyId: Nullable(Type.String({ description: 'The signing key (GET /api/v1/signing-key)' })),
      }),
    },
  },
  signingKey: {
    response: {
      200: Type.Object({
        algorithm: Type.Literal('Ed25519'),
        keyId: Type.String({ description: 'First 16 hex digits of SHA-256 over the raw public key' }),
        publicKeyPem: Type.String({ description: 'SPKI PEM' }),
        publicKey: Type.String({ description: 'The raw 32-byte public key, base64' }),
      }),
    },
  },
  operatorUpdate: {
    params: Type.Object({ tenantId: Type.String(), name: Type.String() }),
    body: Type.Object({ exportable: Type.Boolean() }, { additionalProperties: false }),
    response: { 200: ModelBody },
  },
  operatorDownloadFile: {
    params: Type.Object({ tenantId: Type.String(), name: Type.String(), version: Type.String(), file: Type.String({ description: `One of ${modelFileNames.join(', ')}` }) }),
    response: {
      200: {
        content: {
          'application/octet-stream': { schema: BinaryBody },
          'application/json': { schema: AnyJson('spec.json or metrics.json') },
        },
      },
    },
  },
  downloadFile: {
    params: Type.Object({ name: Type.String(), version: Type.String(), file: Type.String({ description: `One of ${modelFileNames.join(', ')}` }) }),
    response: {
      200: {
        content: {
          'application/octet-stream': { schema: BinaryBody },
          'application/json': { schema: AnyJson('spec.json or metrics.json') },
        },
      },
    },
  },
  setAlias: {
    params: AliasParams,
    body: SetAliasRequest,
    response: {
      200: Type.Object({ alias: Alias, gate: Nullable(Type.Object({ forced: Type.Boolean(), decisions: Type.Array(GateDecision) })) }),
      202: Type.Object({ status: Type.Literal('evaluating'), message: Type.String(), jobs: Type.Array(Job) }),
    },
  },
  listAliases: { params: NameParams, response: { 200: Type.Object({ aliases: Type.Array(Alias) }) } },
  deleteAlias: { params: AliasParams, response: { 204: NoBody } },
  evaluate: { params: VersionParams, body: EvaluateRequest, response: { 202: Type.Object({ evaluation: Evaluation }) } },
  listEvaluations: { params: VersionParams, response: { 200: Type.Object({ evaluations: Type.Array(Evaluation) }) } },
  getEvaluation: { params: Type.Object({ name: Type.String(), version: Type.String(), id: Type.String() }), response: { 200: Evaluation } },
  shadowStatus: { params: AliasParams, response: { 200: ShadowStatus } },
  quantize: { params: VersionParams, body: QuantizeRequest, response: { 202: JobBody } },
  quantization: { params: VersionParams, response: { 200: QuantizationReport } },
  cost: { params: VersionParams, response: { 200: CostCard } },
  calibrateCost: { params: VersionParams, response: { 200: CostCard } },
} satisfies Record<string, RouteSchema>;

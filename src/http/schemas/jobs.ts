/** Jobs of every kind (training, pulls): submit, read, list, cancel, and the progress event stream. */
import { Type } from '@sinclair/typebox';
import { jobKinds, jobStatuses } from '../../storage/repositories/jobs.ts';
import { AnyJson, Nullable, Timestamp, content, type RouteSchema } from './common.ts';

export const JobStatusSchema = Type.Union(jobStatuses.map((status) => Type.Literal(status)));
export const JobKindSchema = Type.Union(jobKinds.map((kind) => Type.Literal(kind)));

const ModelName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' });

/** A pull's source, as submitted and as stored with the job (`sha256` lowercased, without a prefix). */
export const PullSettings = Type.Object(
  {
    url: Type.String({ maxLength: 4096, description: 'https://…, http://… or hf://OWNER/REPO/FILE (https://huggingface.co/OWNER/REPO/resolve/main/FILE)' }),
    sha256: Type.Optional(Type.String({ pattern: '^(sha256:)?[0-9a-fA-F]{64}$', description: 'Expected sha256 of the file; a mismatch fails the job' })),
  },
  { additionalProperties: false },
);

/** `POST /jobs` with `kind: "pull"`: the same job as `POST /models/{name}/versions` with JSON. */
export const PullJobRequest = Type.Object(
  { kind: Type.Literal('pull'), model: ModelName, url: PullSettings.properties.url, sha256: PullSettings.properties.sha256 },
  { additionalProperties: false },
);

/** What a quantize job stores as its settings (the version resolved to a number at submission). */
export const QuantizeSettings = Type.Object(
  {
    version: Type.Integer({ minimum: 1 }),
    mode: Type.Literal('dynamic-int8'),
    calibrationDatasetId: Type.Optional(Type.String({ description: 'Dataset whose items are the sample for the output difference and latency' })),
    evaluationDatasetId: Type.Optional(Type.String({ description: 'Labelled dataset on which both models\' top-1 accuracy is measured' })),
  },
  { additionalProperties: false },
);

/** `POST /jobs` with `kind: "quantize"`: the same job as `POST /models/{name}/versions/{version}/quantize`. */
export const QuantizeJobRequest = Type.Object(
  {
    kind: Type.Literal('quantize'),
    model: ModelName,
    version: QuantizeSettings.properties.version,
    mode: QuantizeSettings.properties.mode,
    calibrationDatasetId: QuantizeSettings.properties.calibrationDatasetId,
    evaluationDatasetId: QuantizeSettings.properties.evaluationDatasetId,
  },
  { additionalProperties: false },
);

/** An evaluation's request as stored with its job (src/quality/evaluations.ts `parseEvaluationRequest`). */
export const EvaluationSettings = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  datasetId: Type.String(),
  output: Type.Optional(Type.String({ description: 'The output holding the scores (`outputs` in the request)' })),
  label: Type.Optional(Type.String()),
  classNames: Type.Optional(Type.Array(Type.String())),
  topK: Type.Optional(Type.Integer()),
  task: Type.Optional(Type.Union([Type.Literal('classification'), Type.Literal('regression')])),
});

/** What an evaluation request may say besides the dataset (the path names the model and version). */
export const EvaluationOptions = {
  datasetId: Type.String({ minLength: 1, maxLength: 200 }),
  outputs: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 1 })], { description: 'The output holding the scores; the first output when absent' })),
  label: Type.Optional(Type.String({ description: 'Label column for CSV / JSON-lines datasets' })),
  classNames: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { minItems: 2, maxItems: 10_000, description: "In class-index order; the dataset's class names when absent" })),
  topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'k of top-k accuracy (default min(5, classes))' })),
  task: Type.Optional(Type.Union([Type.Literal('classification'), Type.Literal('regression')], { description: 'Detected from the labels and the output when absent' })),
};

/** `POST /jobs` with `kind: "evaluate"`: the same job as `POST /models/{name}/versions/{v}/evaluations`. */
export const EvaluateJobRequest = Type.Object(
  { kind: Type.Literal('evaluate'), model: ModelName, version: Type.Integer({ minimum: 1 }), ...EvaluationOptions },
  { additionalProperties: false },
);

const NumberMap = Type.Record(Type.String(), Type.Number());

export const EarlyStoppingSettings = Type.Object(
  {
    monitor: Type.Optional(Type.String({ description: "'loss', 'val_loss', a metric name, or 'val_' + a metric name" })),
    patience: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
    minDelta: Type.Optional(Type.Number({ minimum: 0 })),
    restoreBestWeights: Type.Optional(Type.Boolean()),
    mode: Type.Optional(Type.Union([Type.Literal('min'), Type.Literal('max')])),
  },
  { additionalProperties: false },
);

/** Bounds as `parseJobRequest` (src/jobs/job-request.ts) enforces them; it checks the spec itself. */
export const SubmitJobRequest = Type.Object(
  {
    kind: Type.Optional(Type.Literal('train')),
    model: ModelName,
    spec: AnyJson('A model spec object in the engine format (docs/model-spec.md); a bad spec is 400 INVALID_SPEC'),
    datasetId: Type.String({ minLength: 1 }),
    testDatasetId: Type.Optional(Type.String()),
    epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
    shuffle: Type.Optional(Type.Boolean()),
    validationSplit: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1 })),
    maxSteps: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 })),
    targetLoss: Type.Optional(Type.Number()),
    earlyStopping: Type.Optional(EarlyStoppingSettings),
    label: Type.Optional(Type.String({ description: 'Label column for CSV / JSON-lines datasets' })),
    validationDatasetId: Type.Optional(Type.String({ minLength: 1, description: 'Dataset evaluated after every epoch (instead of validationSplit)' })),
  },
  { additionalProperties: false },
);

/** Fit settings as stored with the job (defaults filled in). */
export const JobSettings = Type.Object({
  epochs: Type.Integer(),
  batchSize: Type.Integer(),
  seed: Type.Integer(),
  shuffle: Type.Boolean(),
  validationSplit: Type.Optional(Type.Number()),
  maxSteps: Type.Optional(Type.Integer()),
  targetLoss: Type.Optional(Type.Number()),
  earlyStopping: Type.Optional(EarlyStoppingSettings),
  label: Type.Optional(Type.String()),
  keepResult: Type.Optional(Type.Literal(true, { description: 'A sweep trial: the trained model stays with the job; the sweep registers the best one' })),
  validationDatasetId: Type.Optional(Type.String()),
});

/** One finished epoch: the `epoch-end` event's payload, kept in the job's history. */
export const JobHistoryEntry = Type.Object({
  epoch: Type.Integer({ description: '1-based' }),
  epochs: Type.Integer(),
  step: Type.Integer(),
  loss: Type.Number(),
  metrics: NumberMap,
  validationLoss: Type.Optional(Type.Number()),
  validationMetrics: Type.Optional(NumberMap),
  samplesPerSecond: Type.Number(),
  seconds: Type.Number(),
  learningRate: Type.Number(),
});

export const JobFailure = Type.Object({
  code: Type.String(),
  message: Type.String(),
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});

/** What a finished job registers as its version's metrics (src/engine/model.ts `trainingSummary`). */
export const TrainingSummary = Type.Object({
  epochs: Type.Integer(),
  steps: Type.Integer(),
  samplesPerSecond: Type.Number(),
  loss: Type.Number(),
  metrics: NumberMap,
  validationLoss: Type.Optional(Type.Number()),
  validationMetrics: Type.Optional(NumberMap),
  testLoss: Type.Optional(Type.Number()),
  testMetrics: NumberMap,
  stopReason: Type.Union((['completed', 'maxSteps', 'targetLoss', 'earlyStopping', 'aborted'] as const).map((reason) => Type.Literal(reason))),
});

export const Job = Type.Object({
  id: Type.String(),
  kind: JobKindSchema,
  model: Type.String(),
  status: JobStatusSchema,
  epoch: Type.Integer(),
  totalEpochs: Type.Integer(),
  step: Type.Integer(),
  loss: Nullable(Type.Number()),
  history: Type.Array(JobHistoryEntry),
  error: Nullable(JobFailure),
  resultVersion: Nullable(
    Type.Object({ id: Type.String(), version: Type.Integer(), metrics: Nullable(TrainingSummary) }),
  ),
  settings: Type.Union([JobSettings, PullSettings, EvaluationSettings, QuantizeSettings], { description: "A training job's fit settings, a pull's {url, sha256?}, an evaluation's request, a quantize job's {version, mode, …}" }),
  datasetId: Type.String({ description: 'Training jobs; empty for other kinds' }),
  testDatasetId: Nullable(Type.String()),
  cancelRequested: Type.Boolean(),
  createdAt: Timestamp,
  startedAt: Nullable(Timestamp),
  finishedAt: Nullable(Timestamp),
});

const IdParams = Type.Object({ id: Type.String() });
export const JobBody = Type.Object({ job: Job });
const Count = Type.String({ pattern: '^[0-9]{1,16}$' });

export const jobSchemas = {
  submit: { body: Type.Union([SubmitJobRequest, PullJobRequest, EvaluateJobRequest, QuantizeJobRequest]), response: { 202: JobBody } },
  list: {
    querystring: Type.Object({
      status: Type.Optional(JobStatusSchema),
      kind: Type.Optional(JobKindSchema),
      limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '0 to 1000' })),
      offset: Type.Optional(Count),
    }),
    response: { 200: Type.Object({ jobs: Type.Array(Job) }) },
  },
  get: { params: IdParams, response: { 200: JobBody } },
  cancel: { params: IdParams, response: { 202: JobBody } },
  events: {
    params: IdParams,
    querystring: Type.Object({ after: Type.Optional(Count) }),
    response: {
      200: content(
        'text/event-stream',
        Type.String({ description: 'Server-Sent Events: job-queued, job-started, job-resumed, job-progress, epoch-end, checkpoint-saved, download-resumed, job-finished' }),
      ),
    },
  },
} satisfies Record<string, RouteSchema>;

/** Drift scores and load-test (bench) reports of model versions. */
import { Type } from '@sinclair/typebox';
import { Nullable, Timestamp, type RouteSchema } from './common.ts';

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });
const VersionParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }), version: Type.String({ minLength: 1, maxLength: 128, description: 'Version number or alias' }) });

const FeatureDrift = Type.Object({ feature: Type.Integer(), psi: Type.Number(), ks: Type.Number() });

export const DriftReport = Type.Object(
  {
    model: Type.String(),
    version: Type.String(),
    sampling: Type.Object({ rate: Type.Number(), windowSize: Type.Integer() }),
    threshold: Type.Number(),
    baseline: Nullable(
      Type.Object({
        source: Type.Union([Type.Literal('training'), Type.Literal('evaluation')]),
        rows: Type.Integer(),
        features: Type.Integer({ description: 'Profiled features (after projection: 49 for an image)' }),
        projection: Type.Union([Type.Literal('identity'), Type.Literal('average-pool'), Type.Literal('chunk-mean')]),
        createdAt: Timestamp,
        classes: Nullable(Type.Integer()),
      }),
    ),
    drifted: Type.Boolean({ description: 'The worst feature PSI or the output PSI is above the threshold (with at least min(300, window) samples)' }),
    scores: Nullable(
      Type.Object({
        samples: Type.Integer(),
        features: Type.Array(FeatureDrift),
        maxPsi: Type.Number(),
        meanPsi: Type.Number(),
        maxKs: Type.Number(),
        output: Type.Optional(Type.Object({ psi: Type.Number(), expected: Type.Array(Type.Number()), actual: Type.Array(Type.Number()) })),
        pixelMeanShift: Type.Optional(Type.Object({ meanAbsolute: Type.Number(), maxAbsolute: Type.Number() })),
      }),
    ),
  },
  { title: 'DriftReport' },
);

const Percentiles = Type.Object(
  { p50: Type.Number(), p90: Type.Number(), p99: Type.Number(), p999: Type.Number(), mean: Type.Number(), max: Type.Number() },
  { additionalProperties: false },
);

export const BenchLevel = Type.Object(
  {
    concurrency: Type.Integer({ minimum: 1, maximum: 100_000 }),
    durationSeconds: Type.Number({ minimum: 0 }),
    requests: Type.Integer({ minimum: 0, description: 'Completed requests, errors included' }),
    errors: Type.Integer({ minimum: 0 }),
    errorCodes: Type.Record(Type.String({ maxLength: 64 }), Type.Integer({ minimum: 0 }), { description: 'Errors by HTTP status or network failure' }),
    throughput: Type.Number({ minimum: 0, description: 'Successful requests per second' }),
    latencyMs: Nullable(Percentiles),
    serverQueueMs: Nullable(Percentiles),
    serverComputeMs: Nullable(Percentiles),
    timeToFirstTokenMs: Type.Optional(Nullable(Percentiles)),
    tokensPerSecond: Type.Optional(Nullable(Type.Object({ mean: Type.Number(), p50: Type.Number(), total: Type.Number() }, { additionalProperties: false }))),
  },
  { additionalProperties: false },
);

export const BenchReportBody = Type.Object(
  {
    protocol: Type.Union([Type.Literal('v2'), Type.Literal('openai')]),
    input: Type.Union([Type.Literal('synthetic'), Type.Literal('dataset')]),
    datasetId: Type.Optional(Type.String({ maxLength: 128 })),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    client: Type.Optional(Type.Object({ node: Type.String({ maxLength: 64 }), cpus: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })),
    levels: Type.Array(BenchLevel, { minItems: 1, maxItems: 64 }),
  },
  { additionalProperties: false, title: 'BenchReportBody' },
);

export const BenchReport = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    version: Type.Integer(),
    createdAt: Timestamp,
    report: BenchReportBody,
  },
  { title: 'BenchReport' },
);

export const DatasetRows = Type.Object(
  {
    datasetId: Type.String(),
    featureShape: Type.Array(Type.Integer()),
    labelShape: Type.Array(Type.Integer()),
    count: Type.Integer({ description: 'Rows in the whole dataset' }),
    offset: Type.Integer(),
    rows: Type.Array(Type.Array(Type.Number()), { description: 'Each row\'s features, flattened (row-major)' }),
    labels: Type.Array(Type.Array(Type.Number()), { description: 'Each row\'s label values, flattened' }),
  },
  { title: 'DatasetRows' },
);

export const qualitySchemas = {
  drift: {
    params: NameParams,
    querystring: Type.Object({ version: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Version number or alias (default: the latest version)' })) }, { additionalProperties: false }),
    response: { 200: DriftReport },
  },
  addBenchReport: { params: VersionParams, body: BenchReportBody, response: { 201: Type.Object({ benchReport: BenchReport }) } },
  datasetRows: {
    params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) }),
    querystring: Type.Object(
      { offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'At most 1000; default 100' })) },
      { additionalProperties: false },
    ),
    response: { 200: DatasetRows },
  },
  listBenchReports: { params: VersionParams, response: { 200: Type.Object({ benchReports: Type.Array(BenchReport) }) } },
} satisfies Record<string, RouteSchema>;


/** Hyperparameter sweeps: submit, read, list, cancel, register the best trial, and a live leaderboard stream. */
import { Type } from '@sinclair/typebox';
import { JobFailure, JobStatusSchema, SubmitJobRequest } from './jobs.ts';
import { Nullable, Timestamp, content, type RouteSchema } from './common.ts';

const RangeDimension = Type.Object(
  {
    type: Type.Union([Type.Literal('range'), Type.Literal('logRange')]),
    min: Type.Number(),
    max: Type.Number(),
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Grid points (grid strategy); default 3' })),
    integer: Type.Optional(Type.Boolean({ description: 'Round values to integers (units, batch sizes)' })),
  },
  { additionalProperties: false },
);
const ChoiceDimension = Type.Object({ type: Type.Literal('choice'), values: Type.Array(Type.Unknown(), { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false });
export const SweepDimension = Type.Union([ChoiceDimension, RangeDimension, Type.Array(Type.Unknown(), { minItems: 1, maxItems: 1000, description: 'Shorthand for a choice' })]);

export const SweepStrategy = Type.Union([
  Type.Literal('grid'),
  Type.Literal('random'),
  Type.Literal('successiveHalving'),
  Type.Object({ type: Type.Literal('grid') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('random'), seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })) }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('successiveHalving'),
      seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
      eta: Type.Optional(Type.Integer({ minimum: 2, maximum: 16, description: 'Keep the best 1/eta of each round; default 3' })),
      minEpochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Epochs of the first round; default 1' })),
      maxEpochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Cap of a round\'s epochs; default the base job\'s epochs' })),
    },
    { additionalProperties: false },
  ),
]);

export const SweepMetric = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'loss, val_loss, test_loss, a metric (accuracy) or val_/test_ + a metric; default loss' })),
    direction: Type.Optional(Type.Union([Type.Literal('minimize'), Type.Literal('maximize')], { description: 'Default: minimize for *loss, else maximize' })),
  },
  { additionalProperties: false },
);

export const SubmitSweepRequest = Type.Object(
  {
    baseJob: SubmitJobRequest,
    space: Type.Record(Type.String({ description: 'A job field (epochs, batchSize, seed, …) or a spec path (compile.optimizer.learningRate, layers.0.units)' }), SweepDimension),
    strategy: Type.Optional(SweepStrategy),
    maxTrials: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Configurations tried (successive halving: its first round)' })),
    parallelism: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'Trial jobs at once; default 1' })),
    metric: Type.Optional(SweepMetric),
    register: Type.Optional(Type.Boolean({ description: 'Register the best trial as a version when the sweep ends' })),
  },
  { additionalProperties: false, title: 'SubmitSweepRequest' },
);

export const SweepTrial = Type.Object({
  trial: Type.Integer({ description: 'Index of the configuration' }),
  rung: Type.Integer({ description: 'Successive halving round (0 otherwise)' }),
  jobId: Type.String(),
  params: Type.Record(Type.String(), Type.Unknown()),
  status: JobStatusSchema,
  epoch: Type.Integer(),
  totalEpochs: Type.Integer(),
  loss: Nullable(Type.Number()),
  metric: Nullable(Type.Number({ description: 'The sweep metric, once the trial succeeded' })),
  error: Nullable(Type.Pick(JobFailure, ['code', 'message'])),
});

export const Sweep = Type.Object(
  {
    id: Type.String(),
    model: Type.String(),
    status: Type.Union([Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]),
    strategy: Type.Unknown({ description: 'The strategy with its defaults filled in' }),
    metric: Type.Object({ name: Type.String(), direction: Type.Union([Type.Literal('minimize'), Type.Literal('maximize')]) }),
    space: Type.Record(Type.String(), Type.Unknown()),
    maxTrials: Type.Integer(),
    parallelism: Type.Integer(),
    register: Type.Boolean(),
    leaderboard: Type.Array(SweepTrial, { description: 'Best first; then running, queued, failed, cancelled' }),
    best: Nullable(SweepTrial),
    resultVersion: Nullable(Type.Object({ id: Type.String(), version: Type.Integer() })),
    createdAt: Timestamp,
    finishedAt: Nullable(Timestamp),
  },
  { title: 'Sweep' },
);

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
export const SweepBody = Type.Object({ sweep: Sweep });

export const sweepSchemas = {
  submit: { body: SubmitSweepRequest, response: { 202: SweepBody } },
  list: { response: { 200: Type.Object({ sweeps: Type.Array(Sweep) }) } },
  get: { params: IdParams, response: { 200: SweepBody } },
  cancel: { params: IdParams, response: { 202: SweepBody } },
  register: { params: IdParams, response: { 201: SweepBody } },
  events: {
    params: IdParams,
    response: { 200: content('text/event-stream', Type.String({ description: 'Server-Sent Events: sweep-leaderboard (the whole sweep, on every change), sweep-finished (last)' })) },
  },
} satisfies Record<string, RouteSchema>;

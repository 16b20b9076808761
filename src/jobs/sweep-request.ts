/**
 * Hyperparameter sweeps, the pure part: the request's validation, the search space and its
 * strategies (grid, seeded random, successive halving), how a trial's values become a job body,
 * and how a trial's metric is read from its training summary.
 */
import { AiaasError, quoteForError } from '../errors.ts';
import type { TrainingSummary } from '../engine/model.ts';
import { mulberry32 } from '../engine/random.ts';

export type Dimension =
  | { type: 'choice'; values: readonly unknown[] }
  | { type: 'range'; min: number; max: number; count: number; integer: boolean }
  | { type: 'logRange'; min: number; max: number; count: number; integer: boolean };

export type Strategy =
  | { type: 'grid' }
  | { type: 'random'; seed: number }
  | { type: 'successiveHalving'; seed: number; eta: number; minEpochs: number; maxEpochs: number };

export interface SweepMetric {
  /** `loss`, `val_loss`, `test_loss`, a metric name, or a metric name with `val_` / `test_`. */
  name: string;
  direction: 'minimize' | 'maximize';
}

export interface SweepDefinition {
  /** The job every trial starts from (the body of POST /api/v1/jobs). */
  baseJob: Record<string, unknown>;
  /** Parameter path → dimension, in the request's order. */
  space: Record<string, Dimension>;
  strategy: Strategy;
  /** Configurations tried (successive halving's first round). */
  maxTrials: number;
  /** Trial jobs queued or running at once. */
  parallelism: number;
  metric: SweepMetric;
  /** Register the best trial's model as a version when the sweep succeeds. */
  register: boolean;
}

/** One configuration: parameter path → value. */
export type TrialParameters = Record<string, unknown>;

/** Job fields a path may name directly; any other path is inside the spec (`compile.optimizer.learningRate`). */
export const jobFieldPaths = ['epochs', 'batchSize', 'seed', 'shuffle', 'validationSplit', 'maxSteps', 'targetLoss'] as const;
const maxConfigurations = 10_000;

function invalid(field: string, expected: string, actual: unknown): AiaasError {
  return new AiaasError('INVALID_REQUEST', `${field}: expected ${expected}, got ${actual === undefined ? 'nothing' : quoteForError(actual)}`, { details: { field } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finite(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(field, 'a finite number', value);
  return value;
}

function integerIn(value: unknown, field: string, fallback: number, minimum: number, maximum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > maximum) throw invalid(field, `an integer from ${minimum} to ${maximum}`, value);
  return value;
}

function parseDimension(path: string, value: unknown): Dimension {
  const field = `space.${path}`;
  if (Array.isArray(value)) value = { type: 'choice', values: value };
  if (!isRecord(value)) throw invalid(field, 'a list of values or {"type": "choice" | "range" | "logRange", …}', value);
  if (value.type === 'choice') {
    if (!Array.isArray(value.values) || value.values.length === 0 || value.values.length > 1000) throw invalid(`${field}.values`, 'a list of 1 to 1000 values', value.values);
    return { type: 'choice', values: value.values };
  }
  if (value.type === 'range' || value.type === 'logRange') {
    const min = finite(value.min, `${field}.min`);
    const max = finite(value.max, `${field}.max`);
    if (!(max >= min)) throw invalid(`${field}.max`, `a number ≥ min (${min})`, max);
    if (value.type === 'logRange' && !(min > 0)) throw invalid(`${field}.min`, 'a positive number (a log range)', min);
    const count = integerIn(value.count, `${field}.count`, 3, 1, 1000);
    if (value.integer !== undefined && typeof value.integer !== 'boolean') throw invalid(`${field}.integer`, 'true or false', value.integer);
    return { type: value.type, min, max, count, integer: value.integer === true };
  }
  throw invalid(`${field}.type`, '"choice", "range" or "logRange"', value.type);
}

function parseStrategy(value: unknown, baseEpochs: number): Strategy {
  if (value === undefined || value === 'grid') return { type: 'grid' };
  if (value === 'random') return { type: 'random', seed: 1 };
  if (value === 'successiveHalving') value = { type: 'successiveHalving' };
  if (!isRecord(value)) throw invalid('strategy', '"grid", "random", "successiveHalving" or an object with a type', value);
  if (value.type === 'grid') return { type: 'grid' };
  const seed = integerIn(value.seed, 'strategy.seed', 1, 0, 2 ** 31 - 1);
  if (value.type === 'random') return { type: 'random', seed };
  if (value.type === 'successiveHalving') {
    const eta = integerIn(value.eta, 'strategy.eta', 3, 2, 16);
    const minEpochs = integerIn(value.minEpochs, 'strategy.minEpochs', 1, 1, 10_000);
    const maxEpochs = integerIn(value.maxEpochs, 'strategy.maxEpochs', Math.max(baseEpochs, minEpochs), minEpochs, 10_000);
    return { type: 'successiveHalving', seed, eta, minEpochs, maxEpochs };
  }
  throw invalid('strategy.type', '"grid", "random" or "successiveHalving"', value.type);
}

const allowedFields = ['baseJob', 'space', 'strategy', 'maxTrials', 'parallelism', 'metric', 'register'];

/**
 * Validates a sweep request (the base job itself is validated by the caller with every trial's
 * values applied, so a path that breaks the spec is a 400 now).
 */
export function parseSweepRequest(body: unknown): SweepDefinition {
  if (!isRecord(body)) throw invalid('body', 'a JSON object', body);
  for (const key of Object.keys(body)) if (!allowedFields.includes(key)) throw invalid(key.slice(0, 120), `only the fields ${allowedFields.join(', ')}`, key.slice(0, 120));
  if (!isRecord(body.baseJob)) throw invalid('baseJob', 'the body of a training job (POST /api/v1/jobs)', body.baseJob);
  if (body.baseJob.kind !== undefined && body.baseJob.kind !== 'train') throw invalid('baseJob.kind', '"train" (sweeps train models)', body.baseJob.kind);
  const baseJob = { ...body.baseJob };
  delete baseJob.kind;
  if (!isRecord(body.space) || Object.keys(body.space).length === 0 || Object.keys(body.space).length > 32) throw invalid('space', 'an object of 1 to 32 parameter paths', body.space);
  const space: Record<string, Dimension> = {};
  for (const [path, value] of Object.entries(body.space)) {
    if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){0,15}$/.test(path)) throw invalid('space', 'paths like compile.optimizer.learningRate, layers.0.units, epochs or batchSize', path);
    space[path] = parseDimension(path, value);
  }
  const baseEpochs = typeof baseJob.epochs === 'number' ? baseJob.epochs : 10;
  const strategy = parseStrategy(body.strategy, baseEpochs);
  if (strategy.type === 'successiveHalving' && 'epochs' in space) throw invalid('space.epochs', 'no epochs dimension: successive halving sets the epochs of each round', space.epochs);
  const maxTrials = integerIn(body.maxTrials, 'maxTrials', strategy.type === 'grid' ? 100 : 10, 1, 1000);
  const parallelism = integerIn(body.parallelism, 'parallelism', 1, 1, 64);
  if (!isRecord(body.metric) && body.metric !== undefined) throw invalid('metric', '{"name", "direction": "minimize" | "maximize"}', body.metric);
  const metricBody = (body.metric ?? {}) as Record<string, unknown>;
  const name = metricBody.name ?? 'loss';
  if (typeof name !== 'string' || !/^(val_|test_)?[A-Za-z0-9_]{1,64}$/.test(name)) throw invalid('metric.name', 'loss, val_loss, test_loss, a metric name, or one with a val_ or test_ prefix', name);
  const direction = metricBody.direction ?? (/(loss|error)$/.test(name) ? 'minimize' : 'maximize');
  if (direction !== 'minimize' && direction !== 'maximize') throw invalid('metric.direction', '"minimize" or "maximize"', direction);
  if (body.register !== undefined && typeof body.register !== 'boolean') throw invalid('register', 'true or false', body.register);
  return { baseJob, space, strategy, maxTrials, parallelism, metric: { name, direction }, register: body.register === true };
}

function finish(dimension: Extract<Dimension, { type: 'range' | 'logRange' }>, value: number): number {
  // Twelve significant digits: 10 ** (log10(1e-5)) must read 0.00001, not 0.000009999999999999999.
  const rounded = Number(value.toPrecision(12));
  return dimension.integer ? Math.round(rounded) : rounded;
}

/** The grid points of one dimension: choices as given, ranges as `count` evenly (log-evenly) spaced points. */
export function gridPoints(dimension: Dimension): unknown[] {
  if (dimension.type === 'choice') return [...dimension.values];
  const { min, max, count } = dimension;
  const points: number[] = [];
  for (let index = 0; index < count; index++) {
    const fraction = count === 1 ? 0 : index / (count - 1);
    const value = dimension.type === 'range' ? min + (max - min) * fraction : Math.exp(Math.log(min) + (Math.log(max) - Math.log(min)) * fraction);
    points.push(finish(dimension, value));
  }
  return dimension.integer ? [...new Set(points)] : points;
}

function sample(dimension: Dimension, random: () => number): unknown {
  if (dimension.type === 'choice') return dimension.values[Math.min(dimension.values.length - 1, Math.floor(random() * dimension.values.length))];
  const { min, max } = dimension;
  const value = dimension.type === 'range' ? min + (max - min) * random() : Math.exp(Math.log(min) + (Math.log(max) - Math.log(min)) * random());
  return finish(dimension, value);
}

/**
 * The configurations a sweep tries, in order: the grid's cartesian product (first dimension
 * slowest), or `maxTrials` seeded random samples. Deterministic, so a restarted server continues
 * the same sweep.
 */
export function configurations(definition: SweepDefinition): TrialParameters[] {
  const paths = Object.keys(definition.space);
  if (definition.strategy.type === 'grid') {
    let product: TrialParameters[] = [{}];
    for (const path of paths) {
      const points = gridPoints(definition.space[path]!);
      const next: TrialParameters[] = [];
      for (const partial of product) {
        for (const point of points) {
          next.push({ ...partial, [path]: point });
          if (next.length >= maxConfigurations) break;
        }
      }
      product = next;
    }
    return product.slice(0, definition.maxTrials);
  }
  const random = mulberry32(definition.strategy.seed);
  return Array.from({ length: definition.maxTrials }, () => Object.fromEntries(paths.map((path) => [path, sample(definition.space[path]!, random)])));
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Sets one value at a dot path inside `target`, creating objects on the way; a string on the way (`"optimizer": "adam"`) becomes `{type: …}`. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node: Record<string, unknown> | unknown[] = target;
  for (let index = 0; index < keys.length - 1; index++) {
    const key = keys[index]!;
    const container = node as Record<string, unknown>;
    let child = container[key];
    if (typeof child === 'string') child = { type: child };
    if (typeof child !== 'object' || child === null) child = /^[0-9]+$/.test(keys[index + 1]!) ? [] : {};
    container[key] = child;
    node = child as Record<string, unknown>;
  }
  (node as Record<string, unknown>)[keys[keys.length - 1]!] = value;
}

/** The job body of one trial: the base job with the trial's values (and a round's epochs) applied. */
export function trialJobBody(definition: SweepDefinition, parameters: TrialParameters, epochs?: number): Record<string, unknown> {
  const body = clone(definition.baseJob);
  const spec = (isRecord(body.spec) ? body.spec : {}) as Record<string, unknown>;
  for (const [path, value] of Object.entries(parameters)) {
    if ((jobFieldPaths as readonly string[]).includes(path)) body[path] = value;
    else setPath(spec, path.startsWith('spec.') ? path.slice('spec.'.length) : path, value);
  }
  body.spec = spec;
  if (epochs !== undefined) body.epochs = epochs;
  return body;
}

/** The sweep's metric from a trial's training summary; undefined when the run did not produce it. */
export function metricValue(summary: TrainingSummary, name: string): number | undefined {
  let value: number | undefined;
  if (name === 'loss') value = summary.loss;
  else if (name === 'val_loss') value = summary.validationLoss;
  else if (name === 'test_loss') value = summary.testLoss;
  else if (name.startsWith('val_')) value = summary.validationMetrics?.[name.slice(4)];
  else if (name.startsWith('test_')) value = summary.testMetrics[name.slice(5)];
  else value = summary.metrics[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Orders metric values best first for the direction. */
export function better(direction: SweepMetric['direction']): (a: number, b: number) => number {
  return direction === 'minimize' ? (a, b) => a - b : (a, b) => b - a;
}

/** Successive halving: epochs of round `rung`, and how many of a finished round go on. */
export function roundEpochs(strategy: Extract<Strategy, { type: 'successiveHalving' }>, rung: number): number {
  return Math.min(strategy.maxEpochs, strategy.minEpochs * strategy.eta ** rung);
}

export function promoted(strategy: Extract<Strategy, { type: 'successiveHalving' }>, finishedInRound: number): number {
  return Math.max(1, Math.floor(finishedInRound / strategy.eta));
}

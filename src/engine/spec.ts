import { AiaasError } from '../errors.ts';

/** The model spec: one JSON document (docs/model-spec.md). */
export type ActivationName = 'linear' | 'sigmoid' | 'tanh' | 'relu' | 'softmax';
export type InitializerName = 'glorotUniform' | 'heNormal' | 'zeros';
export type LossName = 'meanSquaredError' | 'binaryCrossentropy' | 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy';
export type MetricName = 'accuracy' | 'meanAbsoluteError';

export type LayerSpec =
  | { type: 'dense'; name?: string; units: number; activation?: ActivationName; useBias?: boolean; kernelInitializer?: InitializerName; biasInitializer?: InitializerName }
  | { type: 'dropout'; name?: string; rate: number }
  | { type: 'flatten'; name?: string }
  | { type: 'conv2d'; name?: string; filters: number; kernelSize: number | [number, number]; strides?: number | [number, number]; padding?: 'same' | 'valid'; activation?: ActivationName; useBias?: boolean; kernelInitializer?: InitializerName; biasInitializer?: InitializerName }
  | { type: 'maxPooling2d'; name?: string; poolSize?: number | [number, number]; strides?: number | [number, number]; padding?: 'same' | 'valid' }
  | { type: 'activation'; name?: string; activation: ActivationName }
  | { type: 'normalization'; name?: string; epsilon?: number };

export type LearningRateSpec =
  | number
  | { type: 'exponentialDecay'; initial: number; decaySteps: number; decayRate: number; staircase?: boolean }
  | { type: 'stepDecay'; initial: number; stepSize: number; gamma: number };

export type OptimizerSpec =
  | { type: 'gd'; learningRate?: LearningRateSpec }
  | { type: 'sgd'; learningRate?: LearningRateSpec; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }
  | { type: 'adagrad'; learningRate?: LearningRateSpec; initialAccumulatorValue?: number; epsilon?: number }
  | { type: 'rmsprop'; learningRate?: LearningRateSpec; rho?: number; epsilon?: number; momentum?: number }
  | { type: 'adam'; learningRate?: LearningRateSpec; beta1?: number; beta2?: number; epsilon?: number };

export interface ModelSpec {
  name?: string;
  /** `scale` and `offset`: input preprocessing `x · scale + offset`, part of every graph (docs/model-spec.md). */
  input: { shape: number[]; scale?: number; offset?: number };
  layers: LayerSpec[];
  compile: { optimizer: OptimizerSpec | OptimizerSpec['type']; loss: LossName; metrics?: MetricName[] };
}

const activations: readonly ActivationName[] = ['linear', 'sigmoid', 'tanh', 'relu', 'softmax'];
const initializers: readonly InitializerName[] = ['glorotUniform', 'heNormal', 'zeros'];
const losses: readonly LossName[] = ['meanSquaredError', 'binaryCrossentropy', 'categoricalCrossentropy', 'sparseCategoricalCrossentropy'];
const metrics: readonly MetricName[] = ['accuracy', 'meanAbsoluteError'];
const layerTypes = ['dense', 'dropout', 'flatten', 'conv2d', 'maxPooling2d', 'activation', 'normalization'] as const;
const optimizerTypes = ['gd', 'sgd', 'adagrad', 'rmsprop', 'adam'] as const;

/** Where in the spec a problem is, so the message can point at it. */
interface Location {
  path: string;
  layerIndex?: number;
  layerName?: string;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function specError(location: Location, field: string, expected: string, actual: unknown, actualText?: string): AiaasError {
  const where =
    location.layerIndex === undefined
      ? `${location.path}${field ? `.${field}` : ''}`
      : `layer ${location.layerIndex} (${location.layerName ?? 'unnamed'})${field ? ` field "${field}"` : ''}`;
  return new AiaasError('INVALID_SPEC', `${where}: expected ${expected}, got ${actualText ?? describe(actual)}`, {
    details: {
      ...(location.layerIndex === undefined ? {} : { layerIndex: location.layerIndex, layerName: location.layerName }),
      path: location.path,
      field,
      expected,
      actual: actualText ?? (actual === undefined ? null : actual),
    },
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKnownFields(record: Record<string, unknown>, allowed: readonly string[], location: Location): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw specError(location, key, `only the fields ${allowed.join(', ')}`, key, `the unknown field "${key}"`);
  }
}

function positiveInteger(value: unknown, location: Location, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw specError(location, field, 'a positive integer', value);
  return value;
}

function pair(value: unknown, location: Location, field: string, fallback: [number, number]): [number, number] {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return [positiveInteger(value, location, field), value];
  if (Array.isArray(value) && value.length === 2) {
    return [positiveInteger(value[0], location, field), positiveInteger(value[1], location, field)];
  }
  throw specError(location, field, 'a positive integer or a pair of them', value);
}

function oneOf<T extends string>(value: unknown, options: readonly T[], location: Location, field: string, fallback?: T): T {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
    throw specError(location, field, `one of ${options.join(', ')}`, value);
  }
  return value as T;
}

function numberIn(value: unknown, location: Location, field: string, fallback: number, low: number, high: number, inclusiveLow = true): number {
  if (value === undefined) return fallback;
  const ok = typeof value === 'number' && Number.isFinite(value) && (inclusiveLow ? value >= low : value > low) && value <= high;
  if (!ok) throw specError(location, field, `a number in ${inclusiveLow ? '[' : '('}${low}, ${high}]`, value);
  return value as number;
}

/** A layer after validation, with its generated name and resolved options. */
export type ResolvedLayer =
  | { type: 'dense'; name: string; units: number; activation: ActivationName; useBias: boolean; kernelInitializer: InitializerName; biasInitializer: InitializerName }
  | { type: 'dropout'; name: string; rate: number }
  | { type: 'flatten'; name: string }
  | { type: 'conv2d'; name: string; filters: number; kernelSize: [number, number]; strides: [number, number]; padding: 'same' | 'valid'; activation: ActivationName; useBias: boolean; kernelInitializer: InitializerName; biasInitializer: InitializerName }
  | { type: 'maxPooling2d'; name: string; poolSize: [number, number]; strides: [number, number]; padding: 'same' | 'valid' }
  | { type: 'activation'; name: string; activation: ActivationName }
  | { type: 'normalization'; name: string; epsilon: number };

export type ResolvedOptimizer =
  | { type: 'gd'; learningRate: LearningRateSpec }
  | { type: 'sgd'; learningRate: LearningRateSpec; momentum: number; dampening: number; nesterov: boolean; weightDecay: number }
  | { type: 'adagrad'; learningRate: LearningRateSpec; initialAccumulatorValue: number; epsilon: number }
  | { type: 'rmsprop'; learningRate: LearningRateSpec; rho: number; epsilon: number; momentum: number }
  | { type: 'adam'; learningRate: LearningRateSpec; beta1: number; beta2: number; epsilon: number };

/** Input preprocessing `x · scale + offset` (Keras' Rescaling), applied first in every graph. */
export interface InputPreprocessing {
  scale: number;
  offset: number;
}

export interface ResolvedSpec {
  name: string;
  inputShape: number[];
  /** Absent when the spec's input has neither `scale` nor `offset`. */
  preprocessing?: InputPreprocessing;
  layers: ResolvedLayer[];
  optimizer: ResolvedOptimizer;
  loss: LossName;
  metrics: MetricName[];
}

const defaultLearningRate: Record<ResolvedOptimizer['type'], number> = { gd: 0.01, sgd: 0.01, adagrad: 0.001, rmsprop: 0.001, adam: 0.001 };

function learningRate(value: unknown, location: Location, fallback: number): LearningRateSpec {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return numberIn(value, location, 'learningRate', fallback, 0, 1e3, false);
  if (!isRecord(value)) throw specError(location, 'learningRate', 'a positive number or a schedule object', value);
  const schedule = { path: `${location.path}.learningRate` };
  const type = oneOf(value.type, ['exponentialDecay', 'stepDecay'] as const, schedule, 'type');
  if (type === 'exponentialDecay') {
    checkKnownFields(value, ['type', 'initial', 'decaySteps', 'decayRate', 'staircase'], schedule);
    return {
      type,
      initial: numberIn(value.initial, schedule, 'initial', fallback, 0, 1e3, false),
      decaySteps: positiveInteger(value.decaySteps, schedule, 'decaySteps'),
      decayRate: numberIn(value.decayRate, schedule, 'decayRate', Number.NaN, 0, 1, false),
      staircase: value.staircase === true,
    };
  }
  checkKnownFields(value, ['type', 'initial', 'stepSize', 'gamma'], schedule);
  return {
    type,
    initial: numberIn(value.initial, schedule, 'initial', fallback, 0, 1e3, false),
    stepSize: positiveInteger(value.stepSize, schedule, 'stepSize'),
    gamma: numberIn(value.gamma, schedule, 'gamma', Number.NaN, 0, 1, false),
  };
}

function resolveOptimizer(value: unknown): ResolvedOptimizer {
  const location = { path: 'compile.optimizer' };
  const record = typeof value === 'string' ? { type: value } : value;
  if (!isRecord(record)) throw specError({ path: 'compile' }, 'optimizer', `an optimizer name (${optimizerTypes.join(', ')}) or object`, value);
  const type = oneOf(record.type, optimizerTypes, location, 'type');
  const lr = learningRate(record.learningRate, location, defaultLearningRate[type]);
  switch (type) {
    case 'gd':
      checkKnownFields(record, ['type', 'learningRate'], location);
      return { type, learningRate: lr };
    case 'sgd': {
      checkKnownFields(record, ['type', 'learningRate', 'momentum', 'dampening', 'nesterov', 'weightDecay'], location);
      const momentum = numberIn(record.momentum, location, 'momentum', 0, 0, 1);
      const dampening = numberIn(record.dampening, location, 'dampening', 0, 0, 1);
      const nesterov = record.nesterov === undefined ? false : record.nesterov;
      if (typeof nesterov !== 'boolean') throw specError(location, 'nesterov', 'true or false', nesterov);
      if (nesterov && (momentum <= 0 || dampening !== 0)) {
        throw specError(location, 'nesterov', 'momentum > 0 and dampening 0 (as PyTorch requires) when nesterov is true', { momentum, dampening });
      }
      return { type, learningRate: lr, momentum, dampening, nesterov, weightDecay: numberIn(record.weightDecay, location, 'weightDecay', 0, 0, 1) };
    }
    case 'adagrad':
      checkKnownFields(record, ['type', 'learningRate', 'initialAccumulatorValue', 'epsilon'], location);
      return {
        type,
        learningRate: lr,
        initialAccumulatorValue: numberIn(record.initialAccumulatorValue, location, 'initialAccumulatorValue', 0.1, 0, 1e6),
        epsilon: numberIn(record.epsilon, location, 'epsilon', 1e-7, 0, 1),
      };
    case 'rmsprop':
      checkKnownFields(record, ['type', 'learningRate', 'rho', 'epsilon', 'momentum'], location);
      return {
        type,
        learningRate: lr,
        rho: numberIn(record.rho, location, 'rho', 0.9, 0, 1),
        epsilon: numberIn(record.epsilon, location, 'epsilon', 1e-7, 0, 1),
        momentum: numberIn(record.momentum, location, 'momentum', 0, 0, 1),
      };
    case 'adam':
      checkKnownFields(record, ['type', 'learningRate', 'beta1', 'beta2', 'epsilon'], location);
      return {
        type,
        learningRate: lr,
        beta1: numberIn(record.beta1, location, 'beta1', 0.9, 0, 1),
        beta2: numberIn(record.beta2, location, 'beta2', 0.999, 0, 1),
        epsilon: numberIn(record.epsilon, location, 'epsilon', 1e-7, 0, 1),
      };
  }
}

const layerFields: Record<(typeof layerTypes)[number], readonly string[]> = {
  dense: ['type', 'name', 'units', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer'],
  dropout: ['type', 'name', 'rate'],
  flatten: ['type', 'name'],
  conv2d: ['type', 'name', 'filters', 'kernelSize', 'strides', 'padding', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer'],
  maxPooling2d: ['type', 'name', 'poolSize', 'strides', 'padding'],
  activation: ['type', 'name', 'activation'],
  normalization: ['type', 'name', 'epsilon'],
};

const namePrefix: Record<(typeof layerTypes)[number], string> = {
  dense: 'dense',
  dropout: 'dropout',
  flatten: 'flatten',
  conv2d: 'conv2d',
  maxPooling2d: 'max_pooling2d',
  activation: 'activation',
  normalization: 'normalization',
};

function resolveLayer(value: unknown, index: number, counters: Map<string, number>, usedNames: Set<string>): ResolvedLayer {
  const providedName = isRecord(value) && typeof value.name === 'string' ? value.name : undefined;
  const location: Location = { path: `layers[${index}]`, layerIndex: index, ...(providedName === undefined ? {} : { layerName: providedName }) };
  if (!isRecord(value)) throw specError(location, '', 'a layer object', value);
  const type = oneOf(value.type, layerTypes, location, 'type');
  checkKnownFields(value, layerFields[type], location);
  let name: string;
  if (value.name !== undefined) {
    if (typeof value.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(value.name)) {
      throw specError(location, 'name', 'a name of letters, digits, _ or - starting with a letter (at most 64)', value.name);
    }
    name = value.name;
  } else {
    const count = (counters.get(type) ?? 0) + 1;
    counters.set(type, count);
    name = `${namePrefix[type]}_${count}`;
    while (usedNames.has(name)) name = `${name}_`;
  }
  if (usedNames.has(name)) throw specError(location, 'name', 'a name not used by another layer', name);
  usedNames.add(name);
  location.layerName = name;
  const activation = (fallback: ActivationName) => oneOf(value.activation, activations, location, 'activation', fallback);
  const booleanField = (field: string, fallback: boolean) => {
    const raw = value[field];
    if (raw === undefined) return fallback;
    if (typeof raw !== 'boolean') throw specError(location, field, 'true or false', raw);
    return raw;
  };
  switch (type) {
    case 'dense':
      return {
        type,
        name,
        units: positiveInteger(value.units, location, 'units'),
        activation: activation('linear'),
        useBias: booleanField('useBias', true),
        kernelInitializer: oneOf(value.kernelInitializer, initializers, location, 'kernelInitializer', 'glorotUniform'),
        biasInitializer: oneOf(value.biasInitializer, initializers, location, 'biasInitializer', 'zeros'),
      };
    case 'dropout': {
      const rate = value.rate;
      if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw specError(location, 'rate', 'a number in [0, 1)', rate);
      return { type, name, rate };
    }
    case 'flatten':
      return { type, name };
    case 'conv2d': {
      const kernelSize = pair(value.kernelSize, location, 'kernelSize', [0, 0]);
      if (value.kernelSize === undefined) throw specError(location, 'kernelSize', 'a positive integer or a pair of them', undefined);
      return {
        type,
        name,
        filters: positiveInteger(value.filters, location, 'filters'),
        kernelSize,
        strides: pair(value.strides, location, 'strides', [1, 1]),
        padding: oneOf(value.padding, ['same', 'valid'] as const, location, 'padding', 'valid'),
        activation: activation('linear'),
        useBias: booleanField('useBias', true),
        kernelInitializer: oneOf(value.kernelInitializer, initializers, location, 'kernelInitializer', 'glorotUniform'),
        biasInitializer: oneOf(value.biasInitializer, initializers, location, 'biasInitializer', 'zeros'),
      };
    }
    case 'maxPooling2d': {
      const poolSize = pair(value.poolSize, location, 'poolSize', [2, 2]);
      return { type, name, poolSize, strides: pair(value.strides, location, 'strides', poolSize), padding: oneOf(value.padding, ['same', 'valid'] as const, location, 'padding', 'valid') };
    }
    case 'activation':
      if (value.activation === undefined) throw specError(location, 'activation', `one of ${activations.join(', ')}`, undefined);
      return { type, name, activation: activation('linear') };
    case 'normalization':
      return { type, name, epsilon: numberIn(value.epsilon, location, 'epsilon', 1e-7, 0, 1, false) };
  }
}

/** What a spec's `input.scale` / `input.offset` say; undefined when neither is given. */
function resolvePreprocessing(input: Record<string, unknown>): InputPreprocessing | undefined {
  if (input.scale === undefined && input.offset === undefined) return undefined;
  const finite = (field: 'scale' | 'offset', fallback: number): number => {
    const value = input[field];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw specError({ path: 'input' }, field, 'a finite number', value);
    return value;
  };
  const scale = finite('scale', 1);
  if (scale === 0) throw specError({ path: 'input' }, 'scale', 'a non-zero number (every input would be the same)', scale);
  return { scale, offset: finite('offset', 0) };
}

/**
 * Whether uint8 IDX pixels are divided by 255 when they are loaded for this spec. A spec with input
 * preprocessing trains on the raw values (the graph scales them, so clients send what the file
 * held); older specs without it keep the load-time scaling their stored models expect.
 */
export function scalesIdxPixelsAtLoad(spec: ResolvedSpec): boolean {
  return spec.preprocessing === undefined;
}

/** Validate a spec document (any JSON) and fill in every default. Shapes are checked by `planModel`. */
export function resolveSpec(document: unknown): ResolvedSpec {
  if (!isRecord(document)) throw specError({ path: 'spec' }, '', 'a JSON object', document);
  checkKnownFields(document, ['name', 'input', 'layers', 'compile'], { path: 'spec' });
  const name = document.name === undefined ? 'model' : document.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw specError({ path: 'spec' }, 'name', 'a name of letters, digits, ., _ or - (at most 128)', name);
  }
  const input = document.input;
  if (!isRecord(input) || !Array.isArray(input.shape) || input.shape.length === 0 || input.shape.length > 3) {
    throw specError({ path: 'input' }, 'shape', 'an array of 1 to 3 positive integers (per sample, without the batch)', isRecord(input) ? input.shape : input);
  }
  checkKnownFields(input, ['shape', 'scale', 'offset'], { path: 'input' });
  const inputShape = input.shape.map((dimension) => positiveInteger(dimension, { path: 'input' }, 'shape'));
  const preprocessing = resolvePreprocessing(input);
  if (!Array.isArray(document.layers) || document.layers.length === 0) {
    throw specError({ path: 'spec' }, 'layers', 'a non-empty array of layers', document.layers);
  }
  if (document.layers.length > 256) throw specError({ path: 'spec' }, 'layers', 'at most 256 layers', document.layers.length);
  const counters = new Map<string, number>();
  const usedNames = new Set<string>();
  const layers = document.layers.map((layer, index) => resolveLayer(layer, index, counters, usedNames));
  const compile = document.compile;
  if (!isRecord(compile)) throw specError({ path: 'spec' }, 'compile', 'an object with optimizer, loss and metrics', compile);
  checkKnownFields(compile, ['optimizer', 'loss', 'metrics'], { path: 'compile' });
  const optimizer = resolveOptimizer(compile.optimizer);
  const loss = oneOf(compile.loss, losses, { path: 'compile' }, 'loss');
  const metricList = compile.metrics === undefined ? [] : compile.metrics;
  if (!Array.isArray(metricList)) throw specError({ path: 'compile' }, 'metrics', `an array of ${metrics.join(', ')}`, metricList);
  const resolvedMetrics = metricList.map((metric, index) => oneOf(metric, metrics, { path: `compile.metrics[${index}]` }, ''));
  return { name, inputShape, ...(preprocessing === undefined ? {} : { preprocessing }), layers, optimizer, loss, metrics: [...new Set(resolvedMetrics)] };
}

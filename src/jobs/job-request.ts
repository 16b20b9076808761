import { defaultMaxModelParameters } from '../config.ts';
import { AiaasError, quoteForError } from '../errors.ts';
import { planWithinParameterLimit } from '../engine/parameters.ts';
import type { ModelPlan } from '../engine/plan.ts';
import type { EarlyStoppingOptions } from '../engine/model.ts';

/** Fit settings of a training job, as stored with the job and handed to the worker. */
export interface JobSettings {
  epochs: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
  validationSplit?: number;
  /** A dataset evaluated after every epoch instead of a split of the training data. */
  validationDatasetId?: string;
  maxSteps?: number;
  targetLoss?: number;
  earlyStopping?: EarlyStoppingOptions;
  /** Label column for CSV / JSON-lines datasets. */
  label?: string;
  /**
   * Set by sweeps, never by a submission: keep the trained model with the job (its result refs)
   * instead of registering a version; the sweep registers the best trial's.
   */
  keepResult?: true;
}

export interface JobRequest {
  model: string;
  spec: unknown;
  plan: ModelPlan;
  datasetId: string;
  testDatasetId?: string;
  settings: JobSettings;
}

const fields = ['model', 'spec', 'datasetId', 'testDatasetId', 'epochs', 'batchSize', 'seed', 'shuffle', 'validationSplit', 'maxSteps', 'targetLoss', 'earlyStopping', 'label', 'validationDatasetId'];

function invalid(field: string, expected: string, actual: unknown): AiaasError {
  // An unknown field's name is client-chosen, so it is cut like any other echoed value.
  const shown = field.length > 120 ? `${field.slice(0, 120)}…` : field;
  return new AiaasError('INVALID_REQUEST', `${shown}: expected ${expected}, got ${actual === undefined ? 'nothing' : quoteForError(actual)}`, {
    details: { field: shown, expected },
  });
}

function integer(body: Record<string, unknown>, field: string, fallback: number, minimum: number, maximum: number): number {
  const value = body[field];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > maximum) throw invalid(field, `an integer from ${minimum} to ${maximum}`, value);
  return value;
}

export interface JobRequestLimits {
  maxEpochs?: number;
  /** The server's `maxModelParameters`: counted from the spec's shapes, before any weight exists. */
  maxParameters?: number;
}

/**
 * Validates a job submission completely before anything is queued: a bad spec or setting is a
 * 400 now, not a failed job later, and so is a spec too large to train (TOO_MANY_PARAMETERS).
 */
export function parseJobRequest(body: unknown, limits: JobRequestLimits = {}): JobRequest {
  const maxEpochs = limits.maxEpochs ?? 10_000;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'a JSON object', body);
  const record = body as Record<string, unknown>;
  for (const key of Object.keys(record)) if (!fields.includes(key)) throw invalid(key, `only the fields ${fields.join(', ')}`, key);
  const model = record.model;
  if (typeof model !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(model)) throw invalid('model', 'a model name of letters, digits, ., _ or - (at most 128)', model);
  if (typeof record.datasetId !== 'string' || record.datasetId.length === 0) throw invalid('datasetId', 'a dataset id', record.datasetId);
  if (record.testDatasetId !== undefined && typeof record.testDatasetId !== 'string') throw invalid('testDatasetId', 'a dataset id', record.testDatasetId);
  const plan = planWithinParameterLimit(record.spec, limits.maxParameters ?? defaultMaxModelParameters);
  const settings: JobSettings = {
    epochs: integer(record, 'epochs', 10, 1, maxEpochs),
    batchSize: integer(record, 'batchSize', 32, 1, 65_536),
    seed: integer(record, 'seed', 42, 0, 2 ** 31 - 1),
    shuffle: true,
  };
  if (record.shuffle !== undefined) {
    if (typeof record.shuffle !== 'boolean') throw invalid('shuffle', 'true or false', record.shuffle);
    settings.shuffle = record.shuffle;
  }
  if (record.validationSplit !== undefined) {
    const split = record.validationSplit;
    if (typeof split !== 'number' || !(split >= 0 && split < 1)) throw invalid('validationSplit', 'a number in [0, 1)', split);
    settings.validationSplit = split;
  }
  if (record.validationDatasetId !== undefined) {
    if (typeof record.validationDatasetId !== 'string' || record.validationDatasetId.length === 0) throw invalid('validationDatasetId', 'a dataset id', record.validationDatasetId);
    if (settings.validationSplit !== undefined) throw invalid('validationDatasetId', 'either validationSplit or validationDatasetId, not both', record.validationDatasetId);
    settings.validationDatasetId = record.validationDatasetId;
  }
  if (record.maxSteps !== undefined) settings.maxSteps = integer(record, 'maxSteps', 1, 1, 2 ** 31 - 1);
  if (record.targetLoss !== undefined) {
    if (typeof record.targetLoss !== 'number' || !Number.isFinite(record.targetLoss)) throw invalid('targetLoss', 'a finite number', record.targetLoss);
    settings.targetLoss = record.targetLoss;
  }
  if (record.earlyStopping !== undefined) {
    const early = record.earlyStopping;
    if (typeof early !== 'object' || early === null || Array.isArray(early)) throw invalid('earlyStopping', 'an object {monitor, patience, minDelta, restoreBestWeights, mode}', early);
    const options = early as Record<string, unknown>;
    const parsed: EarlyStoppingOptions = {};
    if (options.monitor !== undefined) {
      const allowed = ['loss', 'val_loss', ...plan.spec.metrics, ...plan.spec.metrics.map((metric) => `val_${metric}`)];
      if (typeof options.monitor !== 'string' || !allowed.includes(options.monitor)) throw invalid('earlyStopping.monitor', `one of ${allowed.join(', ')}`, options.monitor);
      if (options.monitor.startsWith('val_') && settings.validationSplit === undefined && settings.validationDatasetId === undefined) {
        throw invalid('earlyStopping.monitor', 'a validationSplit or validationDatasetId when monitoring a validation value', options.monitor);
      }
      parsed.monitor = options.monitor;
    }
    if (options.patience !== undefined) parsed.patience = integer(options, 'patience', 0, 0, 10_000);
    if (options.minDelta !== undefined) {
      if (typeof options.minDelta !== 'number' || options.minDelta < 0) throw invalid('earlyStopping.minDelta', 'a number ≥ 0', options.minDelta);
      parsed.minDelta = options.minDelta;
    }
    if (options.restoreBestWeights !== undefined) parsed.restoreBestWeights = options.restoreBestWeights === true;
    if (options.mode !== undefined) {
      if (options.mode !== 'min' && options.mode !== 'max') throw invalid('earlyStopping.mode', '"min" or "max"', options.mode);
      parsed.mode = options.mode;
    }
    settings.earlyStopping = parsed;
  }
  if (record.label !== undefined) {
    if (typeof record.label !== 'string') throw invalid('label', 'a column name', record.label);
    settings.label = record.label;
  }
  return {
    model,
    spec: record.spec,
    plan,
    datasetId: record.datasetId,
    ...(typeof record.testDatasetId === 'string' ? { testDatasetId: record.testDatasetId } : {}),
    settings,
  };
}

/** A dataset's stored schema must fit the model before the job is queued. */
export function checkDatasetFits(plan: ModelPlan, schema: { featureShape: number[]; labelShape: number[]; classNames?: string[] }, role: string, datasetId: string): void {
  const product = (shape: readonly number[]) => shape.reduce((total, dimension) => total * dimension, 1);
  if (product(schema.featureShape) !== product(plan.spec.inputShape)) {
    throw new AiaasError(
      'INVALID_DATA',
      `${role} dataset ${datasetId} has samples of shape [${schema.featureShape.join(', ')}], the spec's input is [${plan.spec.inputShape.join(', ')}]`,
    );
  }
  if (Math.max(1, product(schema.labelShape)) !== Math.max(1, product(plan.labelShape))) {
    throw new AiaasError(
      'INVALID_DATA',
      `${role} dataset ${datasetId} has labels of shape [${schema.labelShape.join(', ')}], ${plan.spec.loss} needs [${plan.labelShape.join(', ')}]`,
    );
  }
  const classes = schema.classNames?.length;
  const units = plan.outputShape[0] as number;
  if (classes !== undefined && plan.spec.loss === 'sparseCategoricalCrossentropy' && classes > units) {
    throw new AiaasError('INVALID_DATA', `${role} dataset ${datasetId} has ${classes} classes (string labels), but the spec's output has ${units} units`, {
      details: { classes, units },
    });
  }
  if (classes !== undefined && plan.spec.loss === 'binaryCrossentropy' && classes !== 2) {
    throw new AiaasError('INVALID_DATA', `${role} dataset ${datasetId} has ${classes} classes (string labels); binaryCrossentropy needs exactly 2`, { details: { classes } });
  }
}

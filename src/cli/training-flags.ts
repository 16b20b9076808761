/**
 * The fit settings `aiaas train` (local) and `aiaas jobs submit` (server) share: one definition,
 * one parser, so the two commands accept the same flags with the same meaning and the same errors
 * (docs/model-spec.md, "Fit settings"). The result has the job body's field names, which are also
 * the engine's FitOptions names.
 */
import type { EarlyStoppingOptions } from '../engine/model.ts';
import { CliUsageError, choiceOption, fractionOption, integerOption, stringOption, type OptionDefinition, type OptionValues } from './command.ts';

export const trainingFlags: Readonly<Record<string, OptionDefinition>> = {
  epochs: { type: 'string', valueName: 'N', description: 'epochs (default: 1 locally, the server default for jobs)' },
  'batch-size': { type: 'string', valueName: 'N', description: 'batch size (default 32)' },
  seed: { type: 'string', valueName: 'N', description: 'seed for initialisation, shuffling and dropout (default 42)' },
  'no-shuffle': { type: 'boolean', description: 'keep the data in file order' },
  'validation-split': { type: 'string', valueName: 'F', description: 'fraction held out for validation, in [0, 1) (the last rows, as Keras)' },
  'max-steps': { type: 'string', valueName: 'N', description: 'stop after N optimizer steps' },
  'target-loss': { type: 'string', valueName: 'X', description: 'stop after the first epoch whose training loss is ≤ X' },
  'early-stopping': { type: 'boolean', description: 'stop when the monitored value stops improving (defaults below)' },
  'early-stopping-monitor': { type: 'string', valueName: 'NAME', description: 'loss, val_loss, a metric or val_METRIC (default val_loss when validating, else loss)' },
  'early-stopping-patience': { type: 'string', valueName: 'N', description: 'epochs without improvement before stopping (default 0)' },
  'early-stopping-min-delta': { type: 'string', valueName: 'X', description: 'smallest change that counts as improvement (default 0)' },
  'early-stopping-mode': { type: 'string', valueName: 'MODE', description: 'min or max (default max for accuracy, else min)' },
  'restore-best-weights': { type: 'boolean', description: 'with early stopping, keep the weights of the best epoch' },
};

export interface TrainingSettings {
  epochs?: number;
  batchSize?: number;
  seed?: number;
  shuffle?: boolean;
  validationSplit?: number;
  maxSteps?: number;
  targetLoss?: number;
  earlyStopping?: EarlyStoppingOptions;
}

function numberOption(values: OptionValues, name: string, command: string, minimum?: number): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (minimum !== undefined && value < minimum)) {
    throw new CliUsageError(`--${name} must be a number${minimum === undefined ? '' : ` ≥ ${minimum}`}, got "${text}"`, command);
  }
  return value;
}

/** Parses the shared flags; a malformed value is a usage error naming the flag. Omitted flags stay omitted. */
export function parseTrainingFlags(values: OptionValues, command: string): TrainingSettings {
  const settings: TrainingSettings = {};
  const epochs = integerOption(values, 'epochs', command, 1);
  if (epochs !== undefined) settings.epochs = epochs;
  const batchSize = integerOption(values, 'batch-size', command, 1);
  if (batchSize !== undefined) settings.batchSize = batchSize;
  const seed = integerOption(values, 'seed', command, 0);
  if (seed !== undefined) settings.seed = seed;
  if (values['no-shuffle'] === true) settings.shuffle = false;
  const validationSplit = fractionOption(values, 'validation-split', command);
  if (validationSplit !== undefined) settings.validationSplit = validationSplit;
  const maxSteps = integerOption(values, 'max-steps', command, 1);
  if (maxSteps !== undefined) settings.maxSteps = maxSteps;
  const targetLoss = numberOption(values, 'target-loss', command);
  if (targetLoss !== undefined) settings.targetLoss = targetLoss;

  const earlyStopping: EarlyStoppingOptions = {};
  const monitor = stringOption(values, 'early-stopping-monitor');
  if (monitor !== undefined) earlyStopping.monitor = monitor;
  const patience = integerOption(values, 'early-stopping-patience', command, 0);
  if (patience !== undefined) earlyStopping.patience = patience;
  const minDelta = numberOption(values, 'early-stopping-min-delta', command, 0);
  if (minDelta !== undefined) earlyStopping.minDelta = minDelta;
  const mode = choiceOption(values, 'early-stopping-mode', ['min', 'max'] as const, command);
  if (mode !== undefined) earlyStopping.mode = mode;
  if (values['restore-best-weights'] === true) earlyStopping.restoreBestWeights = true;
  // Any early-stopping detail turns it on; --early-stopping alone uses the defaults.
  if (values['early-stopping'] === true || Object.keys(earlyStopping).length > 0) settings.earlyStopping = earlyStopping;
  return settings;
}

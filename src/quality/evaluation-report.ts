/**
 * From a model's raw outputs on a labelled dataset to a report: decides the task (classification or
 * regression) and turns scores into probabilities, then hands the numbers to ./metrics.ts. Pure: the
 * evaluation child (evaluation-child.ts) calls it after running the model, tests call it directly.
 */
import { AiaasError } from '../errors.ts';
import { classificationReport, regressionReport, rowsAreProbabilities, softmaxRows, type EvaluationReport } from './metrics.ts';

export type EvaluationTask = 'classification' | 'regression';

/** How scores were read: as probabilities already, or through a softmax (logits) or a sigmoid (one logit). */
export type ScoreTransform = 'none' | 'softmax' | 'sigmoid';

export interface ReportOptions {
  /** Forced task; detected from the labels and the output's width when absent. */
  task?: EvaluationTask;
  classNames?: readonly string[];
  topK?: number;
}

export interface ModelOutputs {
  /** N × width scores or predictions, row-major. */
  values: Float32Array;
  width: number;
  /** N × labelWidth labels as the dataset stores them (class indices as floats, or one-hot rows, or targets). */
  labels: Float32Array;
  labelWidth: number;
  count: number;
}

/** The report plus how its scores were read. */
export type EvaluationResult = EvaluationReport & { scoreTransform?: ScoreTransform };

function isOneHot(labels: Float32Array, width: number, count: number): boolean {
  for (let row = 0; row < count; row++) {
    let ones = 0;
    for (let column = 0; column < width; column++) {
      const value = labels[row * width + column]!;
      if (value === 1) ones++;
      else if (value !== 0) return false;
    }
    if (ones !== 1) return false;
  }
  return true;
}

/** Class indices, or undefined when the labels are not classes of an output this wide. */
function classIndices(outputs: ModelOutputs): Int32Array | undefined {
  const { labels, labelWidth, width, count } = outputs;
  const classCount = width === 1 ? 2 : width;
  const indices = new Int32Array(count);
  if (labelWidth === 1) {
    for (let row = 0; row < count; row++) {
      const label = labels[row]!;
      if (!Number.isInteger(label) || label < 0 || label >= classCount) return undefined;
      indices[row] = label;
    }
    return indices;
  }
  if (labelWidth !== width || width < 2 || !isOneHot(labels, width, count)) return undefined;
  for (let row = 0; row < count; row++) {
    for (let column = 0; column < width; column++) if (labels[row * width + column] === 1) indices[row] = column;
  }
  return indices;
}

function detectTask(outputs: ModelOutputs): EvaluationTask {
  return classIndices(outputs) === undefined ? 'regression' : 'classification';
}

/** Two-column probabilities [1 − p, p] from one score per sample (a sigmoid first unless all are in [0, 1]). */
function binaryProbabilities(values: Float32Array, count: number): { probabilities: Float64Array; transform: ScoreTransform } {
  let inUnitRange = true;
  for (let row = 0; row < count; row++) if (!(values[row]! >= 0 && values[row]! <= 1)) inUnitRange = false;
  const probabilities = new Float64Array(count * 2);
  for (let row = 0; row < count; row++) {
    const positive = inUnitRange ? values[row]! : 1 / (1 + Math.exp(-values[row]!));
    probabilities[row * 2] = 1 - positive;
    probabilities[row * 2 + 1] = positive;
  }
  return { probabilities, transform: inUnitRange ? 'none' : 'sigmoid' };
}

export function buildEvaluationReport(outputs: ModelOutputs, options: ReportOptions = {}): EvaluationResult {
  const task = options.task ?? detectTask(outputs);
  if (outputs.count === 0) throw new AiaasError('INVALID_DATA', 'the dataset has no rows to evaluate');
  if (task === 'regression') {
    if (outputs.labelWidth !== outputs.width) {
      throw new AiaasError('INVALID_DATA', `the model's output has ${outputs.width} values per sample and the dataset's labels ${outputs.labelWidth}; a regression report compares them one to one`);
    }
    return regressionReport(outputs.labels, outputs.values, outputs.width);
  }
  const indices = classIndices(outputs);
  if (indices === undefined) {
    throw new AiaasError(
      'INVALID_DATA',
      `the dataset's labels are not classes of this output (${outputs.width} score${outputs.width === 1 ? '' : 's'} per sample): expected class indices 0..${Math.max(1, outputs.width - 1)} or one-hot rows`,
    );
  }
  const classCount = outputs.width === 1 ? 2 : outputs.width;
  if (options.classNames !== undefined && options.classNames.length !== classCount) {
    throw new AiaasError('INVALID_REQUEST', `classNames has ${options.classNames.length} names; the model's output has ${classCount} classes`, {
      details: { field: 'classNames', classes: classCount },
    });
  }
  let probabilities: ArrayLike<number>;
  let transform: ScoreTransform;
  if (outputs.width === 1) {
    ({ probabilities, transform } = binaryProbabilities(outputs.values, outputs.count));
  } else if (rowsAreProbabilities(outputs.values, outputs.width)) {
    probabilities = outputs.values;
    transform = 'none';
  } else {
    probabilities = softmaxRows(outputs.values, outputs.width);
    transform = 'softmax';
  }
  const report = classificationReport({
    labels: indices,
    probabilities,
    classCount,
    ...(options.classNames === undefined ? {} : { classNames: options.classNames }),
    ...(options.topK === undefined ? {} : { topK: options.topK }),
  });
  return { ...report, scoreTransform: transform };
}

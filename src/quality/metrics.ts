/**
 * The metric math of evaluation reports, as pure functions over plain arrays: no ONNX, no I/O, so
 * every figure can be checked by hand (test/quality/metrics.test.ts holds sklearn's own examples).
 * Conventions follow scikit-learn where it has one: the confusion matrix is rows = true class,
 * columns = predicted class; a precision or recall with an empty denominator is 0; average
 * precision is the step sum Σ (Rₙ − Rₙ₋₁) Pₙ, not the trapezoid.
 */

/** Probabilities clipped to [ε, 1 − ε] before the logarithm, as sklearn's log_loss did for years. */
const logLossEpsilon = 1e-15;

export interface ClassMetrics {
  /** The class's index, and its name when known. */
  index: number;
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** How many samples truly belong to the class. */
  support: number;
}

export interface AveragedMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean top-class probability of the bin's samples (0 for an empty bin). */
  confidence: number;
  /** Share of the bin's samples whose top class is right (0 for an empty bin). */
  accuracy: number;
}

export interface RocPoint {
  threshold: number;
  falsePositiveRate: number;
  truePositiveRate: number;
}

export interface BinaryMetrics {
  /** The class treated as positive (index 1). */
  positiveClass: string;
  rocAuc: number | null;
  /** Average precision (the area under the precision-recall curve as sklearn computes it). */
  prAuc: number | null;
  /** At most `maxRocPoints` points, always including the first and the last. */
  rocPoints: RocPoint[];
}

export interface ClassificationReport {
  task: 'classification';
  count: number;
  classes: string[];
  accuracy: number;
  perClass: ClassMetrics[];
  macroAverage: AveragedMetrics;
  weightedAverage: AveragedMetrics;
  /** `confusionMatrix[true][predicted]`. */
  confusionMatrix: number[][];
  logLoss: number;
  topK: number;
  topKAccuracy: number;
  calibration: { expectedCalibrationError: number; bins: ReliabilityBin[] };
  /** Two-class tasks only. */
  binary?: BinaryMetrics;
}

export interface HistogramBin {
  lower: number;
  upper: number;
  count: number;
}

export interface RegressionReport {
  task: 'regression';
  count: number;
  /** Values per sample (the output's width); the figures below pool them. */
  outputs: number;
  meanAbsoluteError: number;
  meanSquaredError: number;
  rootMeanSquaredError: number;
  /** R² averaged over outputs (sklearn's uniform average). */
  r2: number;
  /** Of prediction − target. */
  residualHistogram: HistogramBin[];
}

export type EvaluationReport = ClassificationReport | RegressionReport;

/** Index of the largest value of row `row` (the first one on ties, like numpy's argmax). */
export function argmaxRow(scores: ArrayLike<number>, row: number, width: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let column = 0; column < width; column++) {
    const value = scores[row * width + column]!;
    if (value > bestValue) {
      bestValue = value;
      best = column;
    }
  }
  return best;
}

export function confusionMatrix(labels: ArrayLike<number>, predicted: ArrayLike<number>, classCount: number): number[][] {
  const matrix = Array.from({ length: classCount }, () => new Array<number>(classCount).fill(0));
  for (let index = 0; index < labels.length; index++) matrix[labels[index]!]![predicted[index]!]!++;
  return matrix;
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/** Per-class precision, recall, F1 and support from a confusion matrix. */
export function perClassMetrics(matrix: readonly (readonly number[])[], names: readonly string[]): ClassMetrics[] {
  return matrix.map((row, index) => {
    const truePositives = row[index]!;
    const support = row.reduce((sum, value) => sum + value, 0);
    const predictedCount = matrix.reduce((sum, other) => sum + other[index]!, 0);
    const precision = ratio(truePositives, predictedCount);
    const recall = ratio(truePositives, support);
    return { index, name: names[index] ?? String(index), precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });
}

export function averages(classes: readonly ClassMetrics[]): { macro: AveragedMetrics; weighted: AveragedMetrics } {
  const total = classes.reduce((sum, entry) => sum + entry.support, 0);
  const mean = (pick: (entry: ClassMetrics) => number) => ratio(classes.reduce((sum, entry) => sum + pick(entry), 0), classes.length);
  const weighted = (pick: (entry: ClassMetrics) => number) => ratio(classes.reduce((sum, entry) => sum + pick(entry) * entry.support, 0), total);
  return {
    macro: { precision: mean((entry) => entry.precision), recall: mean((entry) => entry.recall), f1: mean((entry) => entry.f1), support: total },
    weighted: { precision: weighted((entry) => entry.precision), recall: weighted((entry) => entry.recall), f1: weighted((entry) => entry.f1), support: total },
  };
}

/** Mean negative log-probability of the true class; `probabilities` is N × C, rows summing to 1. */
export function logLoss(labels: ArrayLike<number>, probabilities: ArrayLike<number>, classCount: number): number {
  let total = 0;
  for (let index = 0; index < labels.length; index++) {
    const probability = probabilities[index * classCount + labels[index]!]!;
    total -= Math.log(Math.min(1 - logLossEpsilon, Math.max(logLossEpsilon, probability)));
  }
  return ratio(total, labels.length);
}

/** Share of samples whose true class is among the k highest scores (ties count against: strictly higher scores only). */
export function topKAccuracy(labels: ArrayLike<number>, scores: ArrayLike<number>, classCount: number, k: number): number {
  let hits = 0;
  for (let index = 0; index < labels.length; index++) {
    const own = scores[index * classCount + labels[index]!]!;
    let higher = 0;
    for (let column = 0; column < classCount; column++) if (scores[index * classCount + column]! > own) higher++;
    if (higher < k) hits++;
  }
  return ratio(hits, labels.length);
}

/**
 * Expected calibration error over `binCount` equal-width bins of top-class confidence: the mean
 * |accuracy − confidence| of the bins weighted by their share of samples. A confidence c falls in
 * the bin (lower, upper]; 0 falls in the first.
 */
export function calibration(
  labels: ArrayLike<number>,
  probabilities: ArrayLike<number>,
  classCount: number,
  binCount = 10,
): { expectedCalibrationError: number; bins: ReliabilityBin[] } {
  const counts = new Array<number>(binCount).fill(0);
  const confidenceSums = new Array<number>(binCount).fill(0);
  const correct = new Array<number>(binCount).fill(0);
  for (let index = 0; index < labels.length; index++) {
    const predicted = argmaxRow(probabilities, index, classCount);
    const confidence = probabilities[index * classCount + predicted]!;
    const bin = Math.min(binCount - 1, Math.max(0, Math.ceil(confidence * binCount) - 1));
    counts[bin]!++;
    confidenceSums[bin]! += confidence;
    if (predicted === labels[index]) correct[bin]!++;
  }
  let error = 0;
  const bins = counts.map((count, bin) => {
    const confidence = ratio(confidenceSums[bin]!, count);
    const accuracy = ratio(correct[bin]!, count);
    error += ratio(count, labels.length) * Math.abs(accuracy - confidence);
    return { lower: bin / binCount, upper: (bin + 1) / binCount, count, confidence, accuracy };
  });
  return { expectedCalibrationError: error, bins };
}

/**
 * The ROC curve of positive-class scores: one point per distinct threshold, from (0, 0) at +∞ down
 * to (1, 1); null AUC when one class is absent (the curve is undefined).
 */
export function rocCurve(isPositive: ArrayLike<boolean>, scores: ArrayLike<number>): { points: RocPoint[]; auc: number | null } {
  const order = Array.from({ length: scores.length }, (_, index) => index).sort((left, right) => scores[right]! - scores[left]!);
  let positives = 0;
  for (let index = 0; index < isPositive.length; index++) if (isPositive[index]) positives++;
  const negatives = isPositive.length - positives;
  const points: RocPoint[] = [{ threshold: Infinity, falsePositiveRate: 0, truePositiveRate: 0 }];
  let truePositives = 0;
  let falsePositives = 0;
  let area = 0;
  for (let position = 0; position < order.length; position++) {
    const sample = order[position]!;
    if (isPositive[sample]) truePositives++;
    else falsePositives++;
    const next = order[position + 1];
    if (next !== undefined && scores[next] === scores[sample]) continue;
    const previous = points[points.length - 1]!;
    const point = { threshold: scores[sample]!, falsePositiveRate: ratio(falsePositives, negatives), truePositiveRate: ratio(truePositives, positives) };
    area += (point.falsePositiveRate - previous.falsePositiveRate) * (point.truePositiveRate + previous.truePositiveRate) / 2;
    points.push(point);
  }
  return { points, auc: positives === 0 || negatives === 0 ? null : area };
}

/** sklearn's average_precision_score: Σ over thresholds of (Rₙ − Rₙ₋₁) · Pₙ. Null without positives. */
export function averagePrecision(isPositive: ArrayLike<boolean>, scores: ArrayLike<number>): number | null {
  const order = Array.from({ length: scores.length }, (_, index) => index).sort((left, right) => scores[right]! - scores[left]!);
  let positives = 0;
  for (let index = 0; index < isPositive.length; index++) if (isPositive[index]) positives++;
  if (positives === 0) return null;
  let truePositives = 0;
  let seen = 0;
  let previousRecall = 0;
  let sum = 0;
  for (let position = 0; position < order.length; position++) {
    const sample = order[position]!;
    seen++;
    if (isPositive[sample]) truePositives++;
    const next = order[position + 1];
    if (next !== undefined && scores[next] === scores[sample]) continue;
    const recall = truePositives / positives;
    sum += (recall - previousRecall) * (truePositives / seen);
    previousRecall = recall;
  }
  return sum;
}

/** Keeps at most `limit` points, evenly spaced, always the first and the last. */
export function thinPoints<T>(points: readonly T[], limit: number): T[] {
  if (points.length <= limit) return [...points];
  const kept: T[] = [];
  for (let index = 0; index < limit; index++) kept.push(points[Math.round((index * (points.length - 1)) / (limit - 1))]!);
  return kept;
}

export interface ClassificationInput {
  /** Class indices, one per sample. */
  labels: ArrayLike<number>;
  /** N × C probabilities, rows summing to 1. */
  probabilities: ArrayLike<number>;
  classCount: number;
  classNames?: readonly string[];
  topK?: number;
  calibrationBins?: number;
  maxRocPoints?: number;
}

export function classificationReport(input: ClassificationInput): ClassificationReport {
  const { labels, probabilities, classCount } = input;
  const count = labels.length;
  const names = Array.from({ length: classCount }, (_, index) => input.classNames?.[index] ?? String(index));
  const predicted = new Int32Array(count);
  for (let index = 0; index < count; index++) predicted[index] = argmaxRow(probabilities, index, classCount);
  const matrix = confusionMatrix(labels, predicted, classCount);
  const perClass = perClassMetrics(matrix, names);
  const { macro, weighted } = averages(perClass);
  let correct = 0;
  for (let index = 0; index < classCount; index++) correct += matrix[index]![index]!;
  const topK = Math.max(1, Math.min(classCount, input.topK ?? Math.min(5, classCount)));
  const report: ClassificationReport = {
    task: 'classification',
    count,
    classes: names,
    accuracy: ratio(correct, count),
    perClass,
    macroAverage: macro,
    weightedAverage: weighted,
    confusionMatrix: matrix,
    logLoss: logLoss(labels, probabilities, classCount),
    topK,
    topKAccuracy: topKAccuracy(labels, probabilities, classCount, topK),
    calibration: calibration(labels, probabilities, classCount, input.calibrationBins ?? 10),
  };
  if (classCount === 2) {
    const isPositive = Array.from({ length: count }, (_, index) => labels[index] === 1);
    const positiveScores = Float64Array.from({ length: count }, (_, index) => probabilities[index * 2 + 1]!);
    const roc = rocCurve(isPositive, positiveScores);
    report.binary = {
      positiveClass: names[1]!,
      rocAuc: roc.auc,
      prAuc: averagePrecision(isPositive, positiveScores),
      rocPoints: thinPoints(roc.points, input.maxRocPoints ?? 201),
    };
  }
  return report;
}

/** `binCount` equal-width bins from the smallest to the largest value (one bin when they are equal). */
export function histogram(values: ArrayLike<number>, binCount: number): HistogramBin[] {
  if (values.length === 0) return [];
  let minimum = Infinity;
  let maximum = -Infinity;
  for (let index = 0; index < values.length; index++) {
    minimum = Math.min(minimum, values[index]!);
    maximum = Math.max(maximum, values[index]!);
  }
  if (minimum === maximum) return [{ lower: minimum, upper: maximum, count: values.length }];
  const width = (maximum - minimum) / binCount;
  const counts = new Array<number>(binCount).fill(0);
  for (let index = 0; index < values.length; index++) counts[Math.min(binCount - 1, Math.floor((values[index]! - minimum) / width))]!++;
  return counts.map((count, bin) => ({ lower: minimum + bin * width, upper: bin === binCount - 1 ? maximum : minimum + (bin + 1) * width, count }));
}

/**
 * Regression figures over N samples of `outputs` values each (row-major). R² is computed per output
 * and averaged; an output whose targets are constant scores 1 when predicted exactly, else 0 (sklearn's
 * `force_finite`).
 */
export function regressionReport(targets: ArrayLike<number>, predictions: ArrayLike<number>, outputs = 1, binCount = 20): RegressionReport {
  const values = targets.length;
  const count = Math.floor(values / outputs);
  const residuals = new Float64Array(values);
  let absolute = 0;
  let squared = 0;
  for (let index = 0; index < values; index++) {
    const residual = predictions[index]! - targets[index]!;
    residuals[index] = residual;
    absolute += Math.abs(residual);
    squared += residual * residual;
  }
  let r2Sum = 0;
  for (let output = 0; output < outputs; output++) {
    let mean = 0;
    for (let row = 0; row < count; row++) mean += targets[row * outputs + output]!;
    mean /= Math.max(1, count);
    let total = 0;
    let residualSum = 0;
    for (let row = 0; row < count; row++) {
      const index = row * outputs + output;
      total += (targets[index]! - mean) ** 2;
      residualSum += residuals[index]! ** 2;
    }
    r2Sum += total === 0 ? (residualSum === 0 ? 1 : 0) : 1 - residualSum / total;
  }
  const meanSquaredError = ratio(squared, values);
  return {
    task: 'regression',
    count,
    outputs,
    meanAbsoluteError: ratio(absolute, values),
    meanSquaredError,
    rootMeanSquaredError: Math.sqrt(meanSquaredError),
    r2: ratio(r2Sum, outputs),
    residualHistogram: histogram(residuals, binCount),
  };
}

/** Numerically stable softmax of each row of an N × C matrix. */
export function softmaxRows(scores: ArrayLike<number>, classCount: number): Float64Array {
  const rows = Math.floor(scores.length / classCount);
  const result = new Float64Array(rows * classCount);
  for (let row = 0; row < rows; row++) {
    let maximum = -Infinity;
    for (let column = 0; column < classCount; column++) maximum = Math.max(maximum, scores[row * classCount + column]!);
    let sum = 0;
    for (let column = 0; column < classCount; column++) {
      const value = Math.exp(scores[row * classCount + column]! - maximum);
      result[row * classCount + column] = value;
      sum += value;
    }
    for (let column = 0; column < classCount; column++) result[row * classCount + column]! /= sum;
  }
  return result;
}

/** True when every row is a probability distribution (within float32 rounding). */
export function rowsAreProbabilities(scores: ArrayLike<number>, classCount: number): boolean {
  const rows = Math.floor(scores.length / classCount);
  for (let row = 0; row < rows; row++) {
    let sum = 0;
    for (let column = 0; column < classCount; column++) {
      const value = scores[row * classCount + column]!;
      if (!(value >= 0 && value <= 1)) return false;
      sum += value;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/** The value a report gives for a gate's metric name, or undefined when the report has none. */
export function reportMetric(report: EvaluationReport, metric: string): number | undefined {
  if (report.task === 'regression') {
    const values: Record<string, number> = {
      meanAbsoluteError: report.meanAbsoluteError,
      meanSquaredError: report.meanSquaredError,
      rootMeanSquaredError: report.rootMeanSquaredError,
      r2: report.r2,
    };
    return values[metric];
  }
  const values: Record<string, number | null | undefined> = {
    accuracy: report.accuracy,
    macroF1: report.macroAverage.f1,
    weightedF1: report.weightedAverage.f1,
    macroPrecision: report.macroAverage.precision,
    macroRecall: report.macroAverage.recall,
    logLoss: report.logLoss,
    topKAccuracy: report.topKAccuracy,
    expectedCalibrationError: report.calibration.expectedCalibrationError,
    rocAuc: report.binary?.rocAuc,
    prAuc: report.binary?.prAuc,
  };
  const value = values[metric];
  return value === null ? undefined : value;
}

/** Metrics a gate may name, and whether more is better. */
export const gateMetrics: Readonly<Record<string, 'higher' | 'lower'>> = {
  accuracy: 'higher',
  macroF1: 'higher',
  weightedF1: 'higher',
  macroPrecision: 'higher',
  macroRecall: 'higher',
  topKAccuracy: 'higher',
  rocAuc: 'higher',
  prAuc: 'higher',
  r2: 'higher',
  logLoss: 'lower',
  expectedCalibrationError: 'lower',
  meanAbsoluteError: 'lower',
  meanSquaredError: 'lower',
  rootMeanSquaredError: 'lower',
};

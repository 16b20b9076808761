import { describe, expect, it } from 'vitest';
import {
  averagePrecision,
  calibration,
  classificationReport,
  histogram,
  logLoss,
  regressionReport,
  reportMetric,
  rocCurve,
  rowsAreProbabilities,
  softmaxRows,
  thinPoints,
  topKAccuracy,
} from '../../src/quality/metrics.ts';

/** Rows with 0.8 on the predicted class and 0.1 elsewhere (three classes). */
function confident(predicted: readonly number[]): number[] {
  return predicted.flatMap((label) => [0, 1, 2].map((column) => (column === label ? 0.8 : 0.1)));
}

describe('classification metrics', () => {
  // sklearn's classification_report docstring: y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1].
  const report = classificationReport({ labels: [0, 1, 2, 2, 2], probabilities: confident([0, 0, 2, 2, 1]), classCount: 3, classNames: ['class 0', 'class 1', 'class 2'], topK: 2 });

  it('matches sklearn classification_report per class and on average', () => {
    expect(report.confusionMatrix).toEqual([
      [1, 0, 0],
      [1, 0, 0],
      [0, 1, 2],
    ]);
    expect(report.accuracy).toBeCloseTo(0.6, 12);
    const rows = report.perClass.map((entry) => [entry.name, entry.precision, entry.recall, entry.f1, entry.support]);
    expect(rows[0]).toEqual(['class 0', 0.5, 1, expect.closeTo(2 / 3, 12), 1]);
    expect(rows[1]).toEqual(['class 1', 0, 0, 0, 1]);
    expect(rows[2]).toEqual(['class 2', 1, expect.closeTo(2 / 3, 12), expect.closeTo(0.8, 12), 3]);
    expect(report.macroAverage.precision).toBeCloseTo(0.5, 12);
    expect(report.macroAverage.recall).toBeCloseTo(5 / 9, 12);
    expect(report.macroAverage.f1).toBeCloseTo((2 / 3 + 0.8) / 3, 12);
    expect(report.weightedAverage.precision).toBeCloseTo(0.7, 12);
    expect(report.weightedAverage.recall).toBeCloseTo(0.6, 12);
    expect(report.weightedAverage.f1).toBeCloseTo((2 / 3 + 2.4) / 5, 12);
    expect(report.macroAverage.support).toBe(5);
  });

  it('is consistent: the matrix sums to N and its trace over N is the accuracy', () => {
    const total = report.confusionMatrix.flat().reduce((sum, value) => sum + value, 0);
    const trace = report.confusionMatrix.reduce((sum, row, index) => sum + row[index]!, 0);
    expect(total).toBe(report.count);
    expect(trace / total).toBe(report.accuracy);
  });

  it('computes log loss, top-k and calibration by hand', () => {
    // True-class probabilities 0.8, 0.1, 0.8, 0.8, 0.1.
    expect(report.logLoss).toBeCloseTo(-(3 * Math.log(0.8) + 2 * Math.log(0.1)) / 5, 12);
    // Every true class is within the two highest scores (ties do not count against).
    expect(report.topKAccuracy).toBe(1);
    // All five samples have confidence 0.8: bin (0.7, 0.8], accuracy 0.6, so ECE = |0.6 − 0.8|.
    const filled = report.calibration.bins.filter((bin) => bin.count > 0);
    expect(filled).toEqual([{ lower: 0.7, upper: 0.8, count: 5, confidence: 0.8, accuracy: 0.6 }]);
    expect(report.calibration.expectedCalibrationError).toBeCloseTo(0.2, 12);
    expect(report.binary).toBeUndefined();
  });

  it('matches sklearn log_loss and top_k_accuracy_score docstring examples', () => {
    // log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]) with ham = 0.
    expect(logLoss([1, 0, 0, 1], [0.1, 0.9, 0.9, 0.1, 0.8, 0.2, 0.35, 0.65], 2)).toBeCloseTo(0.21616187468057912, 12);
    // top_k_accuracy_score([0, 1, 2, 2], scores, k=2) == 0.75.
    const scores = [0.5, 0.2, 0.2, 0.3, 0.4, 0.2, 0.2, 0.4, 0.3, 0.7, 0.2, 0.1];
    expect(topKAccuracy([0, 1, 2, 2], scores, 3, 2)).toBe(0.75);
    expect(topKAccuracy([0, 1, 2, 2], scores, 3, 1)).toBe(0.5);
  });

  it('weights ECE by the share of samples in each bin', () => {
    // Two samples at 0.95 (one right), two at 0.55 (both right): 0.5·|0.5 − 0.95| + 0.5·|1 − 0.55|.
    const probabilities = [0.95, 0.05, 0.95, 0.05, 0.55, 0.45, 0.45, 0.55];
    const result = calibration([0, 1, 0, 1], probabilities, 2, 10);
    expect(result.expectedCalibrationError).toBeCloseTo(0.5 * 0.45 + 0.5 * 0.45, 12);
    expect(result.bins[9]).toMatchObject({ count: 2, accuracy: 0.5 });
    expect(result.bins[5]).toMatchObject({ count: 2, accuracy: 1 });
  });
});

describe('binary metrics', () => {
  // sklearn's roc_auc_score / roc_curve / average_precision_score docstring example.
  const isPositive = [false, false, true, true];
  const scores = [0.1, 0.4, 0.35, 0.8];

  it('matches sklearn roc_curve and roc_auc_score', () => {
    const { points, auc } = rocCurve(isPositive, scores);
    expect(auc).toBeCloseTo(0.75, 12);
    expect(points.map((point) => [point.falsePositiveRate, point.truePositiveRate])).toEqual([
      [0, 0],
      [0, 0.5],
      [0.5, 0.5],
      [0.5, 1],
      [1, 1],
    ]);
    expect(points.map((point) => point.threshold)).toEqual([Infinity, 0.8, 0.4, 0.35, 0.1]);
  });

  it('matches sklearn average_precision_score', () => {
    expect(averagePrecision(isPositive, scores)).toBeCloseTo(0.8333333333333333, 12);
  });

  it('treats tied scores as one threshold', () => {
    const { points, auc } = rocCurve([true, false], [0.5, 0.5]);
    expect(points).toHaveLength(2);
    expect(auc).toBeCloseTo(0.5, 12);
  });

  it('has no AUC when a class is absent', () => {
    expect(rocCurve([true, true], [0.2, 0.9]).auc).toBeNull();
    expect(averagePrecision([false, false], [0.2, 0.9])).toBeNull();
  });

  it('reports them for two-class tasks, positive class 1', () => {
    const probabilities = scores.flatMap((score) => [1 - score, score]);
    const report = classificationReport({ labels: [0, 0, 1, 1], probabilities, classCount: 2, classNames: ['ham', 'spam'] });
    expect(report.binary?.positiveClass).toBe('spam');
    expect(report.binary?.rocAuc).toBeCloseTo(0.75, 12);
    expect(report.binary?.prAuc).toBeCloseTo(0.8333333333333333, 12);
    expect(reportMetric(report, 'rocAuc')).toBeCloseTo(0.75, 12);
  });

  it('thins long curves to the limit, keeping both ends', () => {
    const points = Array.from({ length: 1000 }, (_, index) => index);
    const kept = thinPoints(points, 11);
    expect(kept).toEqual([0, 100, 200, 300, 400, 500, 599, 699, 799, 899, 999]);
  });
});

describe('regression metrics', () => {
  it('matches sklearn mean_absolute_error, mean_squared_error and r2_score', () => {
    const report = regressionReport([3, -0.5, 2, 7], [2.5, 0, 2, 8]);
    expect(report.meanAbsoluteError).toBeCloseTo(0.5, 12);
    expect(report.meanSquaredError).toBeCloseTo(0.375, 12);
    expect(report.rootMeanSquaredError).toBeCloseTo(Math.sqrt(0.375), 12);
    expect(report.r2).toBeCloseTo(0.9486081370449679, 12);
    expect(report.residualHistogram.reduce((sum, bin) => sum + bin.count, 0)).toBe(4);
  });

  it('averages R² over outputs like sklearn (multioutput uniform_average)', () => {
    const report = regressionReport([0.5, 1, -1, 1, 7, -6], [0, 2, -1, 2, 8, -5], 2);
    expect(report.count).toBe(3);
    expect(report.r2).toBeCloseTo(0.9368005266622779, 12);
    expect(report.meanAbsoluteError).toBeCloseTo(0.75, 12);
    expect(report.meanSquaredError).toBeCloseTo(0.7083333333333334, 12);
  });

  it('bins residuals between their extremes', () => {
    expect(histogram([-1, 0, 0.5, 1], 2)).toEqual([
      { lower: -1, upper: 0, count: 1 },
      { lower: 0, upper: 1, count: 3 },
    ]);
    expect(histogram([2, 2], 5)).toEqual([{ lower: 2, upper: 2, count: 2 }]);
  });
});

describe('score handling', () => {
  it('softmaxes rows and recognises probability rows', () => {
    const probabilities = softmaxRows([0, Math.log(3), 1000, 1000], 2);
    expect([...probabilities]).toEqual([expect.closeTo(0.25, 12), expect.closeTo(0.75, 12), 0.5, 0.5]);
    expect(rowsAreProbabilities(probabilities, 2)).toBe(true);
    expect(rowsAreProbabilities([2, -1], 2)).toBe(false);
  });
});

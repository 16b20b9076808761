import { describe, expect, it } from 'vitest';
import { buildEvaluationReport } from '../../src/quality/evaluation-report.ts';

describe('buildEvaluationReport', () => {
  it('softmaxes logits and reads one-hot labels', () => {
    const report = buildEvaluationReport({
      values: Float32Array.from([2, 0, 0, 0, 3, 0, 1, 0, 0]),
      width: 3,
      labels: Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]),
      labelWidth: 3,
      count: 3,
    });
    if (report.task !== 'classification') throw new Error('expected classification');
    expect(report.scoreTransform).toBe('softmax');
    expect(report.accuracy).toBeCloseTo(2 / 3, 12);
    expect(report.confusionMatrix).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [1, 0, 0],
    ]);
    const first = Math.exp(2) / (Math.exp(2) + 2);
    const third = 1 / (Math.exp(1) + 2);
    expect(report.logLoss).toBeCloseTo(-(Math.log(first) + Math.log(Math.exp(3) / (Math.exp(3) + 2)) + Math.log(third)) / 3, 6);
  });

  it('reads one score per sample as a binary task (a sigmoid for logits)', () => {
    const probabilities = buildEvaluationReport({ values: Float32Array.from([0.9, 0.2, 0.6, 0.4]), width: 1, labels: Float32Array.from([1, 0, 0, 1]), labelWidth: 1, count: 4 });
    if (probabilities.task !== 'classification') throw new Error('expected classification');
    expect(probabilities.scoreTransform).toBe('none');
    expect(probabilities.accuracy).toBe(0.5);
    expect(probabilities.binary?.rocAuc).toBeCloseTo(0.75, 6);
    const logits = buildEvaluationReport({ values: Float32Array.from([2.2, -1.4, 0.4, -0.4]), width: 1, labels: Float32Array.from([1, 0, 0, 1]), labelWidth: 1, count: 4 });
    if (logits.task !== 'classification') throw new Error('expected classification');
    expect(logits.scoreTransform).toBe('sigmoid');
    // A sigmoid keeps the order, so the ROC is the same.
    expect(logits.binary?.rocAuc).toBeCloseTo(0.75, 6);
  });

  it('treats non-class labels as regression, and can be told the task', () => {
    const report = buildEvaluationReport({ values: Float32Array.from([1, 2, 3]), width: 1, labels: Float32Array.from([1.5, 2, 2.5]), labelWidth: 1, count: 3 });
    expect(report.task).toBe('regression');
    const forced = buildEvaluationReport({ values: Float32Array.from([0.9, 0.1]), width: 1, labels: Float32Array.from([1, 0]), labelWidth: 1, count: 2 }, { task: 'regression' });
    expect(forced).toMatchObject({ task: 'regression', meanAbsoluteError: expect.closeTo(0.1, 6) });
  });

  it('refuses labels that are not classes of the output, and class names of the wrong count', () => {
    expect(() => buildEvaluationReport({ values: Float32Array.from([0.5, 0.5]), width: 2, labels: Float32Array.from([4]), labelWidth: 1, count: 1 }, { task: 'classification' })).toThrow(/not classes/);
    expect(() => buildEvaluationReport({ values: Float32Array.from([0.5, 0.5]), width: 2, labels: Float32Array.from([1]), labelWidth: 1, count: 1 }, { classNames: ['a', 'b', 'c'] })).toThrow(/classNames has 3/);
  });
});

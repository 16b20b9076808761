import { describe, expect, it } from 'vitest';
import { chooseProjection, computeBaseline, project, projectedFeatureCount } from '../../src/quality/drift-baseline.ts';
import { binIndex, histogram, kolmogorovSmirnov, orderStatistics, populationStabilityIndex, quantileEdges, quantileOfSorted } from '../../src/quality/drift-math.ts';

describe('drift math (hand-computed values)', () => {
  it('PSI of 50/50 against 90/10 is 0.4·ln 1.8 + 0.4·ln 5', () => {
    // (0.9 − 0.5)·ln(0.9/0.5) + (0.1 − 0.5)·ln(0.1/0.5) = 0.235115 + 0.643775
    expect(populationStabilityIndex([50, 50], [90, 10])).toBeCloseTo(0.8788898, 6);
    expect(populationStabilityIndex([10, 20, 30], [1, 2, 3])).toBeCloseTo(0, 12);
  });

  it('PSI floors an empty bin at 1e-4 instead of going infinite', () => {
    // (1e-4 − 0.5)·ln(1e-4/0.5) + (1 − 0.5)·ln(1/0.5) (the first bin floored; the second is 0.9999 → counts 0/1 exactly)
    const expected = (1e-4 - 0.5) * Math.log(1e-4 / 0.5) + (1 - 0.5) * Math.log(1 / 0.5);
    expect(populationStabilityIndex([5, 5], [0, 10])).toBeCloseTo(expected, 9);
    expect(populationStabilityIndex([5, 5], [0, 0])).toBe(0);
  });

  it('KS is the largest gap between the two empirical CDFs, ties stepped together', () => {
    expect(kolmogorovSmirnov([1, 2, 3, 4], [3, 4, 5, 6])).toBeCloseTo(0.5, 12);
    expect(kolmogorovSmirnov([1, 2, 3, 4], [5, 6, 7, 8])).toBe(1);
    expect(kolmogorovSmirnov([1, 2, 3], [1, 2, 3])).toBe(0);
    // At 1: 2/3 − 1/3; at 2: 1 − 1.
    expect(kolmogorovSmirnov([1, 1, 2], [1, 2, 2])).toBeCloseTo(1 / 3, 12);
  });

  it('quantile edges interpolate like numpy and merge ties', () => {
    expect(quantileOfSorted([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5)).toBe(5.5);
    expect(quantileEdges([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2)).toEqual([5.5]);
    // Quantiles .2 .4 .6 are 0; .8 sits at position 3.2, between 0 and 1.
    expect(quantileEdges([0, 0, 0, 0, 1], 5)).toEqual([0, expect.closeTo(0.2, 12)]);
    expect(histogram([0, 0, 0, 0, 1], [0, 0.2])).toEqual([4, 0, 1]);
  });

  it('bins are (edge[i-1], edge[i]]', () => {
    expect([0.5, 1, 1.5, 2, 3].map((value) => binIndex([1, 2], value))).toEqual([0, 0, 1, 1, 2]);
  });

  it('order statistics span minimum to maximum', () => {
    expect(orderStatistics([0, 1, 2, 3, 4, 5, 6, 7, 8], 3)).toEqual([0, 4, 8]);
    expect(orderStatistics([1, 2], 5)).toEqual([1, 2]);
  });
});

describe('drift baseline', () => {
  it('projects a 28×28 image onto 7×7 cells of 4×4 averages', () => {
    const projection = chooseProjection([28, 28]);
    expect(projection).toMatchObject({ kind: 'average-pool', rows: 7, columns: 7 });
    expect(projectedFeatureCount(projection)).toBe(49);
    const image = Float32Array.from({ length: 784 }, (_, index) => Math.floor(index / 28));
    const cells = new Float64Array(49);
    project(projection, image, cells);
    // Cell row r averages image rows 4r … 4r+3: 4r + 1.5.
    for (let cell = 0; cell < 49; cell++) expect(cells[cell]).toBeCloseTo(4 * Math.floor(cell / 7) + 1.5, 12);
    expect(chooseProjection([784])).toEqual(projection);
    expect(chooseProjection([10])).toEqual({ kind: 'identity', features: 10 });
  });

  it('profiles features and the label distribution of a small table', () => {
    const features = Float32Array.from([1, 10, 2, 20, 3, 30, 4, 40]);
    const baseline = computeBaseline({ features, featureShape: [2], labels: Float32Array.from([0, 1, 1, 2]), labelShape: [], count: 4 }, { bins: 2 });
    expect(baseline.rows).toBe(4);
    expect(baseline.features[0]).toEqual({ edges: [2.5], counts: [2, 2], sample: [1, 2, 3, 4], mean: 2.5 });
    expect(baseline.features[1]!.edges).toEqual([25]);
    expect(baseline.labelCounts).toEqual([1, 2, 1]);
    expect(baseline.pixelMeans).toBeUndefined();
  });

  it('leaves out the label distribution of a regression target', () => {
    const baseline = computeBaseline({ features: Float32Array.from([1, 2]), featureShape: [1], labels: Float32Array.from([0.5, 1.7]), labelShape: [], count: 2 });
    expect(baseline.labelCounts).toBeUndefined();
  });
});

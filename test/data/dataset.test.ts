import { describe, expect, it } from 'vitest';
import { checkDataset, describeDataset, elementCount, splitDataset, takeRows } from '../../src/data/dataset.ts';
import type { Dataset } from '../../src/data/dataset.ts';

function sequentialDataset(count: number): Dataset {
  const features = new Float32Array(count * 2);
  for (let index = 0; index < features.length; index++) features[index] = index;
  const labels = new Float32Array(count);
  for (let index = 0; index < count; index++) labels[index] = index % 3;
  return { features, featureShape: [2], labels, labelShape: [], count, featureNames: ['a', 'b'], labelName: 'label' };
}

describe('dataset helpers', () => {
  it('elementCount treats [] as a scalar', () => {
    expect(elementCount([])).toBe(1);
    expect(elementCount([28, 28])).toBe(784);
  });

  it('takeRows returns views, not copies', () => {
    const dataset = sequentialDataset(5);
    const rows = takeRows(dataset, 1, 3);
    expect(rows.count).toBe(2);
    expect(Array.from(rows.features)).toEqual([2, 3, 4, 5]);
    expect(Array.from(rows.labels)).toEqual([1, 2]);
    expect(rows.features.buffer).toBe(dataset.features.buffer);
    rows.features[0] = 99;
    expect(dataset.features[2]).toBe(99);
    expect(takeRows(dataset, 3, 100).count).toBe(2);
    expect(() => takeRows(dataset, 3, 1)).toThrow(/Invalid row range/);
  });

  it('splitDataset matches Keras validation_split: last fraction, no shuffle', () => {
    const dataset = sequentialDataset(10);
    const { train, validation } = splitDataset(dataset, 0.25);
    // Keras: split_at = int(10 * 0.75) = 7.
    expect(train.count).toBe(7);
    expect(validation.count).toBe(3);
    expect(Array.from(validation.features.subarray(0, 2))).toEqual([14, 15]);
    expect(validation.labels.buffer).toBe(dataset.labels.buffer);
    const fromStart = splitDataset(dataset, 0.25, { fromEnd: false });
    expect(fromStart.validation.count).toBe(3);
    expect(Array.from(fromStart.train.features.subarray(0, 2))).toEqual([6, 7]);
    expect(splitDataset(dataset, 0).validation.count).toBe(0);
    expect(() => splitDataset(dataset, 1)).toThrow(/\[0, 1\)/);
  });

  it('describeDataset reports classes for integer and one-hot labels only', () => {
    expect(describeDataset(sequentialDataset(6))).toEqual({
      count: 6,
      featureShape: [2],
      labelShape: [],
      featureNames: ['a', 'b'],
      labelName: 'label',
      classes: 3,
    });
    const regression: Dataset = { features: new Float32Array(2), featureShape: [1], labels: new Float32Array([0.5, 2]), labelShape: [], count: 2 };
    expect(describeDataset(regression).classes).toBeUndefined();
    const oneHot: Dataset = {
      features: new Float32Array(2),
      featureShape: [1],
      labels: new Float32Array([0, 1, 0, 1, 0, 0]),
      labelShape: [3],
      count: 2,
    };
    expect(describeDataset(oneHot).classes).toBe(3);
  });

  it('checkDataset catches inconsistent arrays', () => {
    expect(() => checkDataset(sequentialDataset(3))).not.toThrow();
    const broken = { ...sequentialDataset(3), count: 4 };
    expect(() => checkDataset(broken)).toThrow(/features hold 6 values; 4 samples/);
  });
});

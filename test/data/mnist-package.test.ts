import { describe, expect, it } from 'vitest';
import { describeDataset } from '../../src/data/dataset.ts';
import { loadMnistPackage, mnistPackageOrder, mnistPackageSampleCount } from '../../src/data/mnist-package.ts';

describe('mnist package', () => {
  const { train, test } = loadMnistPackage({ train: 2000, test: 500 });

  it('has MNIST shapes, [0, 1] values and class-index labels', () => {
    expect(train.count).toBe(2000);
    expect(test.count).toBe(500);
    expect(train.featureShape).toEqual([28, 28]);
    expect(train.labelShape).toEqual([]);
    expect(train.features.length).toBe(2000 * 784);
    let minimum = Infinity;
    let maximum = -Infinity;
    for (const value of train.features) {
      if (value < minimum) minimum = value;
      if (value > maximum) maximum = value;
    }
    expect(minimum).toBe(0);
    expect(maximum).toBe(1);
    expect(describeDataset(train).classes).toBe(10);
  });

  it('has all ten classes in plausible proportions in both splits', () => {
    for (const dataset of [train, test]) {
      const counts = new Array<number>(10).fill(0);
      for (const label of dataset.labels) counts[label] = (counts[label] as number) + 1;
      for (const count of counts) {
        expect(count).toBeGreaterThan(dataset.count * 0.05);
        expect(count).toBeLessThan(dataset.count * 0.16);
      }
    }
  });

  it('is deterministic, prefix-stable and never overlaps train with test', () => {
    const again = loadMnistPackage({ train: 100, test: 10 });
    expect(again.train.features).toEqual(train.features.subarray(0, 100 * 784));
    expect(again.train.labels).toEqual(train.labels.subarray(0, 100));
    const order = mnistPackageOrder();
    expect(order.length).toBe(mnistPackageSampleCount);
    expect(new Set(order).size).toBe(mnistPackageSampleCount);
    expect(() => loadMnistPackage({ train: 9000, test: 1001 })).toThrow(/10000 digits/);
  });
});

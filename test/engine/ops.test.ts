import { describe, expect, it } from 'vitest';
import type { GraphBuilder, Value } from '../../src/engine/graph.ts';
import { logSoftmax, relu, sigmoid, softmax, tanh } from '../../src/engine/ops/activations.ts';
import { conv2d, maxPool2d } from '../../src/engine/ops/convolution.ts';
import { sigmoidCrossEntropy, softmaxCrossEntropy } from '../../src/engine/ops/cross-entropy.ts';
import { add, mul, sub } from '../../src/engine/ops/elementwise.ts';
import { matmul } from '../../src/engine/ops/matmul.ts';
import { flatten, mean, transpose } from '../../src/engine/ops/shape-ops.ts';
import { gradientCheck, sample } from './gradient-check.ts';

const tolerance = 2e-2;

/** Weighting the output by fixed random values makes every output element matter to the scalar. */
function weightedMean(graph: GraphBuilder, value: Value, seed: number, batch = 3): Value {
  const shape = value.shape.map((dimension) => (dimension === 'batch' ? batch : dimension));
  const count = shape.reduce((a, b) => a * b, 1);
  const weights = graph.constantFloat(Array.from(sample(count, seed)), shape);
  return graph.apply1(mean, [graph.apply1(mul, [value, weights], null)], null);
}

describe('finite-difference gradient checks', () => {
  it('add / sub / mul with broadcasting', async () => {
    const result = await gradientCheck(
      [
        { name: 'a', shape: [3, 4], values: sample(12, 1), declaredShape: ['batch', 4] },
        { name: 'b', shape: [4], values: sample(4, 2) },
        { name: 'c', shape: [3, 4], values: sample(12, 3), declaredShape: ['batch', 4] },
      ],
      (graph, [a, b, c]) => {
        const sum = graph.apply1(add, [a!, b!], null);
        const difference = graph.apply1(sub, [sum, c!], null);
        return weightedMean(graph, graph.apply1(mul, [difference, b!], null), 9);
      },
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });

  it('matmul', async () => {
    const result = await gradientCheck(
      [
        { name: 'x', shape: [3, 5], values: sample(15, 4), declaredShape: ['batch', 5] },
        { name: 'w', shape: [5, 2], values: sample(10, 5) },
      ],
      (graph, [x, w]) => weightedMean(graph, graph.apply1(matmul, [x!, w!], null), 10),
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });

  for (const [name, op] of [
    ['relu', relu],
    ['sigmoid', sigmoid],
    ['tanh', tanh],
    ['softmax', softmax],
    ['logSoftmax', logSoftmax],
  ] as const) {
    it(name, async () => {
      // Keep relu inputs away from the kink at 0, where finite differences are meaningless.
      const values = sample(12, 6).map((value) => (Math.abs(value) < 0.05 ? value + 0.1 : value));
      const result = await gradientCheck(
        [{ name: 'x', shape: [3, 4], values, declaredShape: ['batch', 4] }],
        (graph, [x]) => weightedMean(graph, graph.apply1(op, [x!], null), 11),
      );
      expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
    });
  }

  it('flatten and transpose', async () => {
    const result = await gradientCheck(
      [{ name: 'x', shape: [3, 2, 2, 3], values: sample(36, 7), declaredShape: ['batch', 2, 2, 3] }],
      (graph, [x]) => {
        const moved = graph.apply1(transpose, [x!], { permutation: [0, 3, 1, 2] });
        return weightedMean(graph, graph.apply1(flatten, [moved], null), 12);
      },
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });

  for (const [padding, stride] of [
    ['valid', 1],
    ['same', 1],
    ['same', 2],
    ['valid', 2],
  ] as const) {
    it(`conv2d padding=${padding} stride=${stride}`, async () => {
      const result = await gradientCheck(
        [
          { name: 'x', shape: [2, 2, 5, 5], values: sample(100, 8), declaredShape: ['batch', 2, 5, 5] },
          { name: 'w', shape: [3, 2, 3, 3], values: sample(54, 9, 0.5) },
        ],
        (graph, [x, w]) =>
          weightedMean(graph, graph.apply1(conv2d, [x!, w!], { kernel: [3, 3], strides: [stride, stride], padding }), 13, 2),
      );
      expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
    });
  }

  it('maxPool2d', async () => {
    // Distinct values so the maximum in each window is unique and stable under ±epsilon.
    const values = Float32Array.from({ length: 2 * 1 * 4 * 4 }, (_, index) => ((index * 7) % 32) / 8);
    const result = await gradientCheck(
      [{ name: 'x', shape: [2, 1, 4, 4], values, declaredShape: ['batch', 1, 4, 4] }],
      (graph, [x]) =>
        weightedMean(graph, graph.apply1(maxPool2d, [x!], { kernel: [2, 2], strides: [2, 2], padding: 'valid' }), 14, 2),
      1e-3,
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });

  it('softmax cross-entropy from logits', async () => {
    const targets = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0.3, 0.7]);
    const result = await gradientCheck(
      [
        { name: 'z', shape: [3, 4], values: sample(12, 15, 3), declaredShape: ['batch', 4] },
        { name: 't', shape: [3, 4], values: targets, differentiable: false, declaredShape: ['batch', 4] },
      ],
      (graph, [z, t]) => graph.apply1(mean, [graph.apply1(softmaxCrossEntropy, [z!, t!], { oneHotTargets: false })], null),
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });

  it('softmax cross-entropy from logits, one-hot targets (the sparse-label shortcut)', async () => {
    const targets = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    const result = await gradientCheck(
      [
        { name: 'z', shape: [3, 4], values: sample(12, 17, 3), declaredShape: ['batch', 4] },
        { name: 't', shape: [3, 4], values: targets, differentiable: false, declaredShape: ['batch', 4] },
      ],
      (graph, [z, t]) => graph.apply1(mean, [graph.apply1(softmaxCrossEntropy, [z!, t!], { oneHotTargets: true })], null),
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });

  it('sigmoid cross-entropy from logits', async () => {
    const result = await gradientCheck(
      [
        { name: 'z', shape: [3, 2], values: sample(6, 16, 4), declaredShape: ['batch', 2] },
        { name: 't', shape: [3, 2], values: new Float32Array([1, 0, 0, 1, 1, 1]), differentiable: false, declaredShape: ['batch', 2] },
      ],
      (graph, [z, t]) => graph.apply1(mean, [graph.apply1(sigmoidCrossEntropy, [z!, t!], null)], null),
    );
    expect(result.maxRelativeError, result.worst).toBeLessThan(tolerance);
  });
});

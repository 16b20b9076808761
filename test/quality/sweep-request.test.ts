import { describe, expect, it } from 'vitest';
import { configurations, gridPoints, metricValue, parseSweepRequest, promoted, roundEpochs, trialJobBody } from '../../src/jobs/sweep-request.ts';

const baseJob = { model: 'm', datasetId: 'ds_1', epochs: 9, spec: { input: { shape: [1] }, layers: [{ type: 'dense', units: 4 }], compile: { optimizer: 'sgd', loss: 'meanSquaredError' } } };

describe('sweep requests', () => {
  it('spaces grid points evenly, log ranges geometrically', () => {
    expect(gridPoints({ type: 'range', min: 0, max: 1, count: 5, integer: false })).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(gridPoints({ type: 'logRange', min: 1e-5, max: 10, count: 7, integer: false })).toEqual([1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10]);
    expect(gridPoints({ type: 'range', min: 8, max: 10, count: 5, integer: true })).toEqual([8, 9, 10]);
  });

  it('takes the grid product in order, capped by maxTrials', () => {
    const definition = parseSweepRequest({ baseJob, space: { 'compile.optimizer.learningRate': [0.1, 0.01], batchSize: { type: 'choice', values: [8, 16, 32] } }, maxTrials: 5 });
    expect(configurations(definition)).toEqual([
      { 'compile.optimizer.learningRate': 0.1, batchSize: 8 },
      { 'compile.optimizer.learningRate': 0.1, batchSize: 16 },
      { 'compile.optimizer.learningRate': 0.1, batchSize: 32 },
      { 'compile.optimizer.learningRate': 0.01, batchSize: 8 },
      { 'compile.optimizer.learningRate': 0.01, batchSize: 16 },
    ]);
  });

  it('draws random configurations from a seed, the same every time, inside the ranges', () => {
    const request = { baseJob, space: { 'compile.optimizer.learningRate': { type: 'logRange', min: 1e-4, max: 1 }, 'layers.0.units': { type: 'range', min: 2, max: 64, integer: true } }, strategy: { type: 'random', seed: 5 }, maxTrials: 20 };
    const first = configurations(parseSweepRequest(request));
    expect(first).toEqual(configurations(parseSweepRequest(request)));
    expect(first).toHaveLength(20);
    for (const config of first) {
      expect(config['compile.optimizer.learningRate']).toBeGreaterThanOrEqual(1e-4);
      expect(config['compile.optimizer.learningRate']).toBeLessThanOrEqual(1);
      expect(Number.isInteger(config['layers.0.units'])).toBe(true);
    }
    expect(configurations(parseSweepRequest({ ...request, strategy: { type: 'random', seed: 6 } }))).not.toEqual(first);
  });

  it('applies a trial to the base job: job fields directly, spec paths inside the spec (an optimizer name becomes an object)', () => {
    const definition = parseSweepRequest({ baseJob, space: { 'compile.optimizer.learningRate': [0.5], epochs: [3], 'layers.0.units': [7] } });
    const body = trialJobBody(definition, configurations(definition)[0]!);
    expect(body).toMatchObject({ model: 'm', epochs: 3, spec: { layers: [{ type: 'dense', units: 7 }], compile: { optimizer: { type: 'sgd', learningRate: 0.5 }, loss: 'meanSquaredError' } } });
    // The base job is not modified.
    expect(baseJob.spec.compile.optimizer).toBe('sgd');
    expect(trialJobBody(definition, {}, 4).epochs).toBe(4);
  });

  it('reads the metric from a training summary', () => {
    const summary = { epochs: 1, steps: 1, samplesPerSecond: 1, loss: 0.5, metrics: { accuracy: 0.8 }, validationLoss: 0.6, validationMetrics: { accuracy: 0.7 }, testLoss: 0.9, testMetrics: { accuracy: 0.75 }, stopReason: 'completed' as const };
    expect(['loss', 'val_loss', 'test_loss', 'accuracy', 'val_accuracy', 'test_accuracy', 'recall'].map((name) => metricValue(summary, name))).toEqual([0.5, 0.6, 0.9, 0.8, 0.7, 0.75, undefined]);
  });

  it('halves successively: eta× the epochs per round, the best 1/eta go on', () => {
    const definition = parseSweepRequest({ baseJob, space: { 'compile.optimizer.learningRate': { type: 'logRange', min: 1e-3, max: 1 } }, strategy: { type: 'successiveHalving', eta: 3, minEpochs: 1 }, maxTrials: 9 });
    expect(definition.strategy).toEqual({ type: 'successiveHalving', seed: 1, eta: 3, minEpochs: 1, maxEpochs: 9 });
    if (definition.strategy.type !== 'successiveHalving') throw new Error('unreachable');
    expect([0, 1, 2, 3].map((rung) => roundEpochs(definition.strategy as never, rung))).toEqual([1, 3, 9, 9]);
    expect([9, 3, 2, 1].map((count) => promoted(definition.strategy as never, count))).toEqual([3, 1, 1, 1]);
    expect(definition.metric).toEqual({ name: 'loss', direction: 'minimize' });
  });

  it('refuses malformed requests with the field named', () => {
    expect(() => parseSweepRequest({ baseJob, space: {} })).toThrow(/space/);
    expect(() => parseSweepRequest({ baseJob, space: { x: { type: 'logRange', min: 0, max: 1 } } })).toThrow(/space\.x\.min/);
    expect(() => parseSweepRequest({ baseJob, space: { epochs: [1, 2] }, strategy: 'successiveHalving' })).toThrow(/space\.epochs/);
    expect(() => parseSweepRequest({ baseJob, space: { x: [1] }, metric: { name: 'accuracy', direction: 'up' } })).toThrow(/metric\.direction/);
  });
});

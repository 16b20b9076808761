import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/engine/graph.ts';
import { createOptimizer, learningRateAt } from '../../src/engine/optimizers.ts';
import { createSession, floatTensor } from '../../src/engine/session.ts';
import { resolveSpec, type OptimizerSpec, type ResolvedOptimizer } from '../../src/engine/spec.ts';
import { sample } from './gradient-check.ts';

function resolved(optimizer: OptimizerSpec): ResolvedOptimizer {
  return resolveSpec({ input: { shape: [1] }, layers: [{ type: 'dense', units: 1 }], compile: { optimizer, loss: 'meanSquaredError' } }).optimizer;
}

/** Plain-loop references written from the published definitions, independent of the graph code. */
function referenceStep(spec: ResolvedOptimizer, p: Float64Array, g: Float64Array, state: Float64Array[], step: number, lr: number): void {
  for (let i = 0; i < p.length; i++) {
    let grad = g[i]!;
    switch (spec.type) {
      case 'gd':
        p[i]! -= lr * grad;
        break;
      case 'sgd': {
        if (spec.weightDecay) grad += spec.weightDecay * p[i]!;
        if (spec.momentum) {
          const buffer = step === 1 ? grad : spec.momentum * state[0]![i]! + (1 - spec.dampening) * grad;
          state[0]![i] = buffer;
          grad = spec.nesterov ? grad + spec.momentum * buffer : buffer;
        }
        p[i]! -= lr * grad;
        break;
      }
      case 'adagrad':
        state[0]![i]! += grad * grad;
        p[i]! -= (lr * grad) / (Math.sqrt(state[0]![i]!) + spec.epsilon);
        break;
      case 'rmsprop': {
        state[0]![i] = spec.rho * state[0]![i]! + (1 - spec.rho) * grad * grad;
        const scaled = grad / (Math.sqrt(state[0]![i]!) + spec.epsilon);
        if (spec.momentum) {
          state[1]![i] = spec.momentum * state[1]![i]! + scaled;
          p[i]! -= lr * state[1]![i]!;
        } else p[i]! -= lr * scaled;
        break;
      }
      case 'adam': {
        state[0]![i] = spec.beta1 * state[0]![i]! + (1 - spec.beta1) * grad;
        state[1]![i] = spec.beta2 * state[1]![i]! + (1 - spec.beta2) * grad * grad;
        const alpha = (lr * Math.sqrt(1 - spec.beta2 ** step)) / (1 - spec.beta1 ** step);
        p[i]! -= (alpha * state[0]![i]!) / (Math.sqrt(state[1]![i]!) + spec.epsilon);
        break;
      }
    }
  }
}

const cases: [string, OptimizerSpec][] = [
  ['gd', { type: 'gd', learningRate: 0.1 }],
  ['sgd plain', { type: 'sgd', learningRate: 0.05 }],
  ['sgd momentum', { type: 'sgd', learningRate: 0.05, momentum: 0.9 }],
  ['sgd momentum + dampening (EMA form)', { type: 'sgd', learningRate: 0.05, momentum: 0.8, dampening: 0.8 }],
  ['sgd nesterov', { type: 'sgd', learningRate: 0.05, momentum: 0.9, nesterov: true }],
  ['sgd weight decay', { type: 'sgd', learningRate: 0.05, momentum: 0.5, weightDecay: 0.01 }],
  ['adagrad', { type: 'adagrad', learningRate: 0.1, initialAccumulatorValue: 0.1, epsilon: 1e-7 }],
  ['rmsprop', { type: 'rmsprop', learningRate: 0.01, rho: 0.9 }],
  ['rmsprop momentum', { type: 'rmsprop', learningRate: 0.01, rho: 0.8, momentum: 0.7, epsilon: 1e-6 }],
  ['adam', { type: 'adam', learningRate: 0.01 }],
  ['adam custom', { type: 'adam', learningRate: 0.02, beta1: 0.8, beta2: 0.95, epsilon: 1e-5 }],
];

describe('optimizers match plain-loop references step by step', () => {
  for (const [label, optimizerSpec] of cases) {
    it(label, async () => {
      const spec = resolved(optimizerSpec);
      const optimizer = createOptimizer(spec);
      const size = 6;
      const graph = new GraphBuilder('optimizer');
      const parameter = graph.input('p', [size]);
      const gradient = graph.input('g', [size]);
      const state = optimizer.slots.map((slot) => graph.input(`s_${slot.suffix}`, [size]));
      const learningRate = graph.input('lr', []);
      const step = graph.input('step', []);
      const updated = optimizer.update(graph, parameter, gradient, state, { learningRate, step });
      graph.output(updated.parameter, 'p_next');
      updated.state.forEach((value, index) => graph.output(value, `s_next_${index}`));
      const session = await createSession(graph.toModel());

      let p: Float32Array = sample(size, 3);
      let slots: Float32Array[] = optimizer.slots.map((slot) => new Float32Array(size).fill(slot.initialValue));
      const referenceP = Float64Array.from(p);
      const referenceState = optimizer.slots.map((slot) => new Float64Array(size).fill(slot.initialValue));
      for (let t = 1; t <= 6; t++) {
        const g = sample(size, 100 + t);
        const lr = learningRateAt(spec.learningRate, t - 1, 0);
        const feeds: Record<string, ReturnType<typeof floatTensor>> = {
          p: floatTensor(p, [size]),
          g: floatTensor(g, [size]),
          lr: floatTensor(new Float32Array([optimizer.stepSize(lr, t)]), []),
          step: floatTensor(new Float32Array([t]), []),
        };
        optimizer.slots.forEach((slot, index) => (feeds[`s_${slot.suffix}`] = floatTensor(slots[index]!, [size])));
        const results = await session.run(feeds);
        p = results.p_next!.data as Float32Array;
        slots = optimizer.slots.map((_, index) => results[`s_next_${index}`]!.data as Float32Array);
        referenceStep(spec, referenceP, Float64Array.from(g), referenceState, t, lr);
        for (let i = 0; i < size; i++) {
          expect(Math.abs(p[i]! - referenceP[i]!), `step ${t} element ${i}`).toBeLessThanOrEqual(1e-5 * Math.abs(referenceP[i]!) + 1e-6);
        }
      }
      await session.release();
    });
  }

  it('defaults follow Keras (adam lr 0.001, β1 0.9, β2 0.999, ε 1e-7)', () => {
    expect(resolved({ type: 'adam' })).toEqual({ type: 'adam', learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
  });

  it('learning-rate schedules', () => {
    expect(learningRateAt({ type: 'exponentialDecay', initial: 0.1, decaySteps: 10, decayRate: 0.5 }, 20, 0)).toBeCloseTo(0.025, 10);
    expect(learningRateAt({ type: 'exponentialDecay', initial: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true }, 15, 0)).toBeCloseTo(0.05, 10);
    expect(learningRateAt({ type: 'stepDecay', initial: 0.1, stepSize: 2, gamma: 0.1 }, 999, 5)).toBeCloseTo(0.001, 10);
  });
});

import type { GraphBuilder, Value } from './graph.ts';
import type { LearningRateSpec, ResolvedOptimizer } from './spec.ts';

/** Scalars every parameter's update shares; emitted once per graph. */
export interface StepInputs {
  learningRate: Value;
  /** 1-based count of updates, as a float scalar (exact up to 2^24 steps). */
  step: Value;
}

export interface OptimizerSlot {
  suffix: string;
  initialValue: number;
}

export interface Optimizer {
  /** Per-parameter state tensors (each the parameter's shape), stored in checkpoints. */
  readonly slots: readonly OptimizerSlot[];
  update(graph: GraphBuilder, parameter: Value, gradient: Value, state: readonly Value[], shared: StepInputs): { parameter: Value; state: Value[] };
}

function scalar(graph: GraphBuilder, value: number): Value {
  return graph.constantFloat([value]);
}

/**
 * Optimizer updates as plain ONNX nodes in the train-step graph. Definitions:
 * - sgd/gd: PyTorch's SGD (momentum buffer starts at the first gradient; dampening; nesterov; weight decay).
 * - adagrad: acc += g²; p -= lr·g / (√acc + ε), accumulator starting at initialAccumulatorValue.
 * - rmsprop: PyTorch's form, ε outside the square root; optional momentum buffer.
 * - adam: Keras' form, α = lr·√(1−β2ᵗ)/(1−β1ᵗ); p -= α·m / (√v + ε).
 */
export function createOptimizer(spec: ResolvedOptimizer): Optimizer {
  switch (spec.type) {
    case 'gd':
      return {
        slots: [],
        update(graph, parameter, gradient, _state, { learningRate }) {
          const delta = graph.node1('Mul', [gradient, learningRate], parameter.shape);
          return { parameter: graph.node1('Sub', [parameter, delta], parameter.shape), state: [] };
        },
      };
    case 'sgd': {
      const { momentum, dampening, nesterov, weightDecay } = spec;
      return {
        slots: momentum > 0 ? [{ suffix: 'momentum', initialValue: 0 }] : [],
        update(graph, parameter, rawGradient, state, { learningRate, step }) {
          const shape = parameter.shape;
          let gradient = rawGradient;
          if (weightDecay > 0) gradient = graph.node1('Add', [gradient, graph.node1('Mul', [parameter, scalar(graph, weightDecay)], shape)], shape);
          const nextState: Value[] = [];
          if (momentum > 0) {
            const buffer = state[0] as Value;
            const blended = graph.node1(
              'Add',
              [graph.node1('Mul', [buffer, scalar(graph, momentum)], shape), graph.node1('Mul', [gradient, scalar(graph, 1 - dampening)], shape)],
              shape,
            );
            // PyTorch initialises the buffer with the first gradient, undamped.
            const isFirst = graph.node1('Equal', [step, scalar(graph, 1)], [], 'bool');
            const nextBuffer = graph.node1('Where', [isFirst, gradient, blended], shape);
            nextState.push(nextBuffer);
            gradient = nesterov
              ? graph.node1('Add', [gradient, graph.node1('Mul', [nextBuffer, scalar(graph, momentum)], shape)], shape)
              : nextBuffer;
          }
          const delta = graph.node1('Mul', [gradient, learningRate], shape);
          return { parameter: graph.node1('Sub', [parameter, delta], shape), state: nextState };
        },
      };
    }
    case 'adagrad': {
      const { initialAccumulatorValue, epsilon } = spec;
      return {
        slots: [{ suffix: 'accumulator', initialValue: initialAccumulatorValue }],
        update(graph, parameter, gradient, state, { learningRate }) {
          const shape = parameter.shape;
          const accumulator = graph.node1('Add', [state[0] as Value, graph.node1('Mul', [gradient, gradient], shape)], shape);
          const denominator = graph.node1('Add', [graph.node1('Sqrt', [accumulator], shape), scalar(graph, epsilon)], shape);
          const delta = graph.node1('Mul', [graph.node1('Div', [gradient, denominator], shape), learningRate], shape);
          return { parameter: graph.node1('Sub', [parameter, delta], shape), state: [accumulator] };
        },
      };
    }
    case 'rmsprop': {
      const { rho, epsilon, momentum } = spec;
      return {
        slots: momentum > 0 ? [{ suffix: 'square_average', initialValue: 0 }, { suffix: 'momentum', initialValue: 0 }] : [{ suffix: 'square_average', initialValue: 0 }],
        update(graph, parameter, gradient, state, { learningRate }) {
          const shape = parameter.shape;
          const squareAverage = graph.node1(
            'Add',
            [graph.node1('Mul', [state[0] as Value, scalar(graph, rho)], shape), graph.node1('Mul', [graph.node1('Mul', [gradient, gradient], shape), scalar(graph, 1 - rho)], shape)],
            shape,
          );
          const denominator = graph.node1('Add', [graph.node1('Sqrt', [squareAverage], shape), scalar(graph, epsilon)], shape);
          let step = graph.node1('Div', [gradient, denominator], shape);
          const nextState = [squareAverage];
          if (momentum > 0) {
            step = graph.node1('Add', [graph.node1('Mul', [state[1] as Value, scalar(graph, momentum)], shape), step], shape);
            nextState.push(step);
          }
          const delta = graph.node1('Mul', [step, learningRate], shape);
          return { parameter: graph.node1('Sub', [parameter, delta], shape), state: nextState };
        },
      };
    }
    case 'adam': {
      const { beta1, beta2, epsilon } = spec;
      // α depends only on the step and learning rate, so it is computed once per step and shared by
      // every parameter (a multi-step graph has one per step).
      const alphaCache = new WeakMap<GraphBuilder, Map<string, Value>>();
      const alphaFor = (graph: GraphBuilder, { learningRate, step }: StepInputs) => {
        const perGraph = alphaCache.get(graph) ?? new Map<string, Value>();
        alphaCache.set(graph, perGraph);
        const key = `${learningRate.name}|${step.name}`;
        const cached = perGraph.get(key);
        if (cached) return cached;
        const power = (base: number) => graph.node1('Pow', [scalar(graph, base), step], []);
        const correction2 = graph.node1('Sqrt', [graph.node1('Sub', [scalar(graph, 1), power(beta2)], [])], []);
        const correction1 = graph.node1('Sub', [scalar(graph, 1), power(beta1)], []);
        const alpha = graph.node1('Div', [graph.node1('Mul', [learningRate, correction2], []), correction1], []);
        perGraph.set(key, alpha);
        return alpha;
      };
      return {
        slots: [
          { suffix: 'm', initialValue: 0 },
          { suffix: 'v', initialValue: 0 },
        ],
        update(graph, parameter, gradient, state, shared) {
          const shape = parameter.shape;
          const [m, v] = state as [Value, Value];
          const nextM = graph.node1('Add', [m, graph.node1('Mul', [graph.node1('Sub', [gradient, m], shape), scalar(graph, 1 - beta1)], shape)], shape);
          const squared = graph.node1('Mul', [gradient, gradient], shape);
          const nextV = graph.node1('Add', [v, graph.node1('Mul', [graph.node1('Sub', [squared, v], shape), scalar(graph, 1 - beta2)], shape)], shape);
          const denominator = graph.node1('Add', [graph.node1('Sqrt', [nextV], shape), scalar(graph, epsilon)], shape);
          const delta = graph.node1('Mul', [graph.node1('Div', [nextM, denominator], shape), alphaFor(graph, shared)], shape);
          return { parameter: graph.node1('Sub', [parameter, delta], shape), state: [nextM, nextV] };
        },
      };
    }
  }
}

/**
 * The learning rate for a step, computed on the host and fed to the graph, so a schedule never
 * recompiles anything. exponentialDecay counts steps (as Keras); stepDecay counts epochs (as PyTorch's StepLR).
 */
export function learningRateAt(schedule: LearningRateSpec, step: number, epoch: number): number {
  if (typeof schedule === 'number') return schedule;
  if (schedule.type === 'exponentialDecay') {
    const exponent = step / schedule.decaySteps;
    return schedule.initial * schedule.decayRate ** (schedule.staircase ? Math.floor(exponent) : exponent);
  }
  return schedule.initial * schedule.gamma ** Math.floor(epoch / schedule.stepSize);
}

import type { GraphBuilder, Value } from './graph.ts';
import type { LearningRateSpec, ResolvedOptimizer } from './spec.ts';

/** Scalars every parameter's update shares; emitted once per graph. */
export interface StepInputs {
  /** The step size fed for this step: `Optimizer.stepSize(learningRate, step)`, computed on the host. */
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
  /**
   * What the trainer feeds as the graph's `learning_rate` for 1-based step `step`. Scalar arithmetic
   * that depends only on the step (Adam's bias correction) is done here on the host: in the graph it
   * would be several tiny ops, each paying ONNX Runtime's per-node cost on every step.
   */
  stepSize(learningRate: number, step: number): number;
}

function scalar(graph: GraphBuilder, value: number): Value {
  return graph.constantFloat([value]);
}

/**
 * Optimizer updates as plain ONNX nodes in the train-step graph. Definitions:
 * - sgd/gd: PyTorch's SGD (momentum buffer starts at the first gradient; dampening; nesterov; weight decay).
 * - adagrad: acc += g²; p -= lr·g / (√acc + ε), accumulator starting at initialAccumulatorValue.
 * - rmsprop: PyTorch's form, ε outside the square root; optional momentum buffer.
 * - adam: Keras' form, α = lr·√(1−β2ᵗ)/(1−β1ᵗ) (fed by the host); p -= α·m / (√v + ε).
 */
export function createOptimizer(spec: ResolvedOptimizer): Optimizer {
  switch (spec.type) {
    case 'gd':
      return {
        slots: [],
        stepSize: (learningRate) => learningRate,
        update(graph, parameter, gradient, _state, { learningRate }) {
          const delta = graph.node1('Mul', [gradient, learningRate], parameter.shape);
          return { parameter: graph.node1('Sub', [parameter, delta], parameter.shape), state: [] };
        },
      };
    case 'sgd': {
      const { momentum, dampening, nesterov, weightDecay } = spec;
      return {
        slots: momentum > 0 ? [{ suffix: 'momentum', initialValue: 0 }] : [],
        stepSize: (learningRate) => learningRate,
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
        stepSize: (learningRate) => learningRate,
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
        stepSize: (learningRate) => learningRate,
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
      return {
        slots: [
          { suffix: 'm', initialValue: 0 },
          { suffix: 'v', initialValue: 0 },
        ],
        // α = lr·√(1−β2ᵗ)/(1−β1ᵗ), the bias-corrected step size, in double precision on the host.
        stepSize: (learningRate, step) => (learningRate * Math.sqrt(1 - beta2 ** step)) / (1 - beta1 ** step),
        update(graph, parameter, gradient, state, { learningRate: alpha }) {
          const shape = parameter.shape;
          const [m, v] = state as [Value, Value];
          const nextM = graph.node1('Add', [m, graph.node1('Mul', [graph.node1('Sub', [gradient, m], shape), scalar(graph, 1 - beta1)], shape)], shape);
          const squared = graph.node1('Mul', [gradient, gradient], shape);
          const nextV = graph.node1('Add', [v, graph.node1('Mul', [graph.node1('Sub', [squared, v], shape), scalar(graph, 1 - beta2)], shape)], shape);
          const denominator = graph.node1('Add', [graph.node1('Sqrt', [nextV], shape), scalar(graph, epsilon)], shape);
          const delta = graph.node1('Mul', [graph.node1('Div', [nextM, denominator], shape), alpha], shape);
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

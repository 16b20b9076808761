import { attribute, GraphBuilder, type Value } from './graph.ts';
import { batchShape, buildForward, dropoutMaskShapes, type ForwardResult } from './network.ts';
import { sigmoidCrossEntropy, softmaxCrossEntropy } from './ops/cross-entropy.ts';
import { sub, mul } from './ops/elementwise.ts';
import { mean } from './ops/shape-ops.ts';
import { createOptimizer, type Optimizer } from './optimizers.ts';
import type { ModelPlan } from './plan.ts';
import type { OnnxModel } from '../onnx/model.ts';

/** Names shared by the compiled graphs and the trainer that feeds them. */
export const graphNames = {
  input: 'input',
  labels: 'labels',
  output: 'output',
  parameters: 'parameters',
  state: (suffix: string) => `state.${suffix}`,
  loss: 'loss',
  lossSum: 'loss_sum',
  learningRate: 'learning_rate',
  step: 'step',
  metric: (name: string) => `metric.${name}`,
  dropoutMask: (layer: string) => `dropout_mask.${layer}`,
  next: (name: string) => `${name}.next`,
  slot: (parameter: string, suffix: string) => `${parameter}.${suffix}`,
} as const;

/** Per-element loss ([batch] for cross-entropies, [batch, units] otherwise) and labels as the graph sees them. */
export function elementLoss(graph: GraphBuilder, plan: ModelPlan, forward: ForwardResult, labels: Value): { loss: Value; targets: Value } {
  const units = plan.outputShape[0] as number;
  const logits = plan.finalActivation === 'linear' ? forward.output : forward.preActivation;
  switch (plan.spec.loss) {
    case 'sparseCategoricalCrossentropy': {
      const indices = graph.node1('Cast', [labels], ['batch'], 'int64', { to: attribute.int(7) });
      const targets = graph.node1('OneHot', [indices, graph.constantInt64([units], []), graph.constantFloat([0, 1], [2])], ['batch', units], 'float32', {
        axis: attribute.int(-1),
      });
      return { loss: graph.apply1(softmaxCrossEntropy, [logits, targets], null), targets };
    }
    case 'categoricalCrossentropy':
      return { loss: graph.apply1(softmaxCrossEntropy, [logits, labels], null), targets: labels };
    case 'binaryCrossentropy':
      return { loss: graph.apply1(sigmoidCrossEntropy, [logits, labels], null), targets: labels };
    case 'meanSquaredError': {
      const difference = graph.apply1(sub, [forward.output, labels], null);
      return { loss: graph.apply1(mul, [difference, difference], null), targets: labels };
    }
  }
}

/** Sum over the batch of each sample's metric value (the trainer divides by the sample count). */
function metricSums(graph: GraphBuilder, plan: ModelPlan, output: Value, labels: Value): Map<string, Value> {
  const sums = new Map<string, Value>();
  const units = plan.outputShape[0] as number;
  const sumAll = (value: Value, divisor: number) => {
    const asFloat = value.type === 'float32' ? value : graph.node1('Cast', [value], value.shape, 'float32', { to: attribute.int(1) });
    const total = graph.node1('ReduceSum', [asFloat], [], 'float32', { keepdims: attribute.int(0) });
    return divisor === 1 ? total : graph.node1('Div', [total, graph.constantFloat([divisor])], []);
  };
  for (const metric of plan.spec.metrics) {
    if (metric === 'meanAbsoluteError') {
      const difference = graph.node1('Sub', [output, labels], output.shape);
      sums.set(metric, sumAll(graph.node1('Abs', [difference], output.shape), units));
      continue;
    }
    const argMax = (value: Value) => graph.node1('ArgMax', [value], ['batch'], 'int64', { axis: attribute.int(-1), keepdims: attribute.int(0) });
    if (plan.spec.loss === 'sparseCategoricalCrossentropy') {
      const classes = graph.node1('Cast', [labels], ['batch'], 'int64', { to: attribute.int(7) });
      sums.set(metric, sumAll(graph.node1('Equal', [argMax(output), classes], ['batch'], 'bool'), 1));
    } else if (plan.spec.loss === 'categoricalCrossentropy' || (plan.spec.loss === 'meanSquaredError' && units > 1)) {
      sums.set(metric, sumAll(graph.node1('Equal', [argMax(output), argMax(labels)], ['batch'], 'bool'), 1));
    } else {
      // Binary accuracy: threshold probabilities at 0.5 (logits at 0 when the output is linear).
      const threshold = graph.constantFloat([plan.finalActivation === 'linear' && plan.spec.loss === 'binaryCrossentropy' ? 0 : 0.5]);
      const predicted = graph.node1('Greater', [output, threshold], output.shape, 'bool');
      const actual = graph.node1('Greater', [labels, graph.constantFloat([0.5])], output.shape, 'bool');
      sums.set(metric, sumAll(graph.node1('Equal', [predicted, actual], output.shape, 'bool'), units));
    }
  }
  return sums;
}

export interface ParameterLayout {
  entries: { name: string; shape: number[]; offset: number; length: number }[];
  total: number;
}

/** All parameters packed into one vector: one graph input, one output, one optimizer pass per step. */
export function parameterLayout(plan: ModelPlan): ParameterLayout {
  let offset = 0;
  const entries = plan.parameters.map((parameter) => {
    const length = parameter.shape.reduce((total, dimension) => total * dimension, 1);
    const entry = { name: parameter.name, shape: parameter.shape, offset, length };
    offset += length;
    return entry;
  });
  return { entries, total: offset };
}

/** Slices of the packed parameter vector, reshaped to each parameter's shape. */
function unpackParameters(graph: GraphBuilder, plan: ModelPlan, packed: Value, differentiable: boolean): Map<string, Value> {
  const layout = parameterLayout(plan);
  return new Map(
    layout.entries.map((entry) => {
      const slice = graph.node1('Slice', [packed, graph.constantInt64([entry.offset]), graph.constantInt64([entry.offset + entry.length]), graph.constantInt64([0])], [entry.length]);
      const shaped = graph.node1('Reshape', [slice, graph.constantInt64(entry.shape)], entry.shape);
      return [entry.name, differentiable ? graph.differentiableRoot(shaped) : shaped];
    }),
  );
}

function parameterInputs(graph: GraphBuilder, plan: ModelPlan, differentiable: boolean): Map<string, Value> {
  const packed = graph.input(graphNames.parameters, [parameterLayout(plan).total]);
  return unpackParameters(graph, plan, packed, differentiable);
}

export interface CompiledGraphs {
  train: OnnxModel;
  evaluate: OnnxModel;
  predict: OnnxModel;
  optimizer: Optimizer;
  maskShapes: Map<string, { shape: number[]; rate: number }>;
}

/**
 * One train-step graph (forward, backward and optimizer update), one evaluation graph (loss and
 * metric sums) and one prediction graph. Parameters are graph inputs in all three, so the trainer
 * owns the weights and a session never needs rebuilding.
 */
export function compileGraphs(plan: ModelPlan): CompiledGraphs {
  const optimizer = createOptimizer(plan.spec.optimizer);
  const maskShapes = dropoutMaskShapes(plan);
  const labelShape = batchShape(plan.labelShape.length === 0 ? [] : plan.outputShape);

  const train = new GraphBuilder(`${plan.spec.name}_train_step`);
  {
    const input = train.input(graphNames.input, batchShape(plan.spec.inputShape));
    const labels = train.input(graphNames.labels, labelShape);
    const masks = new Map([...maskShapes].map(([layer, { shape }]) => [layer, train.input(graphNames.dropoutMask(layer), batchShape(shape))]));
    const layout = parameterLayout(plan);
    const packed = train.input(graphNames.parameters, [layout.total]);
    const parameters = unpackParameters(train, plan, packed, true);
    const state = optimizer.slots.map((slot) => train.input(graphNames.state(slot.suffix), [layout.total]));
    const learningRate = train.input(graphNames.learningRate, []);
    const step = train.input(graphNames.step, []);
    const forward = buildForward(train, plan, { input, parameters, dropoutMasks: masks });
    const { loss } = elementLoss(train, plan, forward, labels);
    const meanLoss = train.apply1(mean, [loss], null);
    train.output(meanLoss, graphNames.loss);
    for (const [name, value] of metricSums(train, plan, forward.output, labels)) train.output(value, graphNames.metric(name));
    const gradients = train.gradients(meanLoss, [...parameters.values()]);
    const flatGradients = gradients.map((gradient, index) =>
      train.node1('Reshape', [gradient, train.constantInt64([-1])], [layout.entries[index]!.length]),
    );
    const packedGradient = flatGradients.length === 1 ? flatGradients[0]! : train.node1('Concat', flatGradients, [layout.total], 'float32', { axis: attribute.int(0) });
    const updated = optimizer.update(train, packed, packedGradient, state, { learningRate, step });
    train.output(updated.parameter, graphNames.next(graphNames.parameters));
    optimizer.slots.forEach((slot, slotIndex) => train.output(updated.state[slotIndex] as Value, graphNames.next(graphNames.state(slot.suffix))));
  }

  const evaluate = new GraphBuilder(`${plan.spec.name}_evaluate`);
  {
    const input = evaluate.input(graphNames.input, batchShape(plan.spec.inputShape));
    const labels = evaluate.input(graphNames.labels, labelShape);
    const forward = buildForward(evaluate, plan, { input, parameters: parameterInputs(evaluate, plan, false) });
    const { loss } = elementLoss(evaluate, plan, forward, labels);
    const perSampleDivisor = loss.shape.length > 1 ? (plan.outputShape[0] as number) : 1;
    const total = evaluate.node1('ReduceSum', [loss], [], 'float32', { keepdims: attribute.int(0) });
    evaluate.output(perSampleDivisor === 1 ? total : evaluate.node1('Div', [total, evaluate.constantFloat([perSampleDivisor])], []), graphNames.lossSum);
    for (const [name, value] of metricSums(evaluate, plan, forward.output, labels)) evaluate.output(value, graphNames.metric(name));
  }

  const predict = new GraphBuilder(`${plan.spec.name}_predict`);
  {
    const input = predict.input(graphNames.input, batchShape(plan.spec.inputShape));
    const forward = buildForward(predict, plan, { input, parameters: parameterInputs(predict, plan, false) });
    predict.output(forward.output, graphNames.output);
  }

  return { train: train.toModel(), evaluate: evaluate.toModel(), predict: predict.toModel(), optimizer, maskShapes };
}

/** The inference graph with trained weights baked in as initializers: a plain `.onnx` for any runtime. */
export function exportInferenceModel(plan: ModelPlan, weights: ReadonlyMap<string, Float32Array>, metadata: Record<string, string> = {}): OnnxModel {
  const graph = new GraphBuilder(plan.spec.name);
  const input = graph.input(graphNames.input, batchShape(plan.spec.inputShape));
  const parameters = new Map(
    plan.parameters.map((parameter) => {
      const values = weights.get(parameter.name);
      if (!values) throw new RangeError(`weights for ${parameter.name} are missing`);
      return [parameter.name, graph.initializer(parameter.name, parameter.shape, values)];
    }),
  );
  const forward = buildForward(graph, plan, { input, parameters });
  graph.output(forward.output, graphNames.output);
  return graph.toModel(metadata);
}

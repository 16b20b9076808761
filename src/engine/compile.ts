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

/**
 * Labels as the graph needs them, each emitted once and shared by the loss and the metrics:
 * class indices as int64, and one-hot float targets for sparse labels.
 */
class LabelViews {
  private indices: Value | undefined;
  private oneHot: Value | undefined;

  constructor(
    private readonly graph: GraphBuilder,
    private readonly labels: Value,
    private readonly units: number,
  ) {}

  classIndices(): Value {
    this.indices ??= this.graph.node1('Cast', [this.labels], ['batch'], 'int64', { to: attribute.int(7) });
    return this.indices;
  }

  oneHotTargets(): Value {
    this.oneHot ??= this.graph.node1(
      'OneHot',
      [this.classIndices(), this.graph.constantInt64([this.units], []), this.graph.constantFloat([0, 1], [2])],
      ['batch', this.units],
      'float32',
      { axis: attribute.int(-1) },
    );
    return this.oneHot;
  }
}

/** Cross-entropies read the logits, so their graphs need no final softmax/sigmoid node. */
export function lossReadsLogits(plan: ModelPlan): boolean {
  return plan.spec.loss !== 'meanSquaredError';
}

/**
 * Per-element loss ([batch] for cross-entropies, [batch, units] otherwise). `forward` comes from
 * `buildForward` with `skipFinalActivation: lossReadsLogits(plan)`.
 */
/** The values before the final softmax/sigmoid: the output itself when the network ends linear. */
function logitsOf(plan: ModelPlan, forward: ForwardResult): Value {
  return plan.finalActivation === 'linear' ? forward.output : forward.preActivation;
}

export function elementLoss(graph: GraphBuilder, plan: ModelPlan, forward: ForwardResult, labels: Value, views = new LabelViews(graph, labels, plan.outputShape[0] as number)): Value {
  const logits = logitsOf(plan, forward);
  switch (plan.spec.loss) {
    case 'sparseCategoricalCrossentropy':
      return graph.apply1(softmaxCrossEntropy, [logits, views.oneHotTargets()], { oneHotTargets: true });
    case 'categoricalCrossentropy':
      return graph.apply1(softmaxCrossEntropy, [logits, labels], { oneHotTargets: false });
    case 'binaryCrossentropy':
      return graph.apply1(sigmoidCrossEntropy, [logits, labels], null);
    case 'meanSquaredError': {
      const difference = graph.apply1(sub, [forward.output, labels], null);
      return graph.apply1(mul, [difference, difference], null);
    }
  }
}

/** Sum over the batch of each sample's metric value (the trainer divides by the sample count). */
function metricSums(graph: GraphBuilder, plan: ModelPlan, forward: ForwardResult, labels: Value, views: LabelViews): Map<string, Value> {
  const sums = new Map<string, Value>();
  const units = plan.outputShape[0] as number;
  const logits = logitsOf(plan, forward);
  const sumAll = (value: Value, divisor: number) => {
    const asFloat = value.type === 'float32' ? value : graph.node1('Cast', [value], value.shape, 'float32', { to: attribute.int(1) });
    const total = graph.node1('ReduceSum', [asFloat], [], 'float32', { keepdims: attribute.int(0) });
    return divisor === 1 ? total : graph.node1('Div', [total, graph.constantFloat([divisor])], []);
  };
  // Probabilities only when a metric needs their values; argmax and thresholds work on logits.
  let probabilities: Value | undefined;
  const outputs = () => {
    if (forward.output !== forward.preActivation || !lossReadsLogits(plan) || plan.finalActivation === 'linear') return forward.output;
    probabilities ??= graph.node1(plan.finalActivation === 'softmax' ? 'Softmax' : 'Sigmoid', [logits], logits.shape, 'float32', plan.finalActivation === 'softmax' ? { axis: attribute.int(-1) } : {});
    return probabilities;
  };
  const argMax = (value: Value) => graph.node1('ArgMax', [value], ['batch'], 'int64', { axis: attribute.int(-1), keepdims: attribute.int(0) });
  for (const metric of plan.spec.metrics) {
    if (metric === 'meanAbsoluteError') {
      const output = outputs();
      const difference = graph.node1('Sub', [output, labels], output.shape);
      sums.set(metric, sumAll(graph.node1('Abs', [difference], output.shape), units));
      continue;
    }
    if (plan.spec.loss === 'sparseCategoricalCrossentropy') {
      sums.set(metric, sumAll(graph.node1('Equal', [argMax(logits), views.classIndices()], ['batch'], 'bool'), 1));
    } else if (plan.spec.loss === 'categoricalCrossentropy' || (plan.spec.loss === 'meanSquaredError' && units > 1)) {
      sums.set(metric, sumAll(graph.node1('Equal', [argMax(plan.spec.loss === 'meanSquaredError' ? forward.output : logits), argMax(labels)], ['batch'], 'bool'), 1));
    } else {
      // Binary accuracy: probability > 0.5, i.e. logit > 0 (an MSE model's output is compared at 0.5).
      const [value, threshold] = plan.spec.loss === 'binaryCrossentropy' ? [logits, 0] : [forward.output, 0.5];
      const predicted = graph.node1('Greater', [value, graph.constantFloat([threshold])], value.shape, 'bool');
      const actual = graph.node1('Greater', [labels, graph.constantFloat([0.5])], value.shape, 'bool');
      sums.set(metric, sumAll(graph.node1('Equal', [predicted, actual], value.shape, 'bool'), units));
    }
  }
  return sums;
}

/** The loss per element and the metric sums of one forward pass. */
function lossAndMetrics(graph: GraphBuilder, plan: ModelPlan, forward: ForwardResult, labels: Value) {
  const views = new LabelViews(graph, labels, plan.outputShape[0] as number);
  return { loss: elementLoss(graph, plan, forward, labels, views), metrics: metricSums(graph, plan, forward, labels, views) };
}

export interface ParameterLayout {
  entries: { name: string; shape: number[]; offset: number; length: number }[];
  total: number;
}

/** All trainable parameters packed into one vector: one graph input, one output, one optimizer pass per step. */
export function parameterLayout(plan: ModelPlan): ParameterLayout {
  let offset = 0;
  const entries = plan.trainableParameters.map((parameter) => {
    const length = parameter.shape.reduce((total, dimension) => total * dimension, 1);
    const entry = { name: parameter.name, shape: parameter.shape, offset, length };
    offset += length;
    return entry;
  });
  return { entries, total: offset };
}

/** The packed parameter vector split (one node) and reshaped into each parameter. */
function unpackParameters(graph: GraphBuilder, plan: ModelPlan, packed: Value, differentiable: boolean): Map<string, Value> {
  const layout = parameterLayout(plan);
  const pieces =
    layout.entries.length === 1
      ? [packed]
      : graph.node(
          'Split',
          [packed, graph.constantInt64(layout.entries.map((entry) => entry.length))],
          layout.entries.map((entry) => ({ shape: [entry.length], type: 'float32' as const })),
          { axis: attribute.int(0) },
        );
  return new Map(
    layout.entries.map((entry, index) => {
      const piece = pieces[index] as Value;
      const shaped = entry.shape.length === 1 ? piece : graph.node1('Reshape', [piece, graph.constantInt64(entry.shape)], entry.shape);
      return [entry.name, differentiable ? graph.differentiableRoot(shaped) : shaped];
    }),
  );
}

/**
 * One graph input per non-trainable parameter (a normalization layer's statistics), named as the
 * parameter: fed like the weights, never differentiated or updated.
 */
function bufferInputs(graph: GraphBuilder, plan: ModelPlan): Map<string, Value> {
  return new Map(plan.parameters.filter((parameter) => !parameter.trainable).map((parameter) => [parameter.name, graph.input(parameter.name, parameter.shape)]));
}

function parameterInputs(graph: GraphBuilder, plan: ModelPlan, differentiable: boolean): Map<string, Value> {
  const packed = graph.input(graphNames.parameters, [parameterLayout(plan).total]);
  return new Map([...unpackParameters(graph, plan, packed, differentiable), ...bufferInputs(graph, plan)]);
}

export interface CompiledGraphs {
  train: OnnxModel;
  evaluate: OnnxModel;
  predict: OnnxModel;
  optimizer: Optimizer;
  maskShapes: Map<string, { shape: number[]; rate: number }>;
}

interface TrainStepInputs {
  input: Value;
  labels: Value;
  masks: Map<string, Value>;
  packed: Value;
  buffers: Map<string, Value>;
  state: Value[];
  learningRate: Value;
  step: Value;
}

/** Forward, loss, backward and optimizer update of one step: the body of both train graphs. */
function emitTrainStep(graph: GraphBuilder, plan: ModelPlan, optimizer: Optimizer, inputs: TrainStepInputs) {
  const layout = parameterLayout(plan);
  const parameters = unpackParameters(graph, plan, inputs.packed, true);
  const forward = buildForward(graph, plan, {
    input: inputs.input,
    parameters: new Map([...parameters, ...inputs.buffers]),
    dropoutMasks: inputs.masks,
    skipFinalActivation: lossReadsLogits(plan),
  });
  const { loss, metrics } = lossAndMetrics(graph, plan, forward, inputs.labels);
  const meanLoss = graph.apply1(mean, [loss], null);
  const gradients = graph.gradients(meanLoss, [...parameters.values()]);
  const flatGradients = gradients.map((gradient, index) =>
    gradient.shape.length === 1 ? gradient : graph.node1('Reshape', [gradient, graph.constantInt64([-1])], [layout.entries[index]!.length]),
  );
  const packedGradient =
    flatGradients.length === 1 ? flatGradients[0]! : graph.node1('Concat', flatGradients, [layout.total], 'float32', { axis: attribute.int(0) });
  const updated = optimizer.update(graph, inputs.packed, packedGradient, inputs.state, { learningRate: inputs.learningRate, step: inputs.step });
  return { loss: meanLoss, metrics, packed: updated.parameter, state: updated.state };
}

/** Split a value along axis 0 into `parts` equal pieces. */
function splitRows(graph: GraphBuilder, value: Value, parts: number, rowsPerPart: number): Value[] {
  const shape = [rowsPerPart, ...value.shape.slice(1)];
  return graph.node(
    'Split',
    [value, graph.constantInt64(Array.from({ length: parts }, () => rowsPerPart))],
    Array.from({ length: parts }, () => ({ shape, type: value.type })),
    { axis: attribute.int(0) },
  );
}

/**
 * One train-step graph (forward, backward and optimizer update), one evaluation graph (loss and
 * metric sums) and one prediction graph. Parameters are graph inputs in all of them, so the trainer
 * owns the weights and a session never needs rebuilding.
 */
export function compileGraphs(plan: ModelPlan): CompiledGraphs {
  const optimizer = createOptimizer(plan.spec.optimizer);
  const maskShapes = dropoutMaskShapes(plan);
  const labelShape = batchShape(plan.labelShape.length === 0 ? [] : plan.outputShape);
  const layout = parameterLayout(plan);

  const train = new GraphBuilder(`${plan.spec.name}_train_step`);
  {
    const step = emitTrainStep(train, plan, optimizer, {
      input: train.input(graphNames.input, batchShape(plan.spec.inputShape)),
      labels: train.input(graphNames.labels, labelShape),
      masks: new Map([...maskShapes].map(([layer, { shape }]) => [layer, train.input(graphNames.dropoutMask(layer), batchShape(shape))])),
      packed: train.input(graphNames.parameters, [layout.total]),
      buffers: bufferInputs(train, plan),
      state: optimizer.slots.map((slot) => train.input(graphNames.state(slot.suffix), [layout.total])),
      learningRate: train.input(graphNames.learningRate, []),
      step: train.input(graphNames.step, []),
    });
    train.output(step.loss, graphNames.loss);
    for (const [name, value] of step.metrics) train.output(value, graphNames.metric(name));
    train.output(step.packed, graphNames.next(graphNames.parameters));
    optimizer.slots.forEach((slot, slotIndex) => train.output(step.state[slotIndex] as Value, graphNames.next(graphNames.state(slot.suffix))));
  }

  const evaluate = new GraphBuilder(`${plan.spec.name}_evaluate`);
  {
    const input = evaluate.input(graphNames.input, batchShape(plan.spec.inputShape));
    const labels = evaluate.input(graphNames.labels, labelShape);
    const forward = buildForward(evaluate, plan, { input, parameters: parameterInputs(evaluate, plan, false), skipFinalActivation: lossReadsLogits(plan) });
    const { loss, metrics } = lossAndMetrics(evaluate, plan, forward, labels);
    const perSampleDivisor = loss.shape.length > 1 ? (plan.outputShape[0] as number) : 1;
    const total = evaluate.node1('ReduceSum', [loss], [], 'float32', { keepdims: attribute.int(0) });
    evaluate.output(perSampleDivisor === 1 ? total : evaluate.node1('Div', [total, evaluate.constantFloat([perSampleDivisor])], []), graphNames.lossSum);
    for (const [name, value] of metrics) evaluate.output(value, graphNames.metric(name));
  }

  const predict = new GraphBuilder(`${plan.spec.name}_predict`);
  {
    const input = predict.input(graphNames.input, batchShape(plan.spec.inputShape));
    const forward = buildForward(predict, plan, { input, parameters: parameterInputs(predict, plan, false) });
    predict.output(forward.output, graphNames.output);
  }

  return { train: train.toModel(), evaluate: evaluate.toModel(), predict: predict.toModel(), optimizer, maskShapes };
}

/** The trained weights as initializers of `graph`, by parameter name; every parameter of the plan must have its weights. */
export function weightInitializers(graph: GraphBuilder, plan: ModelPlan, weights: ReadonlyMap<string, Float32Array>): Map<string, Value> {
  return new Map(
    plan.parameters.map((parameter) => {
      const values = weights.get(parameter.name);
      if (!values) throw new RangeError(`weights for ${parameter.name} are missing`);
      return [parameter.name, graph.initializer(parameter.name, parameter.shape, values)];
    }),
  );
}

/** The inference graph with trained weights baked in as initializers: a plain `.onnx` for any runtime. */
export function exportInferenceModel(plan: ModelPlan, weights: ReadonlyMap<string, Float32Array>, metadata: Record<string, string> = {}): OnnxModel {
  const graph = new GraphBuilder(plan.spec.name);
  const input = graph.input(graphNames.input, batchShape(plan.spec.inputShape));
  const parameters = weightInitializers(graph, plan, weights);
  const forward = buildForward(graph, plan, { input, parameters });
  graph.output(forward.output, graphNames.output);
  return graph.toModel(metadata);
}

/**
 * `steps` chained train steps of exactly `batchSize` rows each, in one graph. Inputs hold the steps'
 * rows back to back (and `learning_rate`, `step` one value per step); outputs are per-step losses and
 * metric sums and the parameters and state after the last step. Each ORT run has a fixed cost (feeding
 * and copying back parameters and optimizer state, waking the thread pool) that this pays once per
 * `steps` steps; the arithmetic is the same as `steps` runs of the single-step graph.
 */
export function compileTrainSteps(plan: ModelPlan, steps: number, batchSize: number): OnnxModel {
  const optimizer = createOptimizer(plan.spec.optimizer);
  const maskShapes = dropoutMaskShapes(plan);
  const labelShape = batchShape(plan.labelShape.length === 0 ? [] : plan.outputShape);
  const layout = parameterLayout(plan);
  const graph = new GraphBuilder(`${plan.spec.name}_train_${steps}_steps`);
  const rows = steps * batchSize;
  const inputs = splitRows(graph, graph.input(graphNames.input, [rows, ...plan.spec.inputShape]), steps, batchSize);
  const labels = splitRows(graph, graph.input(graphNames.labels, [rows, ...labelShape.slice(1)]), steps, batchSize);
  const masks = [...maskShapes].map(([layer, { shape }]) => [layer, splitRows(graph, graph.input(graphNames.dropoutMask(layer), [rows, ...shape]), steps, batchSize)] as const);
  const scalars = (name: string) =>
    splitRows(graph, graph.input(name, [steps]), steps, 1).map((value) => graph.node1('Reshape', [value, graph.constantInt64([], [0])], []));
  const learningRates = scalars(graphNames.learningRate);
  const stepNumbers = scalars(graphNames.step);
  let packed = graph.input(graphNames.parameters, [layout.total]);
  const buffers = bufferInputs(graph, plan);
  let state = optimizer.slots.map((slot) => graph.input(graphNames.state(slot.suffix), [layout.total]));
  const losses: Value[] = [];
  const metrics = new Map<string, Value[]>(plan.spec.metrics.map((metric) => [metric, []]));
  for (let index = 0; index < steps; index++) {
    const result = emitTrainStep(graph, plan, optimizer, {
      input: inputs[index]!,
      labels: labels[index]!,
      masks: new Map(masks.map(([layer, parts]) => [layer, parts[index]!])),
      packed,
      buffers,
      state,
      learningRate: learningRates[index]!,
      step: stepNumbers[index]!,
    });
    packed = result.packed;
    state = result.state;
    losses.push(result.loss);
    for (const [name, value] of result.metrics) metrics.get(name)!.push(value);
  }
  const stack = (values: Value[]) =>
    graph.node1('Concat', values.map((value) => graph.node1('Reshape', [value, graph.constantInt64([1])], [1])), [steps], 'float32', { axis: attribute.int(0) });
  graph.output(stack(losses), graphNames.loss);
  for (const [name, values] of metrics) graph.output(stack(values), graphNames.metric(name));
  graph.output(packed, graphNames.next(graphNames.parameters));
  optimizer.slots.forEach((slot, slotIndex) => graph.output(state[slotIndex] as Value, graphNames.next(graphNames.state(slot.suffix))));
  return graph.toModel();

}

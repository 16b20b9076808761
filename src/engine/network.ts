import type { Dimension, GraphBuilder, Value } from './graph.ts';
import { logSoftmax, relu, sigmoid, softmax, tanh } from './ops/activations.ts';
import { conv2d, maxPool2d } from './ops/convolution.ts';
import { add, mul } from './ops/elementwise.ts';
import { matmul } from './ops/matmul.ts';
import { flatten, reshape, transpose } from './ops/shape-ops.ts';
import type { ModelPlan } from './plan.ts';
import type { ActivationName } from './spec.ts';

export { logSoftmax };

export interface ForwardInputs {
  /** [batch, ...inputShape] in the user's channels-last notation. */
  input: Value;
  parameters: ReadonlyMap<string, Value>;
  /**
   * Present only in the train graph: per dropout layer, a mask of 0 and 1/(1 − rate) drawn by the
   * trainer's seeded RNG (so a resumed run draws the same masks, and the graph does one Mul).
   */
  dropoutMasks?: ReadonlyMap<string, Value>;
  /** Leave out the last layer's activation: graphs whose loss reads logits never use it. */
  skipFinalActivation?: boolean;
}

export interface ForwardResult {
  output: Value;
  /** The last layer's value before its activation: the logits that stable losses consume. */
  preActivation: Value;
}

function activate(graph: GraphBuilder, value: Value, activation: ActivationName, skip = false): Value {
  if (skip) return value;
  switch (activation) {
    case 'linear':
      return value;
    case 'relu':
      return graph.apply1(relu, [value], null);
    case 'sigmoid':
      return graph.apply1(sigmoid, [value], null);
    case 'tanh':
      return graph.apply1(tanh, [value], null);
    case 'softmax':
      return graph.apply1(softmax, [value], null);
  }
}

/** Mask shape and rate per dropout layer, in the internal layout used by the forward pass. */
export function dropoutMaskShapes(plan: ModelPlan): Map<string, { shape: number[]; rate: number }> {
  const shapes = new Map<string, { shape: number[]; rate: number }>();
  let channelsFirst = false;
  for (const layerPlan of plan.layers) {
    const { layer, inputShape } = layerPlan;
    if (layer.type === 'conv2d' || layer.type === 'maxPooling2d') channelsFirst = true;
    if (layer.type === 'flatten' || layer.type === 'dense') channelsFirst = false;
    if (layer.type === 'dropout' && layer.rate > 0) {
      const shape = channelsFirst && inputShape.length === 3 ? [inputShape[2]!, inputShape[0]!, inputShape[1]!] : inputShape;
      shapes.set(layer.name, { shape, rate: layer.rate });
    }
  }
  return shapes;
}

/**
 * The network's forward pass. Images stay NCHW between spatial layers (what ONNX Conv wants) and
 * return to channels-last before flatten, so flattened features are ordered as in Keras.
 */
export function buildForward(graph: GraphBuilder, plan: ModelPlan, inputs: ForwardInputs): ForwardResult {
  const lastLayer = plan.layers[plan.layers.length - 1]?.layer;
  let value = preprocess(graph, plan, inputs.input);
  let channelsFirst = false;
  let preActivation = value;
  const parameter = (name: string): Value => {
    const found = inputs.parameters.get(name);
    if (!found) throw new RangeError(`parameter ${name} missing from the graph`);
    return found;
  };
  const toChannelsLast = () => {
    if (!channelsFirst) return;
    value = graph.apply1(transpose, [value], { permutation: [0, 2, 3, 1] });
    channelsFirst = false;
  };
  for (const { layer, inputShape } of plan.layers) {
    preActivation = value;
    switch (layer.type) {
      case 'dense': {
        toChannelsLast();
        let result = graph.apply1(matmul, [value, parameter(`${layer.name}.kernel`)], null);
        if (layer.useBias) result = graph.apply1(add, [result, parameter(`${layer.name}.bias`)], null);
        preActivation = result;
        value = activate(graph, result, layer.activation, inputs.skipFinalActivation === true && layer === lastLayer);
        break;
      }
      case 'conv2d':
      case 'maxPooling2d': {
        if (!channelsFirst) {
          const [height, width] = inputShape as [number, number];
          value =
            inputShape.length === 3
              ? graph.apply1(transpose, [value], { permutation: [0, 3, 1, 2] })
              : graph.apply1(reshape, [value], { shape: ['batch', 1, height, width] });
          channelsFirst = true;
        }
        const window = {
          kernel: layer.type === 'conv2d' ? layer.kernelSize : layer.poolSize,
          strides: layer.strides,
          padding: layer.padding,
        } as const;
        if (layer.type === 'maxPooling2d') {
          value = graph.apply(maxPool2d, [value], window)[0] as Value;
          break;
        }
        let result = graph.apply1(conv2d, [value, parameter(`${layer.name}.kernel`)], window);
        if (layer.useBias) {
          const bias = graph.apply1(reshape, [parameter(`${layer.name}.bias`)], { shape: [layer.filters, 1, 1] });
          result = graph.apply1(add, [result, bias], null);
        }
        preActivation = result;
        value = activate(graph, result, layer.activation, inputs.skipFinalActivation === true && layer === lastLayer);
        break;
      }
      case 'flatten':
        toChannelsLast();
        value = value.shape.length > 2 ? graph.apply1(flatten, [value], null) : value;
        break;
      case 'dropout': {
        // Inverted dropout: the mask keeps with probability 1 − rate and already carries the 1/(1 − rate)
        // scale, so inference needs no change.
        const mask = inputs.dropoutMasks?.get(layer.name);
        if (mask) value = graph.apply1(mul, [value, mask], null);
        break;
      }
      case 'activation':
        value = activate(graph, value, layer.activation, inputs.skipFinalActivation === true && layer === lastLayer);
        break;
      case 'normalization': {
        // (x − mean) / √(variance + ε) over the last axis; the statistics are inputs, never differentiated.
        const centered = graph.node1('Sub', [value, parameter(`${layer.name}.mean`)], value.shape);
        const deviation = graph.node1('Sqrt', [graph.node1('Add', [parameter(`${layer.name}.variance`), graph.constantFloat([layer.epsilon])], [inputShape.at(-1)!])], [inputShape.at(-1)!]);
        value = graph.node1('Div', [centered, deviation], value.shape);
        break;
      }
    }
  }
  toChannelsLast();
  return { output: value, preActivation };
}

/** The spec's input preprocessing `x · scale + offset` as the graph's first nodes (none without it). */
function preprocess(graph: GraphBuilder, plan: ModelPlan, input: Value): Value {
  const preprocessing = plan.spec.preprocessing;
  if (preprocessing === undefined) return input;
  let value = input;
  // Differentiable ops, not bare nodes: the input-gradient graph (integrated gradients) must see
  // through the scaling to the raw input; training graphs never differentiate the input anyway.
  if (preprocessing.scale !== 1) value = graph.apply1(mul, [value, graph.constantFloat([preprocessing.scale])], null);
  if (preprocessing.offset !== 0) value = graph.apply1(add, [value, graph.constantFloat([preprocessing.offset])], null);
  return value;
}

export function batchShape(shape: readonly number[]): Dimension[] {
  return ['batch', ...shape];
}

import { windowAxis } from './ops/convolution.ts';
import { specError, type ActivationName, type InitializerName, type ResolvedLayer, type ResolvedSpec } from './spec.ts';

export interface ParameterSpec {
  /** `<layerName>.kernel` or `<layerName>.bias` (`.mean` / `.variance` for normalization), the safetensors tensor name. */
  name: string;
  shape: number[];
  initializer: InitializerName | 'ones';
  fanIn: number;
  fanOut: number;
  /**
   * False for statistics computed from the data (a normalization layer's mean and variance): they
   * are graph inputs of their own, outside the packed vector the optimizer updates.
   */
  trainable: boolean;
}

export interface LayerPlan {
  layer: ResolvedLayer;
  /** Per-sample shapes in the user's (channels-last) notation. */
  inputShape: number[];
  outputShape: number[];
  parameters: ParameterSpec[];
}

export interface ModelPlan {
  spec: ResolvedSpec;
  layers: LayerPlan[];
  parameters: ParameterSpec[];
  /** The trainable subset of `parameters`, in order: what the packed vector and the optimizer hold. */
  trainableParameters: ParameterSpec[];
  outputShape: number[];
  /** Labels per sample: [] for class indices, otherwise the output's shape. */
  labelShape: number[];
  finalActivation: ActivationName;
  parameterCount: number;
}

const product = (shape: readonly number[]) => shape.reduce((total, dimension) => total * dimension, 1);
const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function planLayer(layer: ResolvedLayer, index: number, inputShape: number[], previous: readonly LayerPlan[]): LayerPlan {
  const location = { path: `layers[${index}]`, layerIndex: index, layerName: layer.name };
  switch (layer.type) {
    case 'normalization': {
      // Its statistics are computed from the training data as loaded (after input preprocessing),
      // which is this layer's input only when nothing but flatten (a reordering) comes before it.
      const blocking = previous.find((plan) => plan.layer.type !== 'flatten');
      if (blocking !== undefined) {
        throw specError(location, 'type', 'a normalization layer before every layer other than flatten (its statistics come from the training data)', blocking.layer.type, `it after layer ${previous.indexOf(blocking)} (${blocking.layer.name}, ${blocking.layer.type})`);
      }
      const features = inputShape[inputShape.length - 1] as number;
      const statistic = (suffix: 'mean' | 'variance'): ParameterSpec => ({
        name: `${layer.name}.${suffix}`,
        shape: [features],
        initializer: suffix === 'mean' ? 'zeros' : 'ones',
        fanIn: features,
        fanOut: features,
        trainable: false,
      });
      return { layer, inputShape, outputShape: inputShape, parameters: [statistic('mean'), statistic('variance')] };
    }
    case 'dense': {
      if (inputShape.length !== 1) {
        throw specError(location, 'units', 'a flat input (add a flatten layer before this dense layer)', inputShape, `input shape ${shapeText(inputShape)}`);
      }
      const inputs = inputShape[0] as number;
      const parameters: ParameterSpec[] = [
        { name: `${layer.name}.kernel`, shape: [inputs, layer.units], initializer: layer.kernelInitializer, fanIn: inputs, fanOut: layer.units, trainable: true },
      ];
      if (layer.useBias) parameters.push({ name: `${layer.name}.bias`, shape: [layer.units], initializer: layer.biasInitializer, fanIn: inputs, fanOut: layer.units, trainable: true });
      return { layer, inputShape, outputShape: [layer.units], parameters };
    }
    case 'conv2d':
    case 'maxPooling2d': {
      if (inputShape.length !== 2 && inputShape.length !== 3) {
        throw specError(location, 'type', 'an image input [height, width] or [height, width, channels]', inputShape, `input shape ${shapeText(inputShape)}`);
      }
      const [height, width, channels = 1] = inputShape as [number, number, number?];
      const kernel = layer.type === 'conv2d' ? layer.kernelSize : layer.poolSize;
      if (layer.padding === 'valid' && (kernel[0] > height || kernel[1] > width)) {
        throw specError(location, layer.type === 'conv2d' ? 'kernelSize' : 'poolSize', `a window no larger than the input ${shapeText([height, width])}`, kernel);
      }
      const rows = windowAxis(height, kernel[0], layer.strides[0], layer.padding).output;
      const columns = windowAxis(width, kernel[1], layer.strides[1], layer.padding).output;
      if (layer.type === 'maxPooling2d') return { layer, inputShape, outputShape: [rows, columns, channels], parameters: [] };
      const receptive = kernel[0] * kernel[1];
      const parameters: ParameterSpec[] = [
        // ONNX/PyTorch layout [out, in, kh, kw]: what ORT's Conv consumes without a transpose.
        { name: `${layer.name}.kernel`, shape: [layer.filters, channels, kernel[0], kernel[1]], initializer: layer.kernelInitializer, fanIn: channels * receptive, fanOut: layer.filters * receptive, trainable: true },
      ];
      if (layer.useBias) parameters.push({ name: `${layer.name}.bias`, shape: [layer.filters], initializer: layer.biasInitializer, fanIn: channels * receptive, fanOut: layer.filters * receptive, trainable: true });
      return { layer, inputShape, outputShape: [rows, columns, layer.filters], parameters };
    }
    case 'flatten':
      return { layer, inputShape, outputShape: [product(inputShape)], parameters: [] };
    case 'dropout':
    case 'activation':
      return { layer, inputShape, outputShape: inputShape, parameters: [] };
  }
}

/** Walk the layers, inferring every shape, and check the loss fits the output. */
export function planModel(spec: ResolvedSpec): ModelPlan {
  const layers: LayerPlan[] = [];
  let shape = spec.inputShape;
  spec.layers.forEach((layer, index) => {
    const plan = planLayer(layer, index, shape, layers);
    layers.push(plan);
    shape = plan.outputShape;
  });
  const last = layers[layers.length - 1] as LayerPlan;
  const finalActivation: ActivationName =
    last.layer.type === 'dense' || last.layer.type === 'conv2d' || last.layer.type === 'activation' ? last.layer.activation : 'linear';
  const lossLocation = { path: 'compile' };
  if (shape.length !== 1) {
    throw specError(lossLocation, 'loss', 'a model whose output is flat (end with flatten and dense layers)', shape, `output shape ${shapeText(shape)}`);
  }
  const units = shape[0] as number;
  let labelShape = shape;
  switch (spec.loss) {
    case 'sparseCategoricalCrossentropy':
    case 'categoricalCrossentropy':
      if (units < 2) throw specError(lossLocation, 'loss', 'an output of at least 2 classes for a categorical loss', shape, `output shape ${shapeText(shape)}`);
      if (finalActivation !== 'softmax' && finalActivation !== 'linear') {
        throw specError(lossLocation, 'loss', `a final softmax (or linear, meaning logits) activation for ${spec.loss}`, finalActivation);
      }
      if (spec.loss === 'sparseCategoricalCrossentropy') labelShape = [];
      break;
    case 'binaryCrossentropy':
      if (finalActivation !== 'sigmoid' && finalActivation !== 'linear') {
        throw specError(lossLocation, 'loss', 'a final sigmoid (or linear, meaning logits) activation for binaryCrossentropy', finalActivation);
      }
      break;
    case 'meanSquaredError':
      break;
  }
  const parameters = layers.flatMap((plan) => plan.parameters);
  if (!parameters.some((parameter) => parameter.trainable)) {
    // Nothing for the optimizer to fit (and no graph to build around an empty parameter vector).
    throw specError({ path: 'spec' }, 'layers', 'at least one dense or conv2d layer (a model without trainable parameters has nothing to fit)', spec.layers.map((layer) => layer.type), `only ${spec.layers.map((layer) => layer.type).join(', ')} layers`);
  }
  return {
    spec,
    layers,
    parameters,
    trainableParameters: parameters.filter((parameter) => parameter.trainable),
    outputShape: shape,
    labelShape,
    finalActivation,
    parameterCount: parameters.reduce((total, parameter) => total + product(parameter.shape), 0),
  };
}

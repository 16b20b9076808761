/**
 * Static cost of an ONNX model per item, from its graph: parameters (initializer elements) and
 * floating-point operations, counted with a small shape propagation at batch size 1.
 *
 * Convention (docs/models.md): a multiply-accumulate is 2 operations, so MatMul, Gemm and Conv count
 * 2 · MACs (their integer forms MatMulInteger and ConvInteger alike), plus 1 per output element for
 * a bias; elementwise arithmetic and activations count 1 per output element; Softmax and LogSoftmax
 * 3 (exp, sum, divide); BatchNormalization 2 (scale, shift); pooling the window size per output
 * element; shape-only ops (Reshape, Flatten, Transpose, Cast, Identity, Dropout, …) 0. A node whose
 * output shape cannot be worked out stops the count below it: those nodes are listed, and `complete`
 * is false, rather than a figure being guessed.
 */
import { InvalidOnnxError } from './external-data.ts';
import { ProtobufDecodeError } from './protobuf-reader.ts';
import { readModelView, type NodeView, type TensorView } from './model-fields.ts';

export interface GraphCost {
  parameters: number;
  /** Operations per item (batch size 1). */
  flopsPerItem: number;
  /** False when some nodes could not be counted (`uncountedNodes`). */
  complete: boolean;
  uncountedNodes: { node: string; opType: string }[];
}

type Shape = number[];

const unary = new Set([
  'Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Erf', 'Gelu', 'LeakyRelu', 'Elu', 'Selu', 'Softplus',
  'Softsign', 'HardSigmoid', 'HardSwish', 'Clip', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sign', 'PRelu', 'Not',
]);
const free = new Set(['Cast', 'Identity', 'Dropout']);
const binary = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Equal', 'Less', 'Greater', 'And', 'Or', 'Where']);

function elements(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

function broadcast(shapes: readonly Shape[]): Shape | undefined {
  const rank = Math.max(...shapes.map((shape) => shape.length));
  const out: number[] = [];
  for (let axis = 0; axis < rank; axis++) {
    let size = 1;
    for (const shape of shapes) {
      const dimension = shape[shape.length - rank + axis] ?? 1;
      if (dimension !== 1) {
        if (size !== 1 && size !== dimension) return undefined;
        size = dimension;
      }
    }
    out.push(size);
  }
  return out;
}

/** Output spatial sizes of a convolution or pooling window (ceil_mode ignored). */
function windowOutput(node: NodeView, input: Shape, kernel: readonly number[]): Shape | undefined {
  const spatial = input.slice(2);
  if (spatial.length !== kernel.length) return undefined;
  const strides = node.attributes.get('strides')?.ints ?? kernel.map(() => 1);
  const dilations = node.attributes.get('dilations')?.ints ?? kernel.map(() => 1);
  const pads = node.attributes.get('pads')?.ints ?? kernel.map(() => 0).concat(kernel.map(() => 0));
  const autoPad = node.attributes.get('auto_pad')?.text ?? 'NOTSET';
  return spatial.map((size, axis) => {
    const stride = strides[axis] ?? 1;
    const extent = (dilations[axis] ?? 1) * (kernel[axis]! - 1) + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(size / stride);
    if (autoPad === 'VALID') return Math.floor((size - extent) / stride) + 1;
    return Math.floor((size + (pads[axis] ?? 0) + (pads[axis + kernel.length] ?? 0) - extent) / stride) + 1;
  });
}

function int64Values(tensor: TensorView | undefined): number[] | undefined {
  if (tensor === undefined || tensor.dataType !== 7 || tensor.rawData === undefined) return undefined;
  const view = new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, tensor.rawData.byteLength);
  const values: number[] = [];
  for (let offset = 0; offset + 8 <= tensor.rawData.byteLength; offset += 8) values.push(Number(view.getBigInt64(offset, true)));
  return values;
}

function matmulShape(left: Shape, right: Shape): { shape: Shape; macs: number } | undefined {
  const a = left.length === 1 ? [1, left[0]!] : left;
  const b = right.length === 1 ? [right[0]!, 1] : right;
  if (a.length < 2 || b.length < 2 || a.at(-1) !== b.at(-2)) return undefined;
  const batch = broadcast([a.slice(0, -2), b.slice(0, -2)]);
  if (batch === undefined) return undefined;
  const shape = [...batch, a.at(-2)!, b.at(-1)!];
  const macs = elements(shape) * a.at(-1)!;
  if (left.length === 1) shape.splice(shape.length - 2, 1);
  if (right.length === 1) shape.pop();
  return { shape, macs };
}

/**
 * `inputShapes`: each graph input's shape with the batch dimension (the first -1) set to 1; a shape
 * with other unknown dimensions leaves the nodes it feeds uncounted.
 */
export function graphCost(modelBytes: Uint8Array, inputShapes: ReadonlyMap<string, readonly number[]>): GraphCost {
  let model;
  try {
    model = readModelView(modelBytes);
  } catch (error) {
    // A stored model was validated at upload; a file this reader cannot walk is counted as nothing.
    if (error instanceof InvalidOnnxError || error instanceof ProtobufDecodeError) return { parameters: 0, flopsPerItem: 0, complete: false, uncountedNodes: [] };
    throw error;
  }
  const { graph } = model;
  const initializers = new Map(graph.initializers.map(({ tensor }) => [tensor.name, tensor]));
  const shapes = new Map<string, Shape>();
  let parameters = 0;
  for (const tensor of initializers.values()) {
    shapes.set(tensor.name, [...tensor.dims]);
    // Shapes, indices and axes (int64) are not parameters.
    if (tensor.dataType !== 7) parameters += elements(tensor.dims);
  }
  for (const [name, shape] of inputShapes) if (!shapes.has(name) && shape.every((dimension) => dimension >= 0)) shapes.set(name, [...shape]);

  let flops = 0;
  const uncountedNodes: { node: string; opType: string }[] = [];
  for (const { node } of graph.nodes) {
    const inputs = node.inputs.map((name) => (name === '' ? undefined : shapes.get(name)));
    const first = inputs[0];
    let output: Shape | undefined;
    let cost = 0;
    const op = node.domain === '' ? node.opType : `${node.domain}.${node.opType}`;
    if (first !== undefined) {
      if (op === 'MatMul' || op === 'MatMulInteger') {
        const result = inputs[1] === undefined ? undefined : matmulShape(first, inputs[1]);
        if (result !== undefined) {
          output = result.shape;
          cost = 2 * result.macs;
        }
      } else if (op === 'Gemm' && inputs[1] !== undefined && first.length === 2 && inputs[1].length === 2) {
        const [m, k] = (node.attributes.get('transA')?.int ?? 0) === 1 ? [first[1]!, first[0]!] : [first[0]!, first[1]!];
        const n = (node.attributes.get('transB')?.int ?? 0) === 1 ? inputs[1][0]! : inputs[1][1]!;
        output = [m, n];
        cost = 2 * m * k * n + (node.inputs[2] ? m * n : 0);
      } else if ((op === 'Conv' || op === 'ConvInteger') && inputs[1] !== undefined && first.length >= 3) {
        const weight = inputs[1];
        const spatial = windowOutput(node, first, node.attributes.get('kernel_shape')?.ints ?? weight.slice(2));
        if (spatial !== undefined) {
          output = [first[0]!, weight[0]!, ...spatial];
          cost = 2 * elements(output) * elements(weight.slice(1)) + (op === 'Conv' && node.inputs[2] ? elements(output) : 0);
        }
      } else if ((op === 'MaxPool' || op === 'AveragePool') && first.length >= 3) {
        const kernel = node.attributes.get('kernel_shape')?.ints ?? [];
        const spatial = windowOutput(node, first, kernel);
        if (spatial !== undefined) {
          output = [first[0]!, first[1]!, ...spatial];
          cost = elements(output) * elements(kernel);
        }
      } else if ((op === 'GlobalAveragePool' || op === 'GlobalMaxPool') && first.length >= 3) {
        output = [first[0]!, first[1]!, ...first.slice(2).map(() => 1)];
        cost = elements(first);
      } else if (op === 'Flatten') {
        const axis = node.attributes.get('axis')?.int ?? 1;
        const split = axis < 0 ? first.length + axis : axis;
        output = [elements(first.slice(0, split)), elements(first.slice(split))];
      } else if (op === 'Reshape') {
        const target = int64Values(initializers.get(node.inputs[1] ?? ''));
        if (target !== undefined) {
          const resolved = target.map((dimension, axis) => (dimension === 0 ? first[axis]! : dimension));
          const known = elements(resolved.filter((dimension) => dimension !== -1));
          output = resolved.map((dimension) => (dimension === -1 ? elements(first) / known : dimension));
        }
      } else if (op === 'Transpose') {
        const perm = node.attributes.get('perm')?.ints ?? first.map((_, axis) => first.length - 1 - axis);
        output = perm.map((axis) => first[axis]!);
      } else if (unary.has(op)) {
        output = [...first];
        cost = elements(first);
      } else if (free.has(op)) output = [...first];
      else if (binary.has(op) && inputs.every((shape) => shape !== undefined)) {
        output = broadcast(inputs as Shape[]);
        if (output !== undefined) cost = elements(output);
      } else if (op === 'Softmax' || op === 'LogSoftmax') {
        output = [...first];
        cost = 3 * elements(first);
      } else if (op === 'BatchNormalization') {
        output = [...first];
        cost = 2 * elements(first);
      } else if (op === 'DynamicQuantizeLinear') {
        output = [...first];
        cost = elements(first);
        if (node.outputs[1]) shapes.set(node.outputs[1], []);
        if (node.outputs[2]) shapes.set(node.outputs[2], []);
      } else if (op === 'Concat' && inputs.every((shape) => shape !== undefined)) {
        const axis = node.attributes.get('axis')?.int ?? 0;
        const split = axis < 0 ? first.length + axis : axis;
        output = [...first];
        output[split] = (inputs as Shape[]).reduce((total, shape) => total + (shape[split] ?? 0), 0);
      }
    }
    if (output === undefined || output.some((dimension) => !Number.isFinite(dimension) || dimension < 0)) {
      uncountedNodes.push({ node: node.name || node.outputs[0] || node.opType, opType: op });
      continue;
    }
    flops += cost;
    if (node.outputs[0]) shapes.set(node.outputs[0], output);
  }
  return { parameters, flopsPerItem: flops, complete: uncountedNodes.length === 0, uncountedNodes: uncountedNodes.slice(0, 50) };
}

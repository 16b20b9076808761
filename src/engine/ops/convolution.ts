import { attribute, type Dimension, type GraphBuilder, type OpDefinition, type Value } from '../graph.ts';
import { runtimeShape } from './broadcast.ts';

export interface Window2d {
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly padding: 'same' | 'valid';
}

/** Output size and [begin, end] padding of one spatial axis, with Keras' 'same'/'valid' rules. */
export function windowAxis(size: number, kernel: number, stride: number, padding: 'same' | 'valid') {
  if (padding === 'valid') {
    return { output: Math.floor((size - kernel) / stride) + 1, begin: 0, end: 0 };
  }
  const output = Math.ceil(size / stride);
  const total = Math.max((output - 1) * stride + kernel - size, 0);
  const begin = Math.floor(total / 2);
  return { output, begin, end: total - begin };
}

export function windowGeometry(shape: readonly Dimension[], window: Window2d) {
  const height = shape[2] as number;
  const width = shape[3] as number;
  const rows = windowAxis(height, window.kernel[0], window.strides[0], window.padding);
  const columns = windowAxis(width, window.kernel[1], window.strides[1], window.padding);
  return { height, width, rows, columns, pads: [rows.begin, columns.begin, rows.end, columns.end] };
}

function transposeChannelsAndBatch(graph: GraphBuilder, value: Value): Value {
  const [a, b, c, d] = value.shape;
  return graph.node1('Transpose', [value], [b as number, a as number, c as number, d as number], 'float32', {
    perm: attribute.ints([1, 0, 2, 3]),
  });
}

/** x [batch, C, H, W] ⊛ w [O, C, kh, kw] → [batch, O, H', W'] (NCHW, as ONNX Conv). */
export const conv2d: OpDefinition<Window2d> = {
  name: 'conv2d',
  emit(graph, [x, w], window) {
    const input = x as Value;
    const kernel = w as Value;
    const { rows, columns, pads } = windowGeometry(input.shape, window);
    return [
      graph.node1('Conv', [input, kernel], [input.shape[0] as Dimension, kernel.shape[0] as number, rows.output, columns.output], 'float32', {
        kernel_shape: attribute.ints(window.kernel),
        strides: attribute.ints(window.strides),
        pads: attribute.ints(pads),
      }),
    ];
  },
  gradient(graph, { inputs: [x, w], attributes: window }, [gradient]) {
    const input = x as Value;
    const kernel = w as Value;
    const upstream = gradient as Value;
    const { height, width, rows, columns, pads } = windowGeometry(input.shape, window);
    const [strideRows, strideColumns] = window.strides;
    const [kernelRows, kernelColumns] = window.kernel;
    let inputGradient: Value | undefined;
    if (input.differentiable) {
      // ConvTranspose is the adjoint of Conv; output_padding recovers rows/columns the stride dropped.
      const outputPadding = [
        height - (strideRows * (rows.output - 1) + kernelRows - pads[0]! - pads[2]!),
        width - (strideColumns * (columns.output - 1) + kernelColumns - pads[1]! - pads[3]!),
      ];
      inputGradient = graph.node1('ConvTranspose', [upstream, kernel], input.shape, 'float32', {
        kernel_shape: attribute.ints(window.kernel),
        strides: attribute.ints(window.strides),
        pads: attribute.ints(pads),
        output_padding: attribute.ints(outputPadding),
      });
    }
    // An input-gradient graph (explanations) holds the kernel fixed: no kernel gradient to build.
    if (!kernel.differentiable) return [inputGradient, undefined];
    // dW[o,c,i,j] = Σ_{n,y,x} g[n,o,y,x]·x[n,c,y·s+i,x·s+j]: a convolution of x (batch as channels)
    // with g as the kernel, dilated by the forward stride.
    const inputAsChannels = transposeChannelsAndBatch(graph, input);
    const gradientAsKernel = transposeChannelsAndBatch(graph, upstream);
    const fullRows = height + pads[0]! + pads[2]! - strideRows * (rows.output - 1);
    const fullColumns = width + pads[1]! + pads[3]! - strideColumns * (columns.output - 1);
    let kernelGradient = graph.node1(
      'Conv',
      [inputAsChannels, gradientAsKernel],
      [input.shape[1] as number, kernel.shape[0] as number, fullRows, fullColumns],
      'float32',
      {
        kernel_shape: attribute.ints([rows.output, columns.output]),
        dilations: attribute.ints(window.strides),
        pads: attribute.ints(pads),
      },
    );
    if (fullRows !== kernelRows || fullColumns !== kernelColumns) {
      kernelGradient = graph.node1(
        'Slice',
        [kernelGradient, graph.constantInt64([0, 0]), graph.constantInt64([kernelRows, kernelColumns]), graph.constantInt64([2, 3])],
        [input.shape[1] as number, kernel.shape[0] as number, kernelRows, kernelColumns],
      );
    }
    return [inputGradient, transposeChannelsAndBatch(graph, kernelGradient)];
  },
};

/** Max pooling over NCHW; the gradient routes each output's gradient to the input it took. */
export const maxPool2d: OpDefinition<Window2d> = {
  name: 'maxPool2d',
  emit(graph, [x], window) {
    const input = x as Value;
    const { rows, columns, pads } = windowGeometry(input.shape, window);
    const outputShape: Dimension[] = [input.shape[0] as Dimension, input.shape[1] as number, rows.output, columns.output];
    return graph.node(
      'MaxPool',
      [input],
      [
        { shape: outputShape, type: 'float32' },
        { shape: outputShape, type: 'int64' },
      ],
      {
        kernel_shape: attribute.ints(window.kernel),
        strides: attribute.ints(window.strides),
        pads: attribute.ints(pads),
      },
    );
  },
  gradient(graph, { inputs: [x], outputs: [, indices] }, [gradient]) {
    const input = x as Value;
    // ONNX MaxPool indices are positions in the flattened input (across batch and channels).
    const flatShape = graph.constantInt64([-1]);
    const size = graph.node1('Reshape', [graph.node1('Size', [input], [], 'int64'), graph.constantInt64([1])], [1], 'int64');
    const zeros = graph.node1('ConstantOfShape', [size], ['batch'], 'float32', {
      value: attribute.tensor({ name: 'zero', dataType: 1, dims: [1], raw: new Uint8Array(4) }),
    });
    const flatIndices = graph.node1('Reshape', [indices as Value, flatShape], ['batch'], 'int64');
    const flatGradient = graph.node1('Reshape', [gradient as Value, flatShape], ['batch']);
    const scattered = graph.node1('ScatterElements', [zeros, flatIndices, flatGradient], ['batch'], 'float32', {
      axis: attribute.int(0),
      reduction: attribute.string('add'),
    });
    return [graph.node1('Reshape', [scattered, runtimeShape(graph, input)], input.shape)];
  },
};

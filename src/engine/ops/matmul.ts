import { attribute, type OpDefinition, type Value } from '../graph.ts';

/** x [batch, K] · w [K, M]: the dense layer's product, kernels laid out [in, out] as in Keras. */
export const matmul: OpDefinition<null> = {
  name: 'matmul',
  emit(graph, [x, w]) {
    const left = x as Value;
    const right = w as Value;
    const [rows, inner] = left.shape;
    if (left.shape.length !== 2 || right.shape.length !== 2 || inner !== right.shape[0]) {
      throw new RangeError(`matmul needs [n, k]·[k, m], got [${left.shape.join(', ')}]·[${right.shape.join(', ')}]`);
    }
    return [graph.node1('MatMul', [left, right], [rows as number, right.shape[1] as number])];
  },
  gradient(graph, { inputs: [x, w] }, [gradient]) {
    const upstream = gradient as Value;
    const left = x as Value;
    const right = w as Value;
    // Gemm's transpose flags avoid materialising transposed copies of the operands.
    return [
      left.differentiable
        ? graph.node1('Gemm', [upstream, right], left.shape, 'float32', { transB: attribute.int(1) })
        : undefined,
      right.differentiable
        ? graph.node1('Gemm', [left, upstream], right.shape, 'float32', { transA: attribute.int(1) })
        : undefined,
    ];
  },
};

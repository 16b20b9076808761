import { attribute, elementCount, type Dimension, type OpDefinition, type Value } from '../graph.ts';
import { runtimeShape } from './broadcast.ts';

/** [batch, d1, d2, …] → [batch, d1·d2·…], row-major like Keras' Flatten. */
export const flatten: OpDefinition<null> = {
  name: 'flatten',
  emit(graph, [x]) {
    const input = x as Value;
    const features = elementCount(input.shape.slice(1));
    if (features === undefined) throw new RangeError('flatten needs static feature dimensions');
    return [graph.node1('Flatten', [input], [input.shape[0] as number, features], 'float32', { axis: attribute.int(1) })];
  },
  gradient: (graph, { inputs: [x] }, [gradient]) => [
    graph.node1('Reshape', [gradient as Value, runtimeShape(graph, x as Value)], (x as Value).shape),
  ],
};

export const transpose: OpDefinition<{ permutation: readonly number[] }> = {
  name: 'transpose',
  emit(graph, [x], { permutation }) {
    const input = x as Value;
    const shape = permutation.map((axis) => input.shape[axis] as number);
    return [graph.node1('Transpose', [input], shape, 'float32', { perm: attribute.ints(permutation) })];
  },
  gradient(graph, { inputs: [x], attributes: { permutation } }, [gradient]) {
    const inverse = permutation.map((_, index) => permutation.indexOf(index));
    return [graph.node1('Transpose', [gradient as Value], (x as Value).shape, 'float32', { perm: attribute.ints(inverse) })];
  },
};

/**
 * Mean of every element, as a scalar. Its gradient is the scalar g/count, the same for every
 * element: returned unexpanded, since consumers broadcast it (or `gradients` expands it for them).
 */
export const mean: OpDefinition<null> = {
  name: 'mean',
  emit: (graph, [x]) => [graph.node1('ReduceMean', [x as Value], [], 'float32', { keepdims: attribute.int(0) })],
  gradient(graph, { inputs: [x] }, [gradient]) {
    const input = x as Value;
    const staticCount = elementCount(input.shape);
    const upstreamConstant = graph.scalarConstant(gradient as Value);
    // With a static shape and a constant upstream (the loss seed 1), the whole gradient is a constant.
    if (staticCount !== undefined && upstreamConstant !== undefined) return [graph.constantFloat([upstreamConstant / staticCount])];
    const count =
      staticCount !== undefined
        ? graph.constantFloat([staticCount])
        : graph.node1('Cast', [graph.node1('Size', [input], [], 'int64')], [], 'float32', { to: attribute.int(1) });
    return [graph.node1('Div', [gradient as Value, count], [])];
  },
};

/** Reshape each sample to a static shape; a leading 'batch' stays symbolic (emitted as -1). */
export const reshape: OpDefinition<{ shape: readonly Dimension[] }> = {
  name: 'reshape',
  emit: (graph, [x], { shape }) => [
    graph.node1('Reshape', [x as Value, graph.constantInt64(shape.map((dimension) => (dimension === 'batch' ? -1 : dimension)))], shape),
  ],
  gradient(graph, { inputs: [x] }, [gradient]) {
    const input = x as Value;
    const shape = input.shape.every((dimension) => dimension !== 'batch')
      ? graph.constantInt64(input.shape as number[])
      : runtimeShape(graph, input);
    return [graph.node1('Reshape', [gradient as Value, shape], input.shape)];
  },
};

/**
 * Sum of every element, as a scalar. Its gradient is the upstream scalar itself for every element,
 * returned unexpanded like `mean`'s.
 */
export const sumAll: OpDefinition<null> = {
  name: 'sumAll',
  emit: (graph, [x]) => [graph.node1('ReduceSum', [x as Value], [], 'float32', { keepdims: attribute.int(0) })],
  gradient: (_graph, _context, [gradient]) => [gradient as Value],
};

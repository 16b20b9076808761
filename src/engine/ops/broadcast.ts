import { attribute, type Dimension, type GraphBuilder, type Value } from '../graph.ts';

/**
 * The gradient of a broadcasting op arrives in the output's shape; sum it back down to the
 * shape of the input that was broadcast (e.g. a bias [M] added to [batch, M]).
 */
export function reduceToShape(graph: GraphBuilder, gradient: Value, target: Value): Value {
  const outputShape = gradient.shape;
  const targetShape = target.shape;
  const leading = outputShape.length - targetShape.length;
  const axes: number[] = [];
  for (let index = 0; index < outputShape.length; index++) {
    if (index < leading) axes.push(index);
    else if (targetShape[index - leading] === 1 && outputShape[index] !== 1) axes.push(index);
  }
  if (axes.length === 0) return gradient;
  const keptShape: Dimension[] = outputShape.map((dimension, index) => (axes.includes(index) ? 1 : dimension));
  const summed = graph.node1('ReduceSum', [gradient, graph.constantInt64(axes)], keptShape, 'float32', {
    keepdims: attribute.int(1),
  });
  if (leading === 0) return summed;
  const staticShape = targetShape.every((dimension) => dimension !== 'batch');
  const shape = staticShape
    ? graph.constantInt64(targetShape as number[])
    : graph.node1('Shape', [target], [targetShape.length], 'int64');
  return graph.node1('Reshape', [summed, shape], targetShape);
}

/** Run-time shape of a value, for reshapes that involve the symbolic batch dimension. */
export function runtimeShape(graph: GraphBuilder, value: Value): Value {
  return graph.node1('Shape', [value], [value.shape.length], 'int64');
}

import { broadcastShapes, type OpDefinition, type Value } from '../graph.ts';
import { reduceToShape } from './broadcast.ts';

function binary(name: string, onnxOp: string, gradient: OpDefinition<null>['gradient']): OpDefinition<null> {
  return {
    name,
    emit: (graph, [left, right]) => [graph.node1(onnxOp, [left as Value, right as Value], broadcastShapes((left as Value).shape, (right as Value).shape))],
    gradient,
  };
}

// A fixed operand (a baked-in bias in an input-gradient graph) gets no gradient nodes.
export const add = binary('add', 'Add', (graph, { inputs: [left, right] }, [gradient]) => [
  (left as Value).differentiable ? reduceToShape(graph, gradient as Value, left as Value) : undefined,
  (right as Value).differentiable ? reduceToShape(graph, gradient as Value, right as Value) : undefined,
]);

export const sub = binary('sub', 'Sub', (graph, { inputs: [left, right] }, [gradient]) => {
  const upstream = gradient as Value;
  const negated = (right as Value).differentiable ? graph.node1('Neg', [upstream], upstream.shape) : upstream;
  return [
    (left as Value).differentiable ? reduceToShape(graph, upstream, left as Value) : undefined,
    (right as Value).differentiable ? reduceToShape(graph, negated, right as Value) : undefined,
  ];
});

export const mul: OpDefinition<null> = {
  ...binary('mul', 'Mul', (graph, { inputs: [left, right] }, [gradient]) => {
    const upstream = gradient as Value;
    const a = left as Value;
    const b = right as Value;
    return [
      a.differentiable ? reduceToShape(graph, graph.node1('Mul', [upstream, b], broadcastShapes(upstream.shape, b.shape)), a) : undefined,
      b.differentiable ? reduceToShape(graph, graph.node1('Mul', [upstream, a], broadcastShapes(upstream.shape, a.shape)), b) : undefined,
    ];
  }),
  acceptsScalarGradient: true,
};

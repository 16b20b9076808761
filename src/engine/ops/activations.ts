import { attribute, type OpDefinition, type Value } from '../graph.ts';

export const relu: OpDefinition<null> = {
  name: 'relu',
  emit: (graph, [x]) => [graph.node1('Relu', [x as Value], (x as Value).shape)],
  gradient(graph, { outputs: [y] }, [gradient]) {
    const output = y as Value;
    const positive = graph.node1('Greater', [output, graph.constantFloat([0])], output.shape, 'bool');
    return [graph.node1('Where', [positive, gradient as Value, graph.constantFloat([0])], output.shape)];
  },
};

export const sigmoid: OpDefinition<null> = {
  name: 'sigmoid',
  emit: (graph, [x]) => [graph.node1('Sigmoid', [x as Value], (x as Value).shape)],
  gradient(graph, { outputs: [y] }, [gradient]) {
    const output = y as Value;
    const oneMinus = graph.node1('Sub', [graph.constantFloat([1]), output], output.shape);
    const slope = graph.node1('Mul', [output, oneMinus], output.shape);
    return [graph.node1('Mul', [gradient as Value, slope], output.shape)];
  },
};

export const tanh: OpDefinition<null> = {
  name: 'tanh',
  emit: (graph, [x]) => [graph.node1('Tanh', [x as Value], (x as Value).shape)],
  gradient(graph, { outputs: [y] }, [gradient]) {
    const output = y as Value;
    const squared = graph.node1('Mul', [output, output], output.shape);
    const slope = graph.node1('Sub', [graph.constantFloat([1]), squared], output.shape);
    return [graph.node1('Mul', [gradient as Value, slope], output.shape)];
  },
};

/** Softmax over the last axis. dx = y ⊙ (g − Σ(g ⊙ y)). */
export const softmax: OpDefinition<null> = {
  name: 'softmax',
  emit: (graph, [x]) => [graph.node1('Softmax', [x as Value], (x as Value).shape, 'float32', { axis: attribute.int(-1) })],
  gradient(graph, { outputs: [y] }, [gradient]) {
    const output = y as Value;
    const upstream = gradient as Value;
    const product = graph.node1('Mul', [upstream, output], output.shape);
    const keptShape = [...output.shape.slice(0, -1), 1];
    const summed = graph.node1('ReduceSum', [product, graph.constantInt64([-1])], keptShape, 'float32', {
      keepdims: attribute.int(1),
    });
    const centred = graph.node1('Sub', [upstream, summed], output.shape);
    return [graph.node1('Mul', [output, centred], output.shape)];
  },
};

/** LogSoftmax over the last axis. dx = g − softmax(x) · Σg. */
export const logSoftmax: OpDefinition<null> = {
  name: 'logSoftmax',
  emit: (graph, [x]) => [graph.node1('LogSoftmax', [x as Value], (x as Value).shape, 'float32', { axis: attribute.int(-1) })],
  gradient(graph, { outputs: [y] }, [gradient]) {
    const output = y as Value;
    const upstream = gradient as Value;
    const probabilities = graph.node1('Exp', [output], output.shape);
    const keptShape = [...output.shape.slice(0, -1), 1];
    const summed = graph.node1('ReduceSum', [upstream, graph.constantInt64([-1])], keptShape, 'float32', {
      keepdims: attribute.int(1),
    });
    const scaled = graph.node1('Mul', [probabilities, summed], output.shape);
    return [graph.node1('Sub', [upstream, scaled], output.shape)];
  },
};

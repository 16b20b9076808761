import { attribute, type OpDefinition, type Value } from '../graph.ts';

/**
 * Per-sample −Σ t·log softmax(z) from logits, via LogSoftmax for stability.
 * Outputs: [loss per sample, log-probabilities]. d/dz = (softmax(z)·Σt − t) · g.
 */
export const softmaxCrossEntropy: OpDefinition<{ oneHotTargets: boolean }> = {
  name: 'softmaxCrossEntropy',
  acceptsScalarGradient: true,
  emit(graph, [logits, targets]) {
    const z = logits as Value;
    const logProbabilities = graph.node1('LogSoftmax', [z], z.shape, 'float32', { axis: attribute.int(-1) });
    const weighted = graph.node1('Mul', [logProbabilities, targets as Value], z.shape);
    const summed = graph.node1('ReduceSum', [weighted, graph.constantInt64([-1])], z.shape.slice(0, -1), 'float32', {
      keepdims: attribute.int(0),
    });
    return [graph.node1('Neg', [summed], summed.shape), logProbabilities];
  },
  gradient(graph, { inputs: [, targets], outputs: [, logProbabilities], attributes: { oneHotTargets } }, [gradient]) {
    const logProbs = logProbabilities as Value;
    const t = targets as Value;
    const upstream = gradient as Value;
    const keptShape = [...logProbs.shape.slice(0, -1), 1];
    const probabilities = graph.node1('Exp', [logProbs], logProbs.shape);
    // Σt is 1 for one-hot targets, so the general softmax·Σt − t reduces to softmax − t.
    const scaled = oneHotTargets
      ? probabilities
      : graph.node1('Mul', [probabilities, graph.node1('ReduceSum', [t, graph.constantInt64([-1])], keptShape, 'float32', { keepdims: attribute.int(1) })], logProbs.shape);
    const difference = graph.node1('Sub', [scaled, t], logProbs.shape);
    const perSample = upstream.shape.length === 0 ? upstream : graph.node1('Unsqueeze', [upstream, graph.constantInt64([-1])], keptShape);
    return [graph.node1('Mul', [difference, perSample], logProbs.shape), undefined];
  },
};

/**
 * Elementwise binary cross-entropy from logits: max(z,0) − z·t + log(1 + e^−|z|), which never
 * takes the log of 0 or overflows exp. d/dz = (σ(z) − t) · g.
 */
export const sigmoidCrossEntropy: OpDefinition<null> = {
  name: 'sigmoidCrossEntropy',
  acceptsScalarGradient: true,
  emit(graph, [logits, targets]) {
    const z = logits as Value;
    const positivePart = graph.node1('Relu', [z], z.shape);
    const product = graph.node1('Mul', [z, targets as Value], z.shape);
    const negativeMagnitude = graph.node1('Neg', [graph.node1('Abs', [z], z.shape)], z.shape);
    const softplus = graph.node1('Softplus', [negativeMagnitude], z.shape);
    return [graph.node1('Add', [graph.node1('Sub', [positivePart, product], z.shape), softplus], z.shape)];
  },
  gradient(graph, { inputs: [logits, targets] }, [gradient]) {
    const z = logits as Value;
    const probabilities = graph.node1('Sigmoid', [z], z.shape);
    const difference = graph.node1('Sub', [probabilities, targets as Value], z.shape);
    return [graph.node1('Mul', [difference, gradient as Value], z.shape), undefined];
  },
};

/**
 * The gradient of a model's output with respect to its INPUT, as an ONNX graph: what integrated
 * gradients (src/explain/) integrates. Training differentiates the loss with respect to the
 * parameters; here the weights are baked in as constants and the input is the differentiable root.
 */
import { weightInitializers } from './compile.ts';
import { GraphBuilder, type Value } from './graph.ts';
import { batchShape, buildForward } from './network.ts';
import { mul } from './ops/elementwise.ts';
import { sumAll } from './ops/shape-ops.ts';
import type { ModelPlan } from './plan.ts';
import type { OnnxModel } from '../onnx/model.ts';

/** Names of the input-gradient graph's inputs and outputs. */
export const inputGradientNames = {
  input: 'input',
  /** [batch, ...outputShape]: which output elements (and with what weight) each row differentiates. */
  targetWeights: 'target_weights',
  output: 'output',
  gradient: 'input_gradient',
} as const;

/**
 * Inputs: `input` [batch, ...inputShape] and `target_weights` [batch, ...outputShape]. Outputs: the
 * model's `output` and `input_gradient` [batch, ...inputShape], row r holding
 * d(Σ_j output[r, j] · target_weights[r, j]) / d input[r]. Rows never mix (the network has no
 * cross-row op at inference), so the sum over the batch gives each row its own gradient and the
 * model manager may merge requests along the batch axis.
 */
export function exportInputGradientModel(plan: ModelPlan, weights: ReadonlyMap<string, Float32Array>): OnnxModel {
  const graph = new GraphBuilder(`${plan.spec.name}_input_gradient`);
  const input = graph.input(inputGradientNames.input, batchShape(plan.spec.inputShape), 'float32', true);
  const targetWeights = graph.input(inputGradientNames.targetWeights, batchShape(plan.outputShape));
  const parameters = weightInitializers(graph, plan, weights);
  const forward = buildForward(graph, plan, { input, parameters });
  const weighted = graph.apply1(mul, [forward.output, targetWeights], null);
  const total = graph.apply1(sumAll, [weighted], null);
  const [gradient] = graph.gradients(total, [input]) as [Value];
  graph.output(forward.output, inputGradientNames.output);
  graph.output(gradient, inputGradientNames.gradient);
  return graph.toModel({ 'aiaas.graph': 'input-gradient' });
}

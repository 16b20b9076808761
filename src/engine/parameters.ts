/**
 * Parameter counts from a model plan, and the checks that use them, all from shapes alone: nothing
 * here allocates a weight. The server runs them before it builds a network from a spec (a training
 * job, an uploaded saved model), so a spec asking for billions of parameters is refused while it
 * is still a few bytes of JSON.
 */
import { readSafetensorsHeader } from '../data/safetensors.ts';
import { AiaasError } from '../errors.ts';
import { planModel, type ModelPlan } from './plan.ts';
import { resolveSpec } from './spec.ts';

export interface LayerParameterCount {
  layerIndex: number;
  layerName: string;
  layerType: string;
  /** Sum over the layer's tensors; may exceed 2^53 (then approximate) or be Infinity for absurd specs. */
  parameters: number;
  tensors: { name: string; shape: number[] }[];
}

function elements(shape: readonly number[]): number {
  return shape.reduce((total, dimension) => total * dimension, 1);
}

/** Every layer's parameter count, in spec order (layers without parameters count 0). */
export function layerParameterCounts(plan: ModelPlan): LayerParameterCount[] {
  return plan.layers.map((layerPlan, layerIndex) => ({
    layerIndex,
    layerName: layerPlan.layer.name,
    layerType: layerPlan.layer.type,
    parameters: layerPlan.parameters.reduce((total, parameter) => total + elements(parameter.shape), 0),
    tensors: layerPlan.parameters.map((parameter) => ({ name: parameter.name, shape: [...parameter.shape] })),
  }));
}

/** 7850010000 → "7,850,010,000"; beyond exact integers, scientific notation rather than false digits. */
export function formatCount(count: number): string {
  if (!Number.isFinite(count)) return 'more than 1e308';
  return Number.isSafeInteger(count) ? count.toLocaleString('en-US') : count.toExponential(3);
}

/**
 * Refuses a plan with more than `maxParameters` parameters (400 TOO_MANY_PARAMETERS). The message
 * names the largest layer, which is the one to shrink, with its tensor shapes.
 */
export function checkParameterLimit(plan: ModelPlan, maxParameters: number): void {
  const counts = layerParameterCounts(plan);
  const total = counts.reduce((sum, layer) => sum + layer.parameters, 0);
  if (total <= maxParameters) return;
  const largest = counts.reduce((best, layer) => (layer.parameters > best.parameters ? layer : best));
  const tensors = largest.tensors.map((tensor) => `${tensor.name.slice(largest.layerName.length + 1)} [${tensor.shape.join(', ')}]`).join(', ');
  throw new AiaasError(
    'TOO_MANY_PARAMETERS',
    `the model has ${formatCount(total)} parameters, more than this server's limit of ${formatCount(maxParameters)} (maxModelParameters); ` +
      `layer ${largest.layerIndex} (${largest.layerName}, ${largest.layerType}) alone has ${formatCount(largest.parameters)}: ${tensors}`,
    {
      details: {
        parameters: total,
        limit: maxParameters,
        layerIndex: largest.layerIndex,
        layerName: largest.layerName,
        layers: counts.filter((layer) => layer.parameters > 0).map(({ layerIndex, layerName, parameters }) => ({ layerIndex, layerName, parameters })),
      },
    },
  );
}

/** What a safetensors header says about one tensor (see `readSafetensorsHeader`). */
export interface TensorHeader {
  dtype: string;
  shape: readonly number[];
}

/**
 * Checks a weights file's header against the shapes the plan implies: every parameter present,
 * with exactly its shape, as F32 (or F64, which loading converts). Extra tensors are ignored, as
 * loading ignores them. INVALID_WEIGHTS names the first tensor that does not fit.
 */
export function checkWeightsHeader(plan: ModelPlan, header: ReadonlyMap<string, TensorHeader>): void {
  for (const parameter of plan.parameters) {
    const found = header.get(parameter.name);
    if (found === undefined) {
      throw new AiaasError('INVALID_WEIGHTS', `weights have no tensor "${parameter.name}" (expected shape [${parameter.shape.join(', ')}])`, {
        details: { tensor: parameter.name, expectedShape: parameter.shape },
      });
    }
    if (found.shape.length !== parameter.shape.length || found.shape.some((dimension, index) => dimension !== parameter.shape[index])) {
      throw new AiaasError('INVALID_WEIGHTS', `tensor "${parameter.name}" has shape [${found.shape.join(', ')}], the model expects [${parameter.shape.join(', ')}]`, {
        details: { tensor: parameter.name, shape: [...found.shape], expectedShape: parameter.shape },
      });
    }
    if (found.dtype !== 'F32' && found.dtype !== 'F64') {
      throw new AiaasError('INVALID_WEIGHTS', `tensor "${parameter.name}" has dtype ${found.dtype}; weights must be F32 (or F64)`, {
        details: { tensor: parameter.name, dtype: found.dtype },
      });
    }
  }
}

/** Validates and plans a spec document (INVALID_SPEC), then applies the parameter limit. */
export function planWithinParameterLimit(document: unknown, maxParameters: number): ModelPlan {
  const plan = planModel(resolveSpec(document));
  checkParameterLimit(plan, maxParameters);
  return plan;
}

/**
 * Everything about a saved model (spec.json + model.safetensors) that can be known from the spec
 * and the weights file's header: a valid spec, within the parameter limit, and a tensor of the
 * right shape and dtype for every parameter. Cheap and allocation-free, so it runs before the
 * network is built (which happens in a child process, see runtimes/onnx/validate-saved-model.ts).
 */
export function checkSavedModelHeaders(document: unknown, weights: Uint8Array | undefined, maxParameters: number): ModelPlan {
  const plan = planWithinParameterLimit(document, maxParameters);
  if (weights !== undefined) {
    const { entries } = readSafetensorsHeader(weights);
    checkWeightsHeader(plan, new Map(entries.map((entry) => [entry.name, entry])));
  }
  return plan;
}

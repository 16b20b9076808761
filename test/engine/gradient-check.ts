import { GraphBuilder, type Dimension, type Value } from '../../src/engine/graph.ts';
import { createSession, floatTensor } from '../../src/engine/session.ts';

export interface CheckInput {
  name: string;
  shape: number[];
  values: Float32Array;
  /** Inputs that are data, not parameters, are fed but not differentiated. */
  differentiable?: boolean;
  /** Symbolic dims to declare in the graph (defaults to the concrete shape). */
  declaredShape?: Dimension[];
}

/**
 * Compares the engine's analytic gradients with central finite differences of the same ONNX
 * forward graph run by ORT. Float32 limits precision, so callers choose smooth inputs.
 */
export async function gradientCheck(
  inputs: CheckInput[],
  build: (graph: GraphBuilder, values: Value[]) => Value,
  epsilon = 1e-2,
): Promise<{ maxRelativeError: number; worst: string }> {
  const graph = new GraphBuilder('gradient_check');
  const values = inputs.map((input) =>
    graph.input(input.name, input.declaredShape ?? input.shape, 'float32', input.differentiable !== false),
  );
  const loss = build(graph, values);
  graph.output(loss, 'loss');
  const checked = values.filter((_, index) => inputs[index]!.differentiable !== false);
  const gradients = graph.gradients(loss, checked);
  gradients.forEach((gradient, index) => graph.output(gradient, `grad_${checked[index]!.name}`));
  const session = await createSession(graph.toModel());
  const feeds = (overrides: Map<string, Float32Array>) =>
    Object.fromEntries(
      inputs.map((input) => [input.name, floatTensor(overrides.get(input.name) ?? input.values, input.shape)]),
    );
  const analytic = await session.run(feeds(new Map()));
  let maxRelativeError = 0;
  let worst = '';
  for (const input of inputs) {
    if (input.differentiable === false) continue;
    const gradient = analytic[`grad_${input.name}`]!.data as Float32Array;
    for (let index = 0; index < input.values.length; index++) {
      const plus = Float32Array.from(input.values);
      const minus = Float32Array.from(input.values);
      plus[index]! += epsilon;
      minus[index]! -= epsilon;
      const up = (await session.run(feeds(new Map([[input.name, plus]])))).loss!.data as Float32Array;
      const down = (await session.run(feeds(new Map([[input.name, minus]])))).loss!.data as Float32Array;
      const numeric = (up[0]! - down[0]!) / (2 * epsilon);
      const error = Math.abs(numeric - gradient[index]!) / Math.max(1e-2, Math.abs(numeric) + Math.abs(gradient[index]!));
      if (error > maxRelativeError) {
        maxRelativeError = error;
        worst = `${input.name}[${index}]: numeric ${numeric}, analytic ${gradient[index]}`;
      }
    }
  }
  await session.release();
  return { maxRelativeError, worst };
}

/** Deterministic pseudo-random values in [-scale, scale]. */
export function sample(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < count; index++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[index] = ((state / 0xffffffff) * 2 - 1) * scale;
  }
  return out;
}

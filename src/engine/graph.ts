import {
  ENGINE_IR_VERSION,
  ENGINE_OPSET,
  OnnxDataType,
  attribute,
  floatTensor,
  int64Tensor,
  type OnnxAttribute,
  type OnnxDataTypeCode,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from '../onnx/model.ts';

/** A dimension is a fixed size, or the symbolic batch size. */
export type Dimension = number | 'batch';
export type ElementType = 'float32' | 'int64' | 'bool';

export interface Value {
  readonly name: string;
  readonly shape: readonly Dimension[];
  readonly type: ElementType;
  /** True when a gradient can flow back from this value to a trainable input. */
  readonly differentiable: boolean;
}

export interface GradientContext<Attributes> {
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attributes: Attributes;
}

/**
 * An op keeps its shape rule, ONNX emission and gradient together (DESIGN.md §2).
 * `emit` returns output values built with `graph.node`; `gradient` returns one gradient (or undefined) per input.
 */
export interface OpDefinition<Attributes> {
  readonly name: string;
  /**
   * The op's gradient rule accepts a scalar upstream gradient standing for the same value at every
   * output element (as `mean` produces), relying on broadcasting; otherwise `gradients` expands it.
   */
  readonly acceptsScalarGradient?: boolean;
  emit(graph: GraphBuilder, inputs: readonly Value[], attributes: Attributes): Value[];
  gradient?(
    graph: GraphBuilder,
    context: GradientContext<Attributes>,
    outputGradients: readonly (Value | undefined)[],
  ): (Value | undefined)[];
}

interface TapeEntry {
  readonly op: OpDefinition<unknown>;
  readonly context: GradientContext<unknown>;
}

const onnxElementType: Record<ElementType, OnnxDataTypeCode> = {
  float32: OnnxDataType.FLOAT,
  int64: OnnxDataType.INT64,
  bool: OnnxDataType.BOOL,
};

export function elementCount(shape: readonly Dimension[]): number | undefined {
  let count = 1;
  for (const dimension of shape) {
    if (dimension === 'batch') return undefined;
    count *= dimension;
  }
  return count;
}

export function broadcastShapes(a: readonly Dimension[], b: readonly Dimension[]): Dimension[] {
  const rank = Math.max(a.length, b.length);
  const result: Dimension[] = [];
  for (let index = 0; index < rank; index++) {
    const left = a[index - (rank - a.length)] ?? 1;
    const right = b[index - (rank - b.length)] ?? 1;
    if (left === right) result.push(left);
    else if (left === 1) result.push(right);
    else if (right === 1) result.push(left);
    else if (left === 'batch' || right === 'batch') result.push('batch');
    else throw new RangeError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
  }
  return result;
}

/**
 * Builds one ONNX graph. Ops applied through `apply` are recorded on a tape so that `gradients`
 * can append the backward pass as more ONNX nodes (reverse-mode autodiff).
 */
export class GraphBuilder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers: OnnxTensor[] = [];
  private readonly graphInputs: OnnxValueInfo[] = [];
  private readonly graphOutputs: OnnxValueInfo[] = [];
  private readonly tape: TapeEntry[] = [];
  private readonly constants = new Map<string, Value>();
  private readonly scalarConstants = new Map<string, number>();
  private readonly usedNames = new Set<string>();
  /** Node outputs renamed to graph-output names at `toModel`, so outputs need no Identity copy. */
  private readonly renames = new Map<string, string>();
  private readonly externalNames = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private uniqueName(hint: string): string {
    let candidate = hint;
    while (this.usedNames.has(candidate)) candidate = `${hint}_${++this.counter}`;
    this.usedNames.add(candidate);
    return candidate;
  }

  input(name: string, shape: readonly Dimension[], type: ElementType = 'float32', differentiable = false): Value {
    const value: Value = { name: this.uniqueName(name), shape, type, differentiable };
    this.graphInputs.push({ name: value.name, elemType: onnxElementType[type], shape });
    this.externalNames.add(value.name);
    return value;
  }

  /** A weight baked into the graph (used for exported inference graphs). */
  initializer(name: string, shape: readonly number[], values: Float32Array): Value {
    const value: Value = { name: this.uniqueName(name), shape, type: 'float32', differentiable: false };
    this.initializers.push(floatTensor(value.name, shape, values));
    this.externalNames.add(value.name);
    return value;
  }

  /** Float constants are shared by value so the graph does not repeat them. */
  constantFloat(values: readonly number[], shape: readonly number[] = []): Value {
    const key = `f:${shape.join('x')}:${values.join(',')}`;
    const cached = this.constants.get(key);
    if (cached) return cached;
    const value: Value = { name: this.uniqueName('const'), shape, type: 'float32', differentiable: false };
    this.initializers.push(floatTensor(value.name, shape, values));
    this.externalNames.add(value.name);
    this.constants.set(key, value);
    if (shape.length === 0 && values.length === 1) this.scalarConstants.set(value.name, values[0] as number);
    return value;
  }

  /** The number a scalar float constant holds, or undefined for anything computed at run time. */
  scalarConstant(value: Value): number | undefined {
    return this.scalarConstants.get(value.name);
  }

  constantInt64(values: readonly number[], shape: readonly number[] = [values.length]): Value {
    const key = `i:${shape.join('x')}:${values.join(',')}`;
    const cached = this.constants.get(key);
    if (cached) return cached;
    const value: Value = { name: this.uniqueName('const'), shape, type: 'int64', differentiable: false };
    this.initializers.push(int64Tensor(value.name, shape, values));
    this.externalNames.add(value.name);
    this.constants.set(key, value);
    return value;
  }

  /** The same value, treated as a trainable root for `gradients` (e.g. a slice of a packed parameter vector). */
  differentiableRoot(value: Value): Value {
    return { ...value, differentiable: true };
  }

  /** Emit one raw ONNX node. Not recorded on the tape: ops call this from `emit` and `gradient`. */
  node(
    opType: string,
    inputs: readonly (Value | string)[],
    outputs: readonly { shape: readonly Dimension[]; type: ElementType; name?: string }[],
    attributes: Record<string, OnnxAttribute> = {},
  ): Value[] {
    const differentiable = inputs.some((input) => typeof input !== 'string' && input.differentiable);
    const results = outputs.map(
      (output): Value => ({
        name: this.uniqueName(output.name ?? opType.toLowerCase()),
        shape: output.shape,
        type: output.type,
        differentiable,
      }),
    );
    this.nodes.push({
      opType,
      name: this.uniqueName(`${opType}_node`),
      inputs: inputs.map((input) => (typeof input === 'string' ? input : input.name)),
      outputs: results.map((result) => result.name),
      attributes,
    });
    return results;
  }

  /** Convenience for the common single-output node. */
  node1(
    opType: string,
    inputs: readonly (Value | string)[],
    shape: readonly Dimension[],
    type: ElementType = 'float32',
    attributes: Record<string, OnnxAttribute> = {},
  ): Value {
    return this.node(opType, inputs, [{ shape, type }], attributes)[0] as Value;
  }

  /** Apply a differentiable op and record it for `gradients`. */
  apply<Attributes>(op: OpDefinition<Attributes>, inputs: readonly Value[], attributes: NoInfer<Attributes>): Value[] {
    const outputs = op.emit(this, inputs, attributes);
    if (inputs.some((input) => input.differentiable)) {
      this.tape.push({ op: op as OpDefinition<unknown>, context: { inputs, outputs, attributes } });
    }
    return outputs;
  }

  apply1<Attributes>(op: OpDefinition<Attributes>, inputs: readonly Value[], attributes: NoInfer<Attributes>): Value {
    return this.apply(op, inputs, attributes)[0] as Value;
  }

  /** Reverse-mode autodiff: d(scalar)/d(each of `wrt`). Unreachable inputs get a zero gradient. */
  gradients(scalar: Value, wrt: readonly Value[]): Value[] {
    const gradientOf = new Map<string, Value>();
    gradientOf.set(scalar.name, this.constantFloat([1]));
    const tapeLength = this.tape.length;
    for (let index = tapeLength - 1; index >= 0; index--) {
      const entry = this.tape[index] as TapeEntry;
      const outputGradients = entry.context.outputs.map((output) => gradientOf.get(output.name));
      if (outputGradients.every((gradient) => gradient === undefined)) continue;
      if (!entry.op.gradient) throw new TypeError(`op ${entry.op.name} has no gradient`);
      const shapedGradients = entry.op.acceptsScalarGradient
        ? outputGradients
        : outputGradients.map((gradient, index) => {
            const output = entry.context.outputs[index] as Value;
            if (!gradient || gradient.shape.length === output.shape.length) return gradient;
            return this.node1('Expand', [gradient, this.node1('Shape', [output], [output.shape.length], 'int64')], output.shape);
          });
      const inputGradients = entry.op.gradient(this, entry.context, shapedGradients);
      entry.context.inputs.forEach((input, inputIndex) => {
        const gradient = inputGradients[inputIndex];
        if (!gradient || !input.differentiable) return;
        const existing = gradientOf.get(input.name);
        gradientOf.set(
          input.name,
          existing ? this.node1('Add', [existing, gradient], input.shape) : gradient,
        );
      });
    }
    return wrt.map((value) => {
      const gradient = gradientOf.get(value.name);
      if (gradient) return gradient;
      return this.node1('Mul', [value, this.constantFloat([0])], value.shape);
    });
  }

  /** Mark a value as a graph output under a stable name (via Identity when the name differs). */
  output(value: Value, name: string): void {
    if (value.name !== name) {
      if (this.usedNames.has(name)) throw new RangeError(`output name ${name} is already used`);
      this.usedNames.add(name);
      const producedHere = !this.externalNames.has(value.name);
      if (producedHere && !this.renames.has(value.name)) {
        // Renaming the producing node's output avoids an Identity node copying the tensor every run.
        this.renames.set(value.name, name);
      } else {
        this.nodes.push({ opType: 'Identity', name: this.uniqueName('Identity_node'), inputs: [this.renames.get(value.name) ?? value.name], outputs: [name] });
      }
    }
    this.graphOutputs.push({ name, elemType: onnxElementType[value.type], shape: value.shape });
  }

  toModel(metadata: Record<string, string> = {}): OnnxModel {
    const nodes = this.nodes.map((node) => ({
      ...node,
      inputs: node.inputs.map((input) => this.renames.get(input) ?? input),
      outputs: node.outputs.map((output) => this.renames.get(output) ?? output),
    }));
    // Constants a rule folded away (e.g. the loss seed under a static-shape mean) are left out, so
    // ONNX Runtime has nothing to warn about when it loads the graph.
    const used = new Set([...nodes.flatMap((node) => node.inputs), ...this.graphOutputs.map((output) => output.name)]);
    return {
      graph: {
        name: this.name,
        nodes,
        initializers: this.initializers.filter((tensor) => used.has(tensor.name)),
        inputs: this.graphInputs,
        outputs: this.graphOutputs,
      },
      opsetVersion: ENGINE_OPSET,
      irVersion: ENGINE_IR_VERSION,
      producerName: 'aiaas',
      producerVersion: '0.1.0',
      metadata,
    };
  }
}

export { attribute };

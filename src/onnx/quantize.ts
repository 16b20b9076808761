/**
 * Dynamic int8 quantization of an ONNX model, on the graph itself, with standard ONNX ops only:
 *
 *   MatMul(X, W)            →  DynamicQuantizeLinear(X) → MatMulInteger(Xq, Wq, Xzp) → Cast(float)
 *   Gemm(A, B, C)              → Mul(x_scale · w_scale[n])  [→ Add(C)]
 *   Conv(X, W, B)           →  DynamicQuantizeLinear(X) → ConvInteger(Xq, Wq, Xzp) → Cast(float)
 *                              → Mul(x_scale · w_scale[m] as [1, M, 1, …])  [→ Add(B as [1, M, 1, …])]
 *
 * Weights are quantized symmetrically per output channel (MatMul: per column of W; Gemm: per output
 * column; Conv: per output feature map) to int8 in [-127, 127] with zero point 0, so no per-channel
 * weight zero point is needed (ONNX allows one per column for MatMulInteger and per channel for
 * ConvInteger, but not every runtime implements that form); the per-channel scale is applied after
 * the integer product. Conv filters are stored offset by 128 as uint8 with a scalar zero point of
 * 128: the same values, for ONNX Runtime's faster uint8 × uint8 ConvInteger kernel. Activations are quantized at run time per tensor to uint8 by DynamicQuantizeLinear
 * (its scale covers [min(0, min x), max(0, max x)]), once per distinct input, shared by its consumers.
 *
 * Every other field of the model is copied byte for byte. Nodes whose weights cannot be quantized
 * this way stay float32 and are listed with the reason; nothing is guessed.
 */
import { AiaasError } from '../errors.ts';
import { InvalidOnnxError } from './external-data.ts';
import { ProtobufDecodeError } from './protobuf-reader.ts';
import { attribute, encodeNode, encodeTensor, OnnxDataType, type OnnxNode, type OnnxTensor } from './model.ts';
import {
  fieldSpans,
  floatValues,
  GraphFieldNumber,
  lengthDelimitedField,
  ModelFieldNumber,
  readModelView,
  readNode,
  type NodeView,
  type TensorView,
} from './model-fields.ts';

/** DynamicQuantizeLinear is opset 11; MatMulInteger and ConvInteger are 10. */
export const minimumQuantizationOpset = 11;

export interface QuantizedNode {
  node: string;
  opType: string;
  weight: string;
  /** Output channels, each with its own scale. */
  channels: number;
}

export interface FloatNode {
  node: string;
  opType: string;
  reason: string;
}

export interface GraphQuantization {
  bytes: Uint8Array;
  quantizedNodes: QuantizedNode[];
  /** Nodes with float weights (or of the quantizable kinds) left in float32, and why. */
  floatNodes: FloatNode[];
  /** Float32 weight bytes replaced, and the int8 plus scale bytes that replaced them. */
  weightBytesBefore: number;
  weightBytesAfter: number;
}

export interface PerChannelWeights {
  /** Laid out as the integer op reads it: [K, N] for MatMulInteger, W's own layout for ConvInteger. */
  values: Int8Array;
  scales: Float32Array;
}

/**
 * Symmetric per-channel int8: scale[c] = max |w| over channel c / 127 (1 for an all-zero channel, so
 * no division by zero), q = round(w / scale[c]) clamped to [-127, 127]. `channelOf(i)` names the
 * channel of element i; `target(i)` where element i goes in the output layout.
 */
function quantizeChannels(weights: Float32Array, channels: number, channelOf: (index: number) => number, target: (index: number) => number): PerChannelWeights {
  const maxima = new Float32Array(channels);
  for (let index = 0; index < weights.length; index++) {
    const channel = channelOf(index);
    const magnitude = Math.abs(weights[index]!);
    if (magnitude > maxima[channel]!) maxima[channel] = magnitude;
  }
  const scales = new Float32Array(channels);
  for (let channel = 0; channel < channels; channel++) scales[channel] = maxima[channel]! > 0 ? maxima[channel]! / 127 : 1;
  const values = new Int8Array(weights.length);
  for (let index = 0; index < weights.length; index++) {
    const quantized = Math.round(weights[index]! / scales[channelOf(index)]!);
    values[target(index)] = Math.max(-127, Math.min(127, quantized));
  }
  return { values, scales };
}

/** W of shape [K, N] (MatMul, or Gemm with transB = 0): one scale per column n. */
export function quantizeMatrixColumns(weights: Float32Array, columns: number): PerChannelWeights {
  return quantizeChannels(weights, columns, (index) => index % columns, (index) => index);
}

/** W of shape [N, K] (Gemm with transB = 1): one scale per row n, written transposed as [K, N]. */
export function quantizeMatrixRowsTransposed(weights: Float32Array, rows: number, columns: number): PerChannelWeights {
  return quantizeChannels(
    weights,
    rows,
    (index) => Math.floor(index / columns),
    (index) => (index % columns) * rows + Math.floor(index / columns),
  );
}

/** Conv W of shape [M, C/group, k…]: one scale per output channel m, layout kept. */
export function quantizeFilters(weights: Float32Array, dims: readonly number[]): PerChannelWeights {
  const perChannel = weights.length / dims[0]!;
  return quantizeChannels(weights, dims[0]!, (index) => Math.floor(index / perChannel), (index) => index);
}

function int8Tensor(name: string, dims: readonly number[], values: Int8Array): OnnxTensor {
  return { name, dataType: OnnxDataType.INT8, dims, raw: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function float32Tensor(name: string, dims: readonly number[], values: Float32Array): OnnxTensor {
  return { name, dataType: OnnxDataType.FLOAT, dims, raw: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Fresh value and node names that collide with nothing in the graph. */
class Names {
  readonly #taken = new Set<string>();

  constructor(existing: Iterable<string>) {
    for (const name of existing) this.#taken.add(name);
  }

  fresh(base: string): string {
    let name = base;
    for (let counter = 1; this.#taken.has(name); counter++) name = `${base}_${counter}`;
    this.#taken.add(name);
    return name;
  }
}

/** Every value name referenced inside subgraphs (If/Loop/Scan bodies may read outer initializers). */
function subgraphReferences(nodes: readonly NodeView[], into: Set<string>, depth = 0): void {
  if (depth > 32) throw new InvalidOnnxError('subgraphs nest more than 32 levels deep');
  for (const node of nodes) {
    for (const attribute of node.attributes.values()) {
      for (const graph of attribute.graphs) {
        const inner = readModelGraphNodes(graph);
        for (const innerNode of inner) for (const input of innerNode.inputs) into.add(input);
        subgraphReferences(inner, into, depth + 1);
      }
    }
  }
}

/** A subgraph's nodes: a GraphProto's field 1, as in the main graph. */
function readModelGraphNodes(graphBytes: Uint8Array): NodeView[] {
  return fieldSpans(graphBytes)
    .filter((span) => span.field === GraphFieldNumber.node && span.payload !== undefined)
    .map((span) => readNode(span.payload!));
}

interface Rewrite {
  /** New nodes emitted where the original node stood. */
  nodes: Uint8Array[];
  /** Initializers the original node read that the new nodes no longer do (its weight, a reshaped bias). */
  replaced: string[];
}

/**
 * Quantizes every MatMul, Gemm and Conv whose weight is a float32 initializer in the file.
 * Throws QUANTIZATION_UNSUPPORTED when the model's opset is too old or nothing can be quantized,
 * INVALID_MODEL_FILE when the bytes are not a well-formed ONNX model.
 */
export function quantizeDynamicInt8(modelBytes: Uint8Array): GraphQuantization {
  try {
    return quantizeModel(modelBytes);
  } catch (error) {
    // Subgraphs and attributes are decoded on the way: any malformed part is a bad file, not a crash.
    if (error instanceof InvalidOnnxError || error instanceof ProtobufDecodeError) {
      throw new AiaasError('INVALID_MODEL_FILE', `the model is not a valid ONNX protobuf: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function quantizeModel(modelBytes: Uint8Array): GraphQuantization {
  const model = readModelView(modelBytes);
  if (model.defaultOpset < minimumQuantizationOpset) {
    throw new AiaasError(
      'QUANTIZATION_UNSUPPORTED',
      `dynamic int8 quantization needs ONNX opset ${minimumQuantizationOpset} or later (DynamicQuantizeLinear); this model imports opset ${model.defaultOpset}`,
      { details: { opset: model.defaultOpset } },
    );
  }
  const { graph } = model;
  const initializers = new Map<string, TensorView>(graph.initializers.map(({ tensor }) => [tensor.name, tensor]));
  const graphInputs = new Set(graph.inputNames);
  const names = new Names([
    ...graph.nodes.flatMap(({ node }) => [...node.inputs, ...node.outputs, node.name]),
    ...initializers.keys(),
    ...graph.inputNames,
    ...graph.outputNames,
  ]);
  const consumers = new Map<string, number>();
  for (const { node } of graph.nodes) for (const input of node.inputs) consumers.set(input, (consumers.get(input) ?? 0) + 1);
  const outerReferences = new Set<string>();
  subgraphReferences(
    graph.nodes.map(({ node }) => node),
    outerReferences,
  );

  const quantizedNodes: QuantizedNode[] = [];
  const floatNodes: FloatNode[] = [];
  const rewrites = new Map<number, Rewrite>();
  const newInitializers: OnnxTensor[] = [];
  const quantizedWeights = new Map<string, { values: string; scales: string; channels: number; zeroPoint?: string }>();
  const quantizedActivations = new Map<string, { values: string; scale: string; zeroPoint: string }>();
  const replacedUses = new Map<string, number>();
  let weightBytesAfter = 0;

  const describe = (node: NodeView) => node.name || node.outputs[0] || node.opType;
  const leaveFloat = (node: NodeView, reason: string) => floatNodes.push({ node: describe(node), opType: node.opType, reason });

  /** Why a weight input cannot be quantized, or its values. */
  const weightOf = (name: string | undefined, rank: (dims: readonly number[]) => boolean): { values: Float32Array; dims: readonly number[] } | string => {
    if (name === undefined || name === '') return 'it has no weight input';
    const tensor = initializers.get(name);
    if (tensor === undefined) return `its weight '${name}' is computed in the graph, not an initializer`;
    if (graphInputs.has(name)) return `its weight '${name}' is also a graph input, so a caller may replace it`;
    if (tensor.external) return `its weight '${name}' keeps its data in an external file`;
    if (tensor.dataType !== OnnxDataType.FLOAT) return `its weight '${name}' is not float32`;
    if (!rank(tensor.dims)) return `its weight '${name}' has shape [${tensor.dims.join(', ')}], which this quantizer does not handle`;
    const values = floatValues(tensor);
    if (values === undefined) return `its weight '${name}' holds no readable float32 data`;
    if (!values.every(Number.isFinite)) return `its weight '${name}' holds non-finite values`;
    return { values, dims: tensor.dims };
  };

  const activation = (input: string, emitted: Uint8Array[]) => {
    const known = quantizedActivations.get(input);
    if (known !== undefined) return known;
    const base = input.replace(/[^A-Za-z0-9_.:/-]/g, '_');
    const quantizedNames = { values: names.fresh(`${base}_quantized`), scale: names.fresh(`${base}_scale`), zeroPoint: names.fresh(`${base}_zero_point`) };
    emitted.push(node({ opType: 'DynamicQuantizeLinear', inputs: [input], outputs: [quantizedNames.values, quantizedNames.scale, quantizedNames.zeroPoint], name: names.fresh(`${base}_DynamicQuantizeLinear`) }));
    quantizedActivations.set(input, quantizedNames);
    return quantizedNames;
  };

  /**
   * `asUint8`: the same int8 values stored offset by 128 as uint8, with a zero point of 128 (see
   * ConvInteger below). The arithmetic is identical; only the runtime's kernel choice differs.
   */
  const storeWeight = (weight: string, perChannel: PerChannelWeights, dims: readonly number[], scaleDims: readonly number[], asUint8 = false) => {
    const known = quantizedWeights.get(weight);
    if (known !== undefined) return known;
    const stored = {
      values: names.fresh(`${weight}_${asUint8 ? 'uint8' : 'int8'}`),
      scales: names.fresh(`${weight}_scale`),
      channels: perChannel.scales.length,
      ...(asUint8 ? { zeroPoint: names.fresh(`${weight}_zero_point`) } : {}),
    };
    if (stored.zeroPoint === undefined) newInitializers.push(int8Tensor(stored.values, dims, perChannel.values));
    else {
      const offset = Uint8Array.from(perChannel.values, (value) => value + 128);
      newInitializers.push({ name: stored.values, dataType: OnnxDataType.UINT8, dims, raw: offset }, { name: stored.zeroPoint, dataType: OnnxDataType.UINT8, dims: [], raw: Uint8Array.of(128) });
    }
    newInitializers.push(float32Tensor(stored.scales, scaleDims, perChannel.scales));
    weightBytesAfter += perChannel.values.byteLength + perChannel.scales.byteLength;
    quantizedWeights.set(weight, stored);
    return stored;
  };

  /** Cast(int32 → float) · (x_scale · w_scale), then an optional bias; the last output is `output`. */
  const rescale = (emitted: Uint8Array[], integer: string, activationScale: string, weightScale: string, output: string, bias?: string) => {
    const base = output.replace(/[^A-Za-z0-9_.:/-]/g, '_');
    const cast = names.fresh(`${base}_int32_as_float`);
    const scale = names.fresh(`${base}_output_scale`);
    emitted.push(node({ opType: 'Cast', inputs: [integer], outputs: [cast], name: names.fresh(`${base}_Cast`), attributes: { to: attribute.int(OnnxDataType.FLOAT) } }));
    emitted.push(node({ opType: 'Mul', inputs: [activationScale, weightScale], outputs: [scale], name: names.fresh(`${base}_ScaleProduct`) }));
    if (bias === undefined) {
      emitted.push(node({ opType: 'Mul', inputs: [cast, scale], outputs: [output], name: names.fresh(`${base}_Rescale`) }));
      return;
    }
    const scaled = names.fresh(`${base}_rescaled`);
    emitted.push(node({ opType: 'Mul', inputs: [cast, scale], outputs: [scaled], name: names.fresh(`${base}_Rescale`) }));
    emitted.push(node({ opType: 'Add', inputs: [scaled, bias], outputs: [output], name: names.fresh(`${base}_Bias`) }));
  };

  for (const { fieldIndex, node: original } of graph.nodes) {
    const { opType } = original;
    if (original.domain !== '' || !['MatMul', 'Gemm', 'Conv'].includes(opType)) {
      // Report nodes that carry float weights of their own (LSTM, ConvTranspose, Gather on an embedding …).
      if (original.domain === '' && ['MatMul', 'Gemm', 'Conv'].includes(opType)) continue;
      const weight = original.inputs.find((input) => {
        const tensor = initializers.get(input);
        return tensor !== undefined && tensor.dataType === OnnxDataType.FLOAT && tensor.dims.length >= 2;
      });
      if (weight !== undefined) leaveFloat(original, `${original.domain === '' ? '' : `${original.domain}.`}${opType} is not quantized by dynamic-int8 (MatMul, Gemm and Conv are)`);
      continue;
    }
    const output = original.outputs[0];
    if (output === undefined || output === '') {
      leaveFloat(original, 'it has no output');
      continue;
    }
    const emitted: Uint8Array[] = [];
    let replacedBias: string | undefined;
    if (opType === 'MatMul') {
      const weight = weightOf(original.inputs[1], (dims) => dims.length === 2);
      if (typeof weight === 'string') {
        leaveFloat(original, initializers.has(original.inputs[0] ?? '') && !initializers.has(original.inputs[1] ?? '') ? 'its weight is the first operand (W·X); only X·W is quantized' : weight);
        continue;
      }
      const [rows, columns] = weight.dims as [number, number];
      const stored = storeWeight(original.inputs[1]!, quantizeMatrixColumns(weight.values, columns), [rows, columns], [columns]);
      const input = activation(original.inputs[0]!, emitted);
      const integer = names.fresh(`${output}_int32`);
      emitted.push(node({ opType: 'MatMulInteger', inputs: [input.values, stored.values, input.zeroPoint], outputs: [integer], name: names.fresh(`${describe(original)}_MatMulInteger`) }));
      rescale(emitted, integer, input.scale, stored.scales, output);
      quantizedNodes.push({ node: describe(original), opType, weight: original.inputs[1]!, channels: stored.channels });
    } else if (opType === 'Gemm') {
      const transA = original.attributes.get('transA')?.int ?? 0;
      const transB = original.attributes.get('transB')?.int ?? 0;
      const alpha = original.attributes.get('alpha')?.float ?? 1;
      const beta = original.attributes.get('beta')?.float ?? 1;
      if (transA !== 0) {
        leaveFloat(original, 'Gemm with transA = 1 is not quantized');
        continue;
      }
      const weight = weightOf(original.inputs[1], (dims) => dims.length === 2);
      if (typeof weight === 'string') {
        leaveFloat(original, weight);
        continue;
      }
      const biasName = original.inputs[2];
      let bias: string | undefined;
      if (biasName !== undefined && biasName !== '' && beta === 0) replacedBias = biasName;
      if (biasName !== undefined && biasName !== '' && beta !== 0) {
        const biasTensor = initializers.get(biasName);
        const biasValues = biasTensor === undefined || graphInputs.has(biasName) ? undefined : floatValues(biasTensor);
        if (biasTensor === undefined || biasValues === undefined) {
          leaveFloat(original, `its bias '${biasName}' is not a float32 initializer`);
          continue;
        }
        if (beta === 1) bias = biasName;
        else {
          replacedBias = biasName;
          bias = names.fresh(`${biasName}_times_beta`);
          newInitializers.push(float32Tensor(bias, biasTensor.dims, biasValues.map((value) => value * beta)));
        }
      }
      const [rows, columns] = weight.dims as [number, number];
      const perChannel = transB === 0 ? quantizeMatrixColumns(weight.values, columns) : quantizeMatrixRowsTransposed(weight.values, rows, columns);
      const outputs = transB === 0 ? columns : rows;
      if (alpha !== 1) for (let channel = 0; channel < outputs; channel++) perChannel.scales[channel]! *= alpha;
      // Gemm's alpha and layout belong to this node, so its quantized weight is not shared.
      const stored = { values: names.fresh(`${original.inputs[1]}_int8`), scales: names.fresh(`${original.inputs[1]}_scale`), channels: outputs };
      newInitializers.push(int8Tensor(stored.values, [transB === 0 ? rows : columns, outputs], perChannel.values), float32Tensor(stored.scales, [outputs], perChannel.scales));
      weightBytesAfter += perChannel.values.byteLength + perChannel.scales.byteLength;
      const input = activation(original.inputs[0]!, emitted);
      const integer = names.fresh(`${output}_int32`);
      emitted.push(node({ opType: 'MatMulInteger', inputs: [input.values, stored.values, input.zeroPoint], outputs: [integer], name: names.fresh(`${describe(original)}_MatMulInteger`) }));
      rescale(emitted, integer, input.scale, stored.scales, output, bias);
      quantizedNodes.push({ node: describe(original), opType, weight: original.inputs[1]!, channels: outputs });
    } else {
      const weight = weightOf(original.inputs[1], (dims) => dims.length >= 3 && dims[0]! > 0);
      if (typeof weight === 'string') {
        leaveFloat(original, weight);
        continue;
      }
      const channels = weight.dims[0]!;
      const broadcastDims = [1, channels, ...weight.dims.slice(2).map(() => 1)];
      const biasName = original.inputs[2];
      let bias: string | undefined;
      if (biasName !== undefined && biasName !== '') {
        const biasTensor = initializers.get(biasName);
        const biasValues = biasTensor === undefined || graphInputs.has(biasName) ? undefined : floatValues(biasTensor);
        if (biasTensor === undefined || biasValues === undefined || biasValues.length !== channels) {
          leaveFloat(original, `its bias '${biasName}' is not a float32 initializer of ${channels} values`);
          continue;
        }
        bias = names.fresh(`${biasName}_per_channel`);
        replacedBias = biasName;
        newInitializers.push(float32Tensor(bias, broadcastDims, biasValues));
      }
      // Filters go in as uint8 with zero point 128: ONNX Runtime's CPU ConvInteger has a fast kernel
      // for uint8 × uint8 only (measured on the Fashion-MNIST CNN: 2.4× slower with int8 filters).
      const stored = storeWeight(original.inputs[1]!, quantizeFilters(weight.values, weight.dims), weight.dims, broadcastDims, true);
      const input = activation(original.inputs[0]!, emitted);
      const integer = names.fresh(`${output}_int32`);
      // ConvInteger takes Conv's attributes (auto_pad, dilations, group, kernel_shape, pads, strides) unchanged.
      const attributes = [...original.attributes.values()].map((value) => value.fieldBytes);
      emitted.push(
        Buffer.concat([
          node({
            opType: 'ConvInteger',
            inputs: [input.values, stored.values, input.zeroPoint, ...(stored.zeroPoint === undefined ? [] : [stored.zeroPoint])],
            outputs: [integer],
            name: names.fresh(`${describe(original)}_ConvInteger`),
          }),
          ...attributes,
        ]),
      );
      rescale(emitted, integer, input.scale, stored.scales, output, bias);
      quantizedNodes.push({ node: describe(original), opType, weight: original.inputs[1]!, channels });
    }
    const replaced = [original.inputs[1]!, ...(replacedBias === undefined ? [] : [replacedBias])];
    rewrites.set(fieldIndex, { nodes: emitted, replaced });
    for (const name of replaced) replacedUses.set(name, (replacedUses.get(name) ?? 0) + 1);
  }

  if (quantizedNodes.length === 0) {
    throw new AiaasError('QUANTIZATION_UNSUPPORTED', 'the model has no MatMul, Gemm or Conv with a float32 initializer weight that dynamic-int8 can quantize', {
      details: { floatNodes: floatNodes.slice(0, 50) },
    });
  }

  // A float initializer goes only when every reader of it was rewritten and no subgraph reads it.
  const droppedWeights = new Set(
    [...replacedUses].filter(([name, uses]) => uses === consumers.get(name) && !outerReferences.has(name) && !graph.outputNames.includes(name)).map(([name]) => name),
  );
  let weightBytesBefore = 0;
  const weightNames = new Set(quantizedNodes.map((entry) => entry.weight));
  for (const name of droppedWeights) if (weightNames.has(name)) weightBytesBefore += (initializers.get(name)?.dims ?? []).reduce((product, dimension) => product * dimension, 1) * 4;

  const parts: Uint8Array[] = [];
  graph.fields.forEach((span, index) => {
    const rewrite = rewrites.get(index);
    if (rewrite !== undefined) {
      for (const emitted of rewrite.nodes) parts.push(lengthDelimitedField(GraphFieldNumber.node, emitted));
      return;
    }
    if (span.field === GraphFieldNumber.initializer) {
      const initializer = graph.initializers.find((entry) => entry.fieldIndex === index);
      if (initializer !== undefined && droppedWeights.has(initializer.tensor.name)) return;
    }
    parts.push(graph.bytes.subarray(span.start, span.end));
  });
  for (const tensor of newInitializers) parts.push(lengthDelimitedField(GraphFieldNumber.initializer, encodeTensor(tensor)));
  const graphBytes = Buffer.concat(parts);

  const modelParts: Uint8Array[] = model.fields.map((span, index) =>
    index === model.graphFieldIndex ? lengthDelimitedField(ModelFieldNumber.graph, graphBytes) : model.bytes.subarray(span.start, span.end),
  );
  return {
    bytes: new Uint8Array(Buffer.concat(modelParts)),
    quantizedNodes,
    floatNodes,
    weightBytesBefore,
    weightBytesAfter,
  };
}

function node(value: OnnxNode): Uint8Array {
  return encodeNode(value);
}

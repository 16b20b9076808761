/**
 * Finds every tensor of an ONNX model that keeps its data outside the file. ONNX Runtime reads such
 * data from `external_data.location`, resolved against the model's directory (or, for a model
 * opened from bytes, the process's working directory): a model file can name any file the server
 * can read. This walk is what lets the registry refuse or confine those references before ONNX
 * Runtime ever sees the model.
 *
 * It visits every place onnx.proto can hold a tensor: graph initializers, sparse initializers
 * (values and indices), node attributes (`t`, `tensors`, `sparse_tensor`, `sparse_tensors`: this
 * covers `Constant`), subgraphs (`g`, `graphs`: If, Loop, Scan) at any depth, model-local functions
 * (their nodes and attribute defaults) and training-info graphs. Field numbers are onnx.proto's.
 */
import { decodeUtf8, ProtobufDecodeError, ProtobufReader, WireType, type ProtobufField } from './protobuf-reader.ts';

/** A tensor whose data lives outside the model file. */
export interface ExternalDataReference {
  /** Where the tensor sits, readable in an error message: `initializer 'w' of graph 'main'`. */
  tensor: string;
  /** `external_data` entries, last value per key (protobuf keeps every entry; ORT reads by key). */
  entries: ReadonlyMap<string, string>;
  /** Every `location` value present, in order: more than one is refused by the caller. */
  locations: readonly string[];
  /** `data_location` was EXTERNAL (1), or some other value than DEFAULT (0). */
  flaggedExternal: boolean;
}

export class InvalidOnnxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidOnnxError';
  }
}

/** Subgraph nesting (If inside Loop inside Scan ...) beyond this is refused; real models nest a few levels. */
export const maxGraphDepth = 32;
/** Message nesting of any kind; protobuf's own parser stops at 100. */
const maxMessageDepth = 100;
/** More references than this is not a model anyone exports; it bounds the work and the memory. */
const maxReferences = 100_000;
const maxDescription = 600;

const Model = { graph: 7, trainingInfo: 20, functions: 25 } as const;
const TrainingInfo = { initialization: 1, algorithm: 2 } as const;
const Graph = { node: 1, name: 2, initializer: 5, sparseInitializer: 15 } as const;
const Node = { name: 3, opType: 4, attribute: 5 } as const;
const Attribute = { name: 1, t: 5, g: 6, tensors: 10, graphs: 11, sparseTensor: 22, sparseTensors: 23 } as const;
const Function = { name: 1, node: 7, attributeProto: 11 } as const;
const Tensor = { name: 8, externalData: 13, dataLocation: 14 } as const;
const SparseTensor = { values: 1, indices: 2 } as const;
const Entry = { key: 1, value: 2 } as const;

type LengthDelimited = Extract<ProtobufField, { wireType: 2 }>;
const lenientUtf8 = new TextDecoder();

/** Quotes a name from the file for a message: bounded, and without control characters. */
export function quoteName(name: string): string {
  const cleaned = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return `'${cleaned.length > 80 ? `${cleaned.slice(0, 80)}…` : cleaned}'`;
}

class Walker {
  readonly references: ExternalDataReference[] = [];

  /** Streams the fields of a message to `visit`; nothing is collected, so a file of tiny fields costs no memory. */
  #each(message: { bytes: Uint8Array; bytesOffset: number }, depth: number, visit: (field: ProtobufField) => void): void {
    if (depth > maxMessageDepth) throw new InvalidOnnxError(`the model nests messages more than ${maxMessageDepth} deep`);
    const reader = new ProtobufReader(message.bytes, message.bytesOffset);
    for (let field = reader.next(); field !== undefined; field = reader.next()) visit(field);
  }

  /** A field this walk descends into must be length-delimited; anything else would be parsed differently by ORT. */
  #message(field: ProtobufField, what: string): LengthDelimited {
    if (field.wireType !== WireType.LENGTH_DELIMITED) throw new ProtobufDecodeError(`${what} is not a length-delimited message`, field.offset);
    return field;
  }

  /**
   * The last value of a string field (protobuf semantics: the last occurrence wins). Names only label
   * messages, so they decode leniently; `strict` (external_data keys and values, which become paths)
   * refuses invalid UTF-8 rather than check a different string than the one ORT would use.
   */
  #lastString(message: { bytes: Uint8Array; bytesOffset: number }, depth: number, number: number, what: string, strict = false): string | undefined {
    let value: string | undefined;
    this.#each(message, depth, (field) => {
      if (field.field !== number) return;
      const text = this.#message(field, what);
      value = strict ? decodeUtf8(text) : lenientUtf8.decode(text.bytes);
    });
    return value;
  }

  model(bytes: Uint8Array): void {
    this.#each({ bytes, bytesOffset: 0 }, 0, (field) => {
      if (field.field === Model.graph) this.#graph(this.#message(field, 'graph'), 1, 1, undefined);
      else if (field.field === Model.trainingInfo) {
        this.#each(this.#message(field, 'training_info'), 1, (inner) => {
          if (inner.field === TrainingInfo.initialization || inner.field === TrainingInfo.algorithm) {
            this.#graph(this.#message(inner, 'training graph'), 2, 1, 'a training graph');
          }
        });
      } else if (field.field === Model.functions) this.#function(this.#message(field, 'function'), 1);
    });
  }

  #function(message: LengthDelimited, depth: number): void {
    const where = `function ${quoteName(this.#lastString(message, depth, Function.name, 'function name') ?? '')}`;
    this.#each(message, depth, (field) => {
      if (field.field === Function.node) this.#node(this.#message(field, 'function node'), depth + 1, 1, where);
      else if (field.field === Function.attributeProto) this.#attribute(this.#message(field, 'function attribute'), depth + 1, 1, where);
    });
  }

  /** `context` says where a graph other than the main one sits, e.g. which node's attribute holds it. */
  #graph(message: LengthDelimited, depth: number, graphDepth: number, context: string | undefined): void {
    if (graphDepth > maxGraphDepth) throw new InvalidOnnxError(`the model nests subgraphs more than ${maxGraphDepth} deep`);
    const name = this.#lastString(message, depth, Graph.name, 'graph name') ?? '';
    const where = `graph${name === '' ? '' : ` ${quoteName(name)}`}${context === undefined ? '' : ` (${context})`}`;
    this.#each(message, depth, (field) => {
      if (field.field === Graph.initializer) this.#tensor(this.#message(field, 'initializer'), depth + 1, (tensorName) => `initializer ${tensorName} of ${where}`);
      else if (field.field === Graph.sparseInitializer) this.#sparseTensor(this.#message(field, 'sparse initializer'), depth + 1, 'sparse initializer', where);
      else if (field.field === Graph.node) this.#node(this.#message(field, 'node'), depth + 1, graphDepth, where);
    });
  }

  #node(message: LengthDelimited, depth: number, graphDepth: number, where: string): void {
    const name = this.#lastString(message, depth, Node.name, 'node name') ?? '';
    const opType = this.#lastString(message, depth, Node.opType, 'node op_type') ?? '';
    const node = `node ${quoteName(name)} (${opType === '' ? 'no op type' : quoteName(opType).slice(1, -1)}) of ${where}`;
    this.#each(message, depth, (field) => {
      if (field.field === Node.attribute) this.#attribute(this.#message(field, 'attribute'), depth + 1, graphDepth, node);
    });
  }

  #attribute(message: LengthDelimited, depth: number, graphDepth: number, owner: string): void {
    const where = `attribute ${quoteName(this.#lastString(message, depth, Attribute.name, 'attribute name') ?? '')} of ${owner}`;
    this.#each(message, depth, (field) => {
      switch (field.field) {
        case Attribute.t:
        case Attribute.tensors:
          this.#tensor(this.#message(field, 'tensor attribute'), depth + 1, (tensorName) => `tensor ${tensorName} in ${where}`);
          break;
        case Attribute.sparseTensor:
        case Attribute.sparseTensors:
          this.#sparseTensor(this.#message(field, 'sparse tensor attribute'), depth + 1, 'sparse tensor', where);
          break;
        case Attribute.g:
        case Attribute.graphs:
          this.#graph(this.#message(field, 'graph attribute'), depth + 1, graphDepth + 1, `the subgraph in ${where}`);
          break;
        default:
          break;
      }
    });
  }

  #sparseTensor(message: LengthDelimited, depth: number, kind: string, where: string): void {
    // A sparse initializer is named by its values tensor.
    let valuesName = '';
    this.#each(message, depth, (field) => {
      if (field.field === SparseTensor.values) {
        valuesName = this.#lastString(this.#message(field, 'sparse values'), depth + 1, Tensor.name, 'tensor name') ?? valuesName;
      }
    });
    this.#each(message, depth, (field) => {
      if (field.field === SparseTensor.values) {
        this.#tensor(this.#message(field, 'sparse values'), depth + 1, () => `${kind} ${quoteName(valuesName)} (values) of ${where}`);
      } else if (field.field === SparseTensor.indices) {
        this.#tensor(this.#message(field, 'sparse indices'), depth + 1, () => `${kind} ${quoteName(valuesName)} (indices) of ${where}`);
      }
    });
  }

  #tensor(message: LengthDelimited, depth: number, describe: (quotedName: string) => string): void {
    let flaggedExternal = false;
    let name = '';
    const entries = new Map<string, string>();
    const locations: string[] = [];
    this.#each(message, depth, (field) => {
      if (field.field === Tensor.dataLocation) {
        if (field.wireType !== WireType.VARINT) throw new ProtobufDecodeError('data_location is not a varint', field.offset);
        // Any value but DEFAULT counts: protobuf keeps unknown enum values, and ORT may learn new ones.
        if (field.low32 !== 0 || !field.fitsIn32Bits) flaggedExternal = true;
      } else if (field.field === Tensor.name) {
        name = lenientUtf8.decode(this.#message(field, 'tensor name').bytes);
      } else if (field.field === Tensor.externalData) {
        const entry = this.#message(field, 'external_data entry');
        const key = this.#lastString(entry, depth + 1, Entry.key, 'external_data key', true) ?? '';
        const value = this.#lastString(entry, depth + 1, Entry.value, 'external_data value', true) ?? '';
        entries.set(key, value);
        if (key === 'location') locations.push(value);
      }
    });
    if (!flaggedExternal && entries.size === 0) return;
    if (this.references.length >= maxReferences) throw new InvalidOnnxError(`the model has more than ${maxReferences} tensors with external data`);
    const tensor = describe(quoteName(name));
    // Deeply nested subgraphs make long descriptions; the head names the tensor itself.
    this.references.push({ tensor: tensor.length > maxDescription ? `${tensor.slice(0, maxDescription)}…` : tensor, entries, locations, flaggedExternal });
  }
}

/**
 * Every tensor of the model with external data. Throws `InvalidOnnxError` (with the byte offset where
 * it applies) when the bytes are not a well-formed ONNX protobuf or exceed the nesting limits.
 */
export function findExternalData(bytes: Uint8Array): ExternalDataReference[] {
  // ORT-format (flatbuffer) models carry the identifier "ORTM" at byte 4; they are not ONNX protobufs.
  if (bytes.length >= 8 && new TextDecoder().decode(bytes.subarray(4, 8)) === 'ORTM') {
    throw new InvalidOnnxError('ORT-format models are not supported; upload the .onnx protobuf');
  }
  const walker = new Walker();
  try {
    walker.model(bytes);
  } catch (error) {
    if (error instanceof ProtobufDecodeError) throw new InvalidOnnxError(`not a valid ONNX protobuf: ${error.message}`);
    throw error;
  }
  return walker.references;
}

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
import { ProtobufDecodeError, ProtobufReader, WireType } from './protobuf-reader.ts';

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

const lenientUtf8 = new TextDecoder();

/** Quotes a name from the file for a message: bounded, and without control characters. */
export function quoteName(name: string): string {
  const cleaned = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return `'${cleaned.length > 80 ? `${cleaned.slice(0, 80)}…` : cleaned}'`;
}

/**
 * Where a message sits. Names are kept as bytes and turned into text only for the few tensors that
 * are reported, after the whole file is read (protobuf's last occurrence of a field wins, and it may
 * come after the tensor).
 */
interface Scope {
  kind: 'graph' | 'training' | 'node' | 'function' | 'attribute' | 'sparse';
  parent: Scope | undefined;
  name?: Uint8Array;
  opType?: Uint8Array;
}

interface Found {
  scope: Scope;
  role: 'initializer' | 'tensor' | 'values' | 'indices';
  name: Uint8Array | undefined;
  entries: Map<string, string>;
  locations: string[];
  flaggedExternal: boolean;
}

const nameOf = (bytes: Uint8Array | undefined): string => quoteName(bytes === undefined ? '' : lenientUtf8.decode(bytes));

function describeScope(scope: Scope | undefined): string {
  if (scope === undefined) return 'the model';
  switch (scope.kind) {
    case 'graph': {
      const named = scope.name === undefined || scope.name.length === 0 ? 'graph' : `graph ${nameOf(scope.name)}`;
      if (scope.parent?.kind === 'attribute') return `${named} (the subgraph in ${describeScope(scope.parent)})`;
      return scope.parent?.kind === 'training' ? `${named} (a training graph)` : named;
    }
    case 'node': {
      const opType = scope.opType === undefined || scope.opType.length === 0 ? 'no op type' : nameOf(scope.opType).slice(1, -1);
      return `node ${nameOf(scope.name)} (${opType}) of ${describeScope(scope.parent)}`;
    }
    case 'function':
      return `function ${nameOf(scope.name)}`;
    case 'attribute':
      return `attribute ${nameOf(scope.name)} of ${describeScope(scope.parent)}`;
    case 'training':
    case 'sparse':
      return describeScope(scope.parent);
  }
}

function describe(found: Found): string {
  const { scope, role } = found;
  let text: string;
  if (role === 'initializer') text = `initializer ${nameOf(found.name)} of ${describeScope(scope)}`;
  else if (role === 'tensor') text = `tensor ${nameOf(found.name)} in ${describeScope(scope)}`;
  else {
    // A sparse tensor is named by its values tensor.
    const kind = scope.parent?.kind === 'graph' ? 'sparse initializer' : 'sparse tensor';
    text = `${kind} ${nameOf(scope.name)} (${role}) ${scope.parent?.kind === 'graph' ? 'of' : 'in'} ${describeScope(scope.parent)}`;
  }
  // Deeply nested subgraphs make long descriptions; the head names the tensor itself.
  return text.length > maxDescription ? `${text.slice(0, maxDescription)}…` : text;
}

/** Fields read between two pauses of the asynchronous walk: about a millisecond of work. */
const fieldsPerSlice = 50_000;

/**
 * Generators, so that one walk serves both callers: `findExternalData` runs it straight through,
 * `findExternalDataInSlices` pauses every `fieldsPerSlice` fields to let the event loop serve other
 * requests (a hostile 64 MiB file of tiny fields takes about a second to walk).
 */
class Walker {
  readonly found: Found[] = [];
  #fields = 0;

  /** True every `fieldsPerSlice` fields: the caller yields then. */
  #tick(): boolean {
    return ++this.#fields % fieldsPerSlice === 0;
  }

  #enter(depth: number): void {
    if (depth > maxMessageDepth) throw new InvalidOnnxError(`the model nests messages more than ${maxMessageDepth} deep`);
  }

  *model(bytes: Uint8Array): Generator<void, void, void> {
    const reader = new ProtobufReader(bytes);
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === Model.graph) yield* this.#graph(reader.message('graph'), 1, 1, { kind: 'graph', parent: undefined });
      else if (reader.field === Model.trainingInfo) yield* this.#trainingInfo(reader.message('training_info'), 1);
      else if (reader.field === Model.functions) yield* this.#function(reader.message('function'), 1);
    }
  }

  *#trainingInfo(reader: ProtobufReader, depth: number): Generator<void, void, void> {
    this.#enter(depth);
    const scope: Scope = { kind: 'training', parent: undefined };
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === TrainingInfo.initialization || reader.field === TrainingInfo.algorithm) {
        yield* this.#graph(reader.message('training graph'), depth + 1, 1, { kind: 'graph', parent: scope });
      }
    }
  }

  *#function(reader: ProtobufReader, depth: number): Generator<void, void, void> {
    this.#enter(depth);
    const scope: Scope = { kind: 'function', parent: undefined };
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === Function.name) scope.name = reader.payload('function name');
      else if (reader.field === Function.node) yield* this.#node(reader.message('function node'), depth + 1, 1, scope);
      else if (reader.field === Function.attributeProto) yield* this.#attribute(reader.message('function attribute'), depth + 1, 1, scope);
    }
  }

  *#graph(reader: ProtobufReader, depth: number, graphDepth: number, scope: Scope): Generator<void, void, void> {
    this.#enter(depth);
    if (graphDepth > maxGraphDepth) throw new InvalidOnnxError(`the model nests subgraphs more than ${maxGraphDepth} deep`);
    while (reader.next()) {
      if (this.#tick()) yield;
      switch (reader.field) {
        case Graph.name:
          scope.name = reader.payload('graph name');
          break;
        case Graph.initializer:
          yield* this.#tensor(reader.message('initializer'), depth + 1, scope, 'initializer');
          break;
        case Graph.sparseInitializer:
          yield* this.#sparseTensor(reader.message('sparse initializer'), depth + 1, scope);
          break;
        case Graph.node:
          yield* this.#node(reader.message('node'), depth + 1, graphDepth, scope);
          break;
        default:
          break;
      }
    }
  }

  *#node(reader: ProtobufReader, depth: number, graphDepth: number, parent: Scope): Generator<void, void, void> {
    this.#enter(depth);
    const scope: Scope = { kind: 'node', parent };
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === Node.name) scope.name = reader.payload('node name');
      else if (reader.field === Node.opType) scope.opType = reader.payload('node op_type');
      else if (reader.field === Node.attribute) yield* this.#attribute(reader.message('attribute'), depth + 1, graphDepth, scope);
    }
  }

  *#attribute(reader: ProtobufReader, depth: number, graphDepth: number, parent: Scope): Generator<void, void, void> {
    this.#enter(depth);
    const scope: Scope = { kind: 'attribute', parent };
    while (reader.next()) {
      if (this.#tick()) yield;
      switch (reader.field) {
        case Attribute.name:
          scope.name = reader.payload('attribute name');
          break;
        case Attribute.t:
        case Attribute.tensors:
          yield* this.#tensor(reader.message('tensor attribute'), depth + 1, scope, 'tensor');
          break;
        case Attribute.sparseTensor:
        case Attribute.sparseTensors:
          yield* this.#sparseTensor(reader.message('sparse tensor attribute'), depth + 1, scope);
          break;
        case Attribute.g:
        case Attribute.graphs:
          yield* this.#graph(reader.message('graph attribute'), depth + 1, graphDepth + 1, { kind: 'graph', parent: scope });
          break;
        default:
          break;
      }
    }
  }

  *#sparseTensor(reader: ProtobufReader, depth: number, parent: Scope): Generator<void, void, void> {
    this.#enter(depth);
    const scope: Scope = { kind: 'sparse', parent };
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === SparseTensor.values) yield* this.#tensor(reader.message('sparse values'), depth + 1, scope, 'values');
      else if (reader.field === SparseTensor.indices) yield* this.#tensor(reader.message('sparse indices'), depth + 1, scope, 'indices');
    }
  }

  *#tensor(reader: ProtobufReader, depth: number, scope: Scope, role: Found['role']): Generator<void, void, void> {
    this.#enter(depth);
    let flaggedExternal = false;
    let name: Uint8Array | undefined;
    let entries: Map<string, string> | undefined;
    const locations: string[] = [];
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === Tensor.dataLocation) {
        if (reader.wireType !== WireType.VARINT) throw new ProtobufDecodeError('data_location is not a varint', reader.offset);
        // Any value but DEFAULT counts: protobuf keeps unknown enum values, and ORT may learn new ones.
        if (reader.low32 !== 0 || !reader.fitsIn32Bits) flaggedExternal = true;
      } else if (reader.field === Tensor.name) {
        name = reader.payload('tensor name');
      } else if (reader.field === Tensor.externalData) {
        const [key, value] = yield* this.#entry(reader.message('external_data entry'), depth + 1);
        entries ??= new Map();
        entries.set(key, value);
        if (key === 'location') locations.push(value);
      }
    }
    // The values tensor names its sparse tensor (the last one wins, as for any field).
    if (role === 'values' && name !== undefined) scope.name = name;
    if (!flaggedExternal && entries === undefined) return;
    if (this.found.length >= maxReferences) throw new InvalidOnnxError(`the model has more than ${maxReferences} tensors with external data`);
    this.found.push({ scope, role, name, entries: entries ?? new Map(), locations, flaggedExternal });
  }

  /** Key and value of a StringStringEntryProto, last occurrence winning; strict UTF-8, since they become paths. */
  *#entry(reader: ProtobufReader, depth: number): Generator<void, [string, string], void> {
    this.#enter(depth);
    let key = '';
    let value = '';
    while (reader.next()) {
      if (this.#tick()) yield;
      if (reader.field === Entry.key) key = reader.text('external_data key');
      else if (reader.field === Entry.value) value = reader.text('external_data value');
    }
    return [key, value];
  }
}

function checkFormat(bytes: Uint8Array): void {
  // ORT-format (flatbuffer) models carry the identifier "ORTM" at byte 4; they are not ONNX protobufs.
  if (bytes.length >= 8 && new TextDecoder().decode(bytes.subarray(4, 8)) === 'ORTM') {
    throw new InvalidOnnxError('ORT-format models are not supported; upload the .onnx protobuf');
  }
}

function asInvalidOnnx(error: unknown): unknown {
  return error instanceof ProtobufDecodeError ? new InvalidOnnxError(`not a valid ONNX protobuf: ${error.message}`) : error;
}

function report(walker: Walker): ExternalDataReference[] {
  return walker.found.map((found) => ({
    tensor: describe(found),
    entries: found.entries,
    locations: found.locations,
    flaggedExternal: found.flaggedExternal,
  }));
}

/**
 * Every tensor of the model with external data. Throws `InvalidOnnxError` (with the byte offset where
 * it applies) when the bytes are not a well-formed ONNX protobuf or exceed the nesting limits.
 */
export function findExternalData(bytes: Uint8Array): ExternalDataReference[] {
  checkFormat(bytes);
  const walker = new Walker();
  try {
    for (const _pause of walker.model(bytes));
  } catch (error) {
    throw asInvalidOnnx(error);
  }
  return report(walker);
}

/** `findExternalData` in slices of about a millisecond, between which the event loop runs. */
export async function findExternalDataInSlices(bytes: Uint8Array): Promise<ExternalDataReference[]> {
  checkFormat(bytes);
  const walker = new Walker();
  try {
    for (const _pause of walker.model(bytes)) await new Promise<void>((resolve) => setImmediate(resolve));
  } catch (error) {
    throw asInvalidOnnx(error);
  }
  return report(walker);
}

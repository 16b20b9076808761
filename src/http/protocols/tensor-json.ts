/**
 * JSON <-> tensor conversions shared by the V2 and TF-Serving adapters: element coercion per data
 * type, nested/flat data, shape inference, validation against a model signature, and a serializer
 * that keeps 64-bit integers exact.
 */
import { AiaasError, quoteForError } from '../../errors.ts';
import type { ModelSignature, Tensor, TensorData, TensorDataType, TensorSpec } from '../../runtimes/runtime.ts';
import { allocateTensorData, elementCount } from '../../runtimes/tensor.ts';
import { describeJsonSyntaxError } from '../../data/json-syntax.ts';

export const tensorDataTypes: readonly TensorDataType[] = [
  'FP32', 'FP64', 'FP16', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'BOOL', 'BYTES',
];

export function isTensorDataType(value: unknown): value is TensorDataType {
  return typeof value === 'string' && (tensorDataTypes as readonly string[]).includes(value);
}

const integerRanges: Partial<Record<TensorDataType, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
};

/** An input name as error messages quote it: cut short, since the client chose its length. */
export function shortName(name: string): string {
  return name.length > 120 ? `${name.slice(0, 120)}…` : name;
}

export function invalidTensor(inputName: string, message: string, details?: Record<string, unknown>): AiaasError {
  return new AiaasError('INVALID_TENSOR', `input '${shortName(inputName)}': ${message}`, details === undefined ? {} : { details });
}

function describe(value: unknown): string {
  return quoteForError(value, 40);
}

/**
 * Most dimensions a request tensor may have. ONNX models rarely exceed 6; the limit keeps every
 * recursive walk of tensor data shallow (a rank-5000 tensor used to overflow the stack).
 */
export const maxTensorRank = 64;

export function assertTensorRank(inputName: string, rank: number): void {
  if (rank > maxTensorRank) {
    throw new AiaasError('NESTING_TOO_DEEP', `input '${shortName(inputName)}': rank ${rank} is more than the ${maxTensorRank} dimensions a tensor may have`, {
      details: { limit: maxTensorRank },
    });
  }
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export interface ElementOptions {
  /** TF-Serving's JSON allows NaN/Infinity tokens; the body parser turns them into these strings. */
  allowNonFiniteStrings?: boolean;
}

function toNumber(value: unknown, options: ElementOptions): number | undefined {
  if (typeof value === 'number') return value;
  if (options.allowNonFiniteStrings === true && typeof value === 'string') {
    if (value === 'NaN') return Number.NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
  }
  return undefined;
}

/** IEEE 754 half-precision bits of a number (round to nearest even). */
export function toHalf(value: number): number {
  const floatView = new Float32Array(1);
  const intView = new Uint32Array(floatView.buffer);
  floatView[0] = value;
  const bits = intView[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = sign | (halfExponent << 10) | (mantissa >> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return half;
}

export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function toBigInt(value: unknown, signed: boolean): bigint | undefined {
  let result: bigint | undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) result = BigInt(value);
  // Strings let clients send 64-bit values JSON numbers cannot carry exactly.
  else if (typeof value === 'string' && /^-?\d{1,20}$/.test(value)) result = BigInt(value);
  if (result === undefined) return undefined;
  if (signed ? result !== BigInt.asIntN(64, result) : result !== BigInt.asUintN(64, result)) return undefined;
  return result;
}

/** Converts flat JSON elements into typed storage, naming the input and element on mismatch. */
export function fromJsonElements(values: readonly unknown[], datatype: TensorDataType, inputName: string, options: ElementOptions = {}): TensorData {
  const data = allocateTensorData(datatype, values.length);
  const fail = (index: number, expected: string): never => {
    throw invalidTensor(inputName, `element ${index} is ${describe(values[index])}, expected ${expected} for ${datatype}`);
  };
  switch (datatype) {
    case 'FP32':
    case 'FP64':
    case 'FP16': {
      const target = data as Float32Array | Float64Array | Uint16Array;
      for (let index = 0; index < values.length; index++) {
        const number = toNumber(values[index], options);
        if (number === undefined) fail(index, 'a number');
        target[index] = datatype === 'FP16' ? toHalf(number!) : number!;
      }
      return data;
    }
    case 'INT64':
    case 'UINT64': {
      const target = data as BigInt64Array | BigUint64Array;
      for (let index = 0; index < values.length; index++) {
        const value = values[index];
        const number = toBigInt(value, datatype === 'INT64');
        if (number === undefined) {
          // JSON.parse has already rounded such a number, so the exact value is gone; say how to send it.
          const unsafe = typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) <= 2 ** 64;
          fail(index, unsafe ? `a string for integers beyond 2^53 (JSON numbers lose precision there)` : `an integer in ${datatype} range`);
        }
        target[index] = number!;
      }
      return data;
    }
    case 'BOOL': {
      const target = data as Uint8Array;
      for (let index = 0; index < values.length; index++) {
        const value = values[index];
        if (typeof value !== 'boolean') fail(index, 'true or false');
        target[index] = value ? 1 : 0;
      }
      return data;
    }
    case 'BYTES': {
      const target = data as string[];
      for (let index = 0; index < values.length; index++) {
        const value = values[index];
        if (typeof value === 'string') target[index] = value;
        else if (isBase64Object(value)) target[index] = decodeBase64Element(value.b64, inputName, index);
        else fail(index, 'a string');
      }
      return data;
    }
    default: {
      const [low, high] = integerRanges[datatype]!;
      const target = data as Int32Array;
      for (let index = 0; index < values.length; index++) {
        const value = values[index];
        if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) fail(index, `an integer in [${low}, ${high}]`);
        target[index] = value as number;
      }
      return data;
    }
  }
}

/**
 * Elements a parse worker packed, every one a JSON number: as float32 for an FP32 input, as doubles
 * otherwise. Gives the tensor data fromJsonElements would make of the same numbers: floats are
 * stored as they are (a view into the worker's batch buffer is fine: runtimes copy views before
 * handing buffers over), other types take the element-by-element path with its checks and messages.
 */
export function fromPackedNumbers(values: Float32Array | Float64Array, datatype: TensorDataType, inputName: string): TensorData {
  if (values instanceof Float32Array ? datatype === 'FP32' : datatype === 'FP64') return values;
  if (datatype === 'FP32') return new Float32Array(values);
  return fromJsonElements(Array.from(values), datatype, inputName);
}

// Fatal, so bytes that are not UTF-8 are refused rather than silently replaced: onnxruntime-node
// carries string tensors as JavaScript strings, so such bytes could not reach the model unchanged.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A BYTES element's bytes as the text the runtime takes; 400 naming the element when not UTF-8. */
export function decodeUtf8Element(bytes: Uint8Array, inputName: string, index: number): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw invalidTensor(inputName, `BYTES element ${index} is not valid UTF-8; this server passes strings to the model as text`);
  }
}

/** `{"b64": ...}` (TF-Serving's binary strings): standard base64, padding optional. */
function decodeBase64Element(text: string, inputName: string, index: number): string {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw invalidTensor(inputName, `element ${index} has a "b64" value that is not base64`);
  }
  return decodeUtf8Element(Buffer.from(text, 'base64'), inputName, index);
}

export function isBase64Object(value: unknown): value is { b64: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { b64?: unknown }).b64 === 'string' && Object.keys(value).length === 1;
}

const minSafeBigInt = BigInt(Number.MIN_SAFE_INTEGER);
const maxSafeBigInt = BigInt(Number.MAX_SAFE_INTEGER);

/** Plain JSON values of a tensor's elements; 64-bit integers stay bigint for the exact serializer. */
export function toJsonElements(tensor: Tensor): (number | bigint | boolean | string)[] {
  switch (tensor.datatype) {
    case 'BOOL':
      return Array.from(tensor.data as Uint8Array, (value) => value !== 0);
    case 'FP16':
      return Array.from(tensor.data as Uint16Array, fromHalf);
    case 'INT64':
    case 'UINT64':
      return Array.from(tensor.data as BigInt64Array, (value) => (value >= minSafeBigInt && value <= maxSafeBigInt ? Number(value) : value));
    case 'BYTES':
      return [...(tensor.data as string[])];
    default:
      return Array.from(tensor.data as Float32Array);
  }
}

/** Reshapes flat elements into nested arrays of `shape`; a scalar shape gives the bare element. */
export function nest<T>(flat: readonly T[], shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  const build = (offset: number, depth: number): unknown[] => {
    const size = shape[depth]!;
    if (depth === shape.length - 1) return flat.slice(offset, offset + size);
    const stride = elementCount(shape.slice(depth + 1));
    const out: unknown[] = [];
    for (let index = 0; index < size; index++) out.push(build(offset + index * stride, depth + 1));
    return out;
  };
  return build(0, 0);
}

/**
 * Flattens V2 `data`: either flat, or nested exactly as `shape` says (every level checked, so a
 * ragged or mis-shaped nesting names the input instead of silently mis-reading rows).
 */
export function flattenData(data: unknown, shape: readonly number[], inputName: string): unknown[] {
  if (!Array.isArray(data)) throw invalidTensor(inputName, `'data' must be an array, got ${describe(data)}`);
  if (!data.some((item) => Array.isArray(item))) return data;
  const out: unknown[] = [];
  const walk = (value: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (Array.isArray(value)) throw invalidTensor(inputName, `data${path} is nested deeper than shape ${formatShape(shape)}`);
      out.push(value);
      return;
    }
    if (!Array.isArray(value) || value.length !== shape[depth]) {
      throw invalidTensor(inputName, `data${path} should be an array of ${shape[depth]} for shape ${formatShape(shape)}, got ${Array.isArray(value) ? `${value.length} items` : describe(value)}`);
    }
    value.forEach((item, index) => walk(item, depth + 1, `${path}[${index}]`));
  };
  walk(data, 0, '');
  return out;
}

/** Shape of a nested JSON value (TF-Serving sends no shape); ragged nesting is an error. */
export function inferShape(value: unknown, inputName: string): number[] {
  const shape: number[] = [];
  let cursor: unknown = value;
  while (Array.isArray(cursor)) {
    shape.push(cursor.length);
    assertTensorRank(inputName, shape.length);
    if (cursor.length === 0) break;
    cursor = cursor[0];
  }
  const check = (item: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(item)) throw invalidTensor(inputName, `ragged nesting: expected a value at depth ${depth}, got a list`);
      return;
    }
    if (!Array.isArray(item) || item.length !== shape[depth]) {
      throw invalidTensor(inputName, `ragged nesting: expected a list of ${shape[depth]} at depth ${depth}, got ${Array.isArray(item) ? `${item.length} items` : describe(item)}`);
    }
    for (const child of item) check(child, depth + 1);
  };
  check(value, 0);
  return shape;
}

export function flattenNested(value: unknown): unknown[] {
  // Bounded depth: anything nested deeper stays an array and fails element conversion, never the stack.
  return Array.isArray(value) ? value.flat(maxTensorRank) : [value];
}

export function assertElementCap(count: number, maxTensorElements: number): void {
  if (count > maxTensorElements) {
    throw new AiaasError('TOO_MANY_ELEMENTS', `the request carries ${count} tensor elements, more than the limit of ${maxTensorElements}`, {
      details: { elements: count, limit: maxTensorElements },
    });
  }
}

/** Checks a shape against a spec's rank and fixed dimensions. */
export function checkShape(spec: TensorSpec, shape: readonly number[]): void {
  const mismatch = (why: string): never => {
    throw invalidTensor(spec.name, `shape ${formatShape(shape)} does not match the model's ${formatShape(spec.shape)} (${why})`, {
      expected: spec.shape,
      actual: shape,
    });
  };
  if (shape.length !== spec.shape.length) mismatch(`rank ${shape.length}, expected ${spec.shape.length}`);
  spec.shape.forEach((dim, index) => {
    if (dim >= 0 && shape[index] !== dim) mismatch(`dimension ${index} must be ${dim}`);
  });
}

/**
 * Checks inputs against the signature (unknown, duplicate, missing names; datatype; rank and fixed
 * dimensions) and returns them in the signature's order, which the batcher relies on for merging.
 */
export function matchSignature(inputs: readonly Tensor[], signature: ModelSignature): Tensor[] {
  const byName = new Map<string, Tensor>();
  const known = signature.inputs.map((spec) => spec.name);
  for (const input of inputs) {
    if (byName.has(input.name)) throw invalidTensor(input.name, 'given more than once');
    if (!known.includes(input.name)) {
      throw new AiaasError('INVALID_TENSOR', `unknown input '${shortName(input.name)}'; the model's inputs are: ${known.join(', ')}`);
    }
    byName.set(input.name, input);
  }
  return signature.inputs.map((spec) => {
    const input = byName.get(spec.name);
    if (input === undefined) throw new AiaasError('INVALID_TENSOR', `missing input '${spec.name}' (${spec.datatype} ${formatShape(spec.shape)})`);
    if (input.datatype !== spec.datatype) {
      throw invalidTensor(spec.name, `datatype ${input.datatype} does not match the model's ${spec.datatype}`, { expected: spec.datatype, actual: input.datatype });
    }
    checkShape(spec, input.shape);
    return input;
  });
}

export function checkOutputNames(names: readonly string[], signature: ModelSignature): void {
  const known = signature.outputs.map((spec) => spec.name);
  for (const name of names) {
    if (!known.includes(name)) throw new AiaasError('INVALID_REQUEST', `unknown output '${shortName(name)}'; the model's outputs are: ${known.join(', ')}`);
  }
  if (new Set(names).size !== names.length) throw new AiaasError('INVALID_REQUEST', 'an output is requested more than once');
}

/**
 * JSON.stringify with exact bigints and a choice for non-finite numbers: `null` (strict JSON, V2) or
 * the `NaN`/`Infinity` tokens TF-Serving's REST API emits.
 */
export function serializeJson(value: unknown, nonFinite: 'null' | 'tokens' = 'null'): string {
  if (nonFinite === 'null' && value !== undefined) {
    // JSON.stringify already writes non-finite numbers as null and skips undefined members; only a
    // bigint (INT64/UINT64 data) makes it throw, and then the walk below writes it exactly.
    try {
      return JSON.stringify(value);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
    }
  }
  const parts: string[] = [];
  const write = (item: unknown): void => {
    if (item === null || item === undefined) parts.push('null');
    else if (typeof item === 'number') {
      if (Number.isFinite(item)) parts.push(String(item));
      else parts.push(nonFinite === 'null' ? 'null' : Number.isNaN(item) ? 'NaN' : item > 0 ? 'Infinity' : '-Infinity');
    } else if (typeof item === 'bigint') parts.push(item.toString());
    else if (typeof item === 'string' || typeof item === 'boolean') parts.push(JSON.stringify(item));
    else if (Array.isArray(item)) {
      // Tensor data is mostly long runs of plain numbers: JSON.stringify writes those exactly as the
      // loop below would (finite numbers as String(n); in 'null' mode non-finite ones as null), only
      // far faster than one parts entry per element.
      if (isPlainNumberArray(item, nonFinite === 'null')) {
        parts.push(JSON.stringify(item));
        return;
      }
      parts.push('[');
      item.forEach((child, index) => {
        if (index > 0) parts.push(',');
        write(child);
      });
      parts.push(']');
    } else if (typeof item === 'object') {
      parts.push('{');
      let first = true;
      for (const [key, child] of Object.entries(item)) {
        if (child === undefined) continue;
        if (!first) parts.push(',');
        first = false;
        parts.push(JSON.stringify(key), ':');
        write(child);
      }
      parts.push('}');
    } else parts.push('null');
  };
  write(value);
  return parts.join('');
}

function isPlainNumberArray(items: readonly unknown[], allowNonFinite: boolean): boolean {
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    if (typeof item !== 'number' || (!allowNonFinite && !Number.isFinite(item))) return false;
  }
  return true;
}

/**
 * Parses a request body. Empty bodies are allowed (the repository extension's load/unload may send
 * none). With `allowNonFiniteTokens`, bare NaN/Infinity/-Infinity outside strings become the strings
 * "NaN"/"Infinity"/"-Infinity", which float conversion accepts.
 */
export function parseJsonBody(text: string, allowNonFiniteTokens: boolean): unknown {
  if (text.trim() === '') return undefined;
  // No up-front depth scan here (it would cost about half a JSON.parse on large tensors): JSON.parse
  // copes with any depth, and every walk of the parsed value below is bounded by maxTensorRank.
  const source = allowNonFiniteTokens ? quoteNonFiniteTokens(text) : text;
  try {
    return JSON.parse(source) as unknown;
  } catch (error) {
    throw new AiaasError('INVALID_JSON', `request body is not valid JSON: ${describeJsonSyntaxError(source, error)}`);
  }
}

/** Quotes bare non-finite tokens outside string literals; copies the text between them in slices. */
function quoteNonFiniteTokens(text: string): string {
  if (!/NaN|Infinity/.test(text)) return text;
  const parts: string[] = [];
  let copied = 0;
  let index = 0;
  while (index < text.length) {
    const code = text.charCodeAt(index);
    if (code === 0x22) {
      // Skip a string literal, escapes included; an unterminated one runs to the end.
      index++;
      while (index < text.length) {
        const inner = text.charCodeAt(index);
        index += inner === 0x5c ? 2 : 1;
        if (inner === 0x22) break;
      }
      continue;
    }
    const token =
      code === 0x4e && text.startsWith('NaN', index) ? 'NaN'
      : code === 0x49 && text.startsWith('Infinity', index) ? 'Infinity'
      : code === 0x2d && text.startsWith('-Infinity', index) ? '-Infinity'
      : undefined;
    if (token === undefined) {
      index++;
      continue;
    }
    parts.push(text.slice(copied, index), '"', token, '"');
    index += token.length;
    copied = index;
  }
  parts.push(text.slice(copied));
  return parts.join('');
}

/**
 * A JSON parser for small KServe V2 inference bodies on the main thread, written for the shape they
 * have: an envelope of a few ASCII keys around long flat arrays of numbers. JSON.parse spends ~9 ns on
 * each `0` of a 784-pixel image and ~64 ns on each 17-digit float (14 µs per bench:serve body); this
 * scanner reads the digits straight into a typed array, which made handing small bodies to a parse
 * thread (a round trip that cost more CPU than the parse) unnecessary.
 *
 * It returns exactly what `parseJsonBody` followed by the parse workers' packing returns: plain JSON
 * values, except that a non-empty flat array of numbers under the top-level `inputs[].data` is a
 * Float32Array when the input's `datatype` ("FP32") came before its data, a Float64Array (the exact
 * doubles JSON.parse makes) otherwise; the tensor parser takes either form (`fromPackedNumbers`).
 * Anything outside that fast lane — strings with escapes or non-ASCII bytes, a `__proto__` key,
 * nesting deeper than 100, and every syntax error — returns `unscanned`, and the caller parses the
 * body as before, which also names where invalid JSON breaks.
 *
 * Numbers convert exactly as JSON.parse does. Up to 15 significant digits with a power of ten up to
 * 22 the double is exact arithmetic (Clinger's fast path: both operands exact, one rounding). Longer
 * numbers headed for float32 are approximated within 2^-48 relative and kept only when every double
 * in that interval rounds to the same float32 (values printed from float32s, as most clients send,
 * lie far from float32 rounding boundaries); the rest go through Number() on their text.
 */

/** Returned for a body the scanner leaves to JSON.parse. */
export const unscanned: unique symbol = Symbol('unscanned');

const maxDepth = 100;
const powersOfTen = Array.from({ length: 23 }, (_, exponent) => Number(`1e${exponent}`));
/** Relative half-width of the interval an approximated float32 value must not straddle a boundary in. */
const float32Margin = 2 ** -48;
/** Beyond this many significant digits the approximation's error bound no longer fits float32Margin. */
const maxApproximatedDigits = 25;

/** Thrown (a shared object, never an Error: no stack to capture) to leave a body to JSON.parse. */
const leave = { leave: true };

const enum Target {
  /** A plain JSON number. */
  Double,
  /** An element of an FP32 tensor: only its float32 rounding matters. */
  Float32,
}

const enum Place {
  Anywhere,
  /** The body's top-level object: its `inputs` are read as tensors. */
  Envelope,
  /** An element of the top-level `inputs`: its `data` is read into a typed array. */
  Input,
}

class Scanner {
  readonly #bytes: Buffer;
  readonly #end: number;
  #at = 0;
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
    this.#end = bytes.length;
  }

  document(): unknown {
    this.#skipSpace();
    if (this.#at >= this.#end) throw leave;
    const value = this.#value(0, Place.Envelope);
    this.#skipSpace();
    if (this.#at !== this.#end) throw leave;
    return value;
  }

  #skipSpace(): void {
    const bytes = this.#bytes;
    let at = this.#at;
    while (at < this.#end) {
      const code = bytes[at]!;
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
      at++;
    }
    this.#at = at;
  }

  #value(depth: number, place: Place): unknown {
    const code = this.#bytes[this.#at];
    switch (code) {
      case 0x7b: // {
        return this.#object(depth + 1, place);
      case 0x5b: // [
        return this.#array(depth + 1, place === Place.Envelope ? Place.Anywhere : place);
      case 0x22: // "
        return this.#string();
      case 0x74: // t
        this.#literal('true');
        return true;
      case 0x66: // f
        this.#literal('false');
        return false;
      case 0x6e: // n
        this.#literal('null');
        return null;
      default:
        if (code === 0x2d || isDigit(code)) return this.#number();
        throw leave;
    }
  }

  #literal(word: string): void {
    for (let index = 0; index < word.length; index++) {
      if (this.#bytes[this.#at + index] !== word.charCodeAt(index)) throw leave;
    }
    this.#at += word.length;
  }

  /** An ASCII string without escapes; anything else is left to JSON.parse. */
  #string(): string {
    const bytes = this.#bytes;
    const start = ++this.#at;
    let at = start;
    while (at < this.#end) {
      const code = bytes[at]!;
      if (code === 0x22) {
        this.#at = at + 1;
        return latin1(bytes, start, at);
      }
      if (code === 0x5c || code < 0x20 || code >= 0x80) throw leave;
      at++;
    }
    throw leave;
  }

  #object(depth: number, place: Place): Record<string, unknown> {
    if (depth > maxDepth) throw leave;
    const object: Record<string, unknown> = {};
    if (this.#opensEmpty(0x7d)) return object;
    // An input's datatype as far as read, and whether its data was read as float32 on the strength of it.
    let datatype: unknown;
    let float32Data = false;
    for (;;) {
      if (this.#bytes[this.#at] !== 0x22) throw leave;
      const key = this.#string();
      // An own "__proto__" property (what JSON.parse makes) cannot be made by assignment.
      if (key === '__proto__') throw leave;
      this.#skipSpace();
      if (this.#bytes[this.#at] !== 0x3a) throw leave;
      this.#at++;
      this.#skipSpace();
      let value: unknown;
      if (place === Place.Envelope && key === 'inputs' && this.#bytes[this.#at] === 0x5b) {
        value = this.#array(depth + 1, Place.Input);
      } else if (place === Place.Input && key === 'data' && this.#bytes[this.#at] === 0x5b) {
        value = this.#tensorData(depth + 1, datatype === 'FP32' ? Target.Float32 : Target.Double);
        float32Data = value instanceof Float32Array;
      } else {
        value = this.#value(depth, Place.Anywhere);
      }
      if (place === Place.Input && key === 'datatype') {
        // A second datatype after float32 data: the data would have needed its doubles.
        if (float32Data && value !== 'FP32') throw leave;
        datatype = value;
      }
      object[key] = value;
      if (!this.#moreAfterElement(0x7d)) return object;
    }
  }

  /** An array; with `elements` Input, its objects are V2 inputs. */
  #array(depth: number, elements: Place): unknown[] {
    if (depth > maxDepth) throw leave;
    const array: unknown[] = [];
    if (this.#opensEmpty(0x5d)) return array;
    for (;;) {
      array.push(elements === Place.Input && this.#bytes[this.#at] === 0x7b ? this.#object(depth + 1, Place.Input) : this.#value(depth, Place.Anywhere));
      if (!this.#moreAfterElement(0x5d)) return array;
    }
  }

  /** Steps past an opening bracket or brace; true (and past `close` too) when the container is empty. */
  #opensEmpty(close: number): boolean {
    this.#at++;
    this.#skipSpace();
    if (this.#bytes[this.#at] !== close) return false;
    this.#at++;
    return true;
  }

  /** After an element: true past a comma (another element follows), false past `close`; anything else is not JSON. */
  #moreAfterElement(close: number): boolean {
    this.#skipSpace();
    const code = this.#bytes[this.#at];
    this.#at++;
    if (code === close) return false;
    if (code !== 0x2c) throw leave;
    this.#skipSpace();
    return true;
  }

  /**
   * An input's `data`: a flat non-empty array of numbers becomes a typed array; anything else (nested
   * rows, strings, booleans, an empty array) is read again as a plain array.
   */
  #tensorData(depth: number, target: Target): unknown[] | Float32Array | Float64Array {
    const count = readNumbers(this.#bytes, this.#at, target);
    if (count < 0) return this.#array(depth, Place.Anywhere);
    this.#at = numbersEnd;
    if (target === Target.Double) return scratch.slice(0, count);
    return float32Copy(count);
  }

  /** A JSON number outside a tensor. */
  #number(): number {
    const value = readNumber(this.#bytes, this.#at);
    this.#at = numberEnd;
    return value;
  }
}

/** Numbers of the tensor being read; grown as needed (to the largest tensor of a small body), reused across bodies. */
let scratch = new Float64Array(1024);
/** Where the last readNumbers / readNumber stopped: module state, so the hot loops keep everything in locals. */
let numbersEnd = 0;
let numberEnd = 0;

/**
 * FP32 tensors are views into shared slabs, as the parse workers' are into their batch buffers: one
 * allocation per slab instead of one per request (runtimes copy a view before handing it over, and a
 * merged batch is copied anyway). A slab stays alive while any request still holds a view into it.
 */
const slabElements = 64 * 1024;
let slab = new Float32Array(slabElements);
let slabUsed = 0;

/** The first `count` numbers of `scratch` as float32s. */
function float32Copy(count: number): Float32Array {
  let values: Float32Array;
  if (count > slabElements / 4) {
    values = new Float32Array(count);
  } else {
    if (slabUsed + count > slabElements) {
      slab = new Float32Array(slabElements);
      slabUsed = 0;
    }
    values = slab.subarray(slabUsed, slabUsed + count);
    slabUsed += count;
  }
  values.set(scratch.subarray(0, count));
  return values;
}

const isDigit = (code: number | undefined): boolean => code !== undefined && code >= 0x30 && code <= 0x39;
const isSpace = (code: number | undefined): boolean => code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;

/**
 * Reads `[n, n, ...]` from `at` (its opening bracket) into `scratch`: the count, with numbersEnd past
 * the closing bracket; -1 when the array is empty or holds something other than numbers. Each number
 * (RFC 8259 grammar) converts as JSON.parse would, or to its float32 for Target.Float32. One loop with
 * everything in locals: a call per element (and the boxed double it would return) cost more than the
 * digits.
 */
function readNumbers(bytes: Buffer, at: number, target: Target): number {
  at++;
  while (isSpace(bytes[at])) at++;
  let count = 0;
  for (;;) {
    const start = at;
    let code = bytes[at];
    const negative = code === 0x2d;
    if (negative) code = bytes[++at];
    if (!isDigit(code)) {
      // Not a number (a row, a string, null): the array is read again as a plain one.
      if (!negative) return -1;
      throw leave;
    }
    let mantissa = 0;
    let digits = 0;
    let exponent = 0;
    if (code === 0x30) {
      code = bytes[++at];
      // A leading zero followed by digits is not JSON.
      if (isDigit(code)) throw leave;
    } else {
      do {
        mantissa = mantissa * 10 + (code! - 0x30);
        digits++;
        code = bytes[++at];
      } while (isDigit(code));
    }
    if (code === 0x2e) {
      code = bytes[++at];
      if (!isDigit(code)) throw leave;
      do {
        // Zeros before the first significant digit only move the decimal point.
        if (digits > 0 || code !== 0x30) {
          mantissa = mantissa * 10 + (code! - 0x30);
          digits++;
        }
        exponent--;
        code = bytes[++at];
      } while (isDigit(code));
    }
    if (code === 0x65 || code === 0x45) {
      code = bytes[++at];
      const negativeExponent = code === 0x2d;
      if (code === 0x2b || code === 0x2d) code = bytes[++at];
      if (!isDigit(code)) throw leave;
      let written = 0;
      do {
        // Capped: beyond it the value is 0 or Infinity either way, and Number() below decides.
        if (written < 100_000) written = written * 10 + (code! - 0x30);
        code = bytes[++at];
      } while (isDigit(code));
      exponent += negativeExponent ? -written : written;
    }
    let value: number;
    if (mantissa === 0) {
      value = 0;
    } else if (digits <= 15 && exponent >= -22 && exponent <= 22) {
      value = exponent >= 0 ? mantissa * powersOfTen[exponent]! : mantissa / powersOfTen[-exponent]!;
    } else {
      value = Number.NaN;
      if (target === Target.Float32 && digits <= maxApproximatedDigits && exponent >= -22 && exponent <= 22) {
        // Each digit past 2^53 and the scaling round once or twice: 2·digits·2^-53 < 2^-48 in all.
        const approximate = exponent >= 0 ? mantissa * powersOfTen[exponent]! : mantissa / powersOfTen[-exponent]!;
        const low = Math.fround(approximate * (1 - float32Margin));
        if (low === Math.fround(approximate * (1 + float32Margin))) value = low;
      }
      // Number() of the text: the same correctly rounded double JSON.parse makes (sign included).
      if (Number.isNaN(value)) value = Math.abs(Number(latin1(bytes, start, at)));
    }
    if (count === scratch.length) {
      const grown = new Float64Array(scratch.length * 2);
      grown.set(scratch);
      scratch = grown;
    }
    scratch[count++] = negative ? -value : value;
    while (isSpace(bytes[at])) at++;
    const next = bytes[at++];
    if (next === 0x5d) {
      numbersEnd = at;
      return count;
    }
    if (next !== 0x2c) throw leave;
    while (isSpace(bytes[at])) at++;
  }
}

/** RFC 8259's number grammar, for the few numbers outside tensors (shapes, parameters). */
const jsonNumber = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** The JSON number at `start`: JSON.parse's double; numberEnd past it. */
function readNumber(bytes: Buffer, start: number): number {
  let at = start;
  for (;;) {
    const code = bytes[at];
    // Every byte a JSON number can hold; the grammar is checked on the slice.
    if (isDigit(code) || code === 0x2d || code === 0x2b || code === 0x2e || code === 0x65 || code === 0x45) at++;
    else break;
  }
  const text = latin1(bytes, start, at);
  if (!jsonNumber.test(text)) throw leave;
  numberEnd = at;
  return Number(text);
}

/** Node's Buffer has it (undocumented, stable since 0.x); `toString('latin1', …)` normalizes its arguments first. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

/** ASCII bytes as a string (the scanner only slices ASCII). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  return latin1Slice.call(bytes, start, end);
}

/**
 * Parses a V2 inference body (UTF-8 bytes) as described above, or returns `unscanned` for the caller
 * to parse it with JSON.parse.
 */
export function scanV2Body(bytes: Buffer): unknown {
  try {
    return new Scanner(bytes).document();
  } catch (error) {
    if (error === leave) return unscanned;
    throw error;
  }
}

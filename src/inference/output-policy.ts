/**
 * A model's output policy: what its owner lets callers see of its outputs, to make extraction
 * attacks (training a copy from the answers) costlier. Applied once, after inference and before any
 * protocol renders the answer (`runInference` in src/http/protocols/route-support.ts), so V2,
 * TF-Serving and every later protocol return the same restricted outputs.
 *
 * - `topK`: every floating-point score output becomes its k best class indices (INT64, best first),
 *   nothing else; an output with one value per row (a binary probability) becomes 0/1 at 0.5.
 * - `roundDigits`: floating-point outputs left (all of them without `topK`) are rounded to that many
 *   decimals and returned as FP64, so the JSON shows the rounded decimal and not a float32's digits.
 */
import { AiaasError } from '../errors.ts';
import type { Tensor } from '../runtimes/runtime.ts';

export interface OutputPolicy {
  topK?: number;
  roundDigits?: number;
}

const floatTypes = new Set(['FP32', 'FP64', 'FP16']);
const maxTopK = 1000;
const maxRoundDigits = 8;

function invalid(message: string): AiaasError {
  return new AiaasError('INVALID_REQUEST', message, { details: { field: 'outputPolicy' } });
}

/** Validates a policy document; null (or {}) clears it. */
export function parseOutputPolicy(value: unknown): OutputPolicy | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('outputPolicy must be an object such as {"topK": 1} or {"roundDigits": 2}, or null');
  const policy: OutputPolicy = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    if (key === 'topK') {
      if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > maxTopK) throw invalid(`outputPolicy.topK must be an integer in [1, ${maxTopK}]`);
      policy.topK = raw;
    } else if (key === 'roundDigits') {
      if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw > maxRoundDigits) throw invalid(`outputPolicy.roundDigits must be an integer in [0, ${maxRoundDigits}]`);
      policy.roundDigits = raw;
    } else {
      throw invalid(`Unknown outputPolicy setting '${key.slice(0, 40)}'; known: topK, roundDigits`);
    }
  }
  return Object.keys(policy).length === 0 ? null : policy;
}

function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction === 0 ? sign * Infinity : Number.NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function numbersOf(tensor: Tensor): ArrayLike<number> {
  return tensor.datatype === 'FP16' ? Array.from(tensor.data as Uint16Array, halfToNumber) : (tensor.data as Float32Array | Float64Array);
}

function topLabels(tensor: Tensor, k: number): Tensor {
  const values = numbersOf(tensor);
  const width = tensor.shape.length === 0 ? 1 : tensor.shape[tensor.shape.length - 1]!;
  const rows = width === 0 ? 0 : values.length / width;
  if (width <= 1) {
    // One score per row: a probability; the label is which side of 0.5 it falls.
    return { name: tensor.name, datatype: 'INT64', shape: [...tensor.shape], data: BigInt64Array.from(Array.from(values), (value) => (value >= 0.5 ? 1n : 0n)) };
  }
  const kept = Math.min(k, width);
  const labels = new BigInt64Array(rows * kept);
  const order = Array.from({ length: width }, (_, index) => index);
  for (let row = 0; row < rows; row++) {
    const score = (index: number): number => {
      const value = values[row * width + index]!;
      return Number.isNaN(value) ? -Infinity : value;
    };
    // Stable: ties keep the lower class index first.
    const best = [...order].sort((a, b) => score(b) - score(a) || a - b).slice(0, kept);
    best.forEach((label, rank) => (labels[row * kept + rank] = BigInt(label)));
  }
  return { name: tensor.name, datatype: 'INT64', shape: [...tensor.shape.slice(0, -1), kept], data: labels };
}

function rounded(tensor: Tensor, digits: number): Tensor {
  const scale = 10 ** digits;
  return { name: tensor.name, datatype: 'FP64', shape: [...tensor.shape], data: Float64Array.from(numbersOf(tensor), (value) => Math.round(value * scale) / scale) };
}

/** The outputs as the policy lets them out; non-float outputs (labels, strings, integers) pass unchanged. */
export function applyOutputPolicy(policy: OutputPolicy | undefined, outputs: readonly Tensor[]): Tensor[] {
  if (policy === undefined) return [...outputs];
  return outputs.map((tensor) => {
    if (!floatTypes.has(tensor.datatype)) return tensor;
    if (policy.topK !== undefined) return topLabels(tensor, policy.topK);
    if (policy.roundDigits !== undefined) return rounded(tensor, policy.roundDigits);
    return tensor;
  });
}

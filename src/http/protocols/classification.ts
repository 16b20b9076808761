/**
 * Classification views of a model's output, shared by TF-Serving's `:classify` and Triton's
 * classification extension for V2: scores per class with the class names the model was trained on
 * (`ModelSignature.classNames`).
 */
import { AiaasError } from '../../errors.ts';
import type { Tensor } from '../../runtimes/runtime.ts';
import { toJsonElements } from './tensor-json.ts';

export interface ClassScore {
  index: number;
  score: number;
}

/** The output's elements as numbers; a classifier's output is numeric. */
function numericElements(output: Tensor, where: string): number[] {
  if (output.datatype === 'BYTES' || output.datatype === 'BOOL') {
    throw new AiaasError('INVALID_REQUEST', `${where} needs a numeric output; '${output.name}' is ${output.datatype}`);
  }
  return toJsonElements(output).map(Number);
}

/**
 * TF-Serving's view: one list of (class, score) per example, every class in index order. The output
 * must be [batch, classes]; a single unit (a sigmoid) is read as the probability of class 1, so it
 * gives two classes with scores 1 − p and p, as TensorFlow's binary classifiers report them.
 */
export function classScoresPerRow(output: Tensor): ClassScore[][] {
  if (output.shape.length !== 2) {
    throw new AiaasError('INVALID_REQUEST', `:classify needs a model whose output is [batch, classes]; '${output.name}' has shape [${output.shape.join(', ')}]`);
  }
  const [rows, classes] = output.shape as [number, number];
  const values = numericElements(output, ':classify');
  return Array.from({ length: rows }, (_, row) => {
    if (classes === 1) {
      const probability = values[row]!;
      return [
        { index: 0, score: 1 - probability },
        { index: 1, score: probability },
      ];
    }
    return Array.from({ length: classes }, (_, index) => ({ index, score: values[row * classes + index]! }));
  });
}

/**
 * The shortest decimal that reads back as the same float32 (`0.3`, not `0.30000001192092896`):
 * scores in the classification strings stay short and exact for the model's FP32 output.
 */
export function formatScore(value: number, datatype: Tensor['datatype']): string {
  if (datatype !== 'FP32' && datatype !== 'FP16') return String(value);
  if (!Number.isFinite(value)) return String(value);
  for (let precision = 1; precision < 17; precision++) {
    const text = Number(value.toPrecision(precision));
    if (Math.fround(text) === Math.fround(value)) return String(text);
  }
  return String(value);
}

/**
 * Triton's classification extension: for each row of the output's last axis, the `count` highest
 * values (ties: lower index first) as `"value:index"` strings, `":label"` appended where the model
 * names that index. A BYTES tensor of shape [...leading dimensions, min(count, classes)].
 */
export function topClassifications(output: Tensor, count: number, classNames: readonly string[] | undefined): Tensor {
  if (output.shape.length === 0) {
    throw new AiaasError('INVALID_REQUEST', `classification needs an output with a class axis; '${output.name}' is a scalar`);
  }
  const values = numericElements(output, 'classification');
  const classes = output.shape.at(-1)!;
  const rows = classes === 0 ? 0 : values.length / classes;
  const kept = Math.min(count, classes);
  // Names only where they number this axis: a single sigmoid unit (two names, one value) has none.
  const labels = classNames !== undefined && classNames.length <= classes ? classNames : undefined;
  const data: string[] = [];
  for (let row = 0; row < rows; row++) {
    const order = Array.from({ length: classes }, (_, index) => index);
    const base = row * classes;
    order.sort((left, right) => values[base + right]! - values[base + left]! || left - right);
    for (const index of order.slice(0, kept)) {
      const label = labels?.[index];
      data.push(`${formatScore(values[base + index]!, output.datatype)}:${index}${label === undefined ? '' : `:${label}`}`);
    }
  }
  return { name: output.name, datatype: 'BYTES', shape: [...output.shape.slice(0, -1), kept], data };
}

/**
 * Under a `topK` output policy (src/inference/output-policy.ts) the output reaching a renderer
 * already holds the k best class indices as INT64, best first, and no scores: the owner withheld
 * them. The classification views then show labels only.
 */
export function isLabelsOnly(output: Tensor, policy: { topK?: number } | undefined): boolean {
  return policy?.topK !== undefined && output.datatype === 'INT64';
}

/** The class indices of a labels-only output, one list per row (best first). */
export function policyLabelsPerRow(output: Tensor): number[][] {
  const indices = Array.from(output.data as BigInt64Array, Number);
  const width = output.shape.length === 0 ? 1 : output.shape.at(-1)!;
  const rows = width === 0 ? 0 : indices.length / width;
  return Array.from({ length: rows }, (_, row) => indices.slice(row * width, (row + 1) * width));
}

/** Triton's classification strings without the withheld score: `"index:label"` (or `"index"`). */
export function labelsOnlyClassifications(output: Tensor, count: number, classNames: readonly string[] | undefined): Tensor {
  const rows = policyLabelsPerRow(output);
  const kept = Math.min(count, output.shape.at(-1) ?? 1);
  const data = rows.flatMap((indices) => indices.slice(0, kept).map((index) => `${index}${classNames?.[index] === undefined ? '' : `:${classNames[index]}`}`));
  return { name: output.name, datatype: 'BYTES', shape: [...output.shape.slice(0, -1), kept], data };
}

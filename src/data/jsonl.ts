import { AiaasError, quoteForError } from '../errors.ts';
import { GrowableFloat32Array, decodeText } from './bytes.ts';
import { classIndices, sortedClassNames } from './class-names.ts';
import type { Dataset } from './dataset.ts';

export interface JsonLinesOptions {
  /** Key of the label. Default "label". */
  label?: string;
  /** Used in error messages. */
  fileName?: string;
  maxDecompressedBytes?: number;
}

function invalid(fileName: string, line: number, problem: string, details: Record<string, unknown> = {}): AiaasError {
  return new AiaasError('INVALID_DATA', `${fileName}: line ${line}: ${problem}`, {
    details: { file: fileName, line, format: 'jsonl', ...details },
  });
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * A number or a rectangular nested array of numbers, flattened in C order. Returns a problem
 * description instead of throwing so the caller can say which line and key it came from.
 */
function flattenTensor(value: unknown, values: number[]): { shape: number[] } | { problem: string } {
  const shape: number[] = [];
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const visit = (node: unknown, depth: number, path: string): string | undefined => {
    if (depth === shape.length) {
      if (typeof node !== 'number' || !Number.isFinite(node)) {
        return `${path === '' ? 'value' : `element ${path}`} is ${quoteForError(node)}, expected a finite number`;
      }
      values.push(node);
      return undefined;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      return `ragged array: element ${path === '' ? '' : path} should be an array of length ${shape[depth]} (shape ${shapeText(shape)})`;
    }
    for (let index = 0; index < node.length; index++) {
      const problem = visit(node[index], depth + 1, `${path}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
  const problem = visit(value, 0, '');
  return problem === undefined ? { shape } : { problem };
}

function sameShape(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((size, axis) => size === right[axis]);
}

/**
 * JSON lines into a Dataset. Each non-empty line is an object, either
 * `{"features": <number or nested array>, "<label>": <number or nested array>}` (featureShape from
 * the arrays, which must agree on every line; other keys are ignored), or a flat row
 * `{"col": number, ..., "<label>": number}` (featureShape [columns], featureNames in the first
 * line's key order; every line must have the same keys). Accepts gzip bytes.
 */
export function parseJsonLines(input: Uint8Array | string, options: JsonLinesOptions = {}): Dataset {
  const fileName = options.fileName ?? 'JSON lines data';
  const labelKey = options.label ?? 'label';
  const text = typeof input === 'string' ? input : decodeText(input, fileName, options.maxDecompressedBytes);
  const features = new GrowableFloat32Array(4096);
  const labels = new GrowableFloat32Array(1024);
  let mode: 'tensor' | 'flat' | undefined;
  let featureShape: number[] = [];
  let labelShape: number[] = [];
  let featureNames: string[] = [];
  let count = 0;
  const scratch: number[] = [];
  // String labels (class names), one per record, when the first record's label is a string.
  let labelTexts: string[] | undefined;

  let position = 0;
  for (let line = 1; position <= text.length; line++) {
    let lineEnd = text.indexOf('\n', position);
    if (lineEnd === -1) lineEnd = text.length;
    const content = text.slice(position, lineEnd).trim();
    position = lineEnd + 1;
    if (content === '') continue;

    let record: unknown;
    try {
      record = JSON.parse(content);
    } catch (error) {
      throw invalid(fileName, line, `invalid JSON (${(error as Error).message})`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw invalid(fileName, line, `expected a JSON object, got ${Array.isArray(record) ? 'an array' : quoteForError(record)}`);
    }
    const fields = record as Record<string, unknown>;
    const recordMode = Object.hasOwn(fields, 'features') && labelKey !== 'features' ? 'tensor' : 'flat';
    if (mode !== undefined && recordMode !== mode) {
      throw invalid(
        fileName,
        line,
        mode === 'tensor'
          ? 'missing "features" key (earlier lines use {"features": ..., "label": ...})'
          : 'has a "features" key but earlier lines are flat {"column": number, ...} rows',
      );
    }
    if (!Object.hasOwn(fields, labelKey)) {
      throw invalid(
        fileName,
        line,
        `label key ${quoteForError(labelKey)} not found; keys present: ${Object.keys(fields).map((key) => quoteForError(key)).join(', ')}`,
        { label: labelKey },
      );
    }

    if (recordMode === 'tensor') {
      scratch.length = 0;
      const featureResult = flattenTensor(fields['features'], scratch);
      if ('problem' in featureResult) throw invalid(fileName, line, `"features": ${featureResult.problem}`);
      const labelStart = scratch.length;
      const stringLabel = readStringLabel(fields[labelKey], count === 0, labelTexts, fileName, line, labelKey);
      if (stringLabel !== undefined) labelTexts ??= [];
      const labelResult = stringLabel === undefined ? flattenTensor(fields[labelKey], scratch) : { shape: [] };
      if ('problem' in labelResult) throw invalid(fileName, line, `${quoteForError(labelKey)}: ${labelResult.problem}`);
      if (stringLabel !== undefined) labelTexts?.push(stringLabel);
      if (mode === undefined) {
        featureShape = featureResult.shape;
        labelShape = labelResult.shape;
      } else {
        if (!sameShape(featureResult.shape, featureShape)) {
          throw invalid(fileName, line, `"features" has shape ${shapeText(featureResult.shape)}, earlier lines have ${shapeText(featureShape)}`);
        }
        if (!sameShape(labelResult.shape, labelShape)) {
          throw invalid(fileName, line, `${quoteForError(labelKey)} has shape ${shapeText(labelResult.shape)}, earlier lines have ${shapeText(labelShape)}`);
        }
      }
      features.pushAll(scratch.slice(0, labelStart));
      if (stringLabel === undefined) labels.pushAll(scratch.slice(labelStart));
    } else {
      if (mode === undefined) {
        featureNames = Object.keys(fields).filter((key) => key !== labelKey);
        if (featureNames.length === 0) throw invalid(fileName, line, `no feature keys besides the label key ${quoteForError(labelKey)}`);
        featureShape = [featureNames.length];
        labelShape = [];
      } else {
        const keyCount = Object.keys(fields).length;
        if (keyCount !== featureNames.length + 1) {
          const extra = Object.keys(fields).filter((key) => key !== labelKey && !featureNames.includes(key));
          const missing = featureNames.filter((key) => !Object.hasOwn(fields, key));
          throw invalid(
            fileName,
            line,
            [
              extra.length > 0 ? `unexpected keys ${extra.map((key) => quoteForError(key)).join(', ')}` : '',
              missing.length > 0 ? `missing keys ${missing.map((key) => quoteForError(key)).join(', ')}` : '',
            ]
              .filter((part) => part !== '')
              .join('; ') + ' (every line must have the keys of line 1)',
          );
        }
      }
      for (const key of featureNames) {
        if (!Object.hasOwn(fields, key)) {
          throw invalid(fileName, line, `missing key ${quoteForError(key)} (every line must have the keys of line 1)`, { key });
        }
        const value = fields[key];
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          throw invalid(fileName, line, `key ${quoteForError(key)} is ${quoteForError(value)}, expected a finite number`, { key });
        }
        features.push(value);
      }
      const label = fields[labelKey];
      const stringLabel = readStringLabel(label, count === 0, labelTexts, fileName, line, labelKey);
      if (stringLabel !== undefined) {
        labelTexts ??= [];
        labelTexts.push(stringLabel);
      } else {
        if (typeof label !== 'number' || !Number.isFinite(label)) {
          throw invalid(fileName, line, `label ${quoteForError(labelKey)} is ${quoteForError(label)}, expected a finite number or a class name string`, { key: labelKey });
        }
        labels.push(label);
      }
    }
    mode = recordMode;
    count++;
  }

  if (mode === undefined) {
    throw new AiaasError('INVALID_DATA', `${fileName}: no records (every line is empty)`, { details: { file: fileName, format: 'jsonl' } });
  }
  const dataset: Dataset = {
    features: features.toArray(),
    featureShape,
    labels: labels.toArray(),
    labelShape,
    count,
    labelName: labelKey,
  };
  if (mode === 'flat') dataset.featureNames = featureNames;
  if (labelTexts !== undefined) {
    const classNames = sortedClassNames(labelTexts, fileName);
    dataset.labels = classIndices(labelTexts, classNames);
    dataset.classNames = classNames;
  }
  return dataset;
}

/**
 * A record's label when labels are class names: the first record decides (a string label makes
 * every label a class name), and every later record must agree with it.
 */
function readStringLabel(
  label: unknown,
  first: boolean,
  labelTexts: string[] | undefined,
  fileName: string,
  line: number,
  labelKey: string,
): string | undefined {
  const isString = typeof label === 'string';
  if (!first && isString !== (labelTexts !== undefined)) {
    throw invalid(
      fileName,
      line,
      labelTexts === undefined
        ? `label ${quoteForError(labelKey)} is the string ${quoteForError(label)}, but earlier lines have numeric labels`
        : `label ${quoteForError(labelKey)} is ${quoteForError(label)}, but earlier lines have class-name strings`,
      { key: labelKey },
    );
  }
  if (!isString) return undefined;
  const text = label.trim();
  if (text === '') throw invalid(fileName, line, `label ${quoteForError(labelKey)} is an empty string`, { key: labelKey });
  return text;
}

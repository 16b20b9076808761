import { AiaasError, quoteForError } from '../errors.ts';
import type { Dataset } from './dataset.ts';

/** More distinct string labels than this is a free-text column, not classes. */
export const maxClassNames = 10_000;

/**
 * Class names for string labels, in sorted order (UTF-16 code unit order, as Array.prototype.sort):
 * the same labels always map to the same indices whatever the row order, so a training and a test
 * file agree, and a re-parse of a stored dataset gives the same mapping.
 */
export function sortedClassNames(labels: Iterable<string>, fileName: string): string[] {
  const names = [...new Set(labels)].sort();
  if (names.length > maxClassNames) {
    throw new AiaasError('INVALID_DATA', `${fileName}: the label has ${names.length} distinct values; at most ${maxClassNames} classes are supported`, {
      details: { file: fileName, classes: names.length, limit: maxClassNames },
    });
  }
  return names;
}

/** Labels as class indices into `classNames` (which must hold every label). */
export function classIndices(labels: readonly string[], classNames: readonly string[]): Float32Array {
  const index = new Map(classNames.map((name, position) => [name, position]));
  return Float32Array.from(labels, (label) => index.get(label) as number);
}

/**
 * The dataset with its labels renumbered to `classNames` (a model's classes): a test file that
 * lacks a class sorts its own names differently, so its indices must be translated. INVALID_DATA
 * when the dataset has a class the model does not know.
 */
export function alignClassNames(dataset: Dataset, classNames: readonly string[], role: string): Dataset {
  const own = dataset.classNames;
  if (own === undefined || (own.length === classNames.length && own.every((name, index) => name === classNames[index]))) return dataset;
  const target = new Map(classNames.map((name, position) => [name, position]));
  const translation = own.map((name) => {
    const position = target.get(name);
    if (position === undefined) {
      throw new AiaasError(
        'INVALID_DATA',
        `${role} data has the class ${quoteForError(name)}, which the model was not trained on; its classes are ${classNames.map((known) => quoteForError(known)).join(', ')}`,
        { details: { class: name, classNames: [...classNames] } },
      );
    }
    return position;
  });
  const labels = Float32Array.from(dataset.labels, (label) => translation[label] as number);
  return { ...dataset, labels, classNames: [...classNames] };
}

import { AiaasError } from '../errors.ts';

/**
 * The in-memory dataset shared by loaders, the engine and the server (see docs/architecture.md).
 * Sample i's features are `features.subarray(i * F, (i + 1) * F)` with F = product of featureShape,
 * and its label `labels.subarray(i * L, (i + 1) * L)` with L = product of labelShape (1 for a scalar
 * label, labelShape []). Class labels are stored as floats (class index 3 -> 3.0). String labels
 * (`setosa`) become indices into `classNames`, which is sorted (see class-names.ts).
 */
export interface Dataset {
  features: Float32Array;
  featureShape: number[];
  labels: Float32Array;
  labelShape: number[];
  count: number;
  featureNames?: string[];
  labelName?: string;
  /** Present when the labels were strings: label i is the class `classNames[i]`. */
  classNames?: string[];
}

export interface DatasetDescription {
  count: number;
  featureShape: number[];
  labelShape: number[];
  featureNames?: string[];
  labelName?: string;
  /** Present when the labels look like classes: scalar integers 0..k-1, or one-hot rows of length k. */
  classes?: number;
  /** The class names of string labels, in index order. */
  classNames?: string[];
}

export interface DatasetSplit {
  train: Dataset;
  validation: Dataset;
}

/** Number of elements in a tensor of this shape (1 for the scalar shape []). */
export function elementCount(shape: readonly number[]): number {
  let product = 1;
  for (const dimension of shape) product *= dimension;
  return product;
}

/**
 * Throws INVALID_DATA when the arrays do not hold exactly `count` samples of the declared shapes.
 * Loaders guarantee this; it exists for datasets assembled by hand or received from elsewhere.
 */
export function checkDataset(dataset: Dataset): void {
  const { count, featureShape, labelShape } = dataset;
  if (!Number.isInteger(count) || count < 0) {
    throw new AiaasError('INVALID_DATA', `Dataset count must be a non-negative integer, got ${count}`);
  }
  for (const [name, shape] of [['featureShape', featureShape], ['labelShape', labelShape]] as const) {
    if (!shape.every((dimension) => Number.isInteger(dimension) && dimension >= 0)) {
      throw new AiaasError('INVALID_DATA', `Dataset ${name} must contain non-negative integers, got [${shape.join(', ')}]`);
    }
  }
  const expectedFeatures = count * elementCount(featureShape);
  if (dataset.features.length !== expectedFeatures) {
    throw new AiaasError(
      'INVALID_DATA',
      `Dataset features hold ${dataset.features.length} values; ${count} samples of shape [${featureShape.join(', ')}] need ${expectedFeatures}`,
    );
  }
  const expectedLabels = count * elementCount(labelShape);
  if (dataset.labels.length !== expectedLabels) {
    throw new AiaasError(
      'INVALID_DATA',
      `Dataset labels hold ${dataset.labels.length} values; ${count} samples of shape [${labelShape.join(', ')}] need ${expectedLabels}`,
    );
  }
  if (dataset.featureNames !== undefined && dataset.featureNames.length !== elementCount(featureShape)) {
    throw new AiaasError(
      'INVALID_DATA',
      `Dataset has ${dataset.featureNames.length} feature names for ${elementCount(featureShape)} features`,
    );
  }
}

/**
 * Rows [start, end) as a dataset whose arrays are views of the original (no copy): writing to
 * one writes to the other. Bounds are clamped like Array.prototype.slice, negatives excluded.
 */
export function takeRows(dataset: Dataset, start: number, end: number): Dataset {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start) {
    throw new AiaasError('INVALID_REQUEST', `Invalid row range [${start}, ${end}) for a dataset of ${dataset.count} rows`);
  }
  const from = Math.min(start, dataset.count);
  const to = Math.min(end, dataset.count);
  const featureSize = elementCount(dataset.featureShape);
  const labelSize = elementCount(dataset.labelShape);
  const rows: Dataset = {
    features: dataset.features.subarray(from * featureSize, to * featureSize),
    featureShape: [...dataset.featureShape],
    labels: dataset.labels.subarray(from * labelSize, to * labelSize),
    labelShape: [...dataset.labelShape],
    count: to - from,
  };
  if (dataset.featureNames !== undefined) rows.featureNames = [...dataset.featureNames];
  if (dataset.labelName !== undefined) rows.labelName = dataset.labelName;
  if (dataset.classNames !== undefined) rows.classNames = [...dataset.classNames];
  return rows;
}

/**
 * Splits off `fraction` of the rows as validation data without shuffling. With `fromEnd` (the
 * default) this matches Keras `validation_split`: the split point is floor(count * (1 - fraction))
 * and validation is the rows after it, so callers wanting a random split shuffle first. With
 * `fromEnd: false` validation is the first ceil(count * fraction) rows instead. Both parts are views.
 */
export function splitDataset(dataset: Dataset, fraction: number, options: { fromEnd?: boolean } = {}): DatasetSplit {
  if (!Number.isFinite(fraction) || fraction < 0 || fraction >= 1) {
    throw new AiaasError('INVALID_REQUEST', `Validation fraction must be in [0, 1), got ${fraction}`);
  }
  const fromEnd = options.fromEnd ?? true;
  if (fromEnd) {
    const splitAt = Math.floor(dataset.count * (1 - fraction));
    return { train: takeRows(dataset, 0, splitAt), validation: takeRows(dataset, splitAt, dataset.count) };
  }
  const validationCount = dataset.count - Math.floor(dataset.count * (1 - fraction));
  return {
    train: takeRows(dataset, validationCount, dataset.count),
    validation: takeRows(dataset, 0, validationCount),
  };
}

export function describeDataset(dataset: Dataset): DatasetDescription {
  const description: DatasetDescription = {
    count: dataset.count,
    featureShape: [...dataset.featureShape],
    labelShape: [...dataset.labelShape],
  };
  if (dataset.featureNames !== undefined) description.featureNames = [...dataset.featureNames];
  if (dataset.labelName !== undefined) description.labelName = dataset.labelName;
  if (dataset.classNames !== undefined) {
    description.classes = dataset.classNames.length;
    description.classNames = [...dataset.classNames];
    return description;
  }
  const classes = countClasses(dataset);
  if (classes !== undefined) description.classes = classes;
  return description;
}

function countClasses(dataset: Dataset): number | undefined {
  const { labels, labelShape, count } = dataset;
  if (count === 0) return undefined;
  const labelSize = elementCount(labelShape);
  if (labelSize === 1) {
    let maximum = 0;
    for (let index = 0; index < labels.length; index++) {
      const label = labels[index] as number;
      if (!Number.isInteger(label) || label < 0) return undefined;
      if (label > maximum) maximum = label;
    }
    // A single class is not a classification problem; "all zeros" is more likely a regression target.
    return maximum >= 1 ? maximum + 1 : undefined;
  }
  if (labelShape.length !== 1 || labelSize < 2) return undefined;
  for (let row = 0; row < count; row++) {
    let ones = 0;
    for (let column = 0; column < labelSize; column++) {
      const value = labels[row * labelSize + column] as number;
      if (value === 1) ones++;
      else if (value !== 0) return undefined;
    }
    if (ones !== 1) return undefined;
  }
  return labelSize;
}

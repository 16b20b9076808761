/**
 * A drift baseline: what a model's inputs (and training labels) looked like when it was trained
 * or evaluated, per input feature: quantile bin edges, a histogram over them, and evenly spaced
 * order statistics (the stand-in sample the KS statistic compares against). Large inputs
 * (images) are profiled through a low-resolution projection (average pooling onto a 7×7 grid)
 * plus per-pixel means, so the profile stays small whatever the input size.
 */
import type { Dataset } from '../data/dataset.ts';
import { argmax, histogram, orderStatistics, quantileEdges, sortedCopy } from './drift-math.ts';

/** Inputs with more features than this are projected (a 28×28 image is; a 100-column table is not). */
export const maxDirectFeatures = 256;
export const defaultBins = 10;
/** Order statistics kept per feature for the KS statistic. */
export const defaultSampleSize = 200;
/** Rows profiled at most (taken at an even stride from larger datasets). */
export const defaultMaxRows = 50_000;
/** The projection grid of image-like inputs. */
const gridSize = 7;
/** Label values above this are not read as class indices (a regression target). */
const maxClasses = 1000;

/** How one input row (flattened) becomes the profiled features. */
export type Projection =
  | { kind: 'identity'; features: number }
  | {
      kind: 'average-pool';
      /** Where channels sit in the row: none, last ([H, W, C]) or first ([C, H, W]). */
      layout: 'hw' | 'hwc' | 'chw';
      height: number;
      width: number;
      channels: number;
      rows: number;
      columns: number;
    }
  | { kind: 'chunk-mean'; elements: number; chunks: number };

export interface FeatureProfile {
  /** Interior cut points; bin i is (edges[i−1], edges[i]]. */
  edges: number[];
  /** Rows per bin (edges.length + 1 bins). */
  counts: number[];
  /** Evenly spaced order statistics of the feature (ascending). */
  sample: number[];
  mean: number;
}

export interface DriftBaseline {
  format: 1;
  /** Rows profiled. */
  rows: number;
  /** One sample's shape (no batch dimension). */
  inputShape: number[];
  projection: Projection;
  features: FeatureProfile[];
  /** Projected inputs only: the mean of every original input element. */
  pixelMeans?: number[];
  /** Class labels only: rows per class, in class order. */
  labelCounts?: number[];
}

function product(shape: readonly number[]): number {
  return shape.reduce((total, dimension) => total * dimension, 1);
}

/** The projection for one sample of this shape: identity up to `maxDirectFeatures`, else average pooling. */
export function chooseProjection(sampleShape: readonly number[]): Projection {
  const elements = product(sampleShape);
  if (elements <= maxDirectFeatures) return { kind: 'identity', features: elements };
  const grid = (layout: 'hw' | 'hwc' | 'chw', height: number, width: number, channels: number): Projection => ({
    kind: 'average-pool',
    layout,
    height,
    width,
    channels,
    rows: Math.min(gridSize, height),
    columns: Math.min(gridSize, width),
  });
  const shape = sampleShape.filter((dimension) => dimension !== 1);
  if (shape.length === 2) return grid('hw', shape[0]!, shape[1]!, 1);
  if (shape.length === 3 && shape[2]! <= 4) return grid('hwc', shape[0]!, shape[1]!, shape[2]!);
  if (shape.length === 3 && shape[0]! <= 4) return grid('chw', shape[1]!, shape[2]!, shape[0]!);
  const side = Math.round(Math.sqrt(elements));
  if (shape.length === 1 && side * side === elements) return grid('hw', side, side, 1);
  return { kind: 'chunk-mean', elements, chunks: gridSize * gridSize };
}

export function projectedFeatureCount(projection: Projection): number {
  if (projection.kind === 'identity') return projection.features;
  if (projection.kind === 'chunk-mean') return projection.chunks;
  return projection.rows * projection.columns;
}

/** Writes the projected features of one flattened row into `target` (length projectedFeatureCount). */
export function project(projection: Projection, row: ArrayLike<number>, target: Float64Array): void {
  if (projection.kind === 'identity') {
    for (let index = 0; index < projection.features; index++) target[index] = row[index]!;
    return;
  }
  if (projection.kind === 'chunk-mean') {
    for (let chunk = 0; chunk < projection.chunks; chunk++) {
      const start = Math.floor((chunk * projection.elements) / projection.chunks);
      const end = Math.floor(((chunk + 1) * projection.elements) / projection.chunks);
      let sum = 0;
      for (let index = start; index < end; index++) sum += row[index]!;
      target[chunk] = end > start ? sum / (end - start) : 0;
    }
    return;
  }
  const { layout, height, width, channels, rows, columns } = projection;
  const at = (y: number, x: number, channel: number): number =>
    layout === 'chw' ? row[(channel * height + y) * width + x]! : row[(y * width + x) * channels + channel]!;
  for (let cellRow = 0; cellRow < rows; cellRow++) {
    const top = Math.floor((cellRow * height) / rows);
    const bottom = Math.floor(((cellRow + 1) * height) / rows);
    for (let cellColumn = 0; cellColumn < columns; cellColumn++) {
      const left = Math.floor((cellColumn * width) / columns);
      const right = Math.floor(((cellColumn + 1) * width) / columns);
      let sum = 0;
      for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) for (let channel = 0; channel < channels; channel++) sum += at(y, x, channel);
      target[cellRow * columns + cellColumn] = sum / ((bottom - top) * (right - left) * channels);
    }
  }
}

/** The class of every label row, or undefined when the labels are not classes (a regression target). */
export function labelClasses(labels: Float32Array, labelShape: readonly number[], count: number): Int32Array | undefined {
  const width = product(labelShape);
  const classes = new Int32Array(count);
  if (width > 1) {
    for (let row = 0; row < count; row++) classes[row] = argmax(labels, row * width, width);
    return classes;
  }
  for (let row = 0; row < count; row++) {
    const value = labels[row]!;
    if (!Number.isInteger(value) || value < 0 || value >= maxClasses) return undefined;
    classes[row] = value;
  }
  return classes;
}

export function classCounts(classes: ArrayLike<number>, classCount: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (let index = 0; index < classes.length; index++) {
    const value = classes[index]!;
    if (value >= 0 && value < classCount) counts[value]! += 1;
  }
  return counts;
}

/** Profiles one feature's values. */
export function profileFeature(values: ArrayLike<number>, bins: number, sampleSize: number): FeatureProfile {
  const sorted = sortedCopy(values);
  const edges = quantileEdges(sorted, bins);
  let sum = 0;
  for (const value of sorted) sum += value;
  return { edges, counts: histogram(sorted, edges), sample: orderStatistics(sorted, sampleSize), mean: sorted.length === 0 ? 0 : sum / sorted.length };
}

export interface BaselineOptions {
  bins?: number;
  sampleSize?: number;
  maxRows?: number;
}

/**
 * The baseline of a dataset (a training set at the end of a job, or an evaluation set). Pure
 * computation: callers run it off the server's main thread (the training child does).
 */
export function computeBaseline(dataset: Dataset, options: BaselineOptions = {}): DriftBaseline {
  const bins = options.bins ?? defaultBins;
  const sampleSize = options.sampleSize ?? defaultSampleSize;
  const maxRows = options.maxRows ?? defaultMaxRows;
  const elements = product(dataset.featureShape);
  const projection = chooseProjection(dataset.featureShape);
  const featureCount = projectedFeatureCount(projection);
  const stride = Math.max(1, Math.ceil(dataset.count / maxRows));
  const rows = Math.ceil(dataset.count / stride);
  const columns = Array.from({ length: featureCount }, () => new Float64Array(rows));
  const projected = new Float64Array(featureCount);
  const pixelSums = projection.kind === 'identity' ? undefined : new Float64Array(elements);
  let taken = 0;
  for (let row = 0; row < dataset.count; row += stride) {
    const values = dataset.features.subarray(row * elements, (row + 1) * elements);
    project(projection, values, projected);
    for (let feature = 0; feature < featureCount; feature++) columns[feature]![taken] = projected[feature]!;
    if (pixelSums !== undefined) for (let index = 0; index < elements; index++) pixelSums[index]! += values[index]!;
    taken++;
  }
  const baseline: DriftBaseline = {
    format: 1,
    rows: taken,
    inputShape: [...dataset.featureShape],
    projection,
    features: columns.map((column) => profileFeature(column.subarray(0, taken), bins, sampleSize)),
  };
  if (pixelSums !== undefined) baseline.pixelMeans = Array.from(pixelSums, (sum) => (taken === 0 ? 0 : sum / taken));
  const classes = labelClasses(dataset.labels, dataset.labelShape, dataset.count);
  if (classes !== undefined) {
    const width = product(dataset.labelShape);
    let classCount = width > 1 ? width : 0;
    if (width <= 1) for (const value of classes) classCount = Math.max(classCount, value + 1);
    baseline.labelCounts = classCounts(classes, classCount);
  }
  return baseline;
}

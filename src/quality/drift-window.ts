/**
 * The live side of drift detection: a rolling window of sampled serving inputs (projected like
 * the baseline) and predicted classes, and the report comparing it with the baseline.
 */
import { classCounts, project, projectedFeatureCount, type DriftBaseline } from './drift-baseline.ts';
import { histogram, kolmogorovSmirnov, populationStabilityIndex, sortedCopy } from './drift-math.ts';

/** A ring of the last `capacity` sampled rows. */
export class DriftWindow {
  readonly capacity: number;
  readonly #baseline: DriftBaseline;
  readonly #elements: number;
  readonly #featureCount: number;
  /** Row-major: slot × feature. */
  readonly #features: Float64Array;
  /** −1: no class for that row (the model's output is not a class score vector). */
  readonly #classes: Int32Array;
  readonly #scratch: Float64Array;
  /** Exponential moving average of every input element (projected inputs only), over about `capacity` rows. */
  readonly #pixelMeans: Float64Array | undefined;
  #next = 0;
  #filled = 0;
  /** Rows added since the window was created (for deciding when to re-score). */
  #added = 0;

  constructor(baseline: DriftBaseline, capacity: number) {
    this.capacity = capacity;
    this.#baseline = baseline;
    this.#elements = baseline.inputShape.reduce((total, dimension) => total * dimension, 1);
    this.#featureCount = projectedFeatureCount(baseline.projection);
    this.#features = new Float64Array(capacity * this.#featureCount);
    this.#classes = new Int32Array(capacity).fill(-1);
    this.#scratch = new Float64Array(this.#featureCount);
    this.#pixelMeans = baseline.pixelMeans === undefined ? undefined : new Float64Array(this.#elements);
  }

  get size(): number {
    return this.#filled;
  }

  get added(): number {
    return this.#added;
  }

  /** Elements of one input row this window expects. */
  get rowElements(): number {
    return this.#elements;
  }

  /** One sampled input row (flattened, `rowElements` values) and its predicted class (or −1). */
  add(row: ArrayLike<number>, predictedClass: number): void {
    project(this.#baseline.projection, row, this.#scratch);
    this.#features.set(this.#scratch, this.#next * this.#featureCount);
    this.#classes[this.#next] = predictedClass;
    if (this.#pixelMeans !== undefined) {
      // The first rows average plainly; after that each new row weighs 1/capacity.
      const weight = 1 / Math.min(this.#added + 1, this.capacity);
      for (let index = 0; index < this.#elements; index++) this.#pixelMeans[index]! += (row[index]! - this.#pixelMeans[index]!) * weight;
    }
    this.#next = (this.#next + 1) % this.capacity;
    this.#filled = Math.min(this.#filled + 1, this.capacity);
    this.#added++;
  }

  /** The window's values of one projected feature. */
  feature(index: number): Float64Array {
    const values = new Float64Array(this.#filled);
    for (let slot = 0; slot < this.#filled; slot++) values[slot] = this.#features[slot * this.#featureCount + index]!;
    return values;
  }

  predictedClasses(): Int32Array {
    return this.#classes.subarray(0, this.#filled).filter((value) => value >= 0);
  }

  pixelMeans(): Float64Array | undefined {
    return this.#pixelMeans;
  }
}

export interface FeatureDrift {
  feature: number;
  psi: number;
  ks: number;
}

export interface DriftScores {
  /** Rows in the live window. */
  samples: number;
  features: FeatureDrift[];
  maxPsi: number;
  meanPsi: number;
  maxKs: number;
  /** Predicted classes against the training labels (when both exist). */
  output?: { psi: number; expected: number[]; actual: number[] };
  /** Projected (image) inputs: how far the live per-pixel means moved from the baseline's. */
  pixelMeanShift?: { meanAbsolute: number; maxAbsolute: number };
}

function proportions(counts: readonly number[]): number[] {
  const total = counts.reduce((sum, count) => sum + count, 0);
  return counts.map((count) => (total === 0 ? 0 : count / total));
}

/** PSI and KS per projected feature, the output class PSI, and the pixel-mean shift. */
export function scoreDrift(baseline: DriftBaseline, window: DriftWindow): DriftScores {
  const features: FeatureDrift[] = baseline.features.map((profile, index) => {
    const live = sortedCopy(window.feature(index));
    return {
      feature: index,
      psi: populationStabilityIndex(profile.counts, histogram(live, profile.edges)),
      ks: kolmogorovSmirnov(profile.sample, live),
    };
  });
  const scores: DriftScores = {
    samples: window.size,
    features,
    maxPsi: features.reduce((max, entry) => Math.max(max, entry.psi), 0),
    meanPsi: features.length === 0 ? 0 : features.reduce((sum, entry) => sum + entry.psi, 0) / features.length,
    maxKs: features.reduce((max, entry) => Math.max(max, entry.ks), 0),
  };
  const predicted = window.predictedClasses();
  if (baseline.labelCounts !== undefined && predicted.length > 0) {
    const actual = classCounts(predicted, baseline.labelCounts.length);
    scores.output = { psi: populationStabilityIndex(baseline.labelCounts, actual), expected: proportions(baseline.labelCounts), actual: proportions(actual) };
  }
  const live = window.pixelMeans();
  if (baseline.pixelMeans !== undefined && live !== undefined && window.size > 0) {
    let sum = 0;
    let max = 0;
    for (let index = 0; index < live.length; index++) {
      const difference = Math.abs(live[index]! - baseline.pixelMeans[index]!);
      sum += difference;
      max = Math.max(max, difference);
    }
    scores.pixelMeanShift = { meanAbsolute: sum / live.length, maxAbsolute: max };
  }
  return scores;
}

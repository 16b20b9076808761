import { AiaasError } from '../errors.ts';
import { splitDataset, type Dataset } from '../data/dataset.ts';
import { alignClassNames } from '../data/class-names.ts';
import { classNamesMetadataKey, featureNamesMetadataKey } from './names-metadata.ts';
import { compileGraphs, compileTrainSteps, exportInferenceModel, graphNames, parameterLayout, type CompiledGraphs, type ParameterLayout } from './compile.ts';
import { initialValues } from './initializers.ts';
import { createOptimizer, learningRateAt, type OptimizerSlot } from './optimizers.ts';
import { planModel, type ModelPlan } from './plan.ts';
import { Random, type RandomState } from './random.ts';
import { createSession, floatTensor, type OrtSession, type SessionOptions } from './session.ts';
import { resolveSpec, type ResolvedSpec } from './spec.ts';
import { encodeOnnxModel } from '../onnx/model.ts';

export interface BatchEvent {
  epoch: number;
  /** Step within the epoch, 1-based. */
  batch: number;
  batchesPerEpoch: number;
  /** Samples processed so far in this epoch, and in the whole epoch. */
  samplesSeen: number;
  samplesPerEpoch: number;
  /** Total optimizer steps so far. */
  step: number;
  loss: number;
  samplesPerSecond: number;
}

export interface EpochEvent {
  /** 1-based. */
  epoch: number;
  epochs: number;
  step: number;
  loss: number;
  metrics: Record<string, number>;
  validationLoss?: number;
  validationMetrics?: Record<string, number>;
  samplesPerSecond: number;
  seconds: number;
  learningRate: number;
}

export interface EarlyStoppingOptions {
  /** 'loss', 'val_loss', a metric name, or 'val_' + a metric name. Default: val_loss when validating, else loss. */
  monitor?: string;
  patience?: number;
  minDelta?: number;
  restoreBestWeights?: boolean;
  /** Default: 'max' for accuracy, otherwise 'min'. */
  mode?: 'min' | 'max';
}

/** Everything needed to continue a run exactly where an epoch ended. */
export interface TrainingCheckpoint {
  epoch: number;
  step: number;
  parameters: Map<string, Float32Array>;
  optimizerState: Map<string, Float32Array>;
  shuffleRandom: RandomState;
  dropoutRandom: RandomState;
  history: EpochEvent[];
  earlyStopping?: { best: number; wait: number; bestWeights?: Map<string, Float32Array> };
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  /** Seeds shuffling and dropout; defaults to the model's seed. */
  seed?: number;
  validationSplit?: number;
  validationData?: Dataset;
  maxSteps?: number;
  /** Stop after the epoch whose training loss is at or below this. */
  targetLoss?: number;
  earlyStopping?: EarlyStoppingOptions;
  onBatchEnd?: (event: BatchEvent) => void | Promise<void>;
  onEpochEnd?: (event: EpochEvent) => void | Promise<void>;
  /** Called after every epoch with state to resume from. */
  onCheckpoint?: (checkpoint: TrainingCheckpoint) => void | Promise<void>;
  /** Resume from a checkpoint written by `onCheckpoint`. */
  resumeFrom?: TrainingCheckpoint;
  signal?: AbortSignal;
  /**
   * Train steps chained in one ORT run (default 4): amortises the per-run cost of feeding and
   * copying back weights and optimizer state. Results are identical to 1.
   */
  stepsPerRun?: number;
  /** Clock for samples/s reporting only; never affects results. */
  now?: () => number;
}

export interface FitResult {
  epochs: number;
  steps: number;
  samplesPerSecond: number;
  loss: number;
  metrics: Record<string, number>;
  validationLoss?: number;
  validationMetrics?: Record<string, number>;
  history: EpochEvent[];
  stopReason: 'completed' | 'maxSteps' | 'targetLoss' | 'earlyStopping' | 'aborted';
}

export interface EvaluateResult {
  loss: number;
  metrics: Record<string, number>;
  count: number;
}

/** What a finished run reports (the `--json` line of `aiaas train`, a job's result, metrics.json). */
export interface TrainingSummary extends Omit<FitResult, 'history'> {
  testLoss?: number;
  /** Empty when there was no test data. */
  testMetrics: Record<string, number>;
}

export function trainingSummary(result: FitResult, test?: EvaluateResult): TrainingSummary {
  return {
    epochs: result.epochs,
    steps: result.steps,
    samplesPerSecond: Math.round(result.samplesPerSecond),
    loss: result.loss,
    metrics: result.metrics,
    ...(result.validationLoss === undefined ? {} : { validationLoss: result.validationLoss, validationMetrics: result.validationMetrics ?? {} }),
    ...(test ? { testLoss: test.loss } : {}),
    testMetrics: test?.metrics ?? {},
    stopReason: result.stopReason,
  };
}

interface InputBuffers {
  features: Float32Array;
  labels: Float32Array;
  masks: Map<string, Float32Array>;
}

interface PreparedChunk {
  firstBatch: number;
  chunk: number;
  rows: number;
  feeds: Record<string, ReturnType<typeof floatTensor>>;
}

const product = (shape: readonly number[]) => shape.reduce((total, dimension) => total * dimension, 1);

/**
 * A Keras-style model: build from a spec, fit, evaluate, predict, export. The model owns its
 * weights as Float32Arrays and feeds them to ONNX Runtime sessions that are compiled once.
 */
export class Model {
  readonly spec: ResolvedSpec;
  /** The spec document as given, saved as spec.json so a reload regenerates the same layer names. */
  readonly document: unknown;
  readonly plan: ModelPlan;
  readonly seed: number;
  /** All weights packed in one vector (layout from `parameterLayout`); the source of truth. */
  private packedParameters: Float32Array;
  /** One packed vector per optimizer slot (e.g. Adam's m and v). */
  private packedState: Map<string, Float32Array>;
  /** Non-trainable parameters (normalization statistics) by name: fed to the graphs, never updated by the optimizer. */
  private buffers: Map<string, Float32Array>;
  /** Whether the buffers hold statistics (computed by `fit`, or loaded with the weights) rather than their initial values. */
  private adapted = false;
  private readonly layout: ParameterLayout;
  private readonly slots: readonly OptimizerSlot[];
  /**
   * The class names of the string labels the model was trained on (by class index), when it was;
   * saved with the weights and in model.onnx's metadata (`aiaas.class_names`).
   */
  classNames: string[] | undefined;
  /** The training data's feature names (tabular data), by flat input index; saved like `classNames`. */
  featureNames: string[] | undefined;
  step = 0;
  private graphs: CompiledGraphs | undefined;
  private sessions: { train?: OrtSession; evaluate?: OrtSession; predict?: OrtSession } = {};
  private trainStepsSessions = new Map<string, OrtSession>();
  /** ORT intra-op threads of every session this model creates; ORT's default (every core) when unset. */
  private sessionOptions: SessionOptions = {};

  private constructor(document: unknown, spec: ResolvedSpec, seed: number) {
    this.document = document;
    this.spec = spec;
    this.plan = planModel(spec);
    this.seed = seed;
    this.layout = parameterLayout(this.plan);
    this.slots = createOptimizer(spec.optimizer).slots;
    const random = new Random(seed);
    this.packedParameters = new Float32Array(this.layout.total);
    this.buffers = new Map();
    const offsets = new Map(this.layout.entries.map((entry) => [entry.name, entry.offset]));
    for (const parameter of this.plan.parameters) {
      const values = initialValues(parameter, random);
      if (parameter.trainable) this.packedParameters.set(values, offsets.get(parameter.name)!);
      else this.buffers.set(parameter.name, values);
    }
    this.packedState = this.initialOptimizerState();
  }

  /** Each parameter by safetensors name: trainable ones as views into the packed vector, then the non-trainable statistics. */
  get parameters(): Map<string, Float32Array> {
    return new Map([
      ...this.layout.entries.map((entry) => [entry.name, this.packedParameters.subarray(entry.offset, entry.offset + entry.length)] as const),
      ...this.buffers,
    ]);
  }

  set parameters(values: ReadonlyMap<string, Float32Array>) {
    const packed = new Float32Array(this.layout.total);
    for (const entry of this.layout.entries) packed.set(values.get(entry.name)!, entry.offset);
    this.packedParameters = packed;
    for (const name of this.buffers.keys()) {
      const given = values.get(name);
      if (given !== undefined) this.buffers.set(name, Float32Array.from(given));
    }
  }

  /** Optimizer state per parameter, named `<parameter>.<slot>` (e.g. `dense_1.kernel.m`). */
  get optimizerState(): Map<string, Float32Array> {
    const state = new Map<string, Float32Array>();
    for (const entry of this.layout.entries) {
      for (const slot of this.slots) {
        state.set(graphNames.slot(entry.name, slot.suffix), this.packedState.get(slot.suffix)!.subarray(entry.offset, entry.offset + entry.length));
      }
    }
    return state;
  }

  set optimizerState(values: ReadonlyMap<string, Float32Array>) {
    this.packedState = new Map(
      this.slots.map((slot) => {
        const packed = new Float32Array(this.layout.total);
        for (const entry of this.layout.entries) packed.set(values.get(graphNames.slot(entry.name, slot.suffix))!, entry.offset);
        return [slot.suffix, packed];
      }),
    );
  }

  /** Validates the spec (AiaasError INVALID_SPEC naming layer and field) and initialises weights from the seed. */
  static fromSpec(document: unknown, options: { seed?: number; intraOpThreads?: number } = {}): Model {
    const copy: unknown = JSON.parse(JSON.stringify(document));
    const model = new Model(copy, resolveSpec(copy), options.seed ?? 42);
    if (options.intraOpThreads !== undefined) model.sessionOptions = { intraOpThreads: options.intraOpThreads };
    return model;
  }

  private compiled(): CompiledGraphs {
    this.graphs ??= compileGraphs(this.plan);
    return this.graphs;
  }

  private initialOptimizerState(): Map<string, Float32Array> {
    return new Map(this.slots.map((slot) => [slot.suffix, new Float32Array(this.layout.total).fill(slot.initialValue)]));
  }

  get inputShape(): number[] {
    return this.spec.inputShape;
  }

  get outputShape(): number[] {
    return this.plan.outputShape;
  }

  /** Replace weights (e.g. from a safetensors file); names and shapes must match the spec. */
  setWeights(weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>): void {
    for (const parameter of this.plan.parameters) {
      const found = weights.get(parameter.name);
      if (!found) {
        throw new AiaasError('INVALID_WEIGHTS', `weights have no tensor "${parameter.name}" (expected shape [${parameter.shape.join(', ')}])`);
      }
      if (found.shape.length !== parameter.shape.length || found.shape.some((dimension, index) => dimension !== parameter.shape[index])) {
        throw new AiaasError('INVALID_WEIGHTS', `tensor "${parameter.name}" has shape [${found.shape.join(', ')}], the model expects [${parameter.shape.join(', ')}]`);
      }
    }
    this.parameters = new Map(this.plan.parameters.map((parameter) => [parameter.name, weights.get(parameter.name)!.data]));
    this.adapted = true;
  }

  /**
   * Sets each normalization layer's mean and variance to the training data's, per feature of the
   * layer's last axis (population variance, as Keras' `adapt`), after the input preprocessing.
   * Only flatten may precede such a layer (plan.ts), so its input is the dataset's values in order.
   */
  private adapt(dataset: Dataset): void {
    const { scale, offset } = this.spec.preprocessing ?? { scale: 1, offset: 0 };
    for (const { layer, inputShape } of this.plan.layers) {
      if (layer.type !== 'normalization') continue;
      const features = inputShape[inputShape.length - 1] as number;
      const sums = new Float64Array(features);
      const counts = new Float64Array(features);
      const values = dataset.features;
      for (let index = 0; index < values.length; index++) {
        const feature = index % features;
        sums[feature]! += values[index]! * scale + offset;
        counts[feature]! += 1;
      }
      const means = sums.map((sum, feature) => sum / Math.max(1, counts[feature]!));
      // Second pass around the mean: one pass of Σx² − n·mean² loses everything to cancellation on large values.
      const squares = new Float64Array(features);
      for (let index = 0; index < values.length; index++) {
        const feature = index % features;
        const difference = values[index]! * scale + offset - means[feature]!;
        squares[feature]! += difference * difference;
      }
      this.buffers.set(`${layer.name}.mean`, Float32Array.from(means));
      this.buffers.set(`${layer.name}.variance`, Float32Array.from(squares, (sum, feature) => sum / Math.max(1, counts[feature]!)));
    }
    this.adapted = true;
  }

  /** Labels of string classes renumbered to this model's classes (a test file may lack some). */
  private aligned(dataset: Dataset, role: string): Dataset {
    return this.classNames === undefined ? dataset : alignClassNames(dataset, this.classNames, role);
  }

  private checkDataset(dataset: Dataset, role: string): void {
    const expected = this.spec.inputShape;
    if (product(dataset.featureShape) !== product(expected)) {
      throw new AiaasError(
        'INVALID_DATA',
        `${role} data has samples of shape [${dataset.featureShape.join(', ')}], the model's input is [${expected.join(', ')}]`,
      );
    }
    const labelsPerSample = product(dataset.labelShape);
    const expectedLabels = product(this.plan.labelShape);
    if (labelsPerSample !== expectedLabels) {
      const hint = this.spec.loss === 'sparseCategoricalCrossentropy' ? ' (one class index per sample)' : '';
      throw new AiaasError(
        'INVALID_DATA',
        `${role} data has labels of shape [${dataset.labelShape.join(', ')}], ${this.spec.loss} needs [${this.plan.labelShape.join(', ')}]${hint}`,
      );
    }
    if (dataset.classNames !== undefined && this.spec.loss === 'sparseCategoricalCrossentropy' && dataset.classNames.length > (this.plan.outputShape[0] as number)) {
      throw new AiaasError(
        'INVALID_DATA',
        `${role} data has ${dataset.classNames.length} classes (${dataset.classNames.slice(0, 5).join(', ')}${dataset.classNames.length > 5 ? ', …' : ''}), but the model's output has ${this.plan.outputShape[0]} units`,
      );
    }
    if (dataset.classNames !== undefined && this.spec.loss === 'binaryCrossentropy' && dataset.classNames.length !== 2) {
      throw new AiaasError('INVALID_DATA', `${role} data has ${dataset.classNames.length} classes; binaryCrossentropy on string labels needs exactly 2 (the second sorted name is 1)`);
    }
    if (this.spec.loss === 'sparseCategoricalCrossentropy') {
      const classes = this.plan.outputShape[0] as number;
      for (let index = 0; index < dataset.count; index++) {
        const label = dataset.labels[index]!;
        if (!Number.isInteger(label) || label < 0 || label >= classes) {
          throw new AiaasError('INVALID_DATA', `${role} data sample ${index} has label ${label}; expected a class index in 0..${classes - 1}`);
        }
      }
    }
  }

  private async session(kind: 'train' | 'evaluate' | 'predict'): Promise<OrtSession> {
    const existing = this.sessions[kind];
    if (existing) return existing;
    const created = await createSession(this.compiled()[kind], this.sessionOptions);
    this.sessions[kind] = created;
    return created;
  }

  private async trainStepsSession(steps: number, batchSize: number): Promise<OrtSession> {
    const key = `${steps}x${batchSize}`;
    const existing = this.trainStepsSessions.get(key);
    if (existing) return existing;
    const created = await createSession(compileTrainSteps(this.plan, steps, batchSize), this.sessionOptions);
    this.trainStepsSessions.set(key, created);
    return created;
  }

  private parameterFeeds(): Record<string, ReturnType<typeof floatTensor>> {
    const feeds: Record<string, ReturnType<typeof floatTensor>> = { [graphNames.parameters]: floatTensor(this.packedParameters, [this.layout.total]) };
    for (const [name, values] of this.buffers) feeds[name] = floatTensor(values, [values.length]);
    return feeds;
  }

  async fit(dataset: Dataset, options: FitOptions = {}): Promise<FitResult> {
    const now = options.now ?? (() => performance.now());
    let train = dataset;
    let validation = options.validationData;
    if (options.validationSplit !== undefined && options.validationSplit > 0) {
      ({ train, validation } = splitDataset(dataset, options.validationSplit));
    }
    if (train.classNames !== undefined) this.classNames = [...train.classNames];
    if (train.featureNames !== undefined && train.featureNames.length === product(this.spec.inputShape)) this.featureNames = [...train.featureNames];
    if (validation) validation = this.aligned(validation, 'validation');
    this.checkDataset(train, 'training');
    if (validation) this.checkDataset(validation, 'validation');
    if (train.count === 0) throw new AiaasError('INVALID_DATA', 'training data has no samples');
    const epochs = options.epochs ?? 1;
    const batchSize = this.spec.optimizer.type === 'gd' ? train.count : Math.min(options.batchSize ?? 32, train.count);
    if (!Number.isInteger(epochs) || epochs < 1) throw new AiaasError('INVALID_REQUEST', `epochs must be a positive integer, got ${epochs}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new AiaasError('INVALID_REQUEST', `batchSize must be a positive integer, got ${options.batchSize}`);
    const shuffle = options.shuffle ?? true;
    const seed = options.seed ?? this.seed;
    let shuffleRandom = new Random(seed + 1);
    let dropoutRandom = new Random(seed + 2);
    let history: EpochEvent[] = [];
    let startEpoch = 0;
    let stopping = { best: Number.NaN, wait: 0, bestWeights: undefined as Map<string, Float32Array> | undefined };
    const resume = options.resumeFrom;
    if (resume) {
      this.parameters = resume.parameters;
      this.optimizerState = resume.optimizerState;
      this.step = resume.step;
      shuffleRandom = new Random(resume.shuffleRandom);
      dropoutRandom = new Random(resume.dropoutRandom);
      history = [...resume.history];
      startEpoch = resume.epoch;
      if (resume.earlyStopping) stopping = { ...resume.earlyStopping, bestWeights: resume.earlyStopping.bestWeights };
    }

    if (!this.adapted && !resume && this.buffers.size > 0) this.adapt(train);
    const graphs = this.compiled();
    const optimizer = graphs.optimizer;
    const session = await this.session('train');
    const featureSize = product(train.featureShape);
    const labelSize = Math.max(1, product(train.labelShape));
    const inputDims = this.spec.inputShape;
    const labelDims = this.plan.labelShape.length === 0 ? [] : this.plan.outputShape;
    const stepsPerRun = Math.max(1, Math.floor(options.stepsPerRun ?? 4));
    // The multi-step graph only pays off when an epoch has several full batches.
    const manySession = stepsPerRun > 1 && Math.floor(train.count / batchSize) >= stepsPerRun ? await this.trainStepsSession(stepsPerRun, batchSize) : undefined;
    const bufferRows = (manySession ? stepsPerRun : 1) * batchSize;
    // Two sets: one feeds the running chunk while the next is gathered into the other.
    const inputSets: InputBuffers[] = [0, 1].map(() => ({
      features: new Float32Array(bufferRows * featureSize),
      labels: new Float32Array(bufferRows * labelSize),
      masks: new Map([...graphs.maskShapes].map(([layer, { shape }]) => [layer, new Float32Array(bufferRows * product(shape))])),
    }));
    const lossBuffer = new Float32Array(stepsPerRun);
    const metricBuffers = new Map(this.spec.metrics.map((metric) => [metric, new Float32Array(stepsPerRun)]));
    const spare: { parameters: Float32Array; state: Map<string, Float32Array> } = {
      parameters: new Float32Array(this.layout.total),
      state: new Map(this.slots.map((slot) => [slot.suffix, new Float32Array(this.layout.total)])),
    };
    const batchesPerEpoch = Math.ceil(train.count / batchSize);
    const monitor = options.earlyStopping?.monitor ?? (validation ? 'val_loss' : 'loss');
    const mode = options.earlyStopping?.mode ?? (monitor.endsWith('accuracy') ? 'max' : 'min');
    let stopReason: FitResult['stopReason'] = 'completed';
    let totalSamples = 0;
    let totalSeconds = 0;

    for (let epoch = startEpoch; epoch < epochs && stopReason === 'completed'; epoch++) {
      const epochStart = now();
      const order = shuffle ? shuffleRandom.permutation(train.count) : undefined;
      const learningRate = learningRateAt(this.spec.optimizer.learningRate, this.step, epoch);
      let lossSum = 0;
      const metricSums = new Map(this.spec.metrics.map((metric) => [metric, 0]));
      let seen = 0;
      /**
       * The inputs of the chunk of steps starting at `firstBatch`: rows gathered in shuffled order,
       * per-step step sizes, dropout masks. Built into one of two buffer sets, so the next chunk can be
       * prepared while the current one's buffers are still owned by its pending run. It does not
       * overlap the run itself: onnxruntime-node's `run` executes synchronously on this thread (its
       * promise only defers the call), so the preparation happens before the run starts.
       */
      const prepare = (firstBatch: number, stepBase: number, set: InputBuffers): PreparedChunk => {
        // Full batches go through the multi-step graph in chunks; the epoch's tail (and anything that
        // would overshoot maxSteps) through the single-step graph. Both compute the same arithmetic.
        const fullBatchesLeft = Math.floor((train.count - firstBatch * batchSize) / batchSize);
        const stepsLeft = options.maxSteps === undefined ? Infinity : options.maxSteps - stepBase;
        const chunk = manySession && fullBatchesLeft >= stepsPerRun && stepsLeft >= stepsPerRun ? stepsPerRun : 1;
        const start = firstBatch * batchSize;
        const rows = Math.min(chunk * batchSize, train.count - start);
        let features: Float32Array;
        let labels: Float32Array;
        if (order) {
          for (let row = 0; row < rows; row++) {
            const source = order[start + row]!;
            set.features.set(train.features.subarray(source * featureSize, (source + 1) * featureSize), row * featureSize);
            if (labelSize === 1) set.labels[row] = train.labels[source]!;
            else set.labels.set(train.labels.subarray(source * labelSize, (source + 1) * labelSize), row * labelSize);
          }
          features = set.features.subarray(0, rows * featureSize);
          labels = set.labels.subarray(0, rows * labelSize);
        } else {
          features = train.features.subarray(start * featureSize, (start + rows) * featureSize);
          labels = train.labels.subarray(start * labelSize, (start + rows) * labelSize);
        }
        const learningRates = new Float32Array(chunk);
        const stepNumbers = new Float32Array(chunk);
        for (let index = 0; index < chunk; index++) {
          learningRates[index] = optimizer.stepSize(learningRateAt(this.spec.optimizer.learningRate, stepBase + index, epoch), stepBase + index + 1);
          stepNumbers[index] = stepBase + index + 1;
        }
        const scalarDims = chunk === 1 ? [] : [chunk];
        const feeds: Record<string, ReturnType<typeof floatTensor>> = {
          [graphNames.input]: floatTensor(features, [rows, ...inputDims]),
          [graphNames.labels]: floatTensor(labels, [rows, ...labelDims]),
          [graphNames.learningRate]: floatTensor(learningRates, scalarDims),
          [graphNames.step]: floatTensor(stepNumbers, scalarDims),
        };
        for (const [layer, buffer] of set.masks) {
          const { shape, rate } = graphs.maskShapes.get(layer)!;
          const perRow = product(shape);
          // One draw per step, in step order, so chunked and single-step runs use the same masks.
          for (let index = 0; index < chunk; index++) {
            const stepRows = Math.min(batchSize, rows - index * batchSize);
            dropoutRandom.fillDropoutMask(buffer.subarray(index * batchSize * perRow, (index * batchSize + stepRows) * perRow), rate);
          }
          feeds[graphNames.dropoutMask(layer)] = floatTensor(buffer.subarray(0, rows * perRow), [rows, ...shape]);
        }
        return { firstBatch, chunk, rows, feeds };
      };

      let inputSet = 0;
      let prepared: PreparedChunk | undefined = prepare(0, this.step, inputSets[inputSet]!);
      while (prepared) {
        if (options.signal?.aborted) {
          stopReason = 'aborted';
          break;
        }
        const active: PreparedChunk = prepared;
        const chunk: number = active.chunk;
        const rows: number = active.rows;
        const firstBatch: number = active.firstBatch;
        const feeds = { ...active.feeds, ...this.parameterFeeds() };
        for (const slot of this.slots) feeds[graphNames.state(slot.suffix)] = floatTensor(this.packedState.get(slot.suffix)!, [this.layout.total]);
        // Outputs go into preallocated buffers: the next weights and state into the spare set, which
        // then swaps with the current one, so a step allocates nothing for them (double buffering).
        const outputDims = chunk === 1 ? [] : [chunk];
        const fetches: Record<string, ReturnType<typeof floatTensor>> = {
          [graphNames.loss]: floatTensor(lossBuffer.subarray(0, chunk), outputDims),
          [graphNames.next(graphNames.parameters)]: floatTensor(spare.parameters, [this.layout.total]),
        };
        for (const metric of this.spec.metrics) fetches[graphNames.metric(metric)] = floatTensor(metricBuffers.get(metric)!.subarray(0, chunk), outputDims);
        for (const slot of this.slots) fetches[graphNames.next(graphNames.state(slot.suffix))] = floatTensor(spare.state.get(slot.suffix)!, [this.layout.total]);
        const running = (chunk === 1 ? session : manySession!).run(feeds, fetches);
        // Prepare the next chunk into the other buffer set before awaiting this run (never past the
        // epoch or maxSteps, so the dropout generator's state at a checkpoint is the same as without it).
        const nextBatch: number = firstBatch + chunk;
        const reachesMaxSteps: boolean = options.maxSteps !== undefined && this.step + chunk >= options.maxSteps;
        inputSet = 1 - inputSet;
        const next: PreparedChunk | undefined = nextBatch < batchesPerEpoch && !reachesMaxSteps ? prepare(nextBatch, this.step + chunk, inputSets[inputSet]!) : undefined;
        const results = await running;
        const losses = lossBuffer;
        for (let index = 0; index < chunk; index++) {
          if (!Number.isFinite(losses[index]!)) {
            throw new AiaasError('TRAINING_DIVERGED', `loss became ${losses[index]} at epoch ${epoch + 1}, step ${firstBatch + index + 1}; lower the learning rate or check the data for extreme values`, {
              details: { epoch: epoch + 1, step: firstBatch + index + 1 },
            });
          }
        }
        [this.packedParameters, spare.parameters] = [spare.parameters, this.packedParameters];
        for (const slot of this.slots) {
          const currentState = this.packedState.get(slot.suffix)!;
          this.packedState.set(slot.suffix, spare.state.get(slot.suffix)!);
          spare.state.set(slot.suffix, currentState);
        }
        for (const metric of this.spec.metrics) {
          const sums = results[graphNames.metric(metric)]!.data as Float32Array;
          let total = metricSums.get(metric)!;
          for (let index = 0; index < chunk; index++) total += sums[index]!;
          metricSums.set(metric, total);
        }
        for (let index = 0; index < chunk; index++) {
          const size = Math.min(batchSize, rows - index * batchSize);
          this.step += 1;
          lossSum += losses[index]! * size;
          seen += size;
          if (options.onBatchEnd) {
            const elapsed = (now() - epochStart) / 1000;
            await options.onBatchEnd({ epoch: epoch + 1, batch: firstBatch + index + 1, batchesPerEpoch, samplesSeen: seen, samplesPerEpoch: train.count, step: this.step, loss: losses[index]!, samplesPerSecond: elapsed > 0 ? seen / elapsed : 0 });
          }
        }
        if (options.maxSteps !== undefined && this.step >= options.maxSteps) {
          stopReason = 'maxSteps';
          break;
        }
        prepared = next;
      }
      if (seen === 0) break;
      const seconds = (now() - epochStart) / 1000;
      totalSamples += seen;
      totalSeconds += seconds;
      const event: EpochEvent = {
        epoch: epoch + 1,
        epochs,
        step: this.step,
        loss: lossSum / seen,
        metrics: Object.fromEntries([...metricSums].map(([metric, sum]) => [metric, sum / seen])),
        samplesPerSecond: seconds > 0 ? seen / seconds : 0,
        seconds,
        learningRate,
      };
      if (validation && validation.count > 0) {
        const evaluated = await this.evaluate(validation);
        event.validationLoss = evaluated.loss;
        event.validationMetrics = evaluated.metrics;
      }
      history.push(event);
      if (options.earlyStopping) {
        const value = monitoredValue(event, monitor);
        const minDelta = options.earlyStopping.minDelta ?? 0;
        const improved = Number.isNaN(stopping.best) || (mode === 'min' ? value < stopping.best - minDelta : value > stopping.best + minDelta);
        if (improved) {
          stopping = {
            best: value,
            wait: 0,
            bestWeights: options.earlyStopping.restoreBestWeights ? copyMap(this.parameters) : undefined,
          };
        } else if (++stopping.wait >= (options.earlyStopping.patience ?? 0)) {
          stopReason = 'earlyStopping';
        }
      }
      if (stopReason === 'completed' && options.targetLoss !== undefined && event.loss <= options.targetLoss) stopReason = 'targetLoss';
      await options.onEpochEnd?.(event);
      if (options.onCheckpoint && stopReason !== 'aborted') {
        await options.onCheckpoint({
          epoch: epoch + 1,
          step: this.step,
          parameters: copyMap(this.parameters),
          optimizerState: copyMap(this.optimizerState),
          shuffleRandom: shuffleRandom.state(),
          dropoutRandom: dropoutRandom.state(),
          history: [...history],
          ...(options.earlyStopping ? { earlyStopping: { best: stopping.best, wait: stopping.wait, ...(stopping.bestWeights ? { bestWeights: copyMap(stopping.bestWeights) } : {}) } } : {}),
        });
      }
    }
    // As Keras, the best weights come back when training ends, after the last epoch's callbacks saw its own weights.
    if (stopReason === 'earlyStopping' && stopping.bestWeights) this.parameters = copyMap(stopping.bestWeights);
    const last = history[history.length - 1];
    return {
      epochs: history.length,
      steps: this.step,
      samplesPerSecond: totalSeconds > 0 ? totalSamples / totalSeconds : 0,
      loss: last?.loss ?? Number.NaN,
      metrics: last?.metrics ?? {},
      ...(last?.validationLoss === undefined ? {} : { validationLoss: last.validationLoss, validationMetrics: last.validationMetrics! }),
      history,
      stopReason,
    };
  }

  async evaluate(given: Dataset, options: { batchSize?: number } = {}): Promise<EvaluateResult> {
    const dataset = this.aligned(given, 'evaluation');
    this.checkDataset(dataset, 'evaluation');
    const session = await this.session('evaluate');
    const batchSize = options.batchSize ?? 1024;
    const featureSize = product(dataset.featureShape);
    const labelSize = Math.max(1, product(dataset.labelShape));
    const labelDims = this.plan.labelShape.length === 0 ? [] : this.plan.outputShape;
    let lossSum = 0;
    const metricSums = new Map(this.spec.metrics.map((metric) => [metric, 0]));
    for (let start = 0; start < dataset.count; start += batchSize) {
      const size = Math.min(batchSize, dataset.count - start);
      const feeds = this.parameterFeeds();
      feeds[graphNames.input] = floatTensor(dataset.features.subarray(start * featureSize, (start + size) * featureSize), [size, ...this.spec.inputShape]);
      feeds[graphNames.labels] = floatTensor(dataset.labels.subarray(start * labelSize, (start + size) * labelSize), [size, ...labelDims]);
      const results = await session.run(feeds);
      lossSum += (results[graphNames.lossSum]!.data as Float32Array)[0]!;
      for (const metric of this.spec.metrics) metricSums.set(metric, metricSums.get(metric)! + (results[graphNames.metric(metric)]!.data as Float32Array)[0]!);
    }
    const count = Math.max(1, dataset.count);
    return {
      loss: lossSum / count,
      metrics: Object.fromEntries([...metricSums].map(([metric, sum]) => [metric, sum / count])),
      count: dataset.count,
    };
  }

  /** Outputs for `count` samples laid out contiguously; returns count × outputUnits values. */
  async predict(features: Float32Array, options: { batchSize?: number } = {}): Promise<Float32Array> {
    const featureSize = product(this.spec.inputShape);
    if (features.length % featureSize !== 0) {
      throw new AiaasError('INVALID_TENSOR', `input has ${features.length} values, not a multiple of the sample size ${featureSize} (shape [${this.spec.inputShape.join(', ')}])`);
    }
    const count = features.length / featureSize;
    const outputSize = product(this.plan.outputShape);
    const output = new Float32Array(count * outputSize);
    const session = await this.session('predict');
    const batchSize = options.batchSize ?? 1024;
    for (let start = 0; start < count; start += batchSize) {
      const size = Math.min(batchSize, count - start);
      const feeds = this.parameterFeeds();
      feeds[graphNames.input] = floatTensor(features.subarray(start * featureSize, (start + size) * featureSize), [size, ...this.spec.inputShape]);
      const results = await session.run(feeds);
      output.set(results[graphNames.output]!.data as Float32Array, start * outputSize);
    }
    return output;
  }

  /** The `.onnx` inference graph with the current weights as initializers. */
  exportOnnx(metadata: Record<string, string> = {}): Uint8Array {
    return encodeOnnxModel(exportInferenceModel(this.plan, this.parameters, { ...metadata, ...this.namesMetadata() }));
  }

  /** `aiaas.class_names` / `aiaas.feature_names` entries for the names this model knows. */
  namesMetadata(): Record<string, string> {
    return {
      ...(this.classNames === undefined ? {} : { [classNamesMetadataKey]: JSON.stringify(this.classNames) }),
      ...(this.featureNames === undefined ? {} : { [featureNamesMetadataKey]: JSON.stringify(this.featureNames) }),
    };
  }

  async dispose(): Promise<void> {
    const sessions = [...Object.values(this.sessions), ...this.trainStepsSessions.values()];
    this.sessions = {};
    this.trainStepsSessions.clear();
    await Promise.all(sessions.map((session) => session.release()));
  }
}

function copyMap(source: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...source].map(([name, values]) => [name, Float32Array.from(values)]));
}

function monitoredValue(event: EpochEvent, monitor: string): number {
  if (monitor === 'loss') return event.loss;
  if (monitor === 'val_loss') {
    if (event.validationLoss === undefined) throw new AiaasError('INVALID_REQUEST', 'early stopping monitors val_loss but there is no validation data');
    return event.validationLoss;
  }
  if (monitor.startsWith('val_')) {
    const value = event.validationMetrics?.[monitor.slice(4)];
    if (value === undefined) throw new AiaasError('INVALID_REQUEST', `early stopping monitors ${monitor}, which is not computed`);
    return value;
  }
  const value = event.metrics[monitor];
  if (value === undefined) throw new AiaasError('INVALID_REQUEST', `early stopping monitors ${monitor}, which is not computed`);
  return value;
}

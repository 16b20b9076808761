/** The engine's public API: build from a spec, fit, evaluate, predict, save, load. */
export { Model, trainingSummary } from './model.ts';
export type { BatchEvent, EarlyStoppingOptions, EpochEvent, EvaluateResult, FitOptions, FitResult, TrainingCheckpoint, TrainingSummary } from './model.ts';
export { resolveSpec } from './spec.ts';
export type { ModelSpec, LayerSpec, OptimizerSpec, LossName, MetricName, ActivationName } from './spec.ts';
export { planModel } from './plan.ts';
export {
  saveModel,
  loadModel,
  modelFromBytes,
  savedModelBytes,
  savedModelFiles,
  encodeWeights,
  loadWeights,
  encodeCheckpoint,
  decodeCheckpoint,
} from './saved-model.ts';

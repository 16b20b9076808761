import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AiaasError } from '../errors.ts';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensor } from '../data/safetensors.ts';
import { Model, type TrainingCheckpoint } from './model.ts';
import { classNamesMetadataKey, featureNamesMetadataKey, parseNamesMetadata } from './names-metadata.ts';
import { describeJsonSyntaxError } from '../data/json-syntax.ts';

export const savedModelFiles = {
  spec: 'spec.json',
  weights: 'model.safetensors',
  onnx: 'model.onnx',
  metrics: 'metrics.json',
} as const;

function tensorsOf(values: ReadonlyMap<string, Float32Array>, shapeOf: (name: string) => number[], prefix = ''): Record<string, SafetensorsTensor> {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, data] of values) tensors[`${prefix}${name}`] = { dtype: 'F32', shape: shapeOf(name), data };
  return tensors;
}

/** safetensors bytes of the model's weights, named `<layer>.kernel` / `<layer>.bias`. */
export function encodeWeights(model: Model): Uint8Array {
  const shapes = new Map(model.plan.parameters.map((parameter) => [parameter.name, parameter.shape]));
  return encodeSafetensors(tensorsOf(model.parameters, (name) => shapes.get(name)!), { format: 'aiaas', model: model.spec.name, ...model.namesMetadata() });
}

/** Read weights from safetensors bytes (F32 tensors) into the model, checking names and shapes. */
export function loadWeights(model: Model, bytes: Uint8Array): void {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, tensor] of Object.entries(tensors)) {
    if (tensor.dtype === 'F32') weights.set(name, { shape: tensor.shape, data: tensor.data as Float32Array });
    else if (tensor.dtype === 'F64') weights.set(name, { shape: tensor.shape, data: Float32Array.from(tensor.data as Float64Array) });
    else if (model.plan.parameters.some((parameter) => parameter.name === name)) {
      throw new AiaasError('INVALID_WEIGHTS', `tensor "${name}" has dtype ${tensor.dtype}; weights must be F32 (or F64)`);
    }
  }
  model.setWeights(weights);
  const classNames = parseNamesMetadata(metadata[classNamesMetadataKey], classNamesMetadataKey, 'model.safetensors', 'INVALID_WEIGHTS');
  if (classNames !== undefined) model.classNames = classNames;
  const featureNames = parseNamesMetadata(metadata[featureNamesMetadataKey], featureNamesMetadataKey, 'model.safetensors', 'INVALID_WEIGHTS');
  if (featureNames !== undefined) model.featureNames = featureNames;
}

export interface SavedModelFiles {
  spec: Uint8Array;
  weights: Uint8Array;
  onnx: Uint8Array;
  metrics: Uint8Array;
}

/** The four files of a saved model, as bytes (the server stores them as artifacts). */
export function savedModelBytes(model: Model, metrics: Record<string, unknown> = {}): SavedModelFiles {
  const text = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
  return {
    spec: text(model.document),
    weights: encodeWeights(model),
    onnx: model.exportOnnx({ 'aiaas.model': model.spec.name, 'aiaas.seed': String(model.seed) }),
    metrics: text(metrics),
  };
}

/** Write the saved-model folder; each file is written to a temporary name and renamed, so a crash never leaves half a file. */
export async function saveModel(model: Model, directory: string, metrics: Record<string, unknown> = {}): Promise<void> {
  await mkdir(directory, { recursive: true });
  const files = savedModelBytes(model, metrics);
  for (const [key, bytes] of Object.entries(files) as [keyof SavedModelFiles, Uint8Array][]) {
    const target = join(directory, savedModelFiles[key]);
    const temporary = `${target}.tmp-${process.pid}`;
    await writeFile(temporary, bytes);
    await rename(temporary, target);
  }
}

export async function loadModel(directory: string): Promise<Model> {
  let specText: string;
  let weights: Uint8Array;
  try {
    specText = await readFile(join(directory, savedModelFiles.spec), 'utf8');
    weights = await readFile(join(directory, savedModelFiles.weights));
  } catch (error) {
    throw new AiaasError('INVALID_MODEL_FILE', `${directory} is not a saved model: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'spec.json or model.safetensors is missing' : String(error)}`);
  }
  return modelFromBytes(specText, weights);
}

export function modelFromBytes(specText: string, weights: Uint8Array): Model {
  let document: unknown;
  try {
    document = JSON.parse(specText);
  } catch (error) {
    throw new AiaasError('INVALID_SPEC', `spec.json is not valid JSON: ${describeJsonSyntaxError(specText, error)}`);
  }
  const model = Model.fromSpec(document);
  loadWeights(model, weights);
  return model;
}

/** A training checkpoint as one safetensors file: tensors for weights and optimizer state, JSON metadata for the rest. */
export function encodeCheckpoint(model: Model, checkpoint: TrainingCheckpoint): Uint8Array {
  const shapes = new Map(model.plan.parameters.map((parameter) => [parameter.name, parameter.shape]));
  const shapeOf = (name: string) => shapes.get(name) ?? shapes.get(name.slice(0, name.lastIndexOf('.')))!;
  const tensors = {
    ...tensorsOf(checkpoint.parameters, shapeOf, 'parameter:'),
    ...tensorsOf(checkpoint.optimizerState, shapeOf, 'state:'),
    ...(checkpoint.earlyStopping?.bestWeights ? tensorsOf(checkpoint.earlyStopping.bestWeights, shapeOf, 'best:') : {}),
  };
  const meta = {
    epoch: checkpoint.epoch,
    step: checkpoint.step,
    shuffleRandom: checkpoint.shuffleRandom,
    dropoutRandom: checkpoint.dropoutRandom,
    history: checkpoint.history,
    earlyStopping: checkpoint.earlyStopping ? { best: checkpoint.earlyStopping.best, wait: checkpoint.earlyStopping.wait } : null,
  };
  return encodeSafetensors(tensors, { checkpoint: JSON.stringify(meta) });
}

export function decodeCheckpoint(bytes: Uint8Array): TrainingCheckpoint {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const text = metadata.checkpoint;
  if (text === undefined) throw new AiaasError('INVALID_WEIGHTS', 'not a training checkpoint: __metadata__.checkpoint is missing');
  const meta = JSON.parse(text) as {
    epoch: number;
    step: number;
    shuffleRandom: TrainingCheckpoint['shuffleRandom'];
    dropoutRandom: TrainingCheckpoint['dropoutRandom'];
    history: TrainingCheckpoint['history'];
    earlyStopping: { best: number | null; wait: number } | null;
  };
  const group = (prefix: string) =>
    new Map(
      Object.entries(tensors)
        .filter(([name]) => name.startsWith(prefix))
        .map(([name, tensor]) => [name.slice(prefix.length), Float32Array.from(tensor.data as Float32Array)]),
    );
  const best = group('best:');
  return {
    epoch: meta.epoch,
    step: meta.step,
    parameters: group('parameter:'),
    optimizerState: group('state:'),
    shuffleRandom: meta.shuffleRandom,
    dropoutRandom: meta.dropoutRandom,
    history: meta.history,
    ...(meta.earlyStopping
      ? { earlyStopping: { best: meta.earlyStopping.best ?? Number.NaN, wait: meta.earlyStopping.wait, ...(best.size > 0 ? { bestWeights: best } : {}) } }
      : {}),
  };
}

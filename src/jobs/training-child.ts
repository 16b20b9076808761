/**
 * Child-process entry (forked by JobRunner through forkIsolated): trains one job with the engine and
 * reports back. It touches no database and no key material: the server hands it plaintext bytes and
 * stores what it sends. Running in its own process, under an RSS limit, a job that needs more memory
 * than allowed (ONNX Runtime's native allocations included) is killed without harming the server.
 */
import { AiaasError } from '../errors.ts';
import { loadDatasetBytes } from '../data/load.ts';
import type { Dataset } from '../data/dataset.ts';
import { Model, trainingSummary } from '../engine/model.ts';
import { scalesIdxPixelsAtLoad } from '../engine/spec.ts';
import { decodeCheckpoint, encodeCheckpoint, savedModelBytes } from '../engine/saved-model.ts';
import { connectToParent } from '../runtimes/isolated-process.ts';
import { computeBaseline } from '../quality/drift-baseline.ts';
import type { DatasetSource, FromWorker, ToWorker, WorkerStart } from './worker-protocol.ts';

const controller = new AbortController();
let started = false;

const parent = connectToParent<FromWorker, ToWorker>((message) => {
  if (message.type === 'cancel') {
    controller.abort();
    return;
  }
  if (started) return;
  started = true;
  train(message).catch((error: unknown) => {
    const failure = AiaasError.isInstance(error)
      ? { code: error.code, message: error.message, ...(error.details ? { details: { ...error.details } } : {}) }
      : { code: 'INTERNAL', message: 'training failed unexpectedly; the server log has the details' };
    if (!AiaasError.isInstance(error)) console.error(error);
    send({ type: 'failed', error: failure });
  });
});

function send(message: FromWorker): void {
  // Only a dead parent makes this fail, and then this process is exiting anyway.
  parent.send(message).catch(() => undefined);
}

/** `scale`: divide IDX pixels by 255 at load (specs without input preprocessing, see scalesIdxPixelsAtLoad). */
function parse(source: DatasetSource, scale: boolean): Dataset {
  return loadDatasetBytes(source.format, source.bytes, {
    fileName: source.name,
    scale,
    ...(source.labelsBytes ? { labelsBytes: source.labelsBytes } : {}),
    ...(source.label === undefined ? {} : { label: source.label }),
  });
}

/** Progress every tenth of an epoch: steady for watchers, cheap for the database, independent of speed. */
function progressInterval(batchesPerEpoch: number): number {
  return Math.max(1, Math.floor(batchesPerEpoch / 10));
}

async function train(start: WorkerStart): Promise<void> {
  const { settings } = start;
  const model = Model.fromSpec(start.spec, { seed: settings.seed });
  const scale = scalesIdxPixelsAtLoad(model.spec);
  const trainData = parse(start.train, scale);
  const testData = start.test ? parse(start.test, scale) : undefined;
  const validationData = start.validation ? parse(start.validation, scale) : undefined;
  const resumeFrom = start.checkpoint ? decodeCheckpoint(start.checkpoint) : undefined;
  if (resumeFrom) send({ type: 'resumed', epoch: resumeFrom.epoch, step: resumeFrom.step });
  // Samples the current epoch trained on (after any validation split or step limit): the ledger's sample-epochs.
  let samplesThisEpoch = 0;
  const result = await model.fit(trainData, {
    epochs: settings.epochs,
    batchSize: settings.batchSize,
    seed: settings.seed,
    shuffle: settings.shuffle,
    ...(settings.validationSplit === undefined ? {} : { validationSplit: settings.validationSplit }),
    ...(validationData === undefined ? {} : { validationData }),
    ...(settings.maxSteps === undefined ? {} : { maxSteps: settings.maxSteps }),
    ...(settings.targetLoss === undefined ? {} : { targetLoss: settings.targetLoss }),
    ...(settings.earlyStopping === undefined ? {} : { earlyStopping: settings.earlyStopping }),
    ...(resumeFrom ? { resumeFrom } : {}),
    signal: controller.signal,
    onBatchEnd: (event) => {
      samplesThisEpoch = event.samplesSeen;
      if (event.batch % progressInterval(event.batchesPerEpoch) === 0 || event.batch === event.batchesPerEpoch) send({ type: 'progress', event });
    },
    onEpochEnd: (event) => {
      send({ type: 'epoch', event, samples: samplesThisEpoch });
      samplesThisEpoch = 0;
    },
    onCheckpoint: (checkpoint) => {
      const bytes = encodeCheckpoint(model, checkpoint);
      send({ type: 'checkpoint', epoch: checkpoint.epoch, step: checkpoint.step, bytes });
    },
  });
  if (result.stopReason === 'aborted') {
    send({ type: 'cancelled', epoch: result.epochs, step: result.steps });
    await model.dispose();
    return;
  }
  const test = testData ? await model.evaluate(testData) : undefined;
  const summary = trainingSummary(result, test);
  const files = savedModelBytes(model, { ...summary, history: result.history });
  await model.dispose();
  // The drift baseline of the training inputs and labels, computed here rather than on the server's main thread.
  send({ type: 'done', files, summary, baseline: computeBaseline(trainData) });
}

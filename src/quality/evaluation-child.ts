/**
 * Child-process entry (forked by the evaluate job through forkIsolated): parses the dataset, runs the
 * model over it with ONNX Runtime and builds the report. Like training it runs outside the server's
 * process, under the job memory limit, so a large dataset or model never stalls or endangers serving.
 * It touches no database and no key material: the server hands it a plaintext model file and bytes.
 */
import ort from 'onnxruntime-node';
import { elementCount, type Dataset } from '../data/dataset.ts';
import { loadDatasetBytes } from '../data/load.ts';
import { AiaasError } from '../errors.ts';
import { connectToParent } from '../runtimes/isolated-process.ts';
import { computeBaseline } from './drift-baseline.ts';
import { buildEvaluationReport } from './evaluation-report.ts';
import type { EvaluationStart, FromEvaluationChild, ToEvaluationChild } from './evaluation-protocol.ts';

let started = false;

// A cancelled job's process is killed by the server; nothing here needs to stop gracefully.
const parent = connectToParent<FromEvaluationChild, ToEvaluationChild>((message) => {
  if (started) return;
  started = true;
  evaluate(message).catch((error: unknown) => {
    const failure = AiaasError.isInstance(error)
      ? { code: error.code, message: error.message, ...(error.details ? { details: { ...error.details } } : {}) }
      : { code: 'INVALID_MODEL_FILE', message: `the model could not be run on the dataset: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}` };
    send({ type: 'failed', error: failure });
  });
});

function send(message: FromEvaluationChild): void {
  parent.send(message).catch(() => undefined);
}

function parse(start: EvaluationStart): Dataset {
  const source = start.dataset;
  return loadDatasetBytes(source.format, source.bytes, {
    fileName: source.name,
    scale: start.scalePixels,
    ...(source.labelsBytes ? { labelsBytes: source.labelsBytes } : {}),
    ...(source.label === undefined ? {} : { label: source.label }),
  });
}

/**
 * The input's shape for `rows` samples: the batch dimension becomes `rows`, one other dynamic
 * dimension is inferred from the sample size, and a model whose fixed shape disagrees with the
 * dataset's samples is refused before anything runs.
 */
function inputShape(declared: readonly (number | string)[], sampleSize: number, featureShape: readonly number[], rows: number): number[] {
  if (declared.length === 0) return [rows, ...featureShape];
  const rest = declared.slice(1).map((dimension) => (typeof dimension === 'number' && dimension >= 0 ? dimension : -1));
  const known = rest.filter((dimension) => dimension !== -1).reduce((product, dimension) => product * dimension, 1);
  const unknown = rest.filter((dimension) => dimension === -1).length;
  if (unknown > 1) return [rows, ...featureShape];
  if (unknown === 1) {
    if (sampleSize % known !== 0) throw shapeMismatch(declared, featureShape);
    return [rows, ...rest.map((dimension) => (dimension === -1 ? sampleSize / known : dimension))];
  }
  if (known !== sampleSize) throw shapeMismatch(declared, featureShape);
  return [rows, ...rest];
}

function shapeMismatch(declared: readonly (number | string)[], featureShape: readonly number[]): AiaasError {
  return new AiaasError('INVALID_DATA', `the dataset's samples have shape [${featureShape.join(', ')}], which does not fit the model's input [${declared.join(', ')}]`);
}

async function evaluate(start: EvaluationStart): Promise<void> {
  const began = performance.now();
  const dataset = parse(start);
  // One thread: evaluation is background work that must leave the cores to serving.
  const session = await ort.InferenceSession.create(start.modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    if (session.inputMetadata.length !== 1) {
      throw new AiaasError('INVALID_REQUEST', `the model has ${session.inputMetadata.length} inputs; evaluation feeds one input from the dataset's features`);
    }
    const input = session.inputMetadata[0]!;
    if (!input.isTensor || input.type !== 'float32') {
      throw new AiaasError('INVALID_REQUEST', `the model's input '${input.name}' is not float32; evaluation feeds the dataset's features as float32`);
    }
    const output = start.output ?? session.outputNames[0]!;
    if (!session.outputNames.includes(output)) {
      throw new AiaasError('INVALID_REQUEST', `the model has no output '${output}'; its outputs are ${session.outputNames.join(', ')}`, { details: { field: 'outputs' } });
    }
    const sampleSize = elementCount(dataset.featureShape);
    const declared = input.shape;
    const fixedBatch = typeof declared[0] === 'number' && declared[0] > 0 ? declared[0] : undefined;
    const batchSize = fixedBatch ?? start.batchSize;
    let values: Float32Array | undefined;
    let width = 0;
    for (let row = 0; row < dataset.count; row += batchSize) {
      const rows = Math.min(batchSize, dataset.count - row);
      let features = dataset.features.subarray(row * sampleSize, (row + rows) * sampleSize);
      if (fixedBatch !== undefined && rows < fixedBatch) {
        // A model with a fixed batch size gets its last batch padded; the padding's outputs are dropped.
        const padded = new Float32Array(fixedBatch * sampleSize);
        padded.set(features);
        features = padded;
      }
      const feeds = { [input.name]: new ort.Tensor('float32', features, inputShape(declared, sampleSize, dataset.featureShape, fixedBatch ?? rows)) };
      const result = (await session.run(feeds, [output]))[output]!;
      if (result.type !== 'float32' && result.type !== 'float64') {
        throw new AiaasError('INVALID_REQUEST', `the output '${output}' holds ${result.type}, not scores; name the output with the scores in "outputs"`, { details: { field: 'outputs' } });
      }
      const batchWidth = result.dims.length <= 1 ? 1 : result.dims.slice(1).reduce((product, dimension) => product * dimension, 1);
      if (values === undefined) {
        width = batchWidth;
        values = new Float32Array(dataset.count * width);
      }
      const data = result.data as Float32Array | Float64Array;
      values.set(data.subarray(0, rows * width), row * width);
      send({ type: 'progress', rowsDone: row + rows, rowsTotal: dataset.count });
    }
    const report = buildEvaluationReport(
      { values: values ?? new Float32Array(0), width, labels: dataset.labels, labelWidth: elementCount(dataset.labelShape), count: dataset.count },
      {
        ...(start.task === undefined ? {} : { task: start.task }),
        // The request's names, else the dataset's own (string labels, sorted) as its parse found them.
        ...((start.classNames ?? dataset.classNames) === undefined ? {} : { classNames: start.classNames ?? dataset.classNames }),
        ...(start.topK === undefined ? {} : { topK: start.topK }),
      },
    );
    // The issue asks for a drift baseline at evaluation too: profiled here, off the server's thread.
    send({ type: 'done', report, output, seconds: (performance.now() - began) / 1000, baseline: computeBaseline(dataset) });
  } finally {
    await session.release();
  }
}

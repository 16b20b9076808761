import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AiaasError } from '../errors.ts';
import type { Dataset } from '../data/dataset.ts';
import { loadDatasetFile } from '../data/load.ts';
import { describeJsonSyntaxError } from '../data/json-syntax.ts';
import { Model, trainingSummary, type BatchEvent, type EpochEvent } from '../engine/model.ts';
import { loadWeights, saveModel } from '../engine/saved-model.ts';
import { scalesIdxPixelsAtLoad } from '../engine/spec.ts';
import type { CliIo } from './io.ts';

export const trainUsage = `Usage: aiaas train --spec SPEC.json (--data FILE [--label COLUMN] | --data IMAGES.idx[.gz] --labels LABELS.idx[.gz])
                   [--test-data IMAGES --test-labels LABELS | --test FILE] [--epochs N] [--batch-size N] [--seed N]
                   [--no-shuffle] [--validation-split F] [--init WEIGHTS.safetensors] --out DIR [--json]

Trains a model spec (docs/model-spec.md) on this machine and writes a saved-model folder to DIR
(spec.json, model.safetensors, model.onnx, metrics.json). With --json, prints one JSON object on stdout
at the end: {"epochs","steps","samplesPerSecond","loss","metrics","testMetrics",...}.
`;

function integerOption(value: string | undefined, flag: string, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < minimum) throw new AiaasError('INVALID_REQUEST', `${flag} must be an integer ≥ ${minimum}, got "${value}"`);
  return parsed;
}

function formatMetrics(metrics: Record<string, number>, prefix = ''): string {
  return Object.entries(metrics)
    .map(([name, value]) => `${prefix}${name} ${value.toFixed(4)}`)
    .join(' ');
}

/** One line per epoch, redrawn in place on a terminal: bar, loss, metrics, samples/s and ETA. */
export class EpochProgress {
  private readonly stream: CliIo['stderr'];
  private readonly interactive: boolean;
  private lastDraw = 0;

  constructor(stream: CliIo['stderr']) {
    this.stream = stream;
    this.interactive = stream.isTTY === true;
  }

  batch(event: BatchEvent, epochs: number): void {
    if (!this.interactive) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && event.batch !== event.batchesPerEpoch) return;
    this.lastDraw = now;
    const width = 24;
    const done = Math.round((event.batch / event.batchesPerEpoch) * width);
    const bar = `${'='.repeat(Math.max(0, done - 1))}${done > 0 ? '>' : ''}${' '.repeat(width - done)}`;
    const eta = event.samplesPerSecond > 0 ? ` ETA ${Math.ceil((event.samplesPerEpoch - event.samplesSeen) / event.samplesPerSecond)}s` : '';
    this.stream.write(
      `\repoch ${event.epoch}/${epochs} [${bar}] ${event.batch}/${event.batchesPerEpoch} loss ${event.loss.toFixed(4)} ${Math.round(event.samplesPerSecond)} samples/s${eta}\u001b[K`,
    );
  }

  epoch(event: EpochEvent): void {
    const validation =
      event.validationLoss === undefined ? '' : ` val_loss ${event.validationLoss.toFixed(4)} ${formatMetrics(event.validationMetrics ?? {}, 'val_')}`;
    const line = `epoch ${event.epoch}/${event.epochs} loss ${event.loss.toFixed(4)} ${formatMetrics(event.metrics)}${validation} ${Math.round(event.samplesPerSecond)} samples/s ${event.seconds.toFixed(1)}s`;
    this.stream.write(this.interactive ? `\r${line}\u001b[K\n` : `${line}\n`);
  }
}

async function loadData(io: CliIo, data: string, labels: string | undefined, label: string | undefined, scale: boolean): Promise<Dataset> {
  return loadDatasetFile(resolve(io.cwd, data), {
    scale,
    ...(labels === undefined ? {} : { labelsPath: resolve(io.cwd, labels) }),
    ...(label === undefined ? {} : { label }),
  });
}

export async function runTrainCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      spec: { type: 'string' },
      data: { type: 'string' },
      labels: { type: 'string' },
      label: { type: 'string' },
      'test-data': { type: 'string' },
      'test-labels': { type: 'string' },
      test: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      seed: { type: 'string' },
      'no-shuffle': { type: 'boolean' },
      'validation-split': { type: 'string' },
      init: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout.write(trainUsage);
    return 0;
  }
  const missing = (['spec', 'data', 'out'] as const).filter((flag) => values[flag] === undefined);
  if (missing.length > 0) throw new AiaasError('INVALID_REQUEST', `missing ${missing.map((flag) => `--${flag}`).join(', ')}\n\n${trainUsage}`);
  if (values.test !== undefined && values['test-data'] !== undefined) throw new AiaasError('INVALID_REQUEST', 'use either --test FILE or --test-data/--test-labels, not both');
  const epochs = integerOption(values.epochs, '--epochs', 1, 1);
  const batchSize = integerOption(values['batch-size'], '--batch-size', 32, 1);
  const seed = integerOption(values.seed, '--seed', 42, 0);
  let validationSplit: number | undefined;
  if (values['validation-split'] !== undefined) {
    validationSplit = Number(values['validation-split']);
    if (!(validationSplit >= 0 && validationSplit < 1)) throw new AiaasError('INVALID_REQUEST', `--validation-split must be in [0, 1), got "${values['validation-split']}"`);
  }

  const specPath = resolve(io.cwd, values.spec!);
  let specText: string;
  try {
    specText = await readFile(specPath, 'utf8');
  } catch {
    throw new AiaasError('INVALID_REQUEST', `cannot read the spec file ${specPath}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(specText);
  } catch (error) {
    throw new AiaasError('INVALID_SPEC', `${specPath} is not valid JSON: ${describeJsonSyntaxError(specText, error)}`);
  }
  // Validate the spec before reading any data: a bad spec fails in milliseconds.
  const model = Model.fromSpec(document, { seed });
  if (values.init !== undefined) loadWeights(model, await readFile(resolve(io.cwd, values.init)));
  // IDX pixels are divided by 255 here only for specs without input preprocessing (docs/model-spec.md).
  const scale = scalesIdxPixelsAtLoad(model.spec);
  const train = await loadData(io, values.data!, values.labels, values.label, scale);
  let test: Dataset | undefined;
  if (values.test !== undefined) test = await loadData(io, values.test, undefined, values.label, scale);
  if (values['test-data'] !== undefined) test = await loadData(io, values['test-data'], values['test-labels'], values.label, scale);

  const progress = new EpochProgress(io.stderr);
  const result = await model.fit(train, {
    epochs,
    batchSize,
    seed,
    shuffle: values['no-shuffle'] !== true,
    ...(validationSplit === undefined ? {} : { validationSplit }),
    onBatchEnd: (event) => progress.batch(event, epochs),
    onEpochEnd: (event) => progress.epoch(event),
  });
  const testResult = test ? await model.evaluate(test) : undefined;
  const summary = { ...trainingSummary(result, testResult), out: resolve(io.cwd, values.out!) };
  await saveModel(model, summary.out, { ...summary, history: result.history });
  await model.dispose();
  if (values.json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    const testLine = testResult ? `, test loss ${testResult.loss.toFixed(4)} ${formatMetrics(testResult.metrics, 'test_')}` : '';
    io.stdout.write(`trained ${result.epochs} epochs (${result.steps} steps, ${summary.samplesPerSecond} samples/s)${testLine}\nsaved to ${summary.out}\n`);
  }
  return 0;
}

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Dataset } from '../data/dataset.ts';
import { loadDatasetFile } from '../data/load.ts';
import { describeJsonSyntaxError } from '../data/json-syntax.ts';
import { Model, trainingSummary, type BatchEvent, type EpochEvent } from '../engine/model.ts';
import { loadWeights, saveModel } from '../engine/saved-model.ts';
import { CliFailure, CliUsageError, requiredOption, stringOption, type CommandContext } from './command.ts';
import { duration } from './format.ts';
import { scalesIdxPixelsAtLoad } from '../engine/spec.ts';
import type { CliIo } from './io.ts';
import { secondsLeftInRun } from './progress.ts';
import { parseTrainingFlags } from './training-flags.ts';

const command = 'train';

function formatMetrics(metrics: Record<string, number>, prefix = ''): string {
  return Object.entries(metrics)
    .map(([name, value]) => `${prefix}${name} ${value.toFixed(4)}`)
    .join(' ');
}

/** One line per epoch, redrawn in place on a terminal: bar, loss, samples/s and the ETA of the whole run. */
export class EpochProgress {
  private readonly stream: CliIo['stderr'];
  private readonly interactive: boolean;
  private readonly now: () => number;
  private lastDraw = Number.NEGATIVE_INFINITY;

  constructor(stream: CliIo['stderr'], options: { now?: () => number } = {}) {
    this.stream = stream;
    this.interactive = stream.isTTY === true;
    this.now = options.now ?? Date.now;
  }

  batch(event: BatchEvent, epochs: number): void {
    if (!this.interactive) return;
    const now = this.now();
    if (now - this.lastDraw < 100 && event.batch !== event.batchesPerEpoch) return;
    this.lastDraw = now;
    const width = 24;
    const done = Math.round((event.batch / event.batchesPerEpoch) * width);
    const bar = `${'='.repeat(Math.max(0, done - 1))}${done > 0 ? '>' : ''}${' '.repeat(width - done)}`;
    const left = secondsLeftInRun({ ...event, epochs });
    const eta = Number.isFinite(left) ? ` ETA ${duration(left)}` : '';
    this.stream.write(
      `\repoch ${event.epoch}/${epochs} [${bar}] ${event.batch}/${event.batchesPerEpoch} loss ${event.loss.toFixed(4)} ${Math.round(event.samplesPerSecond)} samples/s${eta}\u001b[K`,
    );
  }

  epoch(event: EpochEvent): void {
    const validation =
      event.validationLoss === undefined ? '' : ` val_loss ${event.validationLoss.toFixed(4)} ${formatMetrics(event.validationMetrics ?? {}, 'val_')}`;
    const line = `epoch ${event.epoch}/${event.epochs} loss ${event.loss.toFixed(4)} ${formatMetrics(event.metrics)}${validation} ${Math.round(event.samplesPerSecond)} samples/s ${event.seconds.toFixed(1)}s`;
    this.stream.write(this.interactive ? `\r${line}\u001b[K\n` : `${line}\n`);
    this.lastDraw = Number.NEGATIVE_INFINITY;
  }
}

async function loadData(io: CliIo, data: string, labels: string | undefined, label: string | undefined, scale: boolean): Promise<Dataset> {
  return loadDatasetFile(resolve(io.cwd, data), {
    scale,
    ...(labels === undefined ? {} : { labelsPath: resolve(io.cwd, labels) }),
    ...(label === undefined ? {} : { label }),
  });
}

/** `aiaas train`: options are declared in commands/train.ts; this module loads the engine, so it is imported only when used. */
export async function runTrainCommand(context: CommandContext): Promise<number> {
  const { io, values } = context;
  // Every flag is checked before any file is read, so a typo fails fast with a usage error.
  const specFile = requiredOption(values, 'spec', command);
  const dataFile = requiredOption(values, 'data', command);
  const outDirectory = requiredOption(values, 'out', command);
  const settings = parseTrainingFlags(values, command);
  const testFile = stringOption(values, 'test');
  const testData = stringOption(values, 'test-data');
  const validationFile = stringOption(values, 'validation-data');
  if (testFile !== undefined && testData !== undefined) throw new CliUsageError('use either --test FILE or --test-data/--test-labels, not both', command);
  if (stringOption(values, 'test-labels') !== undefined && testData === undefined) throw new CliUsageError('--test-labels needs --test-data', command);
  if (stringOption(values, 'validation-labels') !== undefined && validationFile === undefined) throw new CliUsageError('--validation-labels needs --validation-data', command);
  if (validationFile !== undefined && settings.validationSplit !== undefined) throw new CliUsageError('use either --validation-data or --validation-split, not both', command);

  const specPath = resolve(io.cwd, specFile);
  let specText: string;
  try {
    specText = await readFile(specPath, 'utf8');
  } catch (error) {
    throw new CliFailure('FILE_UNREADABLE', `cannot read the spec file ${specPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(specText);
  } catch (error) {
    throw new CliFailure('INVALID_SPEC', `${specPath} is not valid JSON: ${describeJsonSyntaxError(specText, error)}`);
  }
  // Validate the spec before reading any data: a bad spec fails in milliseconds.
  const model = Model.fromSpec(document, settings.seed === undefined ? {} : { seed: settings.seed });
  const validating = validationFile !== undefined || (settings.validationSplit ?? 0) > 0;
  const monitor = settings.earlyStopping?.monitor;
  if (monitor !== undefined) {
    const allowed = ['loss', 'val_loss', ...model.spec.metrics, ...model.spec.metrics.map((metric) => `val_${metric}`)];
    if (!allowed.includes(monitor)) throw new CliUsageError(`--early-stopping-monitor must be one of ${allowed.join(', ')}, got "${monitor}"`, command);
    if (monitor.startsWith('val_') && !validating) throw new CliUsageError(`--early-stopping-monitor ${monitor} needs --validation-split or --validation-data`, command);
  }
  const init = stringOption(values, 'init');
  if (init !== undefined) loadWeights(model, await readFile(resolve(io.cwd, init)));
  const label = stringOption(values, 'label');
  // IDX pixels are divided by 255 here only for specs without input preprocessing (docs/model-spec.md).
  const scale = scalesIdxPixelsAtLoad(model.spec);
  const train = await loadData(io, dataFile, stringOption(values, 'labels'), label, scale);
  let test: Dataset | undefined;
  if (testFile !== undefined) test = await loadData(io, testFile, undefined, label, scale);
  if (testData !== undefined) test = await loadData(io, testData, stringOption(values, 'test-labels'), label, scale);
  const validationData = validationFile === undefined ? undefined : await loadData(io, validationFile, stringOption(values, 'validation-labels'), label, scale);

  const epochs = settings.epochs ?? 1;
  const progress = new EpochProgress(io.stderr);
  const result = await model.fit(train, {
    ...settings,
    epochs,
    ...(validationData === undefined ? {} : { validationData }),
    ...(context.signal === undefined ? {} : { signal: context.signal }),
    onBatchEnd: (event) => progress.batch(event, epochs),
    onEpochEnd: (event) => progress.epoch(event),
  });
  if (result.stopReason === 'aborted') {
    await model.dispose();
    throw new CliFailure('INTERRUPTED', `stopped after epoch ${result.epochs}; nothing was saved`, 130);
  }
  const testResult = test ? await model.evaluate(test) : undefined;
  const summary = { ...trainingSummary(result, testResult), out: resolve(io.cwd, outDirectory) };
  await saveModel(model, summary.out, { ...summary, history: result.history });
  await model.dispose();
  if (context.json) io.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    const stopped = result.stopReason === 'completed' ? '' : ` (stopped early: ${result.stopReason})`;
    const testLine = testResult ? `, test loss ${testResult.loss.toFixed(4)} ${formatMetrics(testResult.metrics, 'test_')}` : '';
    io.stdout.write(`trained ${result.epochs} epochs (${result.steps} steps, ${summary.samplesPerSecond} samples/s)${stopped}${testLine}\nsaved to ${summary.out}\n`);
  }
  return 0;
}

import type { EpochEndData, JobEvent, JobFinishedData, JobProgressData, JsonValue } from '../sdk/types.ts';
import { duration, metrics } from './format.ts';
import type { CliIo } from './io.ts';

export interface JobOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  version: number | undefined;
  testLoss: number | undefined;
  testMetrics: Record<string, number> | undefined;
  error: { code: string; message: string } | undefined;
}

function record(value: JsonValue): Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

function number(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function numbers(value: JsonValue | undefined): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const result: Record<string, number> = {};
  for (const [key, item] of Object.entries(value)) if (typeof item === 'number') result[key] = item;
  return result;
}

function progressOf(data: JsonValue): JobProgressData {
  const fields = record(data);
  const pick = (name: keyof JobProgressData) => number(fields[name]);
  return {
    epoch: pick('epoch'),
    batch: pick('batch'),
    batchesPerEpoch: pick('batchesPerEpoch'),
    samplesSeen: pick('samplesSeen'),
    samplesPerEpoch: pick('samplesPerEpoch'),
    step: pick('step'),
    loss: pick('loss'),
    samplesPerSecond: pick('samplesPerSecond'),
  };
}

function epochOf(data: JsonValue): EpochEndData {
  const fields = record(data);
  return {
    epoch: number(fields.epoch),
    epochs: number(fields.epochs),
    step: number(fields.step),
    loss: number(fields.loss),
    metrics: numbers(fields.metrics),
    validationLoss: number(fields.validationLoss),
    validationMetrics: numbers(fields.validationMetrics),
    samplesPerSecond: number(fields.samplesPerSecond),
    seconds: number(fields.seconds),
  };
}

export function finishedOf(data: JsonValue): JobFinishedData {
  const fields = record(data);
  const summary = record(fields.summary ?? null);
  const error = record(fields.error ?? null);
  const status = fields.status;
  return {
    status: status === 'succeeded' || status === 'failed' || status === 'cancelled' ? status : undefined,
    version: number(fields.version),
    summary: { testLoss: number(summary.testLoss), testMetrics: numbers(summary.testMetrics), loss: number(summary.loss), metrics: numbers(summary.metrics) },
    error: typeof error.code === 'string' ? { code: error.code, message: typeof error.message === 'string' ? error.message : '' } : undefined,
    epoch: number(fields.epoch),
  };
}

const barWidth = 24;

/**
 * Seconds until the whole run ends (not just the current epoch): the rest of this epoch plus every
 * epoch still to come, at the current rate. `epoch` is 1-based.
 */
export function secondsLeftInRun(progress: { epoch: number; epochs: number; samplesSeen: number; samplesPerEpoch: number; samplesPerSecond: number }): number {
  const { epoch, epochs, samplesSeen, samplesPerEpoch, samplesPerSecond } = progress;
  if (!(samplesPerSecond > 0)) return Number.NaN;
  const remaining = Math.max(0, epochs - epoch) * samplesPerEpoch + Math.max(0, samplesPerEpoch - samplesSeen);
  return remaining / samplesPerSecond;
}

/**
 * Renders a job's event stream: on a terminal, one progress line redrawn in place (epoch, bar,
 * step, loss, last metrics, samples/s, ETA) with a permanent line per epoch; otherwise plain lines
 * for status changes and epochs only, so logs stay readable.
 */
export class JobProgressView {
  private readonly stream: CliIo['stderr'];
  private readonly interactive: boolean;
  private readonly now: () => number;
  private totalEpochs: number | undefined;
  private lastMetrics: Record<string, number> | undefined;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private barShown = false;

  constructor(stream: CliIo['stderr'], options: { totalEpochs?: number; now?: () => number } = {}) {
    this.stream = stream;
    this.interactive = stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.totalEpochs = options.totalEpochs;
  }

  /** Returns the outcome once the terminal event arrives. */
  handle(event: JobEvent): JobOutcome | undefined {
    const fields = record(event.data);
    switch (event.type) {
      case 'job-queued':
        this.totalEpochs = number(fields.totalEpochs) ?? this.totalEpochs;
        this.line(`queued: ${this.totalEpochs ?? '?'} epochs`);
        return undefined;
      case 'job-started': {
        this.totalEpochs = number(fields.totalEpochs) ?? this.totalEpochs;
        const epoch = number(fields.epoch) ?? 0;
        this.line(epoch > 0 ? `running again from epoch ${epoch + 1}` : 'training started');
        return undefined;
      }
      case 'job-resumed':
        this.line(`resumed from the checkpoint after epoch ${number(fields.fromEpoch) ?? '?'}`);
        return undefined;
      case 'job-progress':
        this.progress(progressOf(event.data));
        return undefined;
      case 'epoch-end':
        this.epoch(epochOf(event.data));
        return undefined;
      case 'job-finished':
        return this.finish(finishedOf(event.data));
      default:
        return undefined;
    }
  }

  private write(text: string): void {
    this.stream.write(text);
  }

  private line(text: string): void {
    this.write(this.interactive && this.barShown ? `\r\u001b[2K${text}\n` : `${text}\n`);
    this.barShown = false;
  }

  private progress(event: JobProgressData): void {
    if (!this.interactive) return;
    const last = event.batch !== undefined && event.batch === event.batchesPerEpoch;
    const now = this.now();
    if (!last && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const fraction = event.batch !== undefined && event.batchesPerEpoch ? Math.min(1, event.batch / event.batchesPerEpoch) : 0;
    const filled = Math.round(fraction * barWidth);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(barWidth - filled)}`;
    const parts = [
      `epoch ${event.epoch ?? '?'}/${this.totalEpochs ?? '?'}`,
      `[${bar}]`,
      `step ${event.step ?? '?'}`,
      event.loss === undefined ? undefined : `loss ${event.loss.toFixed(4)}`,
      this.lastMetrics === undefined ? undefined : metrics(this.lastMetrics),
      event.samplesPerSecond === undefined ? undefined : `${Math.round(event.samplesPerSecond)} samples/s`,
      this.eta(event),
    ];
    this.write(`\r${parts.filter((part) => part !== undefined && part !== '').join(' ')}\u001b[K`);
    this.barShown = true;
  }

  private eta(event: JobProgressData): string | undefined {
    const { epoch, samplesSeen, samplesPerEpoch, samplesPerSecond } = event;
    if (epoch === undefined || samplesSeen === undefined || samplesPerEpoch === undefined || !samplesPerSecond || this.totalEpochs === undefined) return undefined;
    return `ETA ${duration(secondsLeftInRun({ epoch, epochs: this.totalEpochs, samplesSeen, samplesPerEpoch, samplesPerSecond }))}`;
  }

  private epoch(event: EpochEndData): void {
    this.totalEpochs = event.epochs ?? this.totalEpochs;
    this.lastMetrics = event.metrics;
    // The next epoch's first batch is drawn at once, so the bar never lags behind the epoch line.
    this.lastDraw = Number.NEGATIVE_INFINITY;
    const parts = [
      `epoch ${event.epoch ?? '?'}/${this.totalEpochs ?? '?'}`,
      event.loss === undefined ? undefined : `loss ${event.loss.toFixed(4)}`,
      metrics(event.metrics),
      event.validationLoss === undefined ? undefined : `val_loss ${event.validationLoss.toFixed(4)}`,
      metrics(event.validationMetrics, 'val_'),
      event.samplesPerSecond === undefined ? undefined : `${Math.round(event.samplesPerSecond)} samples/s`,
      event.seconds === undefined ? undefined : `${event.seconds.toFixed(1)}s`,
    ];
    this.line(parts.filter((part) => part !== undefined && part !== '').join(' '));
  }

  private finish(data: JobFinishedData): JobOutcome {
    const status = data.status === 'succeeded' || data.status === 'cancelled' ? data.status : 'failed';
    const testMetrics = data.summary?.testMetrics;
    const testLoss = data.summary?.testLoss;
    if (status === 'succeeded') {
      const test = testLoss === undefined ? '' : `; test loss ${testLoss.toFixed(4)} ${metrics(testMetrics, 'test_')}`.trimEnd();
      this.line(`succeeded: version ${data.version ?? '?'}${test}`);
    } else if (status === 'cancelled') {
      this.line(`cancelled${data.epoch === undefined ? '' : ` after epoch ${data.epoch}`}`);
    } else {
      this.line(`failed: ${data.error?.code ?? 'INTERNAL'}: ${data.error?.message ?? 'no reason given'}`);
    }
    return { status, version: data.version, testLoss, testMetrics, error: data.error };
  }
}

/**
 * Drift tracking for served models: samples inference inputs and predicted classes into a
 * rolling window per model version, scores the window against the version's baseline (PSI and
 * KS per feature, PSI of the predicted classes against the training labels), exposes the scores,
 * and when the worst PSI crosses `driftPsiThreshold` writes an audit entry and notifies.
 * The windows are process-local state behind this one class.
 */
import type { Logger } from 'pino';
import type { InferRequest, InferResponse, ModelLabels, ResolvedModel } from '../inference/types.ts';
import { computeBaseline, type DriftBaseline } from '../quality/drift-baseline.ts';
import { DriftWindow, scoreDrift, type DriftScores } from '../quality/drift-window.ts';
import type { Tensor } from '../runtimes/runtime.ts';
import type { VersionReportRepository } from '../storage/index.ts';

export { computeBaseline };

/** Where a baseline came from. */
export type BaselineSource = 'training' | 'evaluation';

/** What a stored `drift-baseline` version report holds. */
export interface StoredBaseline {
  source: BaselineSource;
  jobId?: string;
  datasetId?: string;
  baseline: DriftBaseline;
}

/**
 * Outgoing notifications: the webhooks module (src/platform/webhooks.ts) in the server; anything
 * with its `notify(tenantId, event, payload)` in tests.
 */
export interface DriftNotifier {
  notify(tenantId: string, event: 'drift.detected', payload: Record<string, unknown>): Promise<void> | void;
}

/** The audit entry written when a version starts drifting. */
export interface DriftAuditEntry {
  tenantId: string;
  model: string;
  version: string;
  detail: { maxPsi: number; maxKs: number; outputPsi: number | null; threshold: number; samples: number };
}

export interface DriftMetricsSink {
  driftScores(labels: ModelLabels, scores: { maxPsi: number; meanPsi: number; maxKs: number; outputPsi: number | null; samples: number }): void;
}

export interface DriftServiceOptions {
  reports: Pick<VersionReportRepository, 'add' | 'latest'>;
  /** `driftSampleRate`: share of inference requests sampled (0 = off). */
  sampleRate: number;
  /** `driftWindowSize`: rows kept per model version. */
  windowSize: number;
  /** `driftPsiThreshold`. */
  psiThreshold: number;
  audit(entry: DriftAuditEntry): Promise<void>;
  notifier?: DriftNotifier;
  metrics?: DriftMetricsSink;
  logger?: Logger;
  /** Injected for tests; Math.random otherwise. */
  random?: () => number;
}

/** A version without a baseline is looked up again after this long (a training job stores it just after registering). */
const baselineRecheckMs = 30_000;
const minimumSamples = 300;
/** Rows of one request sampled at most (a 1,000-row batch must not flood the window). */
const maxRowsPerRequest = 64;

type VersionState =
  | { status: 'loading' }
  | { status: 'no-baseline'; checkedAt: number }
  | {
      status: 'ready';
      tenantId: string;
      labels: ModelLabels;
      stored: StoredBaseline & { createdAt: string };
      window: DriftWindow;
      scoredAt: number;
      scoring: boolean;
      drifting: boolean;
    };

export interface DriftReport {
  model: string;
  version: string;
  sampling: { rate: number; windowSize: number };
  threshold: number;
  baseline: { source: BaselineSource; rows: number; features: number; projection: DriftBaseline['projection']['kind']; createdAt: string; classes: number | null } | null;
  /** True when the worst feature PSI, or the output PSI, is above the threshold (with enough samples). */
  drifted: boolean;
  scores: DriftScores | null;
}

function numberAt(tensor: Tensor, index: number): number {
  const value = tensor.data[index];
  return typeof value === 'bigint' ? Number(value) : typeof value === 'number' ? value : Number.NaN;
}

export class DriftService {
  readonly #options: DriftServiceOptions;
  readonly #random: () => number;
  readonly #states = new Map<string, VersionState>();
  /**
   * Samples needed before a window is judged: PSI's noise floor on identical distributions is about
   * (bins − 1)/n per feature, so at 100 rows the worst of 49 image cells already reads ≈ 0.4 (measured
   * on MNIST); at 300 it stays near 0.1.
   */
  readonly #minimumSamples: number;

  constructor(options: DriftServiceOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#minimumSamples = Math.min(minimumSamples, options.windowSize);
  }

  get enabled(): boolean {
    return this.#options.sampleRate > 0;
  }

  /** Stores a baseline with a version (training and evaluation jobs do) and restarts its window. */
  async storeBaseline(tenantId: string, versionId: string, baseline: StoredBaseline): Promise<void> {
    await this.#options.reports.add(tenantId, versionId, 'drift-baseline', baseline);
    this.#states.delete(versionId);
  }

  /**
   * Called before each inference while sampling is on (the route skips the call when it is off).
   * A sampled request's input rows are copied now (the inference transfers its buffers to a
   * worker); the returned function takes the response and adds the rows with their predicted classes.
   */
  sample(model: ResolvedModel, request: InferRequest): ((response: InferResponse) => void) | undefined {
    if (this.#random() >= this.#options.sampleRate) return undefined;
    const state = this.#states.get(model.versionId);
    if (state === undefined) {
      this.#load(model);
      return undefined;
    }
    if (state.status === 'no-baseline' && Date.now() - state.checkedAt > baselineRecheckMs) this.#load(model);
    if (state.status !== 'ready') return undefined;
    const input = request.inputs[0];
    if (input === undefined || input.datatype === 'BYTES') return undefined;
    const ready = state;
    const elements = ready.window.rowElements;
    const rows = Math.floor(input.data.length / elements);
    if (rows === 0 || rows * elements !== input.data.length) return undefined;
    const taken = Math.min(rows, maxRowsPerRequest);
    const copied = new Float64Array(taken * elements);
    for (let index = 0; index < copied.length; index++) copied[index] = numberAt(input, index);
    return (response) => this.#add(ready, copied, taken, rows, response);
  }

  #add(state: Extract<VersionState, { status: 'ready' }>, copied: Float64Array, taken: number, rows: number, response: InferResponse): void {
    const window = state.window;
    const elements = window.rowElements;
    const output = response.outputs[0];
    const classCount = state.stored.baseline.labelCounts?.length ?? 0;
    const outputWidth = output === undefined ? 0 : Math.floor(output.data.length / rows);
    for (let index = 0; index < taken; index++) {
      window.add(copied.subarray(index * elements, (index + 1) * elements), output === undefined ? -1 : this.#predictedClass(output, index, outputWidth, classCount));
    }
    if (!state.scoring && window.size >= this.#minimumSamples && window.added - state.scoredAt >= Math.max(16, Math.floor(this.#options.windowSize / 10))) {
      state.scoring = true;
      // Scored after this response is on its way, not inside the request.
      setImmediate(() => {
        this.#evaluate(state).catch((error: unknown) => this.#options.logger?.warn({ err: error }, 'drift scoring failed')).finally(() => (state.scoring = false));
      });
    }
  }

  /** The version's scores now (also checks the threshold). */
  async report(model: ResolvedModel): Promise<DriftReport> {
    let state = this.#states.get(model.versionId);
    if (state === undefined || state.status !== 'ready') state = await this.#loadNow(model);
    const base = { model: model.name, version: model.version, sampling: { rate: this.#options.sampleRate, windowSize: this.#options.windowSize }, threshold: this.#options.psiThreshold };
    if (state.status !== 'ready') return { ...base, baseline: null, drifted: false, scores: null };
    const { baseline } = state.stored;
    const summary = {
      source: state.stored.source,
      rows: baseline.rows,
      features: baseline.features.length,
      projection: baseline.projection.kind,
      createdAt: state.stored.createdAt,
      classes: baseline.labelCounts?.length ?? null,
    };
    if (state.window.size === 0) return { ...base, baseline: summary, drifted: false, scores: null };
    const scores = await this.#evaluate(state);
    return { ...base, baseline: summary, drifted: this.#drifted(scores), scores };
  }

  forgetTenant(tenantId: string): void {
    for (const [versionId, state] of this.#states) if (state.status === 'ready' && state.tenantId === tenantId) this.#states.delete(versionId);
  }

  #predictedClass(output: Tensor, row: number, width: number, classCount: number): number {
    if (width > 1) {
      if (output.datatype === 'BYTES') return -1;
      let best = 0;
      for (let index = 1; index < width; index++) if (numberAt(output, row * width + index) > numberAt(output, row * width + best)) best = index;
      return best;
    }
    // One score per row: a binary classifier's probability when the labels are two classes.
    if (width === 1 && classCount === 2) return numberAt(output, row) > 0.5 ? 1 : 0;
    return -1;
  }

  #drifted(scores: DriftScores): boolean {
    if (scores.samples < this.#minimumSamples) return false;
    const threshold = this.#options.psiThreshold;
    return scores.maxPsi > threshold || (scores.output !== undefined && scores.output.psi > threshold);
  }

  async #evaluate(state: Extract<VersionState, { status: 'ready' }>): Promise<DriftScores> {
    state.scoredAt = state.window.added;
    const scores = scoreDrift(state.stored.baseline, state.window);
    const outputPsi = scores.output?.psi ?? null;
    this.#options.metrics?.driftScores(state.labels, { maxPsi: scores.maxPsi, meanPsi: scores.meanPsi, maxKs: scores.maxKs, outputPsi, samples: scores.samples });
    const drifted = this.#drifted(scores);
    if (drifted && !state.drifting) {
      // Edge-triggered: one entry and one notification per crossing, re-armed once the scores fall back.
      state.drifting = true;
      const detail = { maxPsi: scores.maxPsi, maxKs: scores.maxKs, outputPsi, threshold: this.#options.psiThreshold, samples: scores.samples };
      await this.#options.audit({ tenantId: state.tenantId, model: state.labels.model, version: state.labels.version, detail });
      await Promise.resolve(
        this.#options.notifier?.notify(state.tenantId, 'drift.detected', { model: state.labels.model, version: Number(state.labels.version), ...detail }),
      ).catch((error: unknown) => this.#options.logger?.warn({ err: error }, 'drift notification failed'));
    } else if (!drifted && state.drifting) {
      state.drifting = false;
    }
    return scores;
  }

  #load(model: ResolvedModel): void {
    this.#loadNow(model).catch((error: unknown) => {
      this.#states.delete(model.versionId);
      this.#options.logger?.warn({ err: error }, 'loading a drift baseline failed');
    });
  }

  async #loadNow(model: ResolvedModel): Promise<VersionState> {
    this.#states.set(model.versionId, { status: 'loading' });
    const tenantId = model.tenantId ?? '';
    const record = await this.#options.reports.latest(tenantId, model.versionId, 'drift-baseline');
    // Another call may have loaded it meanwhile: keep the first window.
    const current = this.#states.get(model.versionId);
    if (current !== undefined && current.status === 'ready') return current;
    const state: VersionState =
      record === undefined
        ? { status: 'no-baseline', checkedAt: Date.now() }
        : {
            status: 'ready',
            tenantId,
            labels: { tenant: tenantId, model: model.name, version: model.version },
            stored: { ...(record.body as StoredBaseline), createdAt: record.createdAt },
            window: new DriftWindow((record.body as StoredBaseline).baseline, this.#options.windowSize),
            scoredAt: 0,
            scoring: false,
            drifting: false,
          };
    this.#states.set(model.versionId, state);
    return state;
  }
}

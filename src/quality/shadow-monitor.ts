/**
 * Shadow traffic: a copy of a live request runs on the alias's shadow version after the live answer
 * is ready (the live response never waits for it), and the two answers are compared row by row:
 * argmax agreement for scores of two or more classes, agreement within a tolerance for a single
 * value. Counts and latencies per (tenant, model, alias, live version, shadow version) are kept
 * here for `GET …/aliases/:alias/shadow` and reported to Prometheus.
 */
import type { InferRequest, InferResponse } from '../inference/types.ts';
import type { Tensor } from '../runtimes/runtime.ts';
import { argmaxRow } from './metrics.ts';

/** |live − shadow| ≤ absolute + relative·|live| counts as agreeing for single-value outputs. */
export const shadowTolerance = { absolute: 1e-4, relative: 1e-3 } as const;

export interface ShadowSeries {
  tenant: string;
  model: string;
  alias: string;
  liveVersion: string;
  shadowVersion: string;
}

export interface ShadowMetricsSink {
  shadowRequest(series: ShadowSeries, outcome: 'compared' | 'error' | 'skipped'): void;
  shadowRows(series: ShadowSeries, agreeing: number, disagreeing: number, agreementRate: number): void;
  shadowLatency(series: ShadowSeries, role: 'live' | 'shadow', seconds: number): void;
}

export interface ShadowComparison {
  liveVersion: string;
  shadowVersion: string;
  requests: number;
  rows: number;
  agreeingRows: number;
  agreementRate: number | null;
  comparison: 'argmax' | 'tolerance' | 'mixed' | 'none';
  shadowErrors: number;
  skipped: number;
  liveLatencyMs: LatencySummary;
  shadowLatencyMs: LatencySummary;
}

export interface LatencySummary {
  mean: number | null;
  p50: number | null;
  p99: number | null;
}

/** The most recent latencies kept per series for its percentiles. */
const latencyWindow = 2048;

class Latencies {
  readonly #recent: number[] = [];
  #next = 0;
  #sum = 0;
  #count = 0;

  add(milliseconds: number): void {
    this.#sum += milliseconds;
    this.#count++;
    if (this.#recent.length < latencyWindow) this.#recent.push(milliseconds);
    else this.#recent[this.#next] = milliseconds;
    this.#next = (this.#next + 1) % latencyWindow;
  }

  summary(): LatencySummary {
    if (this.#count === 0) return { mean: null, p50: null, p99: null };
    const sorted = [...this.#recent].sort((left, right) => left - right);
    const at = (quantile: number) => sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))]!;
    return { mean: this.#sum / this.#count, p50: at(0.5), p99: at(0.99) };
  }
}

interface SeriesState {
  series: ShadowSeries;
  requests: number;
  rows: number;
  agreeingRows: number;
  kinds: Set<'argmax' | 'tolerance'>;
  errors: number;
  skipped: number;
  live: Latencies;
  shadow: Latencies;
}

/** Rows agreeing between two answers of the same shape; undefined when the shapes differ. */
export function compareOutputs(live: Tensor, shadow: Tensor): { rows: number; agreeing: number; kind: 'argmax' | 'tolerance' } | undefined {
  if (live.shape.length !== shadow.shape.length || live.shape.some((dimension, index) => dimension !== shadow.shape[index])) return undefined;
  const liveValues = live.data;
  const shadowValues = shadow.data;
  if (typeof liveValues[0] === 'string' || typeof shadowValues[0] === 'string' || typeof liveValues[0] === 'bigint' || typeof shadowValues[0] === 'bigint') {
    // Labels or integer outputs: exact agreement per element row.
    let agreeing = 0;
    const rows = live.shape[0] ?? 1;
    const width = Math.max(1, liveValues.length / Math.max(1, rows));
    for (let row = 0; row < rows; row++) {
      let same = true;
      for (let column = 0; column < width; column++) if (liveValues[row * width + column] !== shadowValues[row * width + column]) same = false;
      if (same) agreeing++;
    }
    return { rows, agreeing, kind: 'tolerance' };
  }
  const numbersLive = liveValues as ArrayLike<number>;
  const numbersShadow = shadowValues as ArrayLike<number>;
  const rows = live.shape.length === 0 ? 1 : live.shape[0]!;
  const width = rows === 0 ? 0 : numbersLive.length / rows;
  let agreeing = 0;
  if (width >= 2) {
    for (let row = 0; row < rows; row++) if (argmaxRow(numbersLive, row, width) === argmaxRow(numbersShadow, row, width)) agreeing++;
    return { rows, agreeing, kind: 'argmax' };
  }
  for (let row = 0; row < rows; row++) {
    const expected = Number(numbersLive[row]);
    if (Math.abs(expected - Number(numbersShadow[row])) <= shadowTolerance.absolute + shadowTolerance.relative * Math.abs(expected)) agreeing++;
  }
  return { rows, agreeing, kind: 'tolerance' };
}

/** A deep enough copy of a request for a second model: tensors' buffers may be handed to a worker. */
export function copyRequest(request: InferRequest): InferRequest {
  return {
    ...request,
    inputs: request.inputs.map((tensor) => ({ ...tensor, shape: [...tensor.shape], data: (Array.isArray(tensor.data) ? [...tensor.data] : (tensor.data as Float32Array).slice()) as Tensor['data'] })),
    ...(request.outputs === undefined ? {} : { outputs: [...request.outputs] }),
  };
}

export class ShadowMonitor {
  readonly #series = new Map<string, SeriesState>();
  readonly #metrics: ShadowMetricsSink | undefined;
  readonly #maxInFlight: number;
  #inFlight = 0;

  constructor(options: { maxInFlight: number; metrics?: ShadowMetricsSink }) {
    this.#maxInFlight = options.maxInFlight;
    this.#metrics = options.metrics;
  }

  #state(series: ShadowSeries): SeriesState {
    const key = [series.tenant, series.model, series.alias, series.liveVersion, series.shadowVersion].join('\u0000');
    let state = this.#series.get(key);
    if (state === undefined) {
      state = { series, requests: 0, rows: 0, agreeingRows: 0, kinds: new Set(), errors: 0, skipped: 0, live: new Latencies(), shadow: new Latencies() };
      this.#series.set(key, state);
    }
    return state;
  }

  /**
   * Takes a copy of the request for the shadow before the live call may consume it, or returns
   * undefined (and counts a skip) when `maxInFlight` shadow runs are busy.
   */
  admit(series: ShadowSeries, request: InferRequest): { request: InferRequest; release(): void } | undefined {
    if (this.#inFlight >= this.#maxInFlight) {
      this.#state(series).skipped++;
      this.#metrics?.shadowRequest(series, 'skipped');
      return undefined;
    }
    this.#inFlight++;
    let released = false;
    return {
      request: copyRequest(request),
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight--;
      },
    };
  }

  /**
   * Runs the shadow and compares; never throws (the caller does not wait for it). `liveSeconds`
   * is the live inference's own time, measured the same way as the shadow's.
   */
  async mirror(series: ShadowSeries, admitted: { request: InferRequest; release(): void }, live: InferResponse, liveSeconds: number, run: (request: InferRequest) => Promise<InferResponse>): Promise<void> {
    const state = this.#state(series);
    const started = performance.now();
    try {
      const shadow = await run(admitted.request);
      const shadowSeconds = (performance.now() - started) / 1000;
      const liveOutput = live.outputs[0];
      const shadowOutput = liveOutput === undefined ? undefined : (shadow.outputs.find((tensor) => tensor.name === liveOutput.name) ?? shadow.outputs[0]);
      const compared = liveOutput === undefined || shadowOutput === undefined ? undefined : compareOutputs(liveOutput, shadowOutput);
      if (compared === undefined) throw new Error('the shadow answered with a different shape');
      state.requests++;
      state.rows += compared.rows;
      state.agreeingRows += compared.agreeing;
      state.kinds.add(compared.kind);
      state.live.add(liveSeconds * 1000);
      state.shadow.add(shadowSeconds * 1000);
      this.#metrics?.shadowRequest(series, 'compared');
      this.#metrics?.shadowRows(series, compared.agreeing, compared.rows - compared.agreeing, state.rows === 0 ? 1 : state.agreeingRows / state.rows);
      this.#metrics?.shadowLatency(series, 'live', liveSeconds);
      this.#metrics?.shadowLatency(series, 'shadow', shadowSeconds);
    } catch {
      state.errors++;
      this.#metrics?.shadowRequest(series, 'error');
    } finally {
      admitted.release();
    }
  }

  /** The comparisons of one alias, one per (live version, shadow version) pair seen. */
  comparisons(tenant: string, model: string, alias: string): ShadowComparison[] {
    return [...this.#series.values()]
      .filter((state) => state.series.tenant === tenant && state.series.model === model && state.series.alias === alias)
      .map((state) => ({
        liveVersion: state.series.liveVersion,
        shadowVersion: state.series.shadowVersion,
        requests: state.requests,
        rows: state.rows,
        agreeingRows: state.agreeingRows,
        agreementRate: state.rows === 0 ? null : state.agreeingRows / state.rows,
        comparison: state.kinds.size === 0 ? 'none' : state.kinds.size > 1 ? 'mixed' : [...state.kinds][0]!,
        shadowErrors: state.errors,
        skipped: state.skipped,
        liveLatencyMs: state.live.summary(),
        shadowLatencyMs: state.shadow.summary(),
      }));
  }

  /** A deleted tenant's comparisons go with it. */
  dropTenant(tenant: string): void {
    for (const [key, state] of this.#series) if (state.series.tenant === tenant) this.#series.delete(key);
  }
}

/**
 * A tiny Prometheus registry (text exposition format 0.0.4) without a dependency: counters, gauges
 * and histograms with labels, plus the serving metrics aiaas records.
 */
import type { ModelLabels, ServingMetricsSink } from '../inference/types.ts';
import type { ShadowMetricsSink, ShadowSeries } from '../quality/shadow-monitor.ts';

export type Labels = Readonly<Record<string, string>>;

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((name, index) => `${name}="${escapeLabelValue(values[index] ?? '')}"`);
  if (extra !== undefined) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

abstract class Metric<Child> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly children = new Map<string, { values: string[]; child: Child }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!metricName.test(name)) throw new RangeError(`invalid metric name '${name}'`);
    for (const label of labelNames) {
      if (!labelName.test(label) || label === 'le') throw new RangeError(`invalid label name '${label}' on ${name}`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected abstract create(): Child;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract renderChild(values: readonly string[], child: Child): string[];

  protected child(labels: Labels): Child {
    const values = this.labelNames.map((name) => labels[name] ?? '');
    // Length-prefixed: as collision-free as JSON.stringify, and cheaper on every inference.
    let key = '';
    for (const value of values) key += `${value.length}:${value}`;
    let entry = this.children.get(key);
    if (entry === undefined) {
      entry = { values, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** The series' labels by name, for filters. */
  #labelsOf(values: readonly string[]): Labels {
    return Object.fromEntries(this.labelNames.map((name, index) => [name, values[index] ?? '']));
  }

  /** Forgets every series whose labels match (a deleted tenant's, for example). */
  removeWhere(matches: (labels: Labels) => boolean): void {
    for (const [key, { values }] of this.children) if (matches(this.#labelsOf(values))) this.children.delete(key);
  }

  /** The text format; with `include`, only the series it accepts (HELP and TYPE stay). */
  render(include?: (labels: Labels) => boolean): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, child } of this.children.values()) {
      if (include !== undefined && !include(this.#labelsOf(values))) continue;
      lines.push(...this.renderChild(values, child));
    }
    return lines.join('\n');
  }
}

export class Counter extends Metric<{ value: number }> {
  readonly type = 'counter' as const;
  protected create(): { value: number } {
    return { value: 0 };
  }
  inc(labels: Labels = {}, amount = 1): void {
    if (amount < 0) throw new RangeError('a counter only goes up');
    this.child(labels).value += amount;
  }
  get(labels: Labels = {}): number {
    return this.child(labels).value;
  }
  /** The series' own state, for callers that update one series on every request (see Metrics). */
  bind(labels: Labels): { value: number } {
    return this.child(labels);
  }
  protected renderChild(values: readonly string[], child: { value: number }): string[] {
    return [`${this.name}${renderLabels(this.labelNames, values)} ${formatValue(child.value)}`];
  }
}

export class Gauge extends Metric<{ value: number }> {
  readonly type = 'gauge' as const;
  protected create(): { value: number } {
    return { value: 0 };
  }
  set(labels: Labels, value: number): void {
    this.child(labels).value = value;
  }
  /** The series' own state (see Counter.bind). */
  bind(labels: Labels): { value: number } {
    return this.child(labels);
  }
  get(labels: Labels = {}): number {
    return this.child(labels).value;
  }
  protected renderChild(values: readonly string[], child: { value: number }): string[] {
    return [`${this.name}${renderLabels(this.labelNames, values)} ${formatValue(child.value)}`];
  }
}

export interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
  max: number;
}

export class Histogram extends Metric<HistogramState> {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((left, right) => left - right);
  }
  protected create(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0, max: -Infinity };
  }
  observe(labels: Labels, value: number): void {
    this.observeInto(this.child(labels), value);
  }
  /** The series' own state (see Counter.bind); update it with observeInto. */
  bind(labels: Labels): HistogramState {
    return this.child(labels);
  }
  observeInto(state: HistogramState, value: number): void {
    for (let index = 0; index < this.buckets.length; index++) if (value <= this.buckets[index]!) state.counts[index]!++;
    state.sum += value;
    state.count++;
    state.max = Math.max(state.max, value);
  }
  /** Count, sum and largest observation so far; for tests and status pages. */
  snapshot(labels: Labels = {}): { count: number; sum: number; max: number } {
    const state = this.child(labels);
    return { count: state.count, sum: state.sum, max: state.max };
  }
  protected renderChild(values: readonly string[], state: HistogramState): string[] {
    const lines = this.buckets.map(
      (bound, index) => `${this.name}_bucket${renderLabels(this.labelNames, values, ['le', formatValue(bound)])} ${state.counts[index]}`,
    );
    lines.push(`${this.name}_bucket${renderLabels(this.labelNames, values, ['le', '+Inf'])} ${state.count}`);
    lines.push(`${this.name}_sum${renderLabels(this.labelNames, values)} ${formatValue(state.sum)}`);
    lines.push(`${this.name}_count${renderLabels(this.labelNames, values)} ${state.count}`);
    return lines;
  }
}

export class Registry {
  readonly #metrics = new Map<string, Counter | Gauge | Histogram>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  #add<M extends Counter | Gauge | Histogram>(metric: M): M {
    if (this.#metrics.has(metric.name)) throw new RangeError(`metric '${metric.name}' is already registered`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /**
   * The text exposition format; serve with content type `text/plain; version=0.0.4; charset=utf-8`.
   * With `include`, only the series it accepts.
   */
  render(include?: (labels: Labels) => boolean): string {
    return `${[...this.#metrics.values()].map((metric) => metric.render(include)).join('\n')}\n`;
  }

  removeWhere(matches: (labels: Labels) => boolean): void {
    for (const metric of this.#metrics.values()) metric.removeWhere(matches);
  }
}

export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

export type InferenceProtocol = 'v2' | 'tfserving';

/** One model version's serving series states, bound once (see Metrics.#servingSeries). */
interface ServingSeries {
  labels: { tenant: string; model: string; version: string };
  /** By protocol (answered) or `protocol:outcome`. */
  requests: Map<string, { value: number }>;
  /** By protocol. */
  latency: Map<string, HistogramState>;
  queueDepth?: { value: number };
  batchRows?: HistogramState;
  batchRequests?: HistogramState;
}

/**
 * The serving metrics; also the sink the ModelManager and Batchers report into. Every per-model
 * series carries a `tenant` label (the tenant id), so `/metrics` can show a tenant only its own
 * series; server-wide series (loaded models and bytes) have none and are shown to operators only.
 */
export class Metrics implements ServingMetricsSink, ShadowMetricsSink {
  readonly registry: Registry;
  readonly requests: Counter;
  readonly latency: Histogram;
  readonly queueDepthGauge: Gauge;
  readonly batchRows: Histogram;
  readonly batchRequests: Histogram;
  readonly loadedModels: Gauge;
  readonly loadedBytes: Gauge;
  readonly jobs: Gauge;
  readonly generations: Counter;
  readonly completionTokens: Counter;
  readonly timeToFirstToken: Histogram;
  readonly interTokenLatency: Histogram;
  readonly tokensPerSecond: Histogram;
  readonly llmRunning: Gauge;
  readonly llmWaiting: Gauge;
  readonly driftMaxPsi: Gauge;
  readonly driftMeanPsi: Gauge;
  readonly driftMaxKs: Gauge;
  readonly driftOutputPsi: Gauge;
  readonly driftSamples: Gauge;
  /** Deleted tenants: their series are dropped and never re-created by a late report. */
  readonly #deletedTenants = new Set<string>();
  /** Serving series by tenant ('' for none), model and version; see #servingSeries. */
  readonly #serving = new Map<string, Map<string, Map<string, ServingSeries>>>();
  readonly shadowRequests: Counter;
  readonly shadowRowsCompared: Counter;
  readonly shadowAgreement: Gauge;
  readonly shadowLatencySeconds: Histogram;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    this.requests = registry.counter('aiaas_inference_requests_total', 'Inference requests by model, protocol and outcome.', ['tenant', 'model', 'version', 'protocol', 'outcome']);
    this.latency = registry.histogram(
      'aiaas_inference_duration_seconds',
      'Inference request latency from parsed request to rendered response.',
      ['tenant', 'model', 'protocol'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.queueDepthGauge = registry.gauge('aiaas_inference_queue_depth', 'Requests waiting in a model version\'s batch queue.', ['tenant', 'model', 'version']);
    this.batchRows = registry.histogram('aiaas_inference_batch_size', 'Rows (batch dimension) per runtime execution.', ['tenant', 'model', 'version'], [1, 2, 4, 8, 16, 32, 64, 128, 256]);
    this.batchRequests = registry.histogram('aiaas_inference_batch_requests', 'Requests merged into one runtime execution.', ['tenant', 'model', 'version'], [1, 2, 4, 8, 16, 32, 64]);
    this.loadedModels = registry.gauge('aiaas_loaded_models', 'Model versions currently loaded.');
    this.loadedBytes = registry.gauge('aiaas_loaded_model_bytes', 'Estimated memory of loaded model versions.');
    this.jobs = registry.gauge('aiaas_training_jobs', 'Training jobs by tenant and status.', ['tenant', 'status']);
    const llmLabels = ['tenant', 'model', 'version', 'protocol'];
    this.generations = registry.counter('aiaas_llm_generations_total', 'Language-model generations by model, protocol and outcome (ok, error, aborted).', [...llmLabels, 'outcome']);
    this.completionTokens = registry.counter('aiaas_llm_completion_tokens_total', 'Tokens generated by language models.', llmLabels);
    this.timeToFirstToken = registry.histogram(
      'aiaas_llm_time_to_first_token_seconds',
      'From the start of a generation (queueing and prompt evaluation included) to its first token.',
      llmLabels,
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.interTokenLatency = registry.histogram(
      'aiaas_llm_inter_token_seconds',
      'Time between consecutive tokens of a generation.',
      llmLabels,
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    );
    this.tokensPerSecond = registry.histogram(
      'aiaas_llm_tokens_per_second',
      'Generation speed of one request after its first token (completion tokens per second).',
      llmLabels,
      [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    );
    this.llmRunning = registry.gauge('aiaas_llm_running_requests', 'Generations holding a sequence of a loaded language model (sampled at scrape).', ['tenant', 'model', 'version']);
    this.llmWaiting = registry.gauge('aiaas_llm_waiting_requests', 'Generations waiting for a sequence of a loaded language model (sampled at scrape).', ['tenant', 'model', 'version']);
    const driftLabels = ['tenant', 'model', 'version'];
    this.driftMaxPsi = registry.gauge('aiaas_drift_psi_max', 'Largest population stability index over a version\'s input features, sampled window against its baseline.', driftLabels);
    this.driftMeanPsi = registry.gauge('aiaas_drift_psi_mean', 'Mean population stability index over a version\'s input features.', driftLabels);
    this.driftMaxKs = registry.gauge('aiaas_drift_ks_max', 'Largest two-sample Kolmogorov-Smirnov statistic over a version\'s input features.', driftLabels);
    this.driftOutputPsi = registry.gauge('aiaas_drift_output_psi', 'Population stability index of the predicted classes against the training labels.', driftLabels);
    this.driftSamples = registry.gauge('aiaas_drift_window_samples', 'Rows in a version\'s drift sampling window.', driftLabels);
    const shadowLabels = ['tenant', 'model', 'alias', 'live_version', 'shadow_version'];
    this.shadowRequests = registry.counter('aiaas_shadow_requests_total', 'Live requests copied to an alias\'s shadow version, by outcome (compared, error, skipped).', [...shadowLabels, 'outcome']);
    this.shadowRowsCompared = registry.counter('aiaas_shadow_rows_total', 'Rows compared between live and shadow answers, by agreement (agree, disagree).', [...shadowLabels, 'agreement']);
    this.shadowAgreement = registry.gauge('aiaas_shadow_agreement_ratio', 'Share of compared rows where the shadow agreed with the live version (argmax, or within tolerance).', shadowLabels);
    this.shadowLatencySeconds = registry.histogram(
      'aiaas_shadow_inference_duration_seconds',
      'Inference time of the live and the shadow version on the same requests (role live or shadow).',
      [...shadowLabels, 'role'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
  }

  /** A version's latest drift scores (see src/platform/drift.ts). */
  driftScores(model: ModelLabels, scores: { maxPsi: number; meanPsi: number; maxKs: number; outputPsi: number | null; samples: number }): void {
    if (!this.#live(model)) return;
    const series = { tenant: model.tenant ?? '', model: model.model, version: model.version };
    this.driftMaxPsi.set(series, scores.maxPsi);
    this.driftMeanPsi.set(series, scores.meanPsi);
    this.driftMaxKs.set(series, scores.maxKs);
    if (scores.outputPsi !== null) this.driftOutputPsi.set(series, scores.outputPsi);
    this.driftSamples.set(series, scores.samples);
  }

  #shadowLabels(series: ShadowSeries): Labels {
    return { tenant: series.tenant, model: series.model, alias: series.alias, live_version: series.liveVersion, shadow_version: series.shadowVersion };
  }

  shadowRequest(series: ShadowSeries, outcome: 'compared' | 'error' | 'skipped'): void {
    if (this.#deletedTenants.has(series.tenant)) return;
    this.shadowRequests.inc({ ...this.#shadowLabels(series), outcome });
  }

  shadowRows(series: ShadowSeries, agreeing: number, disagreeing: number, agreementRate: number): void {
    if (this.#deletedTenants.has(series.tenant)) return;
    const labels = this.#shadowLabels(series);
    this.shadowRowsCompared.inc({ ...labels, agreement: 'agree' }, agreeing);
    this.shadowRowsCompared.inc({ ...labels, agreement: 'disagree' }, disagreeing);
    this.shadowAgreement.set(labels, agreementRate);
  }

  shadowLatency(series: ShadowSeries, role: 'live' | 'shadow', seconds: number): void {
    if (this.#deletedTenants.has(series.tenant)) return;
    this.shadowLatencySeconds.observe({ ...this.#shadowLabels(series), role }, seconds);
  }

  /** One finished generation (see LlmMetricsSink in src/http/protocols/llm-support.ts). */
  generationFinished(
    labels: { tenant?: string; model: string; version: string; protocol: 'openai' | 'ollama' },
    measures: { timeToFirstTokenSeconds?: number; interTokenSeconds: number[]; completionTokens: number; durationSeconds: number; outcome: 'ok' | 'error' | 'aborted' },
  ): void {
    if (labels.tenant !== undefined && this.#deletedTenants.has(labels.tenant)) return;
    const series = { tenant: labels.tenant ?? '', model: labels.model, version: labels.version, protocol: labels.protocol };
    this.generations.inc({ ...series, outcome: measures.outcome });
    this.completionTokens.inc(series, measures.completionTokens);
    if (measures.timeToFirstTokenSeconds !== undefined) this.timeToFirstToken.observe(series, measures.timeToFirstTokenSeconds);
    for (const seconds of measures.interTokenSeconds) this.interTokenLatency.observe(series, seconds);
    const decodeSeconds = measures.interTokenSeconds.reduce((sum, seconds) => sum + seconds, 0);
    // Speed after the first token: the first one also paid for queueing and the prompt.
    if (measures.interTokenSeconds.length > 0 && decodeSeconds > 0) this.tokensPerSecond.observe(series, measures.interTokenSeconds.length / decodeSeconds);
  }

  /** Running and waiting generations of every loaded language model, set at scrape time. */
  languageModelLoad(models: readonly { tenant?: string; model: string; version: string; running: number; waiting: number }[]): void {
    this.llmRunning.removeWhere(() => true);
    this.llmWaiting.removeWhere(() => true);
    for (const { tenant, model, version, running, waiting } of models) {
      if (tenant !== undefined && this.#deletedTenants.has(tenant)) continue;
      const series = { tenant: tenant ?? '', model, version };
      this.llmRunning.set(series, running);
      this.llmWaiting.set(series, waiting);
    }
  }

  /** Set from the database at scrape time (per tenant), so the numbers are right across restarts and processes. */
  jobCounts(counts: readonly { tenantId: string; status: string; count: number }[]): void {
    this.jobs.removeWhere(() => true);
    for (const { tenantId, status, count } of counts) if (!this.#deletedTenants.has(tenantId)) this.jobs.set({ tenant: tenantId, status }, count);
  }

  #live(model: ModelLabels): boolean {
    return model.tenant === undefined || !this.#deletedTenants.has(model.tenant);
  }

  /**
   * A model version's serving series, found by three map lookups instead of building label keys:
   * they are updated several times per inference. Undefined for a deleted tenant.
   */
  #servingSeries(model: ModelLabels): ServingSeries | undefined {
    const tenant = model.tenant ?? '';
    let byModel = this.#serving.get(tenant);
    if (byModel === undefined) {
      if (this.#deletedTenants.has(tenant)) return undefined;
      byModel = new Map();
      this.#serving.set(tenant, byModel);
    }
    let byVersion = byModel.get(model.model);
    if (byVersion === undefined) {
      byVersion = new Map();
      byModel.set(model.model, byVersion);
    }
    let series = byVersion.get(model.version);
    if (series === undefined) {
      series = { labels: { tenant, model: model.model, version: model.version }, requests: new Map(), latency: new Map() };
      byVersion.set(model.version, series);
    }
    return series;
  }

  recordRequest(model: ModelLabels, protocol: InferenceProtocol, outcome: 'ok' | 'error', seconds: number | undefined): void {
    const series = this.#servingSeries(model);
    if (series === undefined) return;
    const requestsKey = outcome === 'ok' ? protocol : `${protocol}:${outcome}`;
    let requests = series.requests.get(requestsKey);
    if (requests === undefined) {
      // Labels as recordRequest always gave them: the model's own (tenant absent when it has none).
      requests = this.requests.bind({ ...model, protocol, outcome });
      series.requests.set(requestsKey, requests);
    }
    requests.value += 1;
    if (seconds === undefined) return;
    let latency = series.latency.get(protocol);
    if (latency === undefined) {
      latency = this.latency.bind({ tenant: series.labels.tenant, model: model.model, protocol });
      series.latency.set(protocol, latency);
    }
    this.latency.observeInto(latency, seconds);
  }

  batchExecuted(model: ModelLabels, rows: number, requests: number): void {
    const series = this.#servingSeries(model);
    if (series === undefined) return;
    series.batchRows ??= this.batchRows.bind({ ...model });
    series.batchRequests ??= this.batchRequests.bind({ ...model });
    this.batchRows.observeInto(series.batchRows, rows);
    this.batchRequests.observeInto(series.batchRequests, requests);
  }

  queueDepth(model: ModelLabels, depth: number): void {
    const series = this.#servingSeries(model);
    if (series === undefined) return;
    series.queueDepth ??= this.queueDepthGauge.bind({ ...model });
    series.queueDepth.value = depth;
  }

  /** Drops a deleted tenant's series: its model names must not outlive it on /metrics. */
  dropTenant(tenantId: string): void {
    this.#deletedTenants.add(tenantId);
    // The cached series point at the states removed below; a late report must not revive them.
    this.#serving.delete(tenantId);
    this.registry.removeWhere((labels) => labels.tenant === tenantId);
  }

  modelsLoaded(count: number, bytes: number): void {
    this.loadedModels.set({}, count);
    this.loadedBytes.set({}, bytes);
  }

  /** Everything, or (with `include`) only the series it accepts; series without labels get `{}`. */
  render(include?: (labels: Labels) => boolean): string {
    return this.registry.render(include);
  }
}

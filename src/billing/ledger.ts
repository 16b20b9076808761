/**
 * The usage ledger: every billable event, summed in memory per tenant, key, model, version,
 * protocol and UTC minute, and written as increments of those minute rows every flush interval.
 * Serving pays no database write per request; what a crash (`kill -9`) can lose is what arrived
 * since the last flush, at most one interval's worth. A graceful close writes everything.
 */
import type { LedgerBucket, LedgerDimension, LedgerQuery, LedgerRow, LedgerUnitColumn, LedgerUnits } from '../storage/repositories/usage-ledger.ts';
import { ledgerUnitColumns } from '../storage/repositories/usage-ledger.ts';

export type { LedgerDimension } from '../storage/repositories/usage-ledger.ts';

/** Where a unit was used: an inference protocol, training, or storage. */
export type UsageProtocol = 'v2' | 'tfserving' | 'openai' | 'ollama' | 'training' | 'storage';

/** Who used what. `keyId` '' where no key acted; `modelName` '' and `version` 0 where none applies. */
export interface UsageDimensions {
  tenantId: string;
  keyId: string;
  modelName: string;
  version: number;
  protocol: UsageProtocol;
}

/** The units, as the ledger reports them. Times are fractional milliseconds or seconds. */
export interface UsageUnits {
  /** Answered requests: what is billed. */
  requests: number;
  /** Requests that reached a model and failed: recorded, never billed. */
  failedRequests: number;
  /** Batch elements of the answered requests. */
  items: number;
  promptTokens: number;
  completionTokens: number;
  /** Worker time spent running the model, this request's share of its batch. */
  computeMs: number;
  /** Time waiting in the model's queue before its batch started. */
  queueMs: number;
  bytesIn: number;
  bytesOut: number;
  /** Training samples times the epochs they were trained for. */
  trainingSampleEpochs: number;
  trainingWorkerSeconds: number;
  /** Stored bytes sampled once an hour: each sample adds bytes × 1 hour. */
  storedByteHours: number;
}

export type UsageEvent = UsageDimensions & Partial<UsageUnits>;

/** A group of `GET /api/v1/usage`: the dimensions grouped by (others absent) and the summed units. */
export interface UsageGroup extends UsageUnits {
  model?: string;
  keyId?: string;
  version?: number;
  protocol?: string;
  day?: string;
  hour?: string;
  minute?: string;
}

export interface UsageQuery {
  groupBy: readonly LedgerDimension[];
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  model?: string;
  keyId?: string;
  version?: number;
  protocol?: string;
  /** Only these models' rows (a key restricted to some models). */
  models?: readonly string[];
}

/** Where the ledger's rows live: the database repository, or a test's stand-in. */
export interface UsageLedgerStore {
  add(buckets: readonly LedgerBucket[]): Promise<void>;
  query(tenantId: string, query: LedgerQuery): Promise<LedgerRow[]>;
}

export interface UsageLedgerOptions {
  now?: () => Date;
  /** How often buffered usage is written; 0 writes only on read, `flush()` and close. */
  flushIntervalMs: number;
  /** Hears of every failed flush, with how many buckets wait for the retry. */
  onFlushError?: (error: unknown, pendingBuckets: number) => void;
  /** How often `close()` retries a failing flush before giving up (logged by `onFlushError`). */
  closeAttempts?: number;
  /** Pause between those attempts. */
  closeRetryDelayMs?: number;
}

/** Stored columns are integers: microseconds of compute and queue, milliseconds of training. */
const unitScale: Record<keyof UsageUnits, { column: LedgerUnitColumn; factor: number }> = {
  requests: { column: 'requests', factor: 1 },
  failedRequests: { column: 'failed_requests', factor: 1 },
  items: { column: 'items', factor: 1 },
  promptTokens: { column: 'prompt_tokens', factor: 1 },
  completionTokens: { column: 'completion_tokens', factor: 1 },
  computeMs: { column: 'compute_us', factor: 1000 },
  queueMs: { column: 'queue_us', factor: 1000 },
  bytesIn: { column: 'bytes_in', factor: 1 },
  bytesOut: { column: 'bytes_out', factor: 1 },
  trainingSampleEpochs: { column: 'training_sample_epochs', factor: 1 },
  trainingWorkerSeconds: { column: 'training_worker_ms', factor: 1000 },
  storedByteHours: { column: 'stored_byte_hours', factor: 1 },
};

const unitNames = Object.keys(unitScale) as (keyof UsageUnits)[];

function emptyColumns(): LedgerUnits {
  return Object.fromEntries(ledgerUnitColumns.map((column) => [column, 0])) as LedgerUnits;
}

/** The stored integers of an event's units; fractions round to the nearest stored unit. */
export function toLedgerUnits(units: Partial<UsageUnits>): LedgerUnits {
  return addUnits(emptyColumns(), units);
}

/** A unit's stored increment: negative, infinite and absent values add nothing. */
function increment(value: number | undefined, factor: number): number {
  return value === undefined || !(value > 0) || value === Number.POSITIVE_INFINITY ? 0 : Math.round(value * factor);
}

/**
 * Adds an event's units to stored columns in place. Named fields, not a loop over unit names: events
 * come in many shapes, and a loop's `units[name]` lookups went megamorphic on the request path.
 */
function addUnits(columns: LedgerUnits, units: Partial<UsageUnits>): LedgerUnits {
  columns.requests += increment(units.requests, 1);
  columns.failed_requests += increment(units.failedRequests, 1);
  columns.items += increment(units.items, 1);
  columns.prompt_tokens += increment(units.promptTokens, 1);
  columns.completion_tokens += increment(units.completionTokens, 1);
  columns.compute_us += increment(units.computeMs, 1000);
  columns.queue_us += increment(units.queueMs, 1000);
  columns.bytes_in += increment(units.bytesIn, 1);
  columns.bytes_out += increment(units.bytesOut, 1);
  columns.training_sample_epochs += increment(units.trainingSampleEpochs, 1);
  columns.training_worker_ms += increment(units.trainingWorkerSeconds, 1000);
  columns.stored_byte_hours += increment(units.storedByteHours, 1);
  return columns;
}

// addUnits names every unit by hand; this keeps it and the scale table above from drifting apart.
// One probe with every unit set to its own power of two (one object shape, so the check leaves the
// request path's property lookups as they were).
{
  const probe = Object.fromEntries(unitNames.map((name, index) => [name, 2 ** index])) as unknown as UsageUnits;
  const added = addUnits(emptyColumns(), probe);
  unitNames.forEach((name, index) => {
    const { column, factor } = unitScale[name];
    if (added[column] !== 2 ** index * factor) throw new Error(`addUnits and unitScale disagree on ${name}`);
  });
  if (ledgerUnitColumns.some((column) => !unitNames.some((name) => unitScale[name].column === column))) throw new Error('a ledger column has no unit');
}

export function fromLedgerUnits(columns: LedgerUnits): UsageUnits {
  const units = {} as UsageUnits;
  for (const name of unitNames) {
    const { column, factor } = unitScale[name];
    units[name] = columns[column] / factor;
  }
  return units;
}

/** `YYYY-MM-DDTHH:MM` (UTC) of an instant: the minute bucket it falls in. */
export function minuteOf(at: Date): string {
  return at.toISOString().slice(0, 16);
}

/** The first minute bucket at or after an instant: exact bounds for `[from, to)` over minute rows. */
function minuteAtOrAfter(at: Date): string {
  const floor = new Date(Math.floor(at.getTime() / 60_000) * 60_000);
  return minuteOf(floor.getTime() === at.getTime() ? floor : new Date(floor.getTime() + 60_000));
}

function periodFields(period: string | undefined, groupBy: readonly LedgerDimension[]): Pick<UsageGroup, 'day' | 'hour' | 'minute'> {
  if (period === undefined) return {};
  if (groupBy.includes('minute')) return { minute: `${period}Z` };
  if (groupBy.includes('hour')) return { hour: `${period}:00Z` };
  return { day: period };
}

/** The stored form of a query: bounds as minute buckets, names as stored. */
function storeQuery(query: UsageQuery): LedgerQuery {
  return {
    groupBy: query.groupBy,
    ...(query.from === undefined ? {} : { fromMinute: minuteAtOrAfter(query.from) }),
    ...(query.to === undefined ? {} : { toMinute: minuteAtOrAfter(query.to) }),
    ...(query.model === undefined ? {} : { modelName: query.model }),
    ...(query.keyId === undefined ? {} : { keyId: query.keyId }),
    ...(query.version === undefined ? {} : { version: query.version }),
    ...(query.protocol === undefined ? {} : { protocol: query.protocol }),
    ...(query.models === undefined ? {} : { models: query.models }),
  };
}

const sleep = (milliseconds: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, milliseconds));

export class UsageLedger {
  readonly #store: UsageLedgerStore;
  /** Milliseconds since the epoch: Date.now unless a clock was injected (no Date per record). */
  readonly #nowMs: () => number;
  readonly #onFlushError: (error: unknown, pendingBuckets: number) => void;
  readonly #closeAttempts: number;
  readonly #closeRetryDelayMs: number;
  #pending = new Map<string, LedgerBucket & LedgerUnits>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  /** The current minute's bucket name, recomputed only when the minute changes (record() is on the request path). */
  #minuteStartMs = Number.NaN;
  #minute = '';

  constructor(store: UsageLedgerStore, options: UsageLedgerOptions) {
    if (!(options.flushIntervalMs >= 0)) throw new RangeError('flushIntervalMs must be >= 0');
    this.#store = store;
    const now = options.now;
    this.#nowMs = now === undefined ? Date.now : () => now().getTime();
    this.#onFlushError = options.onFlushError ?? (() => undefined);
    this.#closeAttempts = Math.max(1, options.closeAttempts ?? 5);
    this.#closeRetryDelayMs = options.closeRetryDelayMs ?? 200;
    if (options.flushIntervalMs > 0) {
      // A failed flush keeps its buckets pending, so the next tick retries them.
      this.#timer = setInterval(() => void this.flush().catch(() => undefined), options.flushIntervalMs);
      this.#timer.unref();
    }
  }

  /** Minute buckets waiting to be written. */
  get pendingBuckets(): number {
    return this.#pending.size;
  }

  /** Requests (answered and failed) waiting to be written. */
  get pendingRequests(): number {
    let total = 0;
    for (const bucket of this.#pending.values()) total += bucket.requests + bucket.failed_requests;
    return total;
  }

  /** Adds an event to its minute bucket in memory; it reaches the database with the next flush. */
  record(event: UsageEvent): void {
    const now = this.#nowMs();
    const minuteStartMs = now - (((now % 60_000) + 60_000) % 60_000);
    if (minuteStartMs !== this.#minuteStartMs) {
      this.#minuteStartMs = minuteStartMs;
      this.#minute = minuteOf(new Date(minuteStartMs));
    }
    const minute = this.#minute;
    const key = `${event.tenantId}\u0000${event.keyId}\u0000${event.modelName}\u0000${event.version}\u0000${event.protocol}\u0000${minute}`;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = { tenantId: event.tenantId, keyId: event.keyId, modelName: event.modelName, version: event.version, protocol: event.protocol, minute, ...emptyColumns() };
      this.#pending.set(key, pending);
    }
    addUnits(pending, event);
  }

  /** Puts a bucket back (a failed flush's), adding to one recorded meanwhile. */
  #add(bucket: LedgerBucket): void {
    const key = `${bucket.tenantId}\u0000${bucket.keyId}\u0000${bucket.modelName}\u0000${bucket.version}\u0000${bucket.protocol}\u0000${bucket.minute}`;
    const pending = this.#pending.get(key);
    if (pending === undefined) {
      this.#pending.set(key, { ...bucket });
      return;
    }
    for (const column of ledgerUnitColumns) pending[column] += bucket[column];
  }

  /**
   * Writes every pending bucket in one transaction; concurrent calls queue behind each other. A
   * failed write rejects this call, is reported to `onFlushError`, and puts its buckets back for
   * the next flush (added to whatever arrived meanwhile).
   */
  flush(): Promise<void> {
    const run = this.#flushing.then(async () => {
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending = new Map();
      try {
        await this.#store.add(batch);
      } catch (error) {
        for (const bucket of batch) this.#add(bucket);
        this.#onFlushError(error, this.#pending.size);
        throw error;
      }
    });
    this.#flushing = run.catch(() => undefined);
    return run;
  }

  /** Grouped sums of a tenant's usage; flushes first, so everything recorded so far is counted. */
  async query(tenantId: string, query: UsageQuery): Promise<UsageGroup[]> {
    await this.flush();
    const rows = await this.#store.query(tenantId, storeQuery(query));
    return rows.map((row) => ({
      ...(row.modelName === undefined ? {} : { model: row.modelName }),
      ...(row.keyId === undefined ? {} : { keyId: row.keyId }),
      ...(row.version === undefined ? {} : { version: row.version }),
      ...(row.protocol === undefined ? {} : { protocol: row.protocol }),
      ...periodFields(row.period, query.groupBy),
      ...fromLedgerUnits(row),
    }));
  }

  /**
   * A tenant's units summed over `[from, to)` (minute buckets; both ends optional): the read API
   * for invoices and quotas. Flushes first.
   */
  async totals(tenantId: string, range: { from?: Date; to?: Date } = {}): Promise<UsageUnits> {
    await this.flush();
    const [row] = await this.#store.query(tenantId, storeQuery({ groupBy: [], ...range }));
    return fromLedgerUnits(row ?? emptyColumns());
  }

  /**
   * Stops the timer and writes everything recorded. A failing write is retried (`closeAttempts`
   * times, `closeRetryDelayMs` apart) before the error is thrown; every failure is reported.
   */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.flush();
        return;
      } catch (error) {
        if (attempt >= this.#closeAttempts) throw error;
        await sleep(this.#closeRetryDelayMs);
      }
    }
  }
}

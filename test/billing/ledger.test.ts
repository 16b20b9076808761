import { describe, expect, it } from 'vitest';
import { UsageLedger, type UsageLedgerStore } from '../../src/billing/ledger.ts';
import type { LedgerBucket, LedgerQuery, LedgerRow } from '../../src/storage/repositories/usage-ledger.ts';
import { ledgerUnitColumns } from '../../src/storage/repositories/usage-ledger.ts';

/** A ledger store in memory whose writes fail while `failing` is set (the injected failing repository). */
function memoryStore() {
  const rows = new Map<string, LedgerBucket>();
  const state = { failing: 0, writes: 0 };
  const store: UsageLedgerStore = {
    async add(buckets) {
      state.writes += 1;
      if (state.failing > 0) {
        state.failing -= 1;
        throw new Error('database is locked');
      }
      for (const bucket of buckets) {
        const key = [bucket.tenantId, bucket.keyId, bucket.modelName, bucket.version, bucket.protocol, bucket.minute].join('/');
        const existing = rows.get(key);
        if (existing === undefined) rows.set(key, { ...bucket });
        else rows.set(key, { ...existing, ...Object.fromEntries(ledgerUnitColumns.map((column) => [column, existing[column] + bucket[column]])) });
      }
    },
    async query(tenantId: string, query: LedgerQuery): Promise<LedgerRow[]> {
      const selected = [...rows.values()].filter(
        (row) => row.tenantId === tenantId && (query.fromMinute === undefined || row.minute >= query.fromMinute) && (query.toMinute === undefined || row.minute < query.toMinute),
      );
      if (selected.length === 0) return [];
      const total = Object.fromEntries(ledgerUnitColumns.map((column) => [column, selected.reduce((sum, row) => sum + row[column], 0)])) as unknown as LedgerRow;
      return [total];
    },
  };
  return { store, rows, state };
}

const at = (iso: string) => () => new Date(iso);
const inference = { tenantId: 't1', keyId: 'k1', modelName: 'm', version: 1, protocol: 'v2' as const };

describe('UsageLedger', () => {
  it('sums events into one bucket per tenant, key, model, version, protocol and minute', async () => {
    const { store, rows } = memoryStore();
    let now = new Date('2026-01-02T03:04:05Z');
    const ledger = new UsageLedger(store, { flushIntervalMs: 0, now: () => now });
    ledger.record({ ...inference, requests: 1, items: 3, computeMs: 1.25, queueMs: 0.5, bytesIn: 100, bytesOut: 40 });
    ledger.record({ ...inference, requests: 1, items: 1, computeMs: 0.75 });
    ledger.record({ ...inference, keyId: 'k2', requests: 1 });
    now = new Date('2026-01-02T03:05:00Z');
    ledger.record({ ...inference, failedRequests: 1 });
    expect(ledger.pendingBuckets).toBe(3);
    expect(ledger.pendingRequests).toBe(4);
    await ledger.flush();
    expect(ledger.pendingBuckets).toBe(0);
    expect(rows.get('t1/k1/m/1/v2/2026-01-02T03:04')).toMatchObject({ requests: 2, items: 4, compute_us: 2000, queue_us: 500, bytes_in: 100, bytes_out: 40, failed_requests: 0 });
    expect(rows.get('t1/k2/m/1/v2/2026-01-02T03:04')).toMatchObject({ requests: 1 });
    expect(rows.get('t1/k1/m/1/v2/2026-01-02T03:05')).toMatchObject({ requests: 0, failed_requests: 1 });
    expect(await ledger.totals('t1')).toMatchObject({ requests: 3, failedRequests: 1, items: 4, computeMs: 2, queueMs: 0.5, bytesIn: 100, bytesOut: 40 });
    expect(await ledger.totals('t1', { from: new Date('2026-01-02T03:05:00Z') })).toMatchObject({ requests: 0, failedRequests: 1 });
    // `to` is exclusive and rounds up to a whole minute: 03:04:30 still takes in the 03:04 bucket.
    expect(await ledger.totals('t1', { to: new Date('2026-01-02T03:04:30Z') })).toMatchObject({ requests: 3, failedRequests: 0 });
    expect(await ledger.totals('t1', { to: new Date('2026-01-02T03:04:00Z') })).toMatchObject({ requests: 0 });
    expect(await ledger.totals('nobody')).toEqual({
      requests: 0, failedRequests: 0, items: 0, promptTokens: 0, completionTokens: 0, computeMs: 0, queueMs: 0,
      bytesIn: 0, bytesOut: 0, trainingSampleEpochs: 0, trainingWorkerSeconds: 0, storedByteHours: 0,
    });
    await ledger.close();
  });

  it('keeps the buckets of a failed flush, reports the failure, and writes them with the next flush', async () => {
    const { store, rows, state } = memoryStore();
    const failures: { message: string; pending: number }[] = [];
    const ledger = new UsageLedger(store, { flushIntervalMs: 0, now: at('2026-01-02T03:04:05Z'), onFlushError: (error, pending) => failures.push({ message: (error as Error).message, pending }) });
    ledger.record({ ...inference, requests: 1 });
    ledger.record({ ...inference, requests: 1 });
    state.failing = 1;
    await expect(ledger.flush()).rejects.toThrow('database is locked');
    expect(failures).toEqual([{ message: 'database is locked', pending: 1 }]);
    expect(ledger.pendingRequests).toBe(2);
    ledger.record({ ...inference, requests: 1 });
    await ledger.flush();
    expect(rows.get('t1/k1/m/1/v2/2026-01-02T03:04')).toMatchObject({ requests: 3 });
    expect(ledger.pendingRequests).toBe(0);
    await ledger.close();
  });

  it('retries a failing flush on its own timer, never dropping the buckets', async () => {
    const { store, rows, state } = memoryStore();
    const failures: number[] = [];
    const ledger = new UsageLedger(store, { flushIntervalMs: 5, now: at('2026-01-02T03:04:05Z'), onFlushError: (_error, pending) => failures.push(pending) });
    state.failing = 3;
    ledger.record({ ...inference, requests: 1 });
    await expect.poll(() => rows.get('t1/k1/m/1/v2/2026-01-02T03:04')?.requests, { timeout: 10_000, interval: 5 }).toBe(1);
    expect(failures).toEqual([1, 1, 1]);
    expect(state.writes).toBe(4);
    await ledger.close();
  });

  it('close retries a failing flush before giving up, and throws when every attempt failed', async () => {
    const { store, rows, state } = memoryStore();
    const ledger = new UsageLedger(store, { flushIntervalMs: 0, now: at('2026-01-02T03:04:05Z'), closeAttempts: 3, closeRetryDelayMs: 1 });
    ledger.record({ ...inference, requests: 1 });
    state.failing = 2;
    await ledger.close();
    expect(rows.get('t1/k1/m/1/v2/2026-01-02T03:04')).toMatchObject({ requests: 1 });

    const failing = memoryStore();
    const doomed = new UsageLedger(failing.store, { flushIntervalMs: 0, closeAttempts: 2, closeRetryDelayMs: 1 });
    doomed.record({ ...inference, requests: 1 });
    failing.state.failing = 2;
    await expect(doomed.close()).rejects.toThrow('database is locked');
    expect(doomed.pendingRequests).toBe(1);
  });
});

/**
 * `npm run bench:ledger`: what the usage ledger costs. Recording an event (in memory, on the
 * request path) per call, and one flush of many minute buckets into a real SQLite database (one
 * transaction, off the request path), as JSON.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageLedger } from '../src/billing/ledger.ts';
import { createRepositories, openDatabase } from '../src/storage/index.ts';

const events = Number(process.env.LEDGER_EVENTS ?? 1_000_000);
const bucketCounts = [100, 1_000, 10_000];

const directory = await mkdtemp(join(tmpdir(), 'aiaas-bench-ledger-'));
try {
  const database = await openDatabase({ path: join(directory, 'aiaas.db') });
  const repositories = createRepositories(database.db);
  const tenants: string[] = [];
  for (let index = 0; index < 10; index += 1) tenants.push((await repositories.tenants.create({ name: `tenant-${index}` })).id);

  // The request path: one record() per answered inference, 100 distinct keys × models in one minute.
  const clock = new Date('2026-01-01T00:00:00Z');
  const ledger = new UsageLedger(repositories.usageLedger, { flushIntervalMs: 0, now: () => clock });
  const started = process.hrtime.bigint();
  for (let index = 0; index < events; index += 1) {
    ledger.record({ tenantId: tenants[index % 10]!, keyId: `key-${index % 10}`, modelName: `model-${index % 7}`, version: 1, protocol: 'v2', requests: 1, items: 4, computeMs: 0.123, queueMs: 0.01, bytesIn: 220, bytesOut: 90 });
  }
  const recordNanoseconds = Number(process.hrtime.bigint() - started) / events;
  const flushStarted = performance.now();
  await ledger.flush();
  const singleFlushMs = performance.now() - flushStarted;

  // A flush of many buckets (distinct minutes): the worst case after a long database outage.
  const flushes: { buckets: number; ms: number }[] = [];
  for (const buckets of bucketCounts) {
    let minute = 0;
    const spread = new UsageLedger(repositories.usageLedger, { flushIntervalMs: 0, now: () => new Date(Date.UTC(2026, 1, 1) + minute * 60_000) });
    for (let index = 0; index < buckets; index += 1) {
      minute = index;
      spread.record({ tenantId: tenants[index % 10]!, keyId: 'key', modelName: 'model', version: 1, protocol: 'v2', requests: 1 });
    }
    const flushStart = performance.now();
    await spread.flush();
    flushes.push({ buckets, ms: Math.round((performance.now() - flushStart) * 10) / 10 });
  }
  const totals = await ledger.totals(tenants[0]!, { to: new Date(Date.UTC(2026, 1, 1)) });
  await database.close();
  process.stdout.write(
    `${JSON.stringify(
      {
        events,
        recordNanosecondsPerEvent: Math.round(recordNanoseconds),
        bucketsAfterRecording: 70,
        flushOf70BucketsMs: Math.round(singleFlushMs * 10) / 10,
        flushes,
        check: { tenant0Requests: totals.requests, expected: events / 10 },
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await rm(directory, { recursive: true, force: true });
}

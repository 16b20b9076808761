import { describe, expect, it } from 'vitest';
import { UsageCounter } from '../../src/platform/usage.ts';
import type { UsageRecord, UsageRepository } from '../../src/storage/index.ts';

/** A usage repository whose writes fail while `failing` is set. */
function flakyRepository() {
  const totals = new Map<string, number>();
  const state = { failing: false };
  const repository = {
    async increment(tenantId: string, modelName: string, day: string, count: number): Promise<void> {
      if (state.failing) throw new Error('database is locked');
      const key = `${tenantId}/${modelName}/${day}`;
      totals.set(key, (totals.get(key) ?? 0) + count);
    },
    async list(): Promise<UsageRecord[]> {
      return [];
    },
  } as unknown as UsageRepository;
  return { repository, totals, state };
}

describe('UsageCounter', () => {
  it('keeps counting after a failed flush and writes the counts it could not write before', async () => {
    const { repository, totals, state } = flakyRepository();
    const counter = new UsageCounter(repository, { now: () => new Date('2026-01-02T03:04:05Z'), flushIntervalMs: 0 });
    counter.add('t1', 'm');
    counter.add('t1', 'm');
    state.failing = true;
    await expect(counter.flush()).rejects.toThrow('database is locked');
    counter.add('t1', 'm');
    state.failing = false;
    await counter.flush();
    expect(totals.get('t1/m/2026-01-02')).toBe(3);
    await counter.close();
  });
});

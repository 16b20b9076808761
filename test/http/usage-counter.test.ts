import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { UsageCounter } from '../../src/platform/usage.ts';
import type { UsageRecord, UsageRepository } from '../../src/storage/index.ts';
import { call, classifierModel, startTestServer, uploadOnnxModel } from './helpers.ts';

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

describe('usage counting in the server (issue 7, finding 8)', () => {
  it('logs a failed flush with its error, keeps the counts, and writes them on the next flush', async () => {
    const lines: { level: number; msg: string; unwritten?: number; err?: { message: string } }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
        done();
      },
    });
    const server = await startTestServer({}, { logger: pino({ level: 'warn' }, sink) });
    try {
      expect((await uploadOnnxModel(server, server.adminKey, 'counted', classifierModel().exportOnnx())).statusCode).toBe(201);
      const infer = () => call(server.app, server.adminKey, 'POST', '/v2/models/counted/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
      const db = server.context.database.db;
      // A real failure of the real table: it is briefly gone.
      await sql`alter table usage_counters rename to usage_counters_away`.execute(db);
      expect((await infer()).statusCode).toBe(200);
      expect((await infer()).statusCode).toBe(200);
      await expect(server.context.usage.flush()).rejects.toThrow(/usage_counters/);
      const logged = lines.find((line) => line.msg.includes('could not write usage counters'));
      expect(logged).toMatchObject({ level: 50, unwritten: 2 });
      expect(logged!.err!.message).toMatch(/usage_counters/);
      await sql`alter table usage_counters_away rename to usage_counters`.execute(db);
      expect((await call(server.app, server.adminKey, 'GET', '/api/v1/usage')).json().usage).toMatchObject([{ model: 'counted', requests: 2 }]);
    } finally {
      await server.close();
    }
  });
});

/** Plan documents: strict validation (every problem a 400 naming the field) and the plans file. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlan, parsePlansFile } from '../../src/billing/plans.ts';
import { scaledSpend } from '../../src/billing/quotas.ts';
import { AiaasError } from '../../src/errors.ts';
import { call, startTestServer } from '../http/helpers.ts';

function fieldOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    if (AiaasError.isInstance(error)) return { code: error.code, field: error.details?.['field'] };
    throw error;
  }
  return undefined;
}

describe('parsePlan', () => {
  it('fills omitted prices and included amounts with 0 and keeps what is given', () => {
    const plan = parsePlan({ name: 'pro', prices: { perMillionPromptTokens: 150_000 }, hardCap: { tokens: 10 }, rateLimit: { requestsPerSecond: 2.5 }, limits: { maxModels: 3 } });
    expect(plan).toEqual({
      name: 'pro',
      currency: 'USD',
      prices: { perThousandPredictions: 0, perMillionPromptTokens: 150_000, perMillionCompletionTokens: 0, perTrainingWorkerHour: 0, perGigabyteMonthStored: 0 },
      included: { predictions: 0, promptTokens: 0, completionTokens: 0, trainingWorkerSeconds: 0, gigabyteMonthsStored: 0 },
      hardCap: { tokens: 10 },
      softCap: {},
      rateLimit: { requestsPerSecond: 2.5, burst: 3 },
      limits: { maxModels: 3 },
    });
  });

  it('refuses anything it does not know or cannot store exactly', () => {
    const cases: Array<[unknown, string]> = [
      [{ name: 'bad name!' }, 'name'],
      [{ name: 'x', currency: 'usd' }, 'currency'],
      [{ name: 'x', prices: { perThousandPredictions: 1.5 } }, 'prices.perThousandPredictions'],
      [{ name: 'x', prices: { perThousandPredictions: -1 } }, 'prices.perThousandPredictions'],
      [{ name: 'x', prices: { perThousandPredictions: '5' } }, 'prices.perThousandPredictions'],
      [{ name: 'x', prices: { perPrediction: 5 } }, 'prices.perPrediction'],
      [{ name: 'x', included: { tokens: 5 } }, 'included.tokens'],
      [{ name: 'x', hardCap: { spendMicros: 2 ** 60 } }, 'hardCap.spendMicros'],
      [{ name: 'x', hardCap: { predictions: 5 }, softCap: { predictions: 6 } }, 'softCap.predictions'],
      [{ name: 'x', rateLimit: { requestsPerSecond: 0 } }, 'rateLimit.requestsPerSecond'],
      [{ name: 'x', limits: { maxModels: 0 } }, 'limits.maxModels'],
      [{ name: 'x', discount: 5 }, 'discount'],
      [[], ''],
    ];
    for (const [document, field] of cases) expect({ document, result: fieldOf(() => parsePlan(document)) }).toEqual({ document, result: { code: 'INVALID_REQUEST', field } });
  });

  it('reads a plans file and refuses duplicates with CONFIG_INVALID naming the entry', () => {
    expect(parsePlansFile({ plans: [{ name: 'a' }, { name: 'b' }] }, 'f').map((plan) => plan.name)).toEqual(['a', 'b']);
    expect(() => parsePlansFile([{ name: 'a' }, { name: 'a' }], 'f')).toThrow(/defined twice/);
    expect(() => parsePlansFile({ plans: [{ name: 'a', prices: { perThousandPredictions: 0.1 } }] }, 'f')).toThrow(/plans\[0\].*prices\.perThousandPredictions/);
    expect(() => parsePlansFile({ plan: [] }, 'f')).toThrow(/expected/);
  });
});

describe('spend in exact integers', () => {
  it('charges only the overage beyond the included amounts, scaled by 9 000 000', () => {
    const plan = parsePlan({ name: 'p', prices: { perThousandPredictions: 3, perMillionPromptTokens: 7, perMillionCompletionTokens: 11, perTrainingWorkerHour: 13 }, included: { predictions: 1000 } });
    // 1 prediction over at 3/1000, 1 prompt token at 7/1e6, 2 completion tokens at 11/1e6, 1 worker-second at 13/3600.
    expect(scaledSpend(plan, { predictions: 1001, promptTokens: 1, completionTokens: 2, trainingWorkerSeconds: 1 })).toBe(3 * 9000 + 7 * 9 + 22 * 9 + 13 * 2500);
  });
});

describe('--plans', () => {
  it('loads the file\'s plans at start, read-only through the API', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-plans-'));
    const file = join(directory, 'plans.json');
    await writeFile(file, JSON.stringify({ plans: [{ name: 'free', hardCap: { predictions: 100 } }] }));
    const server = await startTestServer({ plans: file });
    try {
      const listed = (await call(server.app, server.adminKey, 'GET', '/api/v1/plans')).json().plans;
      expect(listed).toEqual([expect.objectContaining({ source: 'file', tenants: 0, plan: expect.objectContaining({ name: 'free', hardCap: { predictions: 100 } }) })]);
      const change = await call(server.app, server.adminKey, 'PUT', '/api/v1/plans/free', { hardCap: { predictions: 5 } });
      expect(change.statusCode).toBe(409);
      expect(change.json().error.message).toContain('plans file');
      await writeFile(file, '{"plans": [{"name": "x", "prices": {"perThousandPredictions": 0.5}}]}');
      await expect(startTestServer({ plans: file })).rejects.toThrow(/plans\[0\]: plan prices\.perThousandPredictions/);
    } finally {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});

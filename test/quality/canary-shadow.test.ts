import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseTarget, routeKeyPoint } from '../../src/quality/traffic-split.ts';
import { compareOutputs } from '../../src/quality/shadow-monitor.ts';
import { ElementType, floatInitializer, int64Initializer, model, node, valueInfo } from '../inference/fixtures/tiny-onnx.ts';
import { call, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

/** scores = x + bias over FP32 [N, 2]: the class is whichever of the two is larger (after the bias). */
function scoresModel(bias: [number, number]): Uint8Array {
  return model({
    nodes: [node('Add', ['x', 'bias'], ['scores'])],
    initializers: [floatInitializer('bias', [2], bias)],
    inputs: [valueInfo('x', ElementType.FLOAT, ['N', 2])],
    outputs: [valueInfo('scores', ElementType.FLOAT, ['N', 2])],
  });
}

/**
 * The same answers as scoresModel([0, 0]) after well over a second of work: 32 rounds of 512 × 512
 * matrix products seeded from the input (so nothing can be folded away at load), whose result is
 * multiplied by zero and added to x.
 */
function slowScoresModel(): Uint8Array {
  const nodes = [node('ReduceSum', ['x'], ['total']), node('Mul', ['total', 'zero'], ['nothing']), node('Add', ['nothing', 'one'], ['seed']), node('Tile', ['seed', 'repeats'], ['h0'])];
  let previous = 'h0';
  for (let round = 1; round <= 32; round++) {
    nodes.push(node('MatMul', [previous, 'h0'], [`m${round}`]), node('Tanh', [`m${round}`], [`h${round}`]));
    previous = `h${round}`;
  }
  nodes.push(node('ReduceSum', [previous], ['work']), node('Mul', ['work', 'zero'], ['zeroed']), node('Add', ['x', 'zeroed'], ['scores']));
  return model({
    nodes,
    initializers: [floatInitializer('zero', [1], [0]), floatInitializer('one', [1], [1]), int64Initializer('repeats', [2], [512, 512])],
    inputs: [valueInfo('x', ElementType.FLOAT, ['N', 2])],
    outputs: [valueInfo('scores', ElementType.FLOAT, ['N', 2])],
  });
}

describe('split assignment', () => {
  const split = [
    { version: '1', weight: 90 },
    { version: '2', weight: 10 },
  ];

  it('puts 2,000 route keys within ±3 points of a 90/10 split, and random points too', () => {
    let second = 0;
    for (let index = 0; index < 2000; index++) if (chooseTarget(split, routeKeyPoint('m\u0000live', `user-${index}`)).version === '2') second++;
    expect(Math.abs(second / 2000 - 0.1)).toBeLessThanOrEqual(0.03);
    // A seeded generator (xorshift32) stands in for Math.random.
    let state = 2463534242;
    const random = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 2 ** 32;
    };
    let randomSecond = 0;
    for (let index = 0; index < 2000; index++) if (chooseTarget(split, random()).version === '2') randomSecond++;
    expect(Math.abs(randomSecond / 2000 - 0.1)).toBeLessThanOrEqual(0.03);
  });

  it('maps a point onto cumulative weights in order', () => {
    expect(chooseTarget(split, 0).version).toBe('1');
    expect(chooseTarget(split, 0.8999).version).toBe('1');
    expect(chooseTarget(split, 0.9).version).toBe('2');
    expect(chooseTarget(split, 0.999999).version).toBe('2');
    expect(routeKeyPoint('a', 'key')).toBe(routeKeyPoint('a', 'key'));
    expect(routeKeyPoint('a', 'key')).not.toBe(routeKeyPoint('b', 'key'));
  });

  it('compares answers by argmax, or within tolerance for one value', () => {
    const live = { name: 's', datatype: 'FP32' as const, shape: [3, 2], data: Float32Array.from([1, 0, 0, 1, 0.4, 0.6]) };
    const shadow = { name: 's', datatype: 'FP32' as const, shape: [3, 2], data: Float32Array.from([0.9, 0.1, 0.7, 0.3, 0.1, 0.9]) };
    expect(compareOutputs(live, shadow)).toEqual({ rows: 3, agreeing: 2, kind: 'argmax' });
    const values = { name: 'y', datatype: 'FP32' as const, shape: [3, 1], data: Float32Array.from([10, 1, 0]) };
    const close = { name: 'y', datatype: 'FP32' as const, shape: [3, 1], data: Float32Array.from([10.005, 1.01, 0.00005]) };
    expect(compareOutputs(values, close)).toEqual({ rows: 3, agreeing: 2, kind: 'tolerance' });
    expect(compareOutputs(values, { ...close, shape: [1, 3] })).toBeUndefined();
  });
});

describe('canary and shadow aliases', () => {
  let server: TestServer;

  beforeAll(async () => {
    // 2,000 requests from one key in a few seconds: well above the default rate limit.
    server = await startTestServer({ rateLimitPerSecond: 100_000, rateLimitBurst: 100_000 });
    // Version 1 and 2 are the same model; version 3 favours class 1 by 0.5.
    for (const bias of [[0, 0], [0, 0], [0, 0.5]] as [number, number][]) {
      expect((await uploadOnnxModel(server, server.adminKey, 'scores', scoresModel(bias))).statusCode).toBe(201);
    }
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  const infer = (alias: string, rows: number[][], headers: Record<string, string> = {}) =>
    call(server.app, server.adminKey, 'POST', `/v2/models/scores/versions/${alias}/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 2], data: rows.flat() }] }, headers);

  it('splits 2,000 requests 90/10 within ±3 points, names the version on every protocol, and keeps a route key on its version', async () => {
    const set = await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/live', { split: { '1': 90, '2': 10 } });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json().alias).toMatchObject({ version: 1, split: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }] });
    const counts = new Map<string, number>();
    for (let start = 0; start < 2000; start += 100) {
      const responses = await Promise.all(Array.from({ length: 100 }, (_, index) => infer('live', [[1, 0]], { 'x-aiaas-route-key': `user-${start + index}` })));
      for (const response of responses) {
        expect(response.statusCode).toBe(200);
        const version = response.headers['x-aiaas-model-version'] as string;
        expect(response.json().model_version).toBe(version);
        counts.set(version, (counts.get(version) ?? 0) + 1);
      }
    }
    expect([...counts.keys()].sort()).toEqual(['1', '2']);
    expect(Math.abs(counts.get('2')! / 2000 - 0.1)).toBeLessThanOrEqual(0.03);

    const first = await infer('live', [[1, 0]], { 'x-aiaas-route-key': 'sticky-customer' });
    const version = first.headers['x-aiaas-model-version'];
    for (let repeat = 0; repeat < 25; repeat++) expect((await infer('live', [[1, 0]], { 'x-aiaas-route-key': 'sticky-customer' })).headers['x-aiaas-model-version']).toBe(version);

    // Without a key: random, but still one of the split's versions, and named.
    const unkeyed = await infer('live', [[1, 0]]);
    expect(['1', '2']).toContain(unkeyed.headers['x-aiaas-model-version']);
    const tfserving = await call(server.app, server.adminKey, 'POST', '/tfserving/v1/models/scores/labels/live:predict', { instances: [[1, 0]] }, { 'x-aiaas-route-key': 'sticky-customer' });
    expect(tfserving.statusCode, tfserving.body).toBe(200);
    expect(tfserving.headers['x-aiaas-model-version']).toBe(version);
    const plain = await infer('1', [[1, 0]]);
    expect(plain.headers['x-aiaas-model-version']).toBe('1');
  }, 120_000);

  /** Waits (by count, not time) until the shadow has compared `requests` requests. */
  async function comparisonsAfter(alias: string, shadowVersion: string, requests: number) {
    for (;;) {
      const status = await call(server.app, server.adminKey, 'GET', `/api/v1/models/scores/aliases/${alias}/shadow`);
      expect(status.statusCode, status.body).toBe(200);
      const comparison = status.json().comparisons.find((entry: { shadowVersion: string }) => entry.shadowVersion === shadowVersion);
      if (comparison !== undefined && comparison.requests + comparison.shadowErrors >= requests) return { status: status.json(), comparison };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('reports agreement 1.0 for an identical shadow, and the known disagreement of a different one', async () => {
    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/shadowed', { version: 1, shadow: 2 })).json().alias).toMatchObject({ version: 1, shadow: 2 });
    // Eight rows per request: two where x0 − x1 = 0.25 (version 3's bias flips them), six clear ones.
    const rows = [[0.75, 0.5], [1.25, 1], [1, 0], [0, 1], [2, 1], [1, 2], [3, 2], [-1, 0]];
    for (let request = 0; request < 10; request++) {
      const response = await infer('shadowed', rows);
      expect(response.statusCode).toBe(200);
      // The live answer: version 1's scores, never the shadow's.
      expect(response.headers['x-aiaas-model-version']).toBe('1');
      expect(response.json().outputs[0].data).toEqual(rows.flat());
    }
    const identical = await comparisonsAfter('shadowed', '2', 10);
    expect(identical.status).toMatchObject({ model: 'scores', alias: 'shadowed', shadow: 2 });
    expect(identical.comparison).toMatchObject({ liveVersion: '1', shadowVersion: '2', requests: 10, rows: 80, agreeingRows: 80, agreementRate: 1, comparison: 'argmax', shadowErrors: 0 });
    expect(identical.comparison.liveLatencyMs.mean).toBeGreaterThan(0);
    expect(identical.comparison.shadowLatencyMs.p50).toBeGreaterThan(0);

    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/shadowed', { shadow: 3 })).json().alias).toMatchObject({ version: 1, shadow: 3 });
    for (let request = 0; request < 10; request++) expect((await infer('shadowed', rows)).statusCode).toBe(200);
    const different = await comparisonsAfter('shadowed', '3', 10);
    expect(different.comparison).toMatchObject({ requests: 10, rows: 80, agreeingRows: 60, agreementRate: 0.75 });

    const metrics = await call(server.app, server.adminKey, 'GET', '/metrics');
    const tenant = server.context.bootstrap.tenantId;
    expect(metrics.body).toContain(`aiaas_shadow_agreement_ratio{tenant="${tenant}",model="scores",alias="shadowed",live_version="1",shadow_version="3"} 0.75`);
    expect(metrics.body).toContain(`aiaas_shadow_rows_total{tenant="${tenant}",model="scores",alias="shadowed",live_version="1",shadow_version="3",agreement="disagree"} 20`);
    expect(metrics.body).toContain(`aiaas_shadow_inference_duration_seconds_count{tenant="${tenant}",model="scores",alias="shadowed",live_version="1",shadow_version="3",role="shadow"} 10`);
  }, 120_000);

  it('answers before a slow shadow has finished, and compares once it has', async () => {
    expect((await uploadOnnxModel(server, server.adminKey, 'scores', slowScoresModel())).json().version.version).toBe(4);
    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/slow', { version: 1, shadow: 4 })).statusCode).toBe(200);
    const response = await infer('slow', [[1, 0], [0, 1]]);
    expect(response.statusCode).toBe(200);
    expect(response.json().outputs[0].data).toEqual([1, 0, 0, 1]);
    // The live answer is out while the shadow (loading, then over a second of work) has not finished.
    const during = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/scores/aliases/slow/shadow')).json();
    expect(during.comparisons.filter((entry: { requests: number; shadowErrors: number }) => entry.requests + entry.shadowErrors > 0)).toEqual([]);
    const after = await comparisonsAfter('slow', '4', 1);
    expect(after.comparison).toMatchObject({ requests: 1, rows: 2, agreementRate: 1, shadowErrors: 0 });
    expect(after.comparison.shadowLatencyMs.mean).toBeGreaterThan(after.comparison.liveLatencyMs.mean);
    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/scores/aliases/slow')).statusCode).toBe(204);
  }, 120_000);

  it('keeps a version that a split or a shadow serves from being deleted', async () => {
    const refused = await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/scores/versions/3');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('ALIAS_IN_USE');
    expect((await call(server.app, server.adminKey, 'DELETE', '/api/v1/models/scores/versions/2')).json().error.details.aliases).toEqual(['live']);
    const bad = await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/live', { split: { '1': 90, '9': 10 } });
    expect(bad.statusCode).toBe(404);
    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/live', { split: { '1': 0 } })).statusCode).toBe(400);
    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/live', { version: 1, split: { '1': 1 } })).statusCode).toBe(400);
    expect((await call(server.app, server.adminKey, 'PUT', '/api/v1/models/scores/aliases/live', { version: 1, shadow: 1 })).statusCode).toBe(400);
  });
});

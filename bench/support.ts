/**
 * What the serving benchmarks share: a free port, a child process awaited until it prints a line, a
 * server awaited until ready, the MNIST MLP and its V2 request, CPU time from /proc, a median.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadMnistPackage } from '../src/data/mnist-package.ts';
import { Model } from '../src/engine/model.ts';
import { staleBuildReason } from '../bin/build-stamp.js';

export const repositoryRoot = new URL('..', import.meta.url).pathname;

/**
 * Refuses to measure a stale build: `bin/aiaas.js` runs dist/ only when it is newer than every source
 * file, and otherwise compiles src/ with tsx on the fly, which serves markedly slower. A benchmark of
 * an edited checkout without `npm run build` would measure that instead.
 */
export function assertBuildCurrent(root: string = repositoryRoot): void {
  const stale = staleBuildReason(root);
  if (stale !== undefined) throw new Error(`${stale}; run npm run build first`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export function startChild(command: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, { cwd: repositoryRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

export async function waitReady(baseUrl: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${baseUrl}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (attempt > 100) throw new Error('server did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Environment for a benchmarked `aiaas serve`: a fixed bootstrap key and no per-key rate limit. */
export function benchServerEnvironment(masterKey: string, apiKey: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AIAAS_MASTER_KEY: masterKey,
    AIAAS_BOOTSTRAP_KEY: apiKey,
    AIAAS_LOG_LEVEL: 'warn',
    // The benchmarks measure serving, not the per-key rate limit.
    AIAAS_RATE_LIMIT_PER_SECOND: '1000000',
    AIAAS_RATE_LIMIT_BURST: '1000000',
    ...extra,
  };
}

/**
 * The MLP of examples/mnist-mlp trained for one epoch on 8,000 of the mnist package's digits, as
 * .onnx bytes, and a single-sample V2 request body for it (a real digit).
 */
export async function mnistServingFixture(): Promise<{ onnx: Uint8Array; body: string }> {
  const spec = JSON.parse(await readFile(join(repositoryRoot, 'examples/mnist-mlp/spec.json'), 'utf8')) as unknown;
  const { train, test } = loadMnistPackage({ train: 8000, test: 10 });
  const model = Model.fromSpec(spec, { seed: 1 });
  try {
    await model.fit(train, { epochs: 1, batchSize: 128 });
    const onnx = model.exportOnnx();
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 28, 28], data: Array.from(test.features.subarray(0, 784)) }] });
    return { onnx, body };
  } finally {
    await model.dispose();
  }
}

/** CPU time (user + system, clock ticks of 10 ms) of a process's main thread, or of all its threads, from /proc; undefined off Linux. */
export function cpuTicks(pid: number | undefined, scope: 'main-thread' | 'process' = 'main-thread'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(scope === 'process' ? `/proc/${pid}/stat` : `/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

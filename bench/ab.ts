/**
 * npm run bench:ab — two `aiaas serve` processes side by side, each from its own build (or the same
 * build with other settings), under the same V2 load in alternating rounds: the way to tell a change
 * worth 5–15% from the noise of a shared machine, where back-to-back runs of one build differ by
 * more. A build is a directory holding `bin/`, `dist/` (built) and `src/`, with `node_modules`
 * reachable from it; `AB_BUILDS=dirA,dirB` (default: this checkout twice). `AB_ENVS` gives each
 * server extra environment, `|`-separated per build, space-separated `NAME=value` within one
 * (`AB_ENVS='|AIAAS_INFERENCE_PARSE_THREADS=1'`). `AB_ROUNDS` (6) rounds of `AB_SECONDS` (3) at
 * `AB_CONNECTIONS` (64); the first round counts as warm-up. Prints each round and the medians.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { AiaasClient } from '../src/sdk/index.ts';
import { generateMasterKey } from '../src/security/key-ring.ts';
import { assertBuildCurrent, benchServerEnvironment, cpuTicks, freePort, median, mnistServingFixture, repositoryRoot, waitReady } from './support.ts';

const builds = (process.env.AB_BUILDS ?? `${repositoryRoot},${repositoryRoot}`).split(',');
if (builds.length !== 2) throw new Error('AB_BUILDS names two build directories');
for (const build of builds) assertBuildCurrent(build);
const extraEnvironments = (process.env.AB_ENVS ?? '|').split('|').map((text) =>
  Object.fromEntries(text.split(' ').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])),
);
const rounds = Number(process.env.AB_ROUNDS ?? 6);
const seconds = Number(process.env.AB_SECONDS ?? 3);
const connections = Number(process.env.AB_CONNECTIONS ?? 64);
const apiKey = `aiaas_${'B'.repeat(43)}`;

const mainThreadTicks = (pid: number): number => cpuTicks(pid) ?? Number.NaN;

const { onnx, body } = await mnistServingFixture();
const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };

const servers: { build: string; child: ChildProcess; url: string; dataDir: string }[] = [];
try {
  for (const [index, build] of builds.entries()) {
    const port = await freePort();
    const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-ab-'));
    const child = spawn(process.execPath, [join(build, 'bin/aiaas.js'), 'serve', '--port', String(port), '--data-dir', dataDir], {
      cwd: build,
      env: { ...process.env, ...benchServerEnvironment(generateMasterKey(), apiKey), ...extraEnvironments[index] },
      stdio: 'ignore',
    });
    servers.push({ build, child, url: '', dataDir });
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitReady(baseUrl);
    const client = new AiaasClient({ baseUrl, apiKey });
    await client.models.create({ name: 'mnist-mlp' });
    const version = await client.versions.upload('mnist-mlp', { source: onnx });
    servers[index]!.url = `${baseUrl}/v2/models/mnist-mlp/versions/${version.version}/infer`;
    const answer = await fetch(servers[index]!.url, { method: 'POST', body, headers });
    if (!answer.ok) throw new Error(`${build}: warm-up inference failed: ${answer.status} ${await answer.text()}`);
  }
  const throughput: number[][] = [[], []];
  const cpu: number[][] = [[], []];
  const reports = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always runs right after the other's load.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    const report: Record<string, unknown> = { round };
    for (const index of order) {
      const server = servers[index]!;
      const before = mainThreadTicks(server.child.pid!);
      const result = await autocannon({ url: server.url, method: 'POST', body, headers, connections, duration: seconds });
      const microseconds = ((mainThreadTicks(server.child.pid!) - before) * 10_000) / Math.max(1, result.requests.total);
      if (result.errors > 0 || result.non2xx > 0) throw new Error(`${server.build}: ${result.errors} errors, ${result.non2xx} non-2xx answers`);
      if (round > 0) {
        throughput[index]!.push(result.requests.average);
        cpu[index]!.push(microseconds);
      }
      report[index === 0 ? 'a' : 'b'] = { requestsPerSecond: Math.round(result.requests.average), mainThreadMicrosecondsPerRequest: Number(microseconds.toFixed(1)) };
    }
    reports.push(report);
  }
  const ratios = throughput[1]!.map((value, index) => value / throughput[0]![index]!);
  console.log(
    JSON.stringify(
      {
        benchmark: 'ab-serve-v2-mnist-mlp',
        builds,
        environments: extraEnvironments,
        connections,
        secondsPerRound: seconds,
        rounds: reports,
        median: {
          a: { requestsPerSecond: Math.round(median(throughput[0]!)), mainThreadMicrosecondsPerRequest: Number(median(cpu[0]!).toFixed(1)) },
          b: { requestsPerSecond: Math.round(median(throughput[1]!)), mainThreadMicrosecondsPerRequest: Number(median(cpu[1]!).toFixed(1)) },
          throughputRatioBToA: Number(median(ratios).toFixed(3)),
        },
      },
      null,
      2,
    ),
  );
} finally {
  await Promise.all(
    servers.map(async (server) => {
      const exited = server.child.exitCode !== null || server.child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
      await rm(server.dataDir, { recursive: true, force: true });
    }),
  );
}

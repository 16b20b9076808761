import { availableParallelism } from 'node:os';
import type { BenchLevel, BenchReportBody, ModelVersion, V2ModelMetadata } from '../../sdk/types.ts';
import { runBench, type BenchRequest } from '../bench-runner.ts';
import { CliUsageError, integerOption, stringOption, type CommandDefinition } from '../command.ts';
import { json, table } from '../format.ts';
import { parseModelReference } from './predict.ts';
import { mulberry32 } from '../../engine/random.ts';

/** `10s`, `300ms`, `1m` or plain seconds, in milliseconds. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/.exec(text.trim());
  if (match === null) throw new CliUsageError(`--duration must look like 10s, 300ms or 1m, got "${text}"`, 'bench');
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const milliseconds = unit === 'ms' ? value : unit === 'm' ? value * 60_000 : value * 1000;
  if (!(milliseconds >= 1)) throw new CliUsageError(`--duration must be at least 1ms, got "${text}"`, 'bench');
  return milliseconds;
}

export function parseConcurrency(text: string): number[] {
  const levels = text.split(',').map((part) => Number(part.trim()));
  if (levels.length === 0 || levels.some((level) => !Number.isSafeInteger(level) || level < 1 || level > 4096)) {
    throw new CliUsageError(`--concurrency must be a comma-separated list of integers from 1 to 4096, got "${text}"`, 'bench');
  }
  return levels;
}

/** Random values of a V2 datatype: floats in [0, 1), small integers, booleans. */
function randomValues(datatype: string, count: number, random: () => number): unknown[] {
  if (datatype === 'BYTES') return Array.from({ length: count }, () => 'bench');
  if (datatype === 'BOOL') return Array.from({ length: count }, () => random() < 0.5);
  if (datatype.startsWith('FP')) return Array.from({ length: count }, () => random());
  return Array.from({ length: count }, () => Math.floor(random() * 10));
}

/** Concrete shape of one request: dynamic dimensions become the batch size (first) or 1. */
function concreteShape(shape: readonly number[], batchSize: number): number[] {
  return shape.map((dimension, index) => (dimension >= 0 ? dimension : index === 0 ? batchSize : 1));
}

/** Request bodies from the signature (random values) or from dataset rows, cycled. */
function tensorBodies(metadata: V2ModelMetadata, batchSize: number, rows: readonly (readonly number[])[] | undefined): string[] {
  if (rows !== undefined) {
    const input = metadata.inputs[0]!;
    const shape = concreteShape(input.shape, batchSize);
    const bodies: string[] = [];
    for (let start = 0; start + batchSize <= rows.length; start += batchSize) {
      const data = rows.slice(start, start + batchSize).flat();
      bodies.push(JSON.stringify({ inputs: [{ name: input.name, datatype: input.datatype, shape, data }] }));
    }
    return bodies;
  }
  const random = mulberry32(7);
  return Array.from({ length: 16 }, () =>
    JSON.stringify({
      inputs: metadata.inputs.map((input) => {
        const shape = concreteShape(input.shape, batchSize);
        return { name: input.name, datatype: input.datatype, shape, data: randomValues(input.datatype, shape.reduce((total, dimension) => total * dimension, 1), random) };
      }),
    }),
  );
}

function milliseconds(value: number | undefined): string {
  return value === undefined ? 'n/a' : value < 10 ? value.toFixed(2) : value.toFixed(1);
}

export function benchTable(levels: readonly BenchLevel[], streaming: boolean): string {
  const headers = ['concurrency', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'errors', 'queue p50 ms', 'compute p50 ms'];
  if (streaming) headers.push('TTFT p50 ms', 'tokens/s/stream', 'tokens/s total');
  const rows = levels.map((level) => {
    const row = [
      String(level.concurrency),
      level.throughput.toFixed(1),
      milliseconds(level.latencyMs?.p50),
      milliseconds(level.latencyMs?.p90),
      milliseconds(level.latencyMs?.p99),
      milliseconds(level.latencyMs?.p999),
      level.errors === 0 ? '0' : `${level.errors} (${Object.entries(level.errorCodes).map(([code, count]) => `${code}: ${count}`).join(', ')})`,
      milliseconds(level.serverQueueMs?.p50),
      milliseconds(level.serverComputeMs?.p50),
    ];
    if (streaming) row.push(milliseconds(level.timeToFirstTokenMs?.p50), level.tokensPerSecond?.p50.toFixed(1) ?? 'n/a', level.tokensPerSecond?.total.toFixed(1) ?? 'n/a');
    return row;
  });
  return table(headers, rows);
}

async function resolveVersion(versions: { get(model: string, version: string | number): Promise<ModelVersion>; list(model: string): Promise<ModelVersion[]> }, name: string, target: string | number | undefined): Promise<ModelVersion> {
  if (target !== undefined) return versions.get(name, target);
  const all = await versions.list(name);
  const latest = all.reduce<ModelVersion | undefined>((best, version) => (best === undefined || version.version > best.version ? version : best), undefined);
  if (latest === undefined) throw new CliUsageError(`model ${name} has no versions`, 'bench');
  return latest;
}

export const benchCommand: CommandDefinition = {
  path: ['bench'],
  summary: 'load-test a served model (throughput, latency percentiles, errors) and store the report with its version',
  usage: 'MODEL[@VERSION|@ALIAS] [--concurrency 1,8,64] [--duration 10s] [--dataset ID] [--batch-size N] [--max-tokens N] [--no-save]',
  description:
    'For each concurrency level, that many clients send requests back to back for --duration, against a\n' +
    'running server (like Triton\'s perf_analyzer). ONNX models get V2 requests with synthetic inputs from\n' +
    'the signature, or rows of a stored dataset (--dataset); language models (GGUF) get streamed chat\n' +
    'completions, and the report adds time to first token and tokens/s. Server-side queue and compute\n' +
    'times come from the Server-Timing response header (n/a when the server sends none). The report is\n' +
    'stored with the version (GET /api/v1/models/NAME/versions/V/bench-reports) unless --no-save.',
  positionals: ['MODEL'],
  options: {
    concurrency: { type: 'string', valueName: 'LIST', description: 'comma-separated client counts (default 1,8,64)' },
    duration: { type: 'string', valueName: 'TIME', description: 'per level: 10s, 300ms, 1m (default 10s)' },
    dataset: { type: 'string', valueName: 'ID', description: 'send rows of this dataset instead of synthetic inputs' },
    'batch-size': { type: 'string', valueName: 'N', description: 'rows per request (default 1)' },
    'max-tokens': { type: 'string', valueName: 'N', description: 'language models: tokens per completion (default 64)' },
    prompt: { type: 'string', valueName: 'TEXT', description: 'language models: the user message' },
    'no-save': { type: 'boolean', description: 'do not store the report on the server' },
  },
  server: true,
  json: true,
  examples: ['aiaas bench mnist@production --concurrency 1,8,64 --duration 10s', 'aiaas bench mnist@3 --dataset ds_123 --duration 5s', 'aiaas bench tiny-llama --concurrency 1,4 --max-tokens 128'],
  async run(context) {
    const reference = parseModelReference(context.positionals[0] as string);
    const concurrency = parseConcurrency(stringOption(context.values, 'concurrency') ?? '1,8,64');
    const durationMs = parseDuration(stringOption(context.values, 'duration') ?? '10s');
    const batchSize = integerOption(context.values, 'batch-size', 'bench', 1) ?? 1;
    const maxTokens = integerOption(context.values, 'max-tokens', 'bench', 1) ?? 64;
    const datasetId = stringOption(context.values, 'dataset');
    const client = context.client();
    const version = await resolveVersion(client.versions, reference.name, reference.version ?? reference.alias);
    const server = client.baseUrl;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(context.apiKey === undefined ? {} : { authorization: `Bearer ${context.apiKey}` }) };
    const streaming = version.format === 'gguf';
    let request: (index: number) => BenchRequest;
    if (streaming) {
      if (datasetId !== undefined) throw new CliUsageError('--dataset applies to tensor models, not language models', 'bench');
      const body = JSON.stringify({
        model: `${reference.name}@${version.version}`,
        messages: [{ role: 'user', content: stringOption(context.values, 'prompt') ?? 'Write a short story about a lighthouse keeper.' }],
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      request = () => ({ url: `${server}/v1/chat/completions`, headers, body });
    } else {
      const metadata = await client.v2ModelMetadata(reference.name, { version: version.version });
      const rows = datasetId === undefined ? undefined : (await client.quality.datasetRows(datasetId, { limit: Math.min(1000, Math.max(batchSize, 256)) })).rows;
      const bodies = tensorBodies(metadata, batchSize, rows);
      if (bodies.length === 0) throw new CliUsageError(`dataset ${datasetId ?? ''} has fewer rows than --batch-size ${batchSize}`, 'bench');
      const url = `${server}/v2/models/${encodeURIComponent(reference.name)}/versions/${version.version}/infer`;
      request = (index) => ({ url, headers, body: bodies[index % bodies.length]! });
    }
    if (!context.json) context.io.stdout.write(`bench ${reference.name} version ${version.version} (${streaming ? 'streamed chat completions' : datasetId === undefined ? 'synthetic V2 inputs' : `rows of ${datasetId}`}), ${durationMs} ms per level\n`);
    const levels = await runBench({
      concurrency,
      durationMs,
      request,
      streaming,
      signal: context.signal,
      onLevel: (level) => {
        if (!context.json) context.io.stderr.write(`  concurrency ${level.concurrency}: ${level.requests} requests, ${level.throughput.toFixed(1)} req/s\n`);
      },
    });
    const report: BenchReportBody = {
      protocol: streaming ? 'openai' : 'v2',
      input: datasetId === undefined ? 'synthetic' : 'dataset',
      ...(datasetId === undefined ? {} : { datasetId }),
      ...(streaming ? {} : { batchSize }),
      client: { node: process.version, cpus: availableParallelism() },
      levels,
    };
    const saved = context.values['no-save'] === true ? undefined : await client.quality.addBenchReport(reference.name, version.version, report);
    if (context.json) {
      context.io.stdout.write(json(saved ?? { model: reference.name, version: version.version, report }));
      return 0;
    }
    context.io.stdout.write(benchTable(levels, streaming));
    if (saved !== undefined) context.io.stdout.write(`stored as ${saved.id} with ${reference.name} version ${version.version}\n`);
    return 0;
  },
};

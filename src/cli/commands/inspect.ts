/**
 * Read-only views and removals that complete the everyday command set: `models show`,
 * `models versions rm`, `models alias rm`, `models download`, `jobs show`, `whoami`, `status`.
 */
import { rename, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { AiaasApiError } from '../../sdk/errors.ts';
import type { CostCard, Job, JsonValue, ModelVersion } from '../../sdk/types.ts';
import { CliFailure, CliUsageError, stringOption, type CommandDefinition } from '../command.ts';
import { costCardLines } from '../cost-card.ts';
import { bytes, json, metrics, sparkline, table, timestamp } from '../format.ts';

/** `NAME@VERSION` (a number, an alias or `latest`) split in two; a usage error otherwise. */
export function modelReference(text: string, command: string): { name: string; version: string } {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new CliUsageError(`expected NAME@VERSION, got "${text}"`, command);
  return { name: text.slice(0, at), version: text.slice(at + 1) };
}

function record(value: JsonValue | undefined): Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

function numberMap(value: JsonValue | undefined): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [key, item] of Object.entries(record(value))) if (typeof item === 'number') result[key] = item;
  return result;
}

/** Test metrics when the version has them (a trained version's summary), else its training metrics. */
function versionMetrics(version: ModelVersion): string {
  const summary = record(version.metrics as JsonValue);
  const test = numberMap(summary.testMetrics);
  const parts: string[] = [];
  if (Object.keys(test).length > 0) {
    if (typeof summary.testLoss === 'number') parts.push(`test_loss ${summary.testLoss.toFixed(4)}`);
    parts.push(metrics(test, 'test_'));
  } else {
    if (typeof summary.loss === 'number') parts.push(`loss ${summary.loss.toFixed(4)}`);
    parts.push(metrics(numberMap(summary.metrics)));
  }
  return parts.filter((part) => part !== '').join(' ') || '-';
}

function signatureLines(version: ModelVersion): string[] {
  const signature = version.signature;
  if ('architecture' in signature) {
    return [`  gguf: ${signature.architecture}, ${signature.parameterCount} parameters, ${signature.quantization}`];
  }
  const tensor = (role: string, item: { name: string; datatype: string; shape: readonly number[] }) => [role, item.name, item.datatype, `[${item.shape.join(', ')}]`];
  return table(['', 'NAME', 'TYPE', 'SHAPE'], [...signature.inputs.map((item) => tensor('input', item)), ...signature.outputs.map((item) => tensor('output', item))])
    .trimEnd()
    .split('\n')
    .map((line) => `  ${line}`);
}

interface FileSize {
  name: string;
  bytes: number;
}

export const inspectCommands: readonly CommandDefinition[] = [
  {
    path: ['models', 'show'],
    summary: "a model's versions, aliases, sizes, metrics and signature",
    usage: 'NAME',
    description:
      'Sizes come from each version\'s signed provenance record (the plaintext size of every stored file); a version\n' +
      'without one shows "-". The signature shown is the latest version\'s.',
    positionals: ['NAME'],
    server: true,
    json: true,
    examples: ['aiaas models show mnist', 'aiaas models show mnist --json'],
    async run(context) {
      const name = context.positionals[0] as string;
      const client = context.client();
      const model = await client.models.get(name, { signal: context.signal });
      const versions = await client.versions.list(name, { signal: context.signal });
      const sizes = new Map<number, FileSize[]>();
      for (const version of versions) {
        if (!version.provenance) continue;
        try {
          const provenance = await client.versions.provenance(name, version.version, { signal: context.signal });
          const files = (provenance.record as { files?: FileSize[] }).files ?? [];
          sizes.set(version.version, files.map((file) => ({ name: file.name, bytes: file.bytes })));
        } catch (error) {
          // A key may read metadata but not provenance; sizes are then unknown, not an error.
          if (!AiaasApiError.isInstance(error) || error.status >= 500) throw error;
        }
      }
      const latestVersion = versions.reduce<ModelVersion | undefined>((best, version) => (best === undefined || version.version > best.version ? version : best), undefined);
      let cost: CostCard | undefined;
      if (latestVersion !== undefined) {
        try {
          cost = await client.versions.cost(name, latestVersion.version, { signal: context.signal });
        } catch (error) {
          // A cost card the key may not read (or a format without one) leaves the rest of the page.
          if (!AiaasApiError.isInstance(error) || error.status >= 500) throw error;
        }
      }
      if (context.json) {
        context.io.stdout.write(json({ model, versions: versions.map((version) => ({ ...version, fileSizes: sizes.get(version.version) ?? null })), cost: cost ?? null }));
        return 0;
      }
      const out = context.io.stdout;
      out.write(`model ${model.name}${model.description ? ` — ${model.description}` : ''}\n`);
      out.write(`aliases: ${(model.aliases ?? []).map((alias) => `${alias.name} → ${alias.version}`).join(', ') || 'none'}\n`);
      if (versions.length === 0) {
        out.write('no versions\n');
        return 0;
      }
      out.write('\n');
      out.write(
        table(
          ['VERSION', 'CREATED', 'SOURCE', 'FORMAT', 'SIZE', 'ALIASES', 'METRICS'],
          versions.map((version) => {
            const files = sizes.get(version.version);
            return [
              String(version.version),
              timestamp(version.createdAt),
              version.jobId === null ? version.source : `job ${version.jobId}`,
              version.format,
              files === undefined ? '-' : bytes(files.reduce((total, file) => total + file.bytes, 0)),
              version.aliases.join(',') || '-',
              versionMetrics(version),
            ];
          }),
        ),
      );
      const latest = versions.reduce((best, version) => (version.version > best.version ? version : best));
      out.write(`\nsignature (version ${latest.version}):\n${signatureLines(latest).join('\n')}\n`);
      const files = sizes.get(latest.version);
      out.write(`files (version ${latest.version}): ${files === undefined ? latest.files.join(', ') : files.map((file) => `${file.name} ${bytes(file.bytes)}`).join(', ')}\n`);
      if (!latest.exportable) out.write('export: not exportable (files cannot be downloaded)\n');
      if (cost !== undefined) out.write(`\ncost card (version ${latest.version}; aiaas models cost ${name}@${latest.version} --calibrate measures latency):\n${costCardLines(cost).map((line) => `  ${line}`).join('\n')}\n`);
      return 0;
    },
  },
  {
    path: ['models', 'versions', 'rm'],
    summary: 'delete one version of a model (refused while an alias points at it)',
    usage: 'NAME@VERSION',
    positionals: ['NAME@VERSION'],
    server: true,
    examples: ['aiaas models versions rm mnist@2'],
    async run(context) {
      const { name, version } = modelReference(context.positionals[0] as string, 'models versions rm');
      const number = Number(version);
      if (!Number.isSafeInteger(number) || number < 1) throw new CliUsageError(`VERSION must be a version number ≥ 1 (not an alias), got "${version}"`, 'models versions rm');
      await context.client().versions.delete(name, number, { signal: context.signal });
      context.io.stderr.write(`deleted ${name} version ${number}\n`);
      return 0;
    },
  },
  {
    path: ['models', 'alias', 'rm'],
    summary: 'delete an alias (the version stays)',
    usage: 'NAME ALIAS',
    positionals: ['NAME', 'ALIAS'],
    server: true,
    examples: ['aiaas models alias rm mnist staging'],
    async run(context) {
      const [name, alias] = context.positionals as [string, string];
      await context.client().aliases.delete(name, alias, { signal: context.signal });
      context.io.stderr.write(`deleted alias ${name}@${alias}\n`);
      return 0;
    },
  },
  {
    path: ['models', 'download'],
    summary: "save a version's model file (model.onnx, or model.gguf) or another of its files",
    usage: 'NAME@VERSION FILE [--file NAME]',
    description:
      "Writes the version's main file (model.onnx; model.gguf for a GGUF version) to FILE, or with --file another of\n" +
      'its files (spec.json, model.safetensors, metrics.json). VERSION may be a number, an alias or "latest". A model\n' +
      'marked not exportable is refused by the server (MODEL_NOT_EXPORTABLE). FILE is written whole or not at all.',
    positionals: ['NAME@VERSION', 'FILE'],
    options: { file: { type: 'string', valueName: 'NAME', description: "which of the version's files (default: the main model file)" } },
    server: true,
    examples: ['aiaas models download mnist@production mnist.onnx', 'aiaas models download mnist@3 weights.safetensors --file model.safetensors'],
    async run(context) {
      const [reference, target] = context.positionals as [string, string];
      const { name, version } = modelReference(reference, 'models download');
      const client = context.client();
      const record = await client.versions.get(name, version, { signal: context.signal });
      const file = stringOption(context.values, 'file') ?? (record.format === 'gguf' ? 'model.gguf' : 'model.onnx');
      if (!(record.files as readonly string[]).includes(file)) {
        throw new CliUsageError(`${name} version ${record.version} has no file "${file}"; it has ${record.files.join(', ')}`, 'models download');
      }
      const stream = await client.versions.downloadFileStream(name, record.version, file as 'model.onnx', { signal: context.signal });
      const path = resolve(context.io.cwd, target);
      const partial = `${path}.partial`;
      try {
        await pipeline(Readable.fromWeb(stream as NodeReadableStream<Uint8Array>), createWriteStream(partial), { signal: context.signal ?? new AbortController().signal });
        await rename(partial, path);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
      context.io.stderr.write(`saved ${name} version ${record.version} ${file} to ${path}\n`);
      return 0;
    },
  },
];

/** Epoch history as a table, then loss and accuracy as sparklines. */
function historyText(job: Job): string {
  if (job.history.length === 0) return 'history: no finished epoch yet\n';
  const metricNames = [...new Set(job.history.flatMap((entry) => Object.keys(entry.metrics)))];
  const validation = job.history.some((entry) => entry.validationLoss !== undefined);
  const validationNames = [...new Set(job.history.flatMap((entry) => Object.keys(entry.validationMetrics ?? {})))];
  const headers = ['EPOCH', 'STEP', 'LOSS', ...metricNames.map((name) => name.toUpperCase()), ...(validation ? ['VAL_LOSS'] : []), ...validationNames.map((name) => `VAL_${name.toUpperCase()}`), 'SAMPLES/S', 'SECONDS'];
  const rows = job.history.map((entry) => [
    String(entry.epoch),
    String(entry.step),
    entry.loss.toFixed(4),
    ...metricNames.map((name) => entry.metrics[name]?.toFixed(4) ?? '-'),
    ...(validation ? [entry.validationLoss?.toFixed(4) ?? '-'] : []),
    ...validationNames.map((name) => entry.validationMetrics?.[name]?.toFixed(4) ?? '-'),
    entry.samplesPerSecond === undefined ? '-' : String(Math.round(entry.samplesPerSecond)),
    entry.seconds === undefined ? '-' : entry.seconds.toFixed(1),
  ]);
  const charts: [string, number[]][] = [['loss', job.history.map((entry) => entry.loss)]];
  if (validation) charts.push(['val_loss', job.history.map((entry) => entry.validationLoss ?? Number.NaN)]);
  for (const name of metricNames) charts.push([name, job.history.map((entry) => entry.metrics[name] ?? Number.NaN)]);
  for (const name of validationNames) charts.push([`val_${name}`, job.history.map((entry) => entry.validationMetrics?.[name] ?? Number.NaN)]);
  const width = Math.max(...charts.map(([name]) => name.length));
  const chartLines = charts.map(([name, values]) => {
    const finite = values.filter((value) => Number.isFinite(value));
    return `  ${name.padEnd(width)}  ${sparkline(values)}  ${finite[0]?.toFixed(4) ?? '-'} → ${finite.at(-1)?.toFixed(4) ?? '-'}`;
  });
  return `\n${table(headers, rows)}\n${chartLines.join('\n')}\n`;
}

export const jobShowCommand: CommandDefinition = {
  path: ['jobs', 'show'],
  summary: "a job's details, its epoch history as a table, and loss and metrics as sparklines",
  usage: 'ID',
  positionals: ['ID'],
  server: true,
  json: true,
  examples: ['aiaas jobs show job_01J…'],
  async run(context) {
    const job = await context.client().jobs.get(context.positionals[0] as string, { signal: context.signal });
    if (context.json) {
      context.io.stdout.write(json(job));
      return 0;
    }
    const settings = job.settings as Record<string, unknown>;
    const lines = [
      `job ${job.id} (${job.kind}) for model ${job.model}: ${job.status}${job.cancelRequested && job.status === 'running' ? ' (cancellation requested)' : ''}`,
      `epoch ${job.epoch}/${job.totalEpochs}, step ${job.step}${job.loss === null ? '' : `, loss ${job.loss.toFixed(4)}`}`,
      `created ${timestamp(job.createdAt)}, started ${timestamp(job.startedAt)}, finished ${timestamp(job.finishedAt)}`,
    ];
    if (job.kind === 'train') {
      lines.push(`datasets: train ${job.datasetId}${job.testDatasetId === null ? '' : `, test ${job.testDatasetId}`}${typeof settings.validationDatasetId === 'string' ? `, validation ${settings.validationDatasetId}` : ''}`);
      const shown = Object.entries(settings).filter(([key]) => key !== 'validationDatasetId');
      lines.push(`settings: ${shown.map(([key, value]) => `${key} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`).join(', ')}`);
    } else lines.push(`source: ${String(settings.url ?? '-')}`);
    if (job.resultVersion !== null) {
      const summary = job.resultVersion.metrics;
      const test = summary?.testLoss === undefined ? '' : `; test loss ${summary.testLoss.toFixed(4)} ${metrics(summary.testMetrics, 'test_')}`.trimEnd();
      lines.push(`result: version ${job.resultVersion.version}${test}${summary?.stopReason !== undefined && summary.stopReason !== 'completed' ? ` (stopped: ${summary.stopReason})` : ''}`);
    }
    if (job.error !== null) lines.push(`error: ${job.error.code}: ${job.error.message}`);
    context.io.stdout.write(`${lines.join('\n')}\n${job.kind === 'train' ? historyText(job) : ''}`);
    return 0;
  },
};

export const whoamiCommand: CommandDefinition = {
  path: ['whoami'],
  summary: 'the tenant, key and permissions the API key stands for',
  usage: '',
  server: true,
  json: true,
  async run(context) {
    const me = await context.client().me({ signal: context.signal });
    if (context.json) {
      context.io.stdout.write(json(me));
      return 0;
    }
    const models = me.key.allowedModels === null ? 'all models' : `models ${me.key.allowedModels.join(', ')}`;
    context.io.stdout.write(
      [
        `tenant ${me.tenant.name} (${me.tenant.id})${me.tenant.operator ? ', the operator tenant' : ''}`,
        `key ${me.key.name} (${me.key.id}${me.key.prefix === null ? '' : `, ${me.key.prefix}…`}), role ${me.key.role}, ${models}${me.key.expiresAt === null ? '' : `, expires ${timestamp(me.key.expiresAt)}`}`,
        `permissions: ${me.permissions.join(', ')}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

export const statusCommand: CommandDefinition = {
  path: ['status'],
  summary: 'server health, version, loaded models and the job queue',
  usage: '',
  description:
    'Reads /healthz, /readyz and /v2 (no key needed), then with a key /api/v1/me, /v2/repository/index (models\n' +
    'loaded in memory are READY) and the queued and running jobs. Exit 1 when the server is unreachable or not ready.',
  server: true,
  json: true,
  async run(context) {
    const client = context.client();
    const signal = context.signal;
    await client.health({ signal });
    const ready = await client.ready({ signal });
    const server = await client.serverMetadata({ signal });
    type Identity = Awaited<ReturnType<typeof client.me>>;
    let identity: Identity | undefined;
    let loaded: { name: string; version: string }[] | undefined;
    let queue: { queued: number; running: number } | undefined;
    let keyProblem: string | undefined;
    if (context.apiKey === undefined) keyProblem = 'no API key (pass --api-key or set AIAAS_API_KEY for models and jobs)';
    else {
      try {
        identity = await client.me({ signal });
        loaded = (await client.repositoryIndex({ ready: true, signal })).map((entry) => ({ name: entry.name, version: entry.version }));
        const [queued, running] = await Promise.all([client.jobs.list({ status: 'queued', signal }), client.jobs.list({ status: 'running', signal })]);
        queue = { queued: queued.length, running: running.length };
      } catch (error) {
        if (!AiaasApiError.isInstance(error) || (error.status !== 401 && error.status !== 403)) throw error;
        keyProblem = `${error.code}: ${error.message}`;
      }
    }
    const report = { server: client.baseUrl, name: server.name, version: server.version, ready: ready.ready, identity: identity ?? null, loadedModels: loaded ?? null, jobs: queue ?? null };
    if (context.json) context.io.stdout.write(json(report));
    else {
      const lines = [`server ${client.baseUrl}: ${server.name} ${server.version}, ${ready.ready ? 'ready' : `NOT ready (${ready.status})`}`];
      if (identity !== undefined) lines.push(`tenant ${identity.tenant.name}, key ${identity.key.name} (${identity.key.role})`);
      if (loaded !== undefined) lines.push(`loaded models: ${loaded.map((entry) => `${entry.name}@${entry.version}`).join(', ') || 'none (models load on their first request)'}`);
      if (queue !== undefined) lines.push(`jobs: ${queue.running} running, ${queue.queued} queued`);
      if (keyProblem !== undefined) lines.push(`models and jobs not shown: ${keyProblem}`);
      context.io.stdout.write(`${lines.join('\n')}\n`);
    }
    if (!ready.ready) throw new CliFailure('NOT_READY', `the server at ${client.baseUrl} answers but is not ready: ${ready.status}`);
    return 0;
  },
};

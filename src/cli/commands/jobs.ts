import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describeJsonSyntaxError } from '../../data/json-syntax.ts';
import type { AiaasClient } from '../../sdk/client.ts';
import type { JobStatus, JsonObject } from '../../sdk/types.ts';
import { CliFailure, CliUsageError, choiceOption, requiredOption, stringOption, type CommandContext, type CommandDefinition } from '../command.ts';
import { json, metrics, timestamp, writeListing } from '../format.ts';
import type { CliIo } from '../io.ts';
import { JobProgressView, type JobOutcome } from '../progress.ts';
import { parseTrainingFlags, trainingFlags } from '../training-flags.ts';

const statuses: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

export async function readJsonFile(io: CliIo, path: string, what: string): Promise<unknown> {
  const full = resolve(io.cwd, path);
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (error) {
    throw new CliFailure('FILE_UNREADABLE', `cannot read ${what} ${full}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliFailure('INVALID_JSON', `${what} ${full} is not valid JSON: ${describeJsonSyntaxError(text, error)}`);
  }
}

export interface WatchResult {
  outcome: JobOutcome;
}

/**
 * Follows a job to its end with live progress on stderr (or JSON lines on stdout) and returns
 * its outcome. Throws a CliFailure for a failed or cancelled job so the exit code says so.
 */
export async function watchJob(
  client: AiaasClient,
  io: CliIo,
  jobId: string,
  options: { json: boolean; signal: AbortSignal | undefined; now?: () => number },
): Promise<JobOutcome> {
  const job = await client.jobs.get(jobId, { signal: options.signal });
  const view = new JobProgressView(io.stderr, { totalEpochs: job.totalEpochs, ...(options.now === undefined ? {} : { now: options.now }) });
  let outcome: JobOutcome | undefined;
  for await (const event of client.jobs.watch(jobId, { signal: options.signal })) {
    if (options.json) io.stdout.write(`${JSON.stringify(event)}\n`);
    const result = view.handle(event);
    if (result !== undefined) outcome = result;
  }
  if (outcome === undefined) {
    // The stream ended without a terminal event and the SDK found the job finished (its stream was closed early): report its record.
    const finished = await client.jobs.get(jobId, { signal: options.signal });
    const status = finished.status === 'succeeded' || finished.status === 'cancelled' ? finished.status : 'failed';
    outcome = {
      status,
      version: finished.resultVersion?.version,
      testLoss: finished.resultVersion?.metrics?.testLoss,
      testMetrics: finished.resultVersion?.metrics?.testMetrics,
      error: finished.error ?? undefined,
    };
  }
  if (outcome.status === 'failed') throw new CliFailure(outcome.error?.code ?? 'JOB_FAILED', `job ${jobId} failed: ${outcome.error?.message ?? 'no reason given'}`);
  if (outcome.status === 'cancelled') throw new CliFailure('JOB_CANCELLED', `job ${jobId} was cancelled`);
  return outcome;
}

async function watchCommand(context: CommandContext, jobId: string): Promise<number> {
  try {
    await watchJob(context.client(), context.io, jobId, { json: context.json, signal: context.signal });
  } catch (error) {
    // Ctrl-C stops watching, not the job: say so, and how to get back to it or stop it.
    if (context.signal?.aborted === true) {
      throw new CliFailure(
        'INTERRUPTED',
        `stopped watching; job ${jobId} keeps running on the server.\n  follow it again: aiaas jobs watch ${jobId}\n  cancel it:       aiaas jobs cancel ${jobId}`,
        130,
      );
    }
    throw error;
  }
  return 0;
}

export const jobCommands: readonly CommandDefinition[] = [
  {
    path: ['jobs', 'submit'],
    summary: 'submit a training job (the spec is validated before it is queued)',
    usage: '--model NAME --spec SPEC.json --dataset ID [--test-dataset ID] [--validation-data ID] [fit options] [--watch]',
    description:
      'Prints the job id; with --watch, follows it to the end (exit 0 only if it succeeded). The fit options are the\n' +
      "same as `aiaas train`'s; omitted ones take the server's defaults.",
    options: {
      model: { type: 'string', valueName: 'NAME', description: 'model the trained version is registered under (created if needed)' },
      spec: { type: 'string', valueName: 'FILE', description: 'model spec JSON (docs/model-spec.md)' },
      dataset: { type: 'string', valueName: 'ID', description: 'training dataset id' },
      'test-dataset': { type: 'string', valueName: 'ID', description: 'dataset evaluated after training (test metrics)' },
      'validation-data': { type: 'string', valueName: 'ID', description: 'dataset evaluated after every epoch (val_loss, val_ metrics)' },
      label: { type: 'string', valueName: 'COLUMN', description: 'label column of CSV / JSON-lines datasets' },
      ...trainingFlags,
      watch: { type: 'boolean', description: 'follow the job with live progress until it ends' },
    },
    server: true,
    json: true,
    examples: [
      'aiaas jobs submit --model mnist --spec examples/mnist-mlp/spec.json --dataset ds_123 --epochs 10 --batch-size 128 --watch',
      'aiaas jobs submit --model iris --spec spec.json --dataset ds_1 --validation-data ds_2 --epochs 200 --early-stopping-patience 10 --restore-best-weights',
    ],
    async run(context) {
      const command = 'jobs submit';
      const testDatasetId = stringOption(context.values, 'test-dataset');
      const validationDatasetId = stringOption(context.values, 'validation-data');
      const label = stringOption(context.values, 'label');
      const settings = parseTrainingFlags(context.values, command);
      if (validationDatasetId !== undefined && settings.validationSplit !== undefined) throw new CliUsageError('use either --validation-data or --validation-split, not both', command);
      const model = requiredOption(context.values, 'model', command);
      const datasetId = requiredOption(context.values, 'dataset', command);
      // Arguments are checked before any file is read, so a typo fails fast and names the flag.
      const spec = await readJsonFile(context.io, requiredOption(context.values, 'spec', command), 'spec file');
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new CliUsageError('the spec file must hold a JSON object', command);
      const job = await context.client().jobs.submit(
        {
          model,
          spec: spec as JsonObject,
          datasetId,
          ...(testDatasetId === undefined ? {} : { testDatasetId }),
          ...(validationDatasetId === undefined ? {} : { validationDatasetId }),
          ...(label === undefined ? {} : { label }),
          ...settings,
        },
        { signal: context.signal },
      );
      if (context.json && context.values.watch !== true) context.io.stdout.write(json(job));
      else if (!context.json) context.io.stdout.write(`${job.id}\n`);
      if (context.values.watch === true) return await watchCommand(context, job.id);
      return 0;
    },
  },
  {
    path: ['jobs', 'ls'],
    summary: 'list training jobs',
    usage: '[--status STATUS]',
    options: { status: { type: 'string', valueName: 'STATUS', description: `only jobs in this status (${statuses.join(', ')})` } },
    server: true,
    json: true,
    async run(context) {
      const status = choiceOption(context.values, 'status', statuses, 'jobs ls');
      const jobs = await context.client().jobs.list({ signal: context.signal, ...(status === undefined ? {} : { status }) });
      writeListing(context, 'jobs', jobs, ['ID', 'MODEL', 'STATUS', 'EPOCH', 'LOSS', 'RESULT', 'CREATED'], (job) => [
        job.id,
        job.model,
        job.status,
        `${job.epoch}/${job.totalEpochs}`,
        job.loss === null || job.loss === undefined ? '-' : job.loss.toFixed(4),
        job.resultVersion ? `v${job.resultVersion.version} ${metrics(job.resultVersion.metrics?.testMetrics, 'test_')}`.trim() : (job.error?.code ?? '-'),
        timestamp(job.createdAt),
      ]);
      return 0;
    },
  },
  {
    path: ['jobs', 'watch'],
    summary: 'follow a job with live progress until it ends (exit 0 only if it succeeded)',
    usage: 'ID',
    description: 'On a terminal, a progress line is redrawn in place; otherwise one line per epoch. With --json, every\nevent is printed as one JSON line on stdout. A dropped connection is resumed where it stopped.',
    positionals: ['ID'],
    server: true,
    json: true,
    async run(context) {
      return await watchCommand(context, context.positionals[0] as string);
    },
  },
  {
    path: ['jobs', 'cancel'],
    summary: 'cancel a queued or running job',
    usage: 'ID',
    positionals: ['ID'],
    server: true,
    async run(context) {
      const id = context.positionals[0] as string;
      await context.client().jobs.cancel(id, { signal: context.signal });
      context.io.stderr.write(`cancellation requested for job ${id}\n`);
      return 0;
    },
  },
];

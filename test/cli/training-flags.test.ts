import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { secondsLeftInRun } from '../../src/cli/progress.ts';
import { EpochProgress } from '../../src/cli/train-command.ts';
import { trainingFlags } from '../../src/cli/training-flags.ts';
import { commands } from '../../src/cli/main.ts';
import { captureIo, fakeServer, sendJson, type Route } from './helpers.ts';

let directory: string;
let server: Awaited<ReturnType<typeof fakeServer>> | undefined;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-cli-train-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(directory, { recursive: true, force: true });
});

const spec = {
  input: { shape: [2] },
  layers: [{ type: 'dense', units: 2, activation: 'softmax' }],
  compile: { optimizer: { type: 'sgd', learningRate: 0.1 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

async function files(): Promise<void> {
  await writeFile(join(directory, 'spec.json'), JSON.stringify(spec));
  const rows = Array.from({ length: 40 }, (_, index) => `${index % 2},${(index * 7) % 5},${index % 2}`);
  await writeFile(join(directory, 'train.csv'), `a,b,label\n${rows.join('\n')}\n`);
  await writeFile(join(directory, 'val.csv'), `a,b,label\n${rows.slice(0, 10).join('\n')}\n`);
}

async function cli(argv: string[], options: { signal?: AbortSignal } = {}) {
  const io = captureIo({ env: server === undefined ? {} : { AIAAS_SERVER: server.url, AIAAS_API_KEY: 'aiaas_test_key' }, cwd: directory });
  const code = await main(argv, io, options);
  return { code, out: io.out(), err: io.err() };
}

describe('train and jobs submit share their fit flags', () => {
  it('both commands declare every shared flag', () => {
    for (const name of ['train', 'jobs submit']) {
      const definition = commands.find((command) => command.path.join(' ') === name)!;
      for (const flag of [...Object.keys(trainingFlags), 'validation-data']) expect(Object.keys(definition.options ?? {}), `${name} --${flag}`).toContain(flag);
    }
  });

  it('jobs submit sends them as the job body fields', async () => {
    await files();
    server = await fakeServer({ 'POST /api/v1/jobs': sendJson(202, { job: { id: 'job_1' } }) });
    const result = await cli([
      'jobs', 'submit', '--model', 'm', '--spec', 'spec.json', '--dataset', 'ds_1', '--validation-data', 'ds_2', '--label', 'label',
      '--epochs', '20', '--batch-size', '8', '--seed', '3', '--no-shuffle', '--max-steps', '100', '--target-loss', '0.05',
      '--early-stopping-monitor', 'val_accuracy', '--early-stopping-patience', '3', '--early-stopping-min-delta', '0.001', '--early-stopping-mode', 'max', '--restore-best-weights',
    ]);
    expect(result).toMatchObject({ code: 0, out: 'job_1\n' });
    expect(JSON.parse(server.requests[0]!.body.toString())).toEqual({
      model: 'm',
      spec,
      datasetId: 'ds_1',
      validationDatasetId: 'ds_2',
      label: 'label',
      epochs: 20,
      batchSize: 8,
      seed: 3,
      shuffle: false,
      maxSteps: 100,
      targetLoss: 0.05,
      earlyStopping: { monitor: 'val_accuracy', patience: 3, minDelta: 0.001, mode: 'max', restoreBestWeights: true },
    });
    await server.close();
    server = await fakeServer({ 'POST /api/v1/jobs': sendJson(202, { job: { id: 'job_2' } }) });
    await cli(['jobs', 'submit', '--model', 'm', '--spec', 'spec.json', '--dataset', 'ds_1', '--early-stopping']);
    expect(JSON.parse(server.requests[0]!.body.toString())).toEqual({ model: 'm', spec, datasetId: 'ds_1', earlyStopping: {} });
  });

  const usageCases: [string[], RegExp][] = [
    [['train'], /^error USAGE: missing --spec\nRun 'aiaas train --help' for usage\.\n$/],
    [['train', '--max-steps', '5'], /^error USAGE: missing --spec\n/],
    [['train', '--spec', 's', '--data', 'd', '--out', 'o', '--epochs', 'abc'], /^error USAGE: --epochs must be an integer ≥ 1, got "abc"\n/],
    [['train', '--spec', 's', '--data', 'd', '--out', 'o', '--max-steps', '0'], /^error USAGE: --max-steps must be an integer ≥ 1, got "0"\n/],
    [['train', '--spec', 's', '--data', 'd', '--out', 'o', '--target-loss', 'low'], /^error USAGE: --target-loss must be a number, got "low"\n/],
    [['train', '--spec', 's', '--data', 'd', '--out', 'o', '--early-stopping-mode', 'up'], /^error USAGE: --early-stopping-mode must be one of min, max, got "up"\n/],
    [['train', '--spec', 's', '--data', 'd', '--out', 'o', '--validation-data', 'v', '--validation-split', '0.2'], /^error USAGE: use either --validation-data or --validation-split, not both\n/],
    [['train', '--bogus'], /^error USAGE: Unknown option '--bogus'\n/],
    [['jobs', 'submit', '--model', 'm', '--spec', 's', '--dataset', 'd', '--epochs', 'abc'], /^error USAGE: --epochs must be an integer ≥ 1, got "abc"\nRun 'aiaas jobs submit --help'/],
    [['jobs', 'submit', '--model', 'm', '--spec', 's', '--dataset', 'd', '--max-steps', '1.5'], /^error USAGE: --max-steps must be an integer ≥ 1, got "1.5"\n/],
  ];
  it.each(usageCases)('aiaas %j is a usage error, exit 2', async (argv, expected) => {
    const result = await cli(argv);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(expected);
  });

  it('train --help lists the options and examples', async () => {
    const result = await cli(['train', '--help']);
    expect(result.code).toBe(0);
    for (const flag of ['--spec FILE', '--max-steps N', '--target-loss X', '--early-stopping-patience N', '--validation-data FILE', '--restore-best-weights']) expect(result.out).toContain(flag);
    expect(result.out).toMatch(/\nExamples:\n {2}aiaas train --spec /);
  });

  it('train runs locally with --max-steps and --validation-data, and checks the monitor against the spec', async () => {
    await files();
    const result = await cli(['train', '--spec', 'spec.json', '--data', 'train.csv', '--validation-data', 'val.csv', '--epochs', '5', '--batch-size', '8', '--max-steps', '7', '--out', 'model', '--json']);
    expect(result.code, result.err).toBe(0);
    const summary = JSON.parse(result.out) as { steps: number; epochs: number; stopReason: string };
    expect(summary).toMatchObject({ steps: 7, epochs: 2, stopReason: 'maxSteps' });
    const metrics = JSON.parse(await readFile(join(directory, 'model', 'metrics.json'), 'utf8')) as { history: { validationLoss?: number }[] };
    expect(metrics.history.every((entry) => typeof entry.validationLoss === 'number')).toBe(true);
    const badMonitor = await cli(['train', '--spec', 'spec.json', '--data', 'train.csv', '--early-stopping-monitor', 'val_accuracy', '--out', 'model']);
    expect(badMonitor.code).toBe(2);
    expect(badMonitor.err).toMatch(/^error USAGE: --early-stopping-monitor val_accuracy needs --validation-split or --validation-data\n/);
  });
});

describe('progress', () => {
  it("the ETA covers the rest of the run, not just the current epoch", () => {
    // Epoch 1 of 3, a quarter done, 100 samples/s over 1,000 samples per epoch: 750 + 2 × 1,000 left.
    expect(secondsLeftInRun({ epoch: 1, epochs: 3, samplesSeen: 250, samplesPerEpoch: 1000, samplesPerSecond: 100 })).toBe(27.5);
    expect(secondsLeftInRun({ epoch: 3, epochs: 3, samplesSeen: 1000, samplesPerEpoch: 1000, samplesPerSecond: 100 })).toBe(0);
    const io = captureIo({ tty: true });
    new EpochProgress(io.stderr, { now: () => 0 }).batch({ epoch: 1, batch: 2, batchesPerEpoch: 8, samplesSeen: 250, samplesPerEpoch: 1000, step: 2, loss: 0.5, samplesPerSecond: 100 }, 3);
    expect(io.err()).toMatch(/^\repoch 1\/3 \[.*\] 2\/8 loss 0\.5000 100 samples\/s ETA 28s/);
  });
});

describe('Ctrl-C while watching', () => {
  it('jobs submit --watch says the job keeps running and how to cancel it', async () => {
    await files();
    const controller = new AbortController();
    const events: Route = (_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('id: 1\nevent: job-started\ndata: {"epoch":0,"totalEpochs":3}\n\n', () => controller.abort());
    };
    server = await fakeServer({
      'POST /api/v1/jobs': sendJson(202, { job: { id: 'job_7' } }),
      'GET /api/v1/jobs/job_7': sendJson(200, { job: { id: 'job_7', status: 'running', totalEpochs: 3 } }),
      'GET /api/v1/jobs/job_7/events': events,
    });
    const result = await cli(['jobs', 'submit', '--model', 'm', '--spec', 'spec.json', '--dataset', 'ds_1', '--watch'], { signal: controller.signal });
    expect(result.code).toBe(130);
    expect(result.out).toBe('job_7\n');
    expect(result.err).toContain(
      'error INTERRUPTED: stopped watching; job job_7 keeps running on the server.\n  follow it again: aiaas jobs watch job_7\n  cancel it:       aiaas jobs cancel job_7\n',
    );
    expect(server.requests.map((request) => request.method)).not.toContain('DELETE');
  });
});

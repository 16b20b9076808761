import type { Sweep } from '../../sdk/types.ts';
import { CliFailure, type CommandDefinition } from '../command.ts';
import { json, table, timestamp } from '../format.ts';
import { readJsonFile } from './jobs.ts';

function value(metric: number | null): string {
  return metric === null ? '-' : Math.abs(metric) >= 1e4 || (metric !== 0 && Math.abs(metric) < 1e-3) ? metric.toExponential(3) : metric.toFixed(4);
}

/** The leaderboard as a table: best first. */
export function leaderboardTable(sweep: Sweep): string {
  const paths = Object.keys(sweep.space);
  const rows = sweep.leaderboard.map((trial, index) => [
    trial.metric === null ? '' : String(index + 1),
    String(trial.trial),
    ...(sweep.strategy !== null && typeof sweep.strategy === 'object' && (sweep.strategy as { type?: string }).type === 'successiveHalving' ? [String(trial.rung)] : []),
    ...paths.map((path) => JSON.stringify(trial.params[path])),
    trial.status === 'running' ? `running ${trial.epoch}/${trial.totalEpochs}` : trial.status,
    value(trial.metric),
    trial.error?.code ?? '',
  ]);
  const rung = (sweep.strategy as { type?: string }).type === 'successiveHalving' ? ['round'] : [];
  return table(['rank', 'trial', ...rung, ...paths, 'status', sweep.metric.name, 'error'], rows);
}

function summary(sweep: Sweep): string {
  const lines = [
    `sweep ${sweep.id}  model ${sweep.model}  ${sweep.status}  ${sweep.metric.direction} ${sweep.metric.name}  created ${timestamp(sweep.createdAt)}${sweep.finishedAt === null ? '' : `  finished ${timestamp(sweep.finishedAt)}`}`,
  ];
  if (sweep.best !== null) lines.push(`best: trial ${sweep.best.trial} ${JSON.stringify(sweep.best.params)} ${sweep.metric.name} ${value(sweep.best.metric)}`);
  if (sweep.resultVersion !== null) lines.push(`registered as ${sweep.model} version ${sweep.resultVersion.version}`);
  return `${lines.join('\n')}\n`;
}

export const sweepCommands: readonly CommandDefinition[] = [
  {
    path: ['sweeps', 'submit'],
    summary: 'start a hyperparameter sweep from a JSON file (POST /api/v1/sweeps)',
    usage: 'FILE.json [--watch]',
    description:
      'FILE.json holds {"baseJob": <a job body>, "space": {"compile.optimizer.learningRate": {"type": "logRange", "min": 1e-4,\n' +
      '"max": 1}}, "strategy": "grid" | "random" | "successiveHalving", "maxTrials", "parallelism", "metric": {"name", "direction"},\n' +
      '"register"}. With --watch the leaderboard is printed as it changes until the sweep ends.',
    positionals: ['FILE'],
    options: { watch: { type: 'boolean', description: 'follow the leaderboard until the sweep ends' } },
    server: true,
    json: true,
    examples: ['aiaas sweeps submit lr-sweep.json --watch'],
    async run(context) {
      const body = await readJsonFile(context.io, context.positionals[0] as string, 'sweep file');
      const client = context.client();
      let sweep = await client.sweeps.submit(body as never, { signal: context.signal });
      if (context.values.watch !== true) {
        context.io.stdout.write(context.json ? json(sweep) : `${summary(sweep)}${leaderboardTable(sweep)}`);
        return 0;
      }
      if (!context.json) context.io.stderr.write(`sweep ${sweep.id} submitted; following its leaderboard\n`);
      let shown = '';
      for await (const update of client.sweeps.watch(sweep.id, { signal: context.signal })) {
        sweep = update;
        if (context.json) {
          context.io.stdout.write(`${JSON.stringify(update)}\n`);
          continue;
        }
        const board = leaderboardTable(update);
        if (board !== shown) context.io.stderr.write(`\n${board}`);
        shown = board;
      }
      if (!context.json) context.io.stdout.write(`${summary(sweep)}${leaderboardTable(sweep)}`);
      if (sweep.status === 'failed') throw new CliFailure('SWEEP_FAILED', `sweep ${sweep.id} failed: no trial succeeded`);
      return 0;
    },
  },
  {
    path: ['sweeps', 'show'],
    summary: 'show a sweep and its leaderboard',
    usage: 'ID',
    positionals: ['ID'],
    server: true,
    json: true,
    examples: ['aiaas sweeps show sweep_abc123'],
    async run(context) {
      const sweep = await context.client().sweeps.get(context.positionals[0] as string, { signal: context.signal });
      context.io.stdout.write(context.json ? json(sweep) : `${summary(sweep)}${leaderboardTable(sweep)}`);
      return 0;
    },
  },
];

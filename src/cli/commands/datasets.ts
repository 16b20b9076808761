import { basename, resolve } from 'node:path';
import type { DatasetFormat } from '../../sdk/types.ts';
import { choiceOption, stringOption, type CommandDefinition } from '../command.ts';
import { bytes, json, timestamp, writeListing } from '../format.ts';

const formats: readonly DatasetFormat[] = ['csv', 'jsonl', 'idx'];

/** `train-images-idx3-ubyte.gz` -> `train-images-idx3-ubyte`: a readable default name. */
function defaultName(path: string): string {
  return basename(path).replace(/\.gz$/i, '').replace(/\.(csv|jsonl|json|idx|ndjson)$/i, '');
}

export const datasetCommands: readonly CommandDefinition[] = [
  {
    path: ['datasets', 'push'],
    summary: 'upload a dataset file (CSV, JSON lines, IDX or an IDX pair; .gz allowed)',
    usage: 'FILE [--labels FILE] [--name NAME] [--format csv|jsonl|idx] [--label COLUMN]',
    description:
      'With --labels, FILE is an IDX images file and both are sent as one IDX pair (multipart). The format is\ndetected from the content unless --format is given. Prints the new dataset id.',
    positionals: ['FILE'],
    options: {
      labels: { type: 'string', valueName: 'FILE', description: 'IDX labels file of an IDX pair' },
      name: { type: 'string', valueName: 'NAME', description: 'dataset name (default: the file name without extensions)' },
      format: { type: 'string', valueName: 'FORMAT', description: 'csv, jsonl or idx (default: detected)' },
      label: { type: 'string', valueName: 'COLUMN', description: 'label column of a CSV or JSON-lines file' },
    },
    server: true,
    json: true,
    examples: [
      'aiaas datasets push iris.csv --label species',
      'aiaas datasets push train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz --name mnist-train',
    ],
    async run(context) {
      const file = resolve(context.io.cwd, context.positionals[0] as string);
      const labels = stringOption(context.values, 'labels');
      const format = choiceOption(context.values, 'format', formats, 'datasets push');
      const label = stringOption(context.values, 'label');
      const dataset = await context.client().datasets.push({
        name: stringOption(context.values, 'name') ?? defaultName(file),
        file: { path: file },
        ...(labels === undefined ? {} : { labels: { path: resolve(context.io.cwd, labels) } }),
        ...(format === undefined ? {} : { format }),
        ...(label === undefined ? {} : { label }),
        signal: context.signal,
      });
      if (context.json) context.io.stdout.write(json(dataset));
      else {
        const shape = dataset.schema === undefined ? '' : ` features [${dataset.schema.featureShape.join(', ')}]`;
        context.io.stdout.write(`${dataset.id}\n`);
        context.io.stderr.write(`uploaded ${dataset.name}: ${dataset.format}, ${dataset.rowCount} rows${shape}, ${bytes(dataset.bytes)}\n`);
      }
      return 0;
    },
  },
  {
    path: ['datasets', 'ls'],
    summary: 'list datasets',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const datasets = await context.client().datasets.list({ signal: context.signal });
      writeListing(context, 'datasets', datasets, ['ID', 'NAME', 'FORMAT', 'ROWS', 'FEATURES', 'SIZE', 'CREATED'], (dataset) => [
        dataset.id,
        dataset.name,
        dataset.format,
        String(dataset.rowCount),
        dataset.schema === undefined ? '-' : `[${dataset.schema.featureShape.join(',')}]`,
        bytes(dataset.bytes),
        timestamp(dataset.createdAt),
      ]);
      return 0;
    },
  },
  {
    path: ['datasets', 'rm'],
    summary: 'delete a dataset',
    usage: 'ID',
    positionals: ['ID'],
    server: true,
    async run(context) {
      const id = context.positionals[0] as string;
      await context.client().datasets.delete(id, { signal: context.signal });
      context.io.stderr.write(`deleted dataset ${id}\n`);
      return 0;
    },
  },
];

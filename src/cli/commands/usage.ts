import type { UsageDimension, UsageRow } from '../../sdk/types.ts';
import { CliUsageError, integerOption, stringOption, type CommandDefinition } from '../command.ts';
import { bytes, json, table } from '../format.ts';

const dimensions: readonly UsageDimension[] = ['model', 'key', 'version', 'protocol', 'day', 'hour', 'minute'];

/** The table's group columns, by dimension: header and cell. */
const groupColumns: Record<UsageDimension, { header: string; cell(row: UsageRow): string }> = {
  model: { header: 'MODEL', cell: (row) => (row.model === '' ? '(datasets)' : (row.model ?? '')) },
  key: { header: 'KEY', cell: (row) => (row.keyId === '' ? '-' : (row.keyId ?? '')) },
  version: { header: 'VERSION', cell: (row) => (row.version === 0 ? '-' : String(row.version ?? '')) },
  protocol: { header: 'PROTOCOL', cell: (row) => row.protocol ?? '' },
  day: { header: 'DAY', cell: (row) => row.day ?? '' },
  hour: { header: 'HOUR', cell: (row) => row.hour ?? '' },
  minute: { header: 'MINUTE', cell: (row) => row.minute ?? '' },
};

const milliseconds = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(1)}s` : `${value.toFixed(1)}ms`);

/** Unit columns: the first three always, the others only when some row has any. */
const unitColumns: readonly { header: string; always?: boolean; value(row: UsageRow): number; cell(row: UsageRow): string }[] = [
  { header: 'REQUESTS', always: true, value: (row) => row.requests, cell: (row) => String(row.requests) },
  { header: 'FAILED', always: true, value: (row) => row.failedRequests, cell: (row) => String(row.failedRequests) },
  { header: 'ITEMS', always: true, value: (row) => row.items, cell: (row) => String(row.items) },
  { header: 'PROMPT', value: (row) => row.promptTokens, cell: (row) => String(row.promptTokens) },
  { header: 'COMPLETION', value: (row) => row.completionTokens, cell: (row) => String(row.completionTokens) },
  { header: 'COMPUTE', value: (row) => row.computeMs, cell: (row) => milliseconds(row.computeMs) },
  { header: 'QUEUE', value: (row) => row.queueMs, cell: (row) => milliseconds(row.queueMs) },
  { header: 'IN', value: (row) => row.bytesIn, cell: (row) => bytes(row.bytesIn) },
  { header: 'OUT', value: (row) => row.bytesOut, cell: (row) => bytes(row.bytesOut) },
  { header: 'SAMPLE-EPOCHS', value: (row) => row.trainingSampleEpochs, cell: (row) => String(row.trainingSampleEpochs) },
  { header: 'TRAINING', value: (row) => row.trainingWorkerSeconds, cell: (row) => `${row.trainingWorkerSeconds.toFixed(1)}s` },
  { header: 'STORED', value: (row) => row.storedByteHours, cell: (row) => `${bytes(row.storedByteHours)}·h` },
];

function parseGroupBy(text: string | undefined): UsageDimension[] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  for (const part of parts) {
    if (!(dimensions as readonly string[]).includes(part)) throw new CliUsageError(`--group-by takes ${dimensions.join(', ')}; got "${part}"`, 'usage');
  }
  return parts as UsageDimension[];
}

export function renderUsageTable(groupBy: readonly UsageDimension[], rows: readonly UsageRow[]): string {
  if (rows.length === 0) return 'no usage recorded\n';
  const units = unitColumns.filter((column) => column.always === true || rows.some((row) => column.value(row) !== 0));
  const groups = groupBy.map((dimension) => groupColumns[dimension]);
  return table(
    [...groups.map((column) => column.header), ...units.map((column) => column.header)],
    rows.map((row) => [...groups.map((column) => column.cell(row)), ...units.map((column) => column.cell(row))]),
  );
}

export const usageCommand: CommandDefinition = {
  path: ['usage'],
  summary: 'show the usage ledger: requests, tokens, compute, bytes, training and storage, grouped',
  usage: '[--group-by model,day] [--from DATE] [--to DATE] [--model NAME] [--key ID] [--protocol NAME] [--csv]',
  description:
    'Groups by any of model, key, version, protocol and one of day, hour, minute (default model,day). ' +
    'DATE is YYYY-MM-DD (UTC; a --to day is included) or an ISO 8601 instant (--to exclusive). ' +
    'The table shows requests, failures and items, and every other unit some row has.',
  options: {
    'group-by': { type: 'string', valueName: 'DIMENSIONS', description: 'comma-separated: model, key, version, protocol, day, hour, minute' },
    from: { type: 'string', valueName: 'DATE', description: 'from this day or instant (inclusive)' },
    to: { type: 'string', valueName: 'DATE', description: 'through this day, or until this instant' },
    model: { type: 'string', valueName: 'NAME', description: 'only this model' },
    key: { type: 'string', valueName: 'ID', description: 'only this API key id' },
    version: { type: 'string', valueName: 'N', description: 'only this model version' },
    protocol: { type: 'string', valueName: 'NAME', description: 'only v2, tfserving, openai, ollama, training or storage' },
    csv: { type: 'boolean', description: 'print the server’s CSV instead of a table' },
  },
  server: true,
  json: true,
  examples: ['aiaas usage', 'aiaas usage --group-by model,key,hour --from 2026-01-01 --to 2026-01-31', 'aiaas usage --group-by protocol --csv > usage.csv'],
  async run(context) {
    const groupBy = parseGroupBy(stringOption(context.values, 'group-by'));
    const version = integerOption(context.values, 'version', 'usage', 0);
    const options = {
      ...(groupBy === undefined ? {} : { groupBy }),
      ...(stringOption(context.values, 'from') === undefined ? {} : { from: stringOption(context.values, 'from')! }),
      ...(stringOption(context.values, 'to') === undefined ? {} : { to: stringOption(context.values, 'to')! }),
      ...(stringOption(context.values, 'model') === undefined ? {} : { model: stringOption(context.values, 'model')! }),
      ...(stringOption(context.values, 'key') === undefined ? {} : { key: stringOption(context.values, 'key')! }),
      ...(version === undefined ? {} : { version }),
      ...(stringOption(context.values, 'protocol') === undefined ? {} : { protocol: stringOption(context.values, 'protocol')! }),
      signal: context.signal,
    };
    const client = context.client();
    if (context.values.csv === true) {
      context.io.stdout.write(await client.usageCsv(options));
      return 0;
    }
    const rows = await client.usage(options);
    context.io.stdout.write(context.json ? json(rows) : renderUsageTable(groupBy ?? ['model', 'day'], rows));
    return 0;
  },
};

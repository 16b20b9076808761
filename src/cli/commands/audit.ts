import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliFailure, stringOption, type CommandDefinition } from '../command.ts';
import { json } from '../format.ts';

export const auditCommands: readonly CommandDefinition[] = [
  {
    path: ['audit', 'verify'],
    summary: 'walk the audit hash chain; exit 1 at the first altered, deleted or reordered entry',
    usage: '',
    server: true,
    json: true,
    async run(context) {
      const result = await context.client().audit.verify({ signal: context.signal });
      if (context.json) context.io.stdout.write(json(result));
      if (result.ok) {
        if (!context.json) context.io.stdout.write(`audit log intact: ${result.count} entries\n`);
        return 0;
      }
      throw new CliFailure('AUDIT_CHAIN_BROKEN', `entry at position ${result.position} (seq ${result.seq}) ${result.reason}${result.message === undefined ? '' : `: ${result.message}`}`);
    },
  },
  {
    path: ['audit', 'export'],
    summary: 'write the audit log as JSON lines',
    usage: '[--out FILE]',
    options: { out: { type: 'string', valueName: 'FILE', description: 'write to FILE instead of stdout' } },
    server: true,
    async run(context) {
      const text = await context.client().audit.export({ signal: context.signal });
      const out = stringOption(context.values, 'out');
      if (out === undefined) context.io.stdout.write(text);
      else {
        const path = resolve(context.io.cwd, out);
        await writeFile(path, text);
        const count = text.split('\n').filter((line) => line.trim() !== '').length;
        context.io.stderr.write(`wrote ${count} entries to ${path}\n`);
      }
      return 0;
    },
  },
];

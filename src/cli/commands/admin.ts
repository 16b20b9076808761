import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../config.ts';
import { CliUsageError, requiredOption, type CommandDefinition } from '../command.ts';
import { serverFlags } from './serve.ts';

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
    usage: '--data-dir DIR --new-key B64 [--key-store FILE] [--config FILE] [--master-key-file FILE] [--insecure-dev]',
    description:
      'Run it with the server stopped. The current master key comes from AIAAS_MASTER_KEY, --master-key-file\n' +
      'or the config file, as for `aiaas serve`. Afterwards, start the server with the new key.',
    options: {
      'data-dir': { type: 'string', valueName: 'DIR', description: 'the server data directory' },
      'new-key': { type: 'string', valueName: 'B64', description: 'the new master key (from aiaas admin gen-master-key)' },
      'key-store': { type: 'string', valueName: 'FILE', description: 'the key store, as for aiaas serve (AIAAS_KEY_STORE; default <data-dir>/keystore.db)' },
      config: { type: 'string', valueName: 'FILE', description: 'JSON config file, as for aiaas serve' },
      'master-key-file': { type: 'string', valueName: 'FILE', description: 'file holding the current master key ring' },
      'insecure-dev': { type: 'boolean', description: 'the current key is the insecure-dev key kept in the data directory' },
    },
    examples: ['AIAAS_MASTER_KEY=old-key aiaas admin rotate-master-key --data-dir ./aiaas-data --new-key "$(aiaas admin gen-master-key)"'],
    async run(context) {
      const command = 'admin rotate-master-key';
      requiredOption(context.values, 'data-dir', command);
      const newKeyText = requiredOption(context.values, 'new-key', command);
      // The same settings as `aiaas serve`: --data-dir, --config, --master-key-file and --insecure-dev here.
      const config = loadConfig({ flags: serverFlags(context.values, command), env: context.io.env, cwd: context.io.cwd });
      // Storage and key handling load only for this command.
      const [admin, { pino }] = await Promise.all([import('../../startup/admin.ts'), import('pino')]);
      const logger = pino({ level: 'warn' }, { write: (line: string) => void context.io.stderr.write(line) });
      const oldRing = await admin.loadMasterKeyRingFor(config, logger);
      const newKey = admin.MasterKeyRing.parse(newKeyText, '--new-key').current.key;
      if (oldRing.versions.some((version) => oldRing.get(version)?.key.equals(newKey) === true)) {
        throw new CliUsageError('--new-key is already in the master key ring; generate a fresh one with aiaas admin gen-master-key', command);
      }
      const result = await admin.rotateMasterKey(config, oldRing.withNewKey(newKey), logger);
      let ring = oldRing.withNewKey(newKey);
      for (const version of result.retirableVersions) ring = ring.without(version);
      context.io.stdout.write(`${ring.serialize()}\n`);
      context.io.stderr.write(
        `re-wrapped ${result.rewrapped} tenant data keys under master key version ${result.currentVersion}` +
          ` (${result.alreadyCurrent} already current, ${result.skipped} skipped).\n` +
          `Start the server with the key ring printed above as AIAAS_MASTER_KEY (or in AIAAS_MASTER_KEY_FILE)` +
          (result.retirableVersions.length > 0 ? `; versions ${result.retirableVersions.join(', ')} are no longer used and were left out.\n` : '.\n'),
      );
      return 0;
    },
  },
];

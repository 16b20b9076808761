import { resolve } from 'node:path';
import { loadConfig } from '../../config.ts';
import { CliFailure, requiredOption, stringOption, type CommandContext, type CommandDefinition, type OptionDefinition } from '../command.ts';
import { bytes, json, timestamp, writeListing } from '../format.ts';
import { serverFlags } from './serve.ts';

/** The settings a local command reads the data directory with, as for `aiaas serve`. */
const dataDirOptions: Readonly<Record<string, OptionDefinition>> = {
  'data-dir': { type: 'string', valueName: 'DIR', description: 'the server data directory (AIAAS_DATA_DIR; default ./aiaas-data)' },
  config: { type: 'string', valueName: 'FILE', description: 'JSON config file, as for aiaas serve (AIAAS_CONFIG)' },
};
const masterKeyOptions: Readonly<Record<string, OptionDefinition>> = {
  'master-key-file': { type: 'string', valueName: 'FILE', description: 'file holding the master key ring (or AIAAS_MASTER_KEY / AIAAS_MASTER_KEY_FILE)' },
};

function localConfig(context: CommandContext, command: string) {
  return loadConfig({ flags: serverFlags(context.values, command), env: context.io.env, cwd: context.io.cwd });
}

async function quietLogger(context: CommandContext) {
  const { pino } = await import('pino');
  return pino({ level: 'warn' }, { write: (line: string) => void context.io.stderr.write(line) });
}

const createCommand: CommandDefinition = {
  path: ['backup', 'create'],
  summary: 'back up a data directory online (--out), or ask the server to back itself up',
  usage: '[--out DIR [--data-dir DIR] [--config FILE] [--master-key-file FILE] [--insecure-dev]]',
  description:
    'With --out: reads the data directory directly, while the server keeps running, and writes a new backup\n' +
    'directory DIR: a consistent database snapshot, the encrypted artifacts, the server secret wrapped under\n' +
    'the master key, and manifest.json (SHA-256 of every file) written last. The work happens in DIR.partial,\n' +
    'renamed to DIR at the end. Tenant data keys (the key store) are never copied.\n' +
    'Without --out: POST /api/v1/admin/backups, the server writes into its own --backup-dir (operator admin key).',
  options: {
    out: { type: 'string', valueName: 'DIR', description: 'the new backup directory (must not exist)' },
    ...dataDirOptions,
    ...masterKeyOptions,
    'insecure-dev': { type: 'boolean', description: 'the master key is the insecure-dev key kept in the data directory' },
  },
  server: true,
  json: true,
  examples: [
    'AIAAS_MASTER_KEY_FILE=/etc/aiaas/master.key aiaas backup create --data-dir /var/lib/aiaas --out /backups/aiaas-2026-11-29',
    'aiaas backup create --server https://aiaas.internal --api-key "$OPERATOR_KEY"',
  ],
  async run(context) {
    const out = stringOption(context.values, 'out');
    if (out === undefined) {
      const result = await context.client().backups.create({ signal: context.signal });
      context.io.stdout.write(
        context.json ? json(result) : `backup ${result.name} written by the server: ${result.tenants} tenants, ${result.artifacts} artifacts, ${bytes(result.bytes)}\n`,
      );
      return 0;
    }
    const command = 'backup create';
    const config = localConfig(context, command);
    const [{ backupDataDirectory }, { loadMasterKeyRingFor }] = await Promise.all([import('../../startup/backups.ts'), import('../../startup/context.ts')]);
    const ring = await loadMasterKeyRingFor(config, await quietLogger(context));
    const summary = await backupDataDirectory(config, ring, resolve(context.io.cwd, out), {
      onProgress: (event) => {
        if (event.stage === 'artifact' && event.copied === 0) context.io.stderr.write(`copying ${event.total} artifacts\n`);
        else if (event.stage === 'database') context.io.stderr.write(`database snapshot taken${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}\n`);
        else if (event.stage === 'manifest') context.io.stderr.write('writing manifest\n');
      },
    });
    const { manifest } = summary;
    context.io.stdout.write(
      context.json
        ? json({ path: summary.path, createdAt: manifest.createdAt, counts: manifest.counts, metadata: manifest.metadata })
        : `backup written to ${summary.path}: ${manifest.counts.tenants} tenants, ${manifest.counts.artifacts} artifacts, ${bytes(manifest.counts.bytes)}\n`,
    );
    return 0;
  },
};

const verifyCommand: CommandDefinition = {
  path: ['backup', 'verify'],
  summary: 'check a backup: manifest, every file hash, database integrity, referenced artifacts',
  usage: 'DIR',
  description: 'Exits 1 with one line per problem if anything is missing, altered, extra or incomplete. Needs no master key.',
  positionals: ['DIR'],
  json: true,
  async run(context) {
    const { verifyBackup } = await import('../../storage/backup/index.ts');
    const result = await verifyBackup(resolve(context.io.cwd, context.positionals[0]!));
    if (context.json) context.io.stdout.write(json({ ok: result.ok, path: result.path, checkedFiles: result.checkedFiles, problems: result.problems, createdAt: result.manifest?.createdAt ?? null }));
    if (result.ok) {
      const manifest = result.manifest!;
      if (!context.json) {
        context.io.stdout.write(
          `backup intact: ${result.checkedFiles} files verified (${manifest.counts.tenants} tenants, ${manifest.counts.artifacts} artifacts, ${bytes(manifest.counts.bytes)}), taken ${timestamp(manifest.createdAt)}\n`,
        );
      }
      return 0;
    }
    if (!context.json) for (const problem of result.problems) context.io.stderr.write(`  problem: ${problem}\n`);
    throw new CliFailure('BACKUP_INVALID', `${result.path} is not a complete, intact backup (${result.problems.length} problem${result.problems.length === 1 ? '' : 's'})`);
  },
};

const restoreCommand: CommandDefinition = {
  path: ['backup', 'restore'],
  summary: 'restore a verified backup into a new, empty data directory',
  usage: 'DIR --data-dir NEW [--config FILE] [--master-key-file FILE]',
  description:
    'Verifies the backup, then writes the database, the artifacts and the unwrapped server secret into NEW\n' +
    '(which must not exist or be empty; live data is never overwritten). The master key ring must hold the\n' +
    'version the backup was taken under. Tenant data keys are not in backups: the restored server reads them\n' +
    'from the live key store (docs/operations.md).',
  positionals: ['DIR'],
  options: { ...dataDirOptions, ...masterKeyOptions },
  json: true,
  examples: ['AIAAS_MASTER_KEY_FILE=/etc/aiaas/master.key aiaas backup restore /backups/aiaas-2026-11-29 --data-dir /var/lib/aiaas-restored'],
  async run(context) {
    const command = 'backup restore';
    requiredOption(context.values, 'data-dir', command);
    const config = localConfig(context, command);
    const [{ restoreDataDirectory }, { loadMasterKeyRing }] = await Promise.all([import('../../startup/backups.ts'), import('../../security/key-ring.ts')]);
    // No insecure-dev fallback: it would generate a key in the (empty) target, which unwraps nothing.
    const ring = config.masterKey === undefined && config.masterKeyFile === undefined ? undefined : loadMasterKeyRing({ masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
    const result = await restoreDataDirectory(resolve(context.io.cwd, context.positionals[0]!), config.dataDir, ring);
    if (context.json) {
      context.io.stdout.write(json({ dataDir: result.dataDir, artifacts: result.artifacts, serverSecret: result.serverSecret, createdAt: result.manifest.createdAt }));
      return 0;
    }
    context.io.stdout.write(`restored the backup of ${timestamp(result.manifest.createdAt)} into ${result.dataDir}: ${result.manifest.counts.tenants} tenants, ${result.artifacts} artifacts\n`);
    if (result.serverSecret === 'configured') context.io.stderr.write('The backed-up server used a configured server secret: start the restored one with the same AIAAS_SERVER_SECRET, or API keys will not authenticate.\n');
    context.io.stderr.write('Tenant data keys are not in backups: start the restored server with the live key store (--key-store PATH) and the same master key ring (docs/operations.md).\n');
    return 0;
  },
};

const listCommand: CommandDefinition = {
  path: ['backup', 'list'],
  summary: 'list backups in a directory (--dir), or the server\'s own',
  usage: '[--dir DIR]',
  options: { dir: { type: 'string', valueName: 'DIR', description: 'a backup directory on this machine (default: ask the server, GET /api/v1/admin/backups)' } },
  server: true,
  json: true,
  async run(context) {
    const dir = stringOption(context.values, 'dir');
    let listings: { name: string; state: string; createdAt: string | null; tenants: number | null; artifacts: number | null; bytes: number | null; problem: string | null }[];
    if (dir === undefined) listings = await context.client().backups.list({ signal: context.signal });
    else {
      const { listBackups } = await import('../../storage/backup/index.ts');
      listings = (await listBackups(resolve(context.io.cwd, dir))).map(({ path: _path, metadata: _metadata, ...listing }) => listing);
    }
    writeListing(context, 'backups', listings, ['NAME', 'STATE', 'TAKEN', 'TENANTS', 'ARTIFACTS', 'SIZE'], (listing) => [
      listing.name,
      listing.problem === null ? listing.state : `${listing.state} (${listing.problem})`,
      timestamp(listing.createdAt),
      listing.tenants === null ? '-' : String(listing.tenants),
      listing.artifacts === null ? '-' : String(listing.artifacts),
      listing.bytes === null ? '-' : bytes(listing.bytes),
    ]);
    return 0;
  },
};

export const backupCommands: readonly CommandDefinition[] = [createCommand, verifyCommand, restoreCommand, listCommand];

export const checkCommand: CommandDefinition = {
  path: ['admin', 'check'],
  summary: 'verify a data directory: artifact hashes, database integrity, audit chain, orphan and missing files',
  usage: '[--data-dir DIR] [--config FILE]',
  description: 'Read-only; safe beside a running server; needs no master key. Exits 1 with one line per problem.',
  options: dataDirOptions,
  json: true,
  examples: ['aiaas admin check --data-dir /var/lib/aiaas'],
  async run(context) {
    const config = localConfig(context, 'admin check');
    const { checkDataDirectory } = await import('../../startup/admin.ts');
    const result = await checkDataDirectory(config);
    if (context.json) {
      context.io.stdout.write(json(result));
    } else {
      for (const warning of result.warnings) context.io.stderr.write(`  warning: ${warning}\n`);
      for (const problem of result.problems) context.io.stderr.write(`  problem: ${problem}\n`);
      if (result.ok) {
        context.io.stdout.write(
          `data directory ${result.dataDir} is sound: ${result.artifacts} artifacts (${bytes(result.artifactBytes)}) match their hashes, ` +
            `database integrity ok, audit chain intact (${result.audit.ok ? result.audit.count : 0} entries), no orphan or missing files\n`,
        );
      }
    }
    if (result.ok) return 0;
    throw new CliFailure('DATA_DIR_CHECK_FAILED', `${result.dataDir}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} found`);
  },
};

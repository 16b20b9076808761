import type * as ConfigModule from '../../config.ts';
import type * as StartModule from '../../server/start.ts';
import { stringOption, type CommandDefinition, type OptionValues } from '../command.ts';
import type { CliIo } from '../io.ts';
import { loadOptionalModule } from '../modules.ts';

const settingFlags = ['host', 'port', 'data-dir', 'tls-cert', 'tls-key'] as const;

/** The serve flags as `loadConfig` takes them (flags > AIAAS_* > config file > defaults). */
export function serverFlags(values: OptionValues): Record<string, string | boolean | undefined> {
  const flags: Record<string, string | boolean | undefined> = {};
  for (const flag of settingFlags) {
    const value = stringOption(values, flag);
    if (value !== undefined) flags[flag] = value;
  }
  // Only a given flag overrides: an absent --insecure-dev must not hide AIAAS_INSECURE_DEV.
  if (values['insecure-dev'] === true) flags['insecure-dev'] = true;
  const config = stringOption(values, 'config');
  if (config !== undefined) flags.config = config;
  return flags;
}

export async function loadServerModules(): Promise<{ config: typeof ConfigModule; start: typeof StartModule }> {
  const [config, start] = await Promise.all([
    loadOptionalModule<typeof ConfigModule>('../config.ts', 'the server configuration'),
    loadOptionalModule<typeof StartModule>('../server/start.ts', 'the server'),
  ]);
  return { config, start };
}

/** Resolves when the signal aborts; never, without one (the process then ends by signal). */
export function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal === undefined) return;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export function secretPrinter(io: CliIo): (text: string) => void {
  return (text) => {
    io.stderr.write(text);
  };
}

export const serveCommand: CommandDefinition = {
  path: ['serve'],
  summary: 'start the server',
  usage: '[--host HOST] [--port PORT] [--data-dir DIR] [--config FILE] [--insecure-dev] [--tls-cert FILE] [--tls-key FILE]',
  description:
    'Every setting can also come from an AIAAS_* environment variable or the JSON config file; see\n' +
    'docs/configuration.md. A master key is required (AIAAS_MASTER_KEY or AIAAS_MASTER_KEY_FILE; create one\n' +
    'with `aiaas admin gen-master-key`) unless --insecure-dev. On the first start the admin API key is\n' +
    'printed once to stderr. Ctrl-C or SIGTERM finishes in-flight requests and stops.',
  options: {
    host: { type: 'string', valueName: 'HOST', description: 'interface to listen on (AIAAS_HOST; default 127.0.0.1)' },
    port: { type: 'string', valueName: 'PORT', description: 'TCP port, 0 for any free one (AIAAS_PORT; default 8080)' },
    'data-dir': { type: 'string', valueName: 'DIR', description: 'database, encrypted artifacts and secrets (AIAAS_DATA_DIR; default ./aiaas-data)' },
    config: { type: 'string', valueName: 'FILE', description: 'JSON file of settings (AIAAS_CONFIG)' },
    'insecure-dev': { type: 'boolean', description: 'development only: keep a generated master key next to the data (AIAAS_INSECURE_DEV)' },
    'tls-cert': { type: 'string', valueName: 'FILE', description: 'PEM certificate; with --tls-key, serve HTTPS (AIAAS_TLS_CERT)' },
    'tls-key': { type: 'string', valueName: 'FILE', description: 'PEM private key for --tls-cert (AIAAS_TLS_KEY)' },
  },
  examples: ['AIAAS_MASTER_KEY="$(aiaas admin gen-master-key)" aiaas serve --port 8080 --data-dir ./aiaas-data', 'aiaas serve --insecure-dev'],
  async run(context) {
    const modules = await loadServerModules();
    const config = modules.config.loadConfig({ flags: serverFlags(context.values), env: context.io.env, cwd: context.io.cwd });
    const handleSignals = context.signal === undefined;
    const server = await modules.start.startServer(config, { handleSignals, printSecret: secretPrinter(context.io) });
    context.io.stderr.write(`aiaas listening on ${server.url} (data in ${config.dataDir})\n`);
    await untilAborted(context.signal);
    context.io.stderr.write('stopping: finishing in-flight requests\n');
    await server.close();
    return 0;
  },
};

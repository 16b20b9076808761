import { loadConfig, settingDefinitions, type ConfigValue } from '../../config.ts';
import { CliUsageError, stringOption, type CommandDefinition, type OptionDefinition, type OptionValues } from '../command.ts';

/** The settings people set most, with help written for the command line; listed first in `aiaas serve --help`. */
const listedOptions: Readonly<Record<string, OptionDefinition>> = {
  host: { type: 'string', valueName: 'HOST', description: 'interface to listen on (AIAAS_HOST; default 127.0.0.1)' },
  port: { type: 'string', valueName: 'PORT', description: 'TCP port, 0 for any free one (AIAAS_PORT; default 8080)' },
  'data-dir': { type: 'string', valueName: 'DIR', description: 'database, encrypted artifacts and secrets (AIAAS_DATA_DIR; default ./aiaas-data)' },
  config: { type: 'string', valueName: 'FILE', description: 'JSON file of settings (AIAAS_CONFIG)' },
  'insecure-dev': { type: 'boolean', description: 'development only: keep a generated master key next to the data (AIAAS_INSECURE_DEV)' },
  'tls-cert': { type: 'string', valueName: 'FILE', description: 'PEM certificate; with --tls-key, serve HTTPS (AIAAS_TLS_CERT)' },
  'tls-key': { type: 'string', valueName: 'FILE', description: 'PEM private key for --tls-cert (AIAAS_TLS_KEY)' },
};

/**
 * Every other setting of `settingDefinitions` (docs/configuration.md) as a flag: booleans as
 * `--FLAG` / `--no-FLAG` (the latter so a flag can turn off what the environment or file turned on),
 * everything else as `--FLAG VALUE`, validated by `loadConfig` like the environment variable.
 */
function settingOptions(): Record<string, OptionDefinition> {
  const options: Record<string, OptionDefinition> = {};
  for (const definition of settingDefinitions) {
    const description = `${definition.description} (${definition.env}; default ${definition.defaultText})`;
    if (!(definition.flag in listedOptions)) {
      options[definition.flag] = definition.type === 'boolean' ? { type: 'boolean', description } : { type: 'string', valueName: 'VALUE', description };
    }
    if (definition.type === 'boolean') options[`no-${definition.flag}`] = { type: 'boolean', description: `turn ${definition.name} off (${definition.env}=false)` };
  }
  return options;
}

/** The serve flags as `loadConfig` takes them (flags > AIAAS_* > config file > defaults). */
export function serverFlags(values: OptionValues, command = 'serve'): Record<string, ConfigValue> {
  const flags: Record<string, ConfigValue> = {};
  for (const { flag, type } of settingDefinitions) {
    if (type === 'boolean') {
      const on = values[flag] === true;
      const off = values[`no-${flag}`] === true;
      if (on && off) throw new CliUsageError(`--${flag} and --no-${flag} exclude each other`, command);
      // Only a given flag overrides: an absent --insecure-dev must not hide AIAAS_INSECURE_DEV.
      if (on || off) flags[flag] = on;
    } else {
      const value = stringOption(values, flag);
      if (value !== undefined) flags[flag] = value;
    }
  }
  const config = stringOption(values, 'config');
  if (config !== undefined) flags.config = config;
  return flags;
}

/** Resolves when the signal aborts; never, without one (the process then ends by signal). */
export function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal === undefined) return;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export const serveCommand: CommandDefinition = {
  path: ['serve'],
  summary: 'start the server',
  usage: '[--host HOST] [--port PORT] [--data-dir DIR] [--config FILE] [--insecure-dev] [--tls-cert FILE] [--tls-key FILE] [--SETTING VALUE …]',
  description:
    'Every setting of docs/configuration.md is a flag (--FLAG VALUE; booleans --FLAG or --no-FLAG), an AIAAS_*\n' +
    'environment variable and a key of the JSON config file; flags win over the environment, the environment over\n' +
    'the file. Secrets are better passed by environment or file than as flags, which other local users can see.\n' +
    'A master key is required (AIAAS_MASTER_KEY or AIAAS_MASTER_KEY_FILE; create one with\n' +
    '`aiaas admin gen-master-key`) unless --insecure-dev. On the first start the admin API key is printed once\n' +
    'to stderr. Ctrl-C or SIGTERM finishes in-flight requests and stops.',
  options: listedOptions,
  moreOptions: { note: 'Every other setting of docs/configuration.md, as --FLAG VALUE (booleans: --FLAG, --no-FLAG)', options: settingOptions() },
  examples: [
    'AIAAS_MASTER_KEY="$(aiaas admin gen-master-key)" aiaas serve --port 8080 --data-dir ./aiaas-data',
    'aiaas serve --insecure-dev --job-concurrency 2 --rate-limit-per-second 20',
  ],
  async run(context) {
    const config = loadConfig({ flags: serverFlags(context.values), env: context.io.env, cwd: context.io.cwd });
    // The server (database, engine, HTTP stack) loads only when it is started.
    const { startServer } = await import('../../startup/start.ts');
    const { createServerLogger } = await import('../../startup/logger.ts');
    if (config.insecureDev && config.masterKey === undefined && config.masterKeyFile === undefined) {
      // Said plainly on stderr, whatever the log format: this mode must not go unnoticed.
      context.io.stderr.write(
        `WARNING: insecure-dev mode. The master key is kept in ${config.dataDir} next to the data it protects:\n` +
          '         anyone who can read that directory can read everything. Never use it for real data;\n' +
          '         set AIAAS_MASTER_KEY or AIAAS_MASTER_KEY_FILE instead.\n',
      );
    }
    const server = await startServer(config, {
      handleSignals: context.signal === undefined,
      printSecret: (text) => void context.io.stderr.write(text),
      logger: createServerLogger(config, context.io.stdout),
    });
    context.io.stderr.write(`aiaas listening on ${server.url} (data in ${config.dataDir})\n`);
    await untilAborted(context.signal);
    context.io.stderr.write('stopping: finishing in-flight requests\n');
    await server.close();
    return 0;
  },
};

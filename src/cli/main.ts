import { parseArgs } from 'node:util';
import { AiaasError } from '../errors.ts';
import { AiaasClient, type FetchFunction } from '../sdk/client.ts';
import { AiaasApiError, AiaasConnectionError } from '../sdk/errors.ts';
import { TarError } from '../sdk/tar.ts';
import { CliFailure, CliUsageError, exitCodes, type CommandContext, type CommandDefinition, type OptionDefinition } from './command.ts';
import { adminCommands } from './commands/admin.ts';
import { auditCommands } from './commands/audit.ts';
import { backupCommands, checkCommand } from './commands/backup.ts';
import { datasetCommands } from './commands/datasets.ts';
import { demoCommand } from './commands/demo.ts';
import { jobCommands } from './commands/jobs.ts';
import { keyCommands, tenantCommands } from './commands/keys.ts';
import { modelCommands } from './commands/models.ts';
import { predictCommand } from './commands/predict.ts';
import { serveCommand } from './commands/serve.ts';
import { trainCommand } from './commands/train.ts';
import { chatCommand } from './commands/chat.ts';
import { usageCommand } from './commands/usage.ts';
import { billingCommands } from './commands/billing.ts';
import { benchCommand } from './commands/bench.ts';
import { sweepCommands } from './commands/sweeps.ts';
import { inspectCommands, jobShowCommand, statusCommand, whoamiCommand } from './commands/inspect.ts';
import type { CliIo } from './io.ts';

export const defaultServer = 'http://127.0.0.1:8080';

/** Every command, in the order `aiaas --help` lists them. */
export const commands: readonly CommandDefinition[] = [
  serveCommand,
  demoCommand,
  ...datasetCommands,
  ...modelCommands,
  ...jobCommands,
  predictCommand,
  chatCommand,
  ...keyCommands,
  ...tenantCommands,
  ...auditCommands,
  ...adminCommands,
  checkCommand,
  ...backupCommands,
  trainCommand,
  usageCommand,
  ...billingCommands,
  benchCommand,
  ...sweepCommands,
  ...inspectCommands,
  jobShowCommand,
  whoamiCommand,
  statusCommand,
];

const groupSummaries: Readonly<Record<string, string>> = {
  datasets: 'upload, list and delete datasets',
  models: 'list, show, push, download and delete models, versions and aliases',
  jobs: 'submit, list, show, watch and cancel training jobs',
  keys: 'create, list and revoke API keys',
  tenants: 'create, list and delete tenants',
  audit: 'verify and export the audit log',
  admin: 'master key tools, data directory check',
  backup: 'create, verify, restore and list backups',
  plans: 'list, set and delete billing plans',
  sweeps: 'submit and show hyperparameter sweeps',
};

const globalServerOptions: Readonly<Record<string, OptionDefinition>> = {
  server: { type: 'string', valueName: 'URL', description: `server address (env AIAAS_SERVER; default ${defaultServer})` },
  'api-key': { type: 'string', valueName: 'KEY', description: 'API key (env AIAAS_API_KEY)' },
};
const jsonOption: OptionDefinition = { type: 'boolean', description: 'print JSON instead of text' };
const helpOption: OptionDefinition = { type: 'boolean', short: 'h', description: 'show this help' };

/** Global options that take a value, so their value is not mistaken for a command word. */
const valueOptions = new Set(['--server', '--api-key']);

export interface MainOptions {
  /** For tests: replaces global fetch in the SDK client. */
  fetch?: FetchFunction;
  /** Aborts long-running commands (watch, demo); the binary wires it to SIGINT. */
  signal?: AbortSignal;
  /**
   * Each Ctrl-C is first dispatched here as a cancelable `interrupt` event; a command that handles
   * it itself (chat stops the current answer) calls preventDefault, and `signal` is left alone.
   */
  interrupts?: EventTarget;
}

function commandName(definition: CommandDefinition): string {
  return definition.path.join(' ');
}

function optionsOf(definition: CommandDefinition): Record<string, OptionDefinition> {
  return {
    ...definition.options,
    ...definition.moreOptions?.options,
    ...(definition.server === true ? globalServerOptions : {}),
    ...(definition.json === true ? { json: jsonOption } : {}),
    help: helpOption,
  };
}

function optionLabel(name: string, option: OptionDefinition): string {
  const flag = `${option.short === undefined ? '    ' : `-${option.short}, `}--${name}`;
  return option.type === 'string' ? `${flag} ${option.valueName ?? 'VALUE'}` : flag;
}

function optionLines(options: Readonly<Record<string, OptionDefinition>>, width: number): string[] {
  return Object.entries(options).map(([name, option]) => `  ${optionLabel(name, option).padEnd(width)}${option.description}`);
}

/** `--a, --b, …` wrapped to lines of at most about 100 characters. */
function nameLines(names: readonly string[]): string[] {
  const lines: string[] = [];
  let line = '';
  for (const name of names) {
    const item = `--${name}`;
    if (line !== '' && line.length + item.length + 2 > 100) {
      lines.push(`  ${line},`);
      line = item;
    } else line = line === '' ? item : `${line}, ${item}`;
  }
  if (line !== '') lines.push(`  ${line}`);
  return lines;
}

export function commandHelp(definition: CommandDefinition): string {
  const lines = [`Usage: aiaas ${commandName(definition)}${definition.usage === '' ? '' : ` ${definition.usage}`}`, '', definition.summary];
  if (definition.description !== undefined) lines.push('', definition.description);
  const own = { ...definition.options };
  const global = {
    ...(definition.server === true ? globalServerOptions : {}),
    ...(definition.json === true ? { json: jsonOption } : {}),
    help: helpOption,
  };
  const width = Math.max(...Object.entries({ ...own, ...global }).map(([name, option]) => optionLabel(name, option).length)) + 2;
  if (Object.keys(own).length > 0) lines.push('', 'Options:', ...optionLines(own, width));
  if (definition.moreOptions !== undefined) lines.push('', `${definition.moreOptions.note}:`, ...nameLines(Object.keys(definition.moreOptions.options)));
  lines.push('', 'Global options:', ...optionLines(global, width));
  if (definition.examples !== undefined && definition.examples.length > 0) lines.push('', 'Examples:', ...definition.examples.map((example) => `  ${example}`));
  return `${lines.join('\n')}\n`;
}

function groupHelp(group: string): string {
  const members = commands.filter((definition) => definition.path[0] === group && definition.path.length > 1);
  const width = Math.max(...members.map((definition) => commandName(definition).length)) + 2;
  return [
    `Usage: aiaas ${group} <command> [options]`,
    '',
    `${groupSummaries[group] ?? ''}`.replace(/^./, (letter) => letter.toUpperCase()),
    '',
    'Commands:',
    ...members.map((definition) => `  ${commandName(definition).padEnd(width)}${definition.summary}`),
    '',
    `Run 'aiaas ${group} <command> --help' for a command's options.`,
    '',
  ].join('\n');
}

export function mainHelp(): string {
  const rows: [string, string][] = [];
  const seenGroups = new Set<string>();
  for (const definition of commands) {
    const [group] = definition.path as [string];
    if (definition.path.length === 1) rows.push([group, definition.summary]);
    else if (!seenGroups.has(group)) {
      seenGroups.add(group);
      const subcommands = [...new Set(commands.filter((item) => item.path[0] === group).map((item) => item.path[1]))];
      rows.push([`${group} ${subcommands.join('|')}`, groupSummaries[group] ?? '']);
    }
  }
  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  return [
    'Usage: aiaas <command> [options]',
    '',
    'Self-hostable AI models as a service: train networks, version them, serve them over KServe V2 and TF-Serving.',
    '',
    'Commands:',
    ...rows.map(([name, summary]) => `  ${name.padEnd(width)}${summary}`),
    '',
    'Environment:',
    `  AIAAS_SERVER    server address for client commands (default ${defaultServer})`,
    '  AIAAS_API_KEY   API key for client commands',
    '',
    "Run 'aiaas <command> --help' for a command's options. Docs: docs/cli.md",
    '',
  ].join('\n');
}

/** Finds the command words among the arguments, skipping options and the values of global ones. */
function splitCommand(argv: readonly string[]): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  let skipValue = false;
  let done = false;
  for (const argument of argv) {
    if (skipValue) {
      rest.push(argument);
      skipValue = false;
      continue;
    }
    // Up to three words (`models alias rm`); a word joins only when some command starts with the words so far.
    if (!done && !argument.startsWith('-') && words.length < 3) {
      const candidate = [...words, argument];
      const matches = commands.some((definition) => candidate.every((word, index) => definition.path[index] === word));
      if (matches || words.length === 0) {
        words.push(argument);
        continue;
      }
    }
    if (argument === '--') done = true;
    if (valueOptions.has(argument)) skipValue = true;
    if (!argument.startsWith('-')) done = true;
    rest.push(argument);
  }
  return { words, rest };
}

function printError(io: CliIo, code: string, message: string): void {
  io.stderr.write(`error ${code}: ${message}\n`);
}

/** Maps anything thrown to `error CODE: message` and an exit code; never prints a stack for a user error. */
export function reportError(io: CliIo, error: unknown): number {
  if (error instanceof CliUsageError) {
    printError(io, error.code, error.message);
    io.stderr.write(`Run 'aiaas ${error.command === undefined ? '' : `${error.command} `}--help' for usage.\n`);
    return exitCodes.usage;
  }
  if (error instanceof CliFailure) {
    printError(io, error.code, error.message);
    return error.exitCode;
  }
  if (AiaasApiError.isInstance(error)) {
    printError(io, error.code, error.message);
    if (error.details !== undefined && Object.keys(error.details).length > 0) io.stderr.write(`  details: ${JSON.stringify(error.details)}\n`);
    if (error.code === 'UNAUTHENTICATED') io.stderr.write('  pass --api-key KEY or set AIAAS_API_KEY\n');
    return exitCodes.failure;
  }
  if (AiaasConnectionError.isInstance(error)) {
    printError(io, error.code, `${error.message} (is the server running? start one with 'aiaas serve', or pass --server URL)`);
    return exitCodes.failure;
  }
  if (AiaasError.isInstance(error)) {
    printError(io, error.code, error.message);
    return exitCodes.failure;
  }
  if (error instanceof TarError) {
    printError(io, error.code, error.message);
    return exitCodes.failure;
  }
  if (error instanceof Error && error.name === 'AbortError') {
    printError(io, 'INTERRUPTED', 'stopped');
    return exitCodes.interrupted;
  }
  const systemError = error as { code?: unknown; path?: unknown; message?: unknown };
  if (typeof systemError.code === 'string' && typeof systemError.path === 'string') {
    // File-system errors name a path the user gave: that is a user error, not a crash.
    printError(io, systemError.code, String(systemError.message).replace(`${systemError.code}: `, ''));
    return exitCodes.failure;
  }
  printError(io, 'INTERNAL', error instanceof Error ? error.message : String(error));
  if (io.env.AIAAS_DEBUG === '1' && error instanceof Error && error.stack !== undefined) io.stderr.write(`${error.stack}\n`);
  return exitCodes.failure;
}

async function runCommand(definition: CommandDefinition, rest: string[], io: CliIo, options: MainOptions): Promise<number> {
  const name = commandName(definition);
  const declared = optionsOf(definition);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: Object.fromEntries(
        Object.entries(declared).map(([key, option]) => [key, option.short === undefined ? { type: option.type } : { type: option.type, short: option.short }]),
      ),
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new CliUsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ''), name);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) {
    io.stdout.write(commandHelp(definition));
    return exitCodes.ok;
  }
  const names = definition.positionals ?? [];
  const required = names.filter((positional) => !positional.endsWith('?')).length;
  if (parsed.positionals.length < required) {
    throw new CliUsageError(`missing ${names.slice(parsed.positionals.length, required).join(' ')}`, name);
  }
  if (parsed.positionals.length > names.length) {
    throw new CliUsageError(`unexpected argument "${parsed.positionals[names.length]}"`, name);
  }
  const server = (typeof values.server === 'string' ? values.server : undefined) ?? nonEmpty(io.env.AIAAS_SERVER) ?? defaultServer;
  const apiKey = (typeof values['api-key'] === 'string' ? values['api-key'] : undefined) ?? nonEmpty(io.env.AIAAS_API_KEY);
  let client: AiaasClient | undefined;
  const context: CommandContext = {
    io,
    values,
    positionals: parsed.positionals,
    json: values.json === true,
    server,
    apiKey,
    client: () => {
      if (client === undefined) {
        try {
          client = new AiaasClient({ baseUrl: server, apiKey, ...(options.fetch === undefined ? {} : { fetch: options.fetch }) });
        } catch (error) {
          throw new CliUsageError(`invalid --server / AIAAS_SERVER "${server}": ${(error as Error).message}`, name);
        }
      }
      return client;
    },
    signal: options.signal,
    interrupts: options.interrupts,
  };
  return await definition.run(context);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Runs `aiaas ARGV`; resolves to the process exit code. Output goes only to `io`. */
export async function main(argv: readonly string[], io: CliIo, options: MainOptions = {}): Promise<number> {
  try {
    const { words, rest } = splitCommand(argv);
    if (words.length === 0) {
      if (rest.includes('--version')) {
        io.stdout.write('aiaas 0.1.0\n');
        return exitCodes.ok;
      }
      if (rest.includes('--help') || rest.includes('-h')) {
        io.stdout.write(mainHelp());
        return exitCodes.ok;
      }
      if (rest.length === 0) {
        io.stderr.write(mainHelp());
        return exitCodes.usage;
      }
      throw new CliUsageError(`unknown option ${rest[0]}; expected a command`);
    }
    if (words[0] === 'help') return await main([...words.slice(1), ...rest, '--help'], io, options);
    const definition = commands.find((item) => item.path.length === words.length && item.path.every((word, index) => words[index] === word));
    if (definition === undefined) {
      const group = words[0] as string;
      if (groupSummaries[group] !== undefined) {
        const word = rest.find((argument) => !argument.startsWith('-'));
        if (word !== undefined) throw new CliUsageError(`unknown command "${group} ${word}"`, group);
        if (rest.includes('--help') || rest.includes('-h')) {
          io.stdout.write(groupHelp(group));
          return exitCodes.ok;
        }
        io.stderr.write(groupHelp(group));
        return exitCodes.usage;
      }
      throw new CliUsageError(`unknown command "${group}"`);
    }
    return await runCommand(definition, rest, io, options);
  } catch (error) {
    return reportError(io, error);
  }
}

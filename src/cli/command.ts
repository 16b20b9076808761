import type { AiaasClient } from '../sdk/client.ts';
import type { CliIo } from './io.ts';

/** A mistake in how the command was called: printed with a pointer to `--help`, exit code 2. */
export class CliUsageError extends Error {
  readonly code = 'USAGE';
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'CliUsageError';
    this.command = command;
  }
}

/** A failure the CLI detected itself (unreadable file, failed job, broken audit chain). */
export class CliFailure extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode = 1) {
    super(message);
    this.name = 'CliFailure';
    this.code = code;
    this.exitCode = exitCode;
  }
}

export const exitCodes = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

export interface OptionDefinition {
  type: 'string' | 'boolean';
  short?: string;
  /** Shown in help, e.g. `FILE`; string options only. */
  valueName?: string;
  description: string;
}

export type OptionValues = Readonly<Record<string, string | boolean | undefined>>;

export interface CommandContext {
  io: CliIo;
  values: OptionValues;
  positionals: readonly string[];
  /** `--json` was given (only on commands that offer it). */
  json: boolean;
  /** Resolved from --server / AIAAS_SERVER / the default. */
  server: string;
  apiKey: string | undefined;
  /** Built on first use, so commands that never reach the server never validate its address. */
  client(): AiaasClient;
  signal: AbortSignal | undefined;
  /** Ctrl-C presses as cancelable `interrupt` events; see MainOptions.interrupts. */
  interrupts?: EventTarget | undefined;
}

export interface CommandDefinition {
  /** Words after `aiaas`, e.g. `['datasets', 'push']`. */
  path: readonly string[];
  summary: string;
  /** Everything after the command words in the usage line. */
  usage: string;
  /** Longer explanation printed under the usage line. */
  description?: string;
  options?: Readonly<Record<string, OptionDefinition>>;
  /** Accepted like `options`, but help lists them by name only, under `note` (for long generated sets). */
  moreOptions?: { note: string; options: Readonly<Record<string, OptionDefinition>> };
  /** Positional names in order; a trailing `?` marks an optional one. */
  positionals?: readonly string[];
  /** Adds --server and --api-key. */
  server?: boolean;
  /** Adds --json. */
  json?: boolean;
  examples?: readonly string[];
  run(context: CommandContext): Promise<number>;
}

export function stringOption(values: OptionValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function requiredOption(values: OptionValues, name: string, command: string): string {
  const value = stringOption(values, name);
  if (value === undefined || value === '') throw new CliUsageError(`missing --${name}`, command);
  return value;
}

export function integerOption(values: OptionValues, name: string, command: string, minimum: number): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < minimum) {
    throw new CliUsageError(`--${name} must be an integer ≥ ${minimum}, got "${text}"`, command);
  }
  return value;
}

export function fractionOption(values: OptionValues, name: string, command: string): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value < 1)) throw new CliUsageError(`--${name} must be a number in [0, 1), got "${text}"`, command);
  return value;
}

export function choiceOption<T extends string>(values: OptionValues, name: string, choices: readonly T[], command: string): T | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) throw new CliUsageError(`--${name} must be one of ${choices.join(', ')}, got "${text}"`, command);
  return text as T;
}

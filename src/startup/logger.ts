/**
 * The server's pino logger. JSON lines for machines (log shippers, `jq`); on a terminal, or with
 * `logFormat: pretty`, one readable line per entry: time, level, message, then the fields.
 */
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { AiaasConfig } from '../config.ts';

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const levelColours: Readonly<Record<number, string>> = { 40: '\u001b[33m', 50: '\u001b[31m', 60: '\u001b[31m' };
const omitted = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

function fieldText(name: string, value: unknown): string {
  if (name === 'req' && typeof value === 'object' && value !== null) {
    const request = value as { method?: unknown; url?: unknown };
    return `${String(request.method)} ${String(request.url)}`;
  }
  if (name === 'res' && typeof value === 'object' && value !== null) return `status=${String((value as { statusCode?: unknown }).statusCode)}`;
  if (name === 'err' && typeof value === 'object' && value !== null) {
    const error = value as { type?: unknown; message?: unknown };
    return `err=${JSON.stringify(`${String(error.type ?? 'Error')}: ${String(error.message)}`)}`;
  }
  if (name === 'responseTime' && typeof value === 'number') return `${value.toFixed(1)}ms`;
  return `${name}=${typeof value === 'string' ? (/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)) : JSON.stringify(value)}`;
}

/** One pino JSON line as `12:34:56.789 INFO  message key=value …`; a line that is not JSON passes through. */
export function prettyLogLine(line: string, options: { colour?: boolean } = {}): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const name = (levelNames[level] ?? String(level)).padEnd(5);
  const colour = options.colour === true ? levelColours[level] : undefined;
  const label = colour === undefined ? name : `${colour}${name}\u001b[0m`;
  const fields = Object.entries(entry)
    .filter(([key]) => !omitted.has(key))
    .map(([key, value]) => fieldText(key, value));
  return `${[time, label, typeof entry.msg === 'string' ? entry.msg : '', ...fields].filter((part) => part !== '').join(' ')}\n`;
}

/** A pino destination that rewrites each JSON line readably onto `target`. */
export function prettyDestination(target: NodeJS.WritableStream & { isTTY?: boolean }): DestinationStream {
  const colour = target.isTTY === true;
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        target.write(prettyLogLine(pending.slice(0, newline), { colour }));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
      callback();
    },
  });
}

/** `logFormat: auto` is pretty exactly when the log stream is a terminal. */
export function usesPrettyLogs(config: Pick<AiaasConfig, 'logFormat'>, target: { isTTY?: boolean }): boolean {
  return config.logFormat === 'pretty' || (config.logFormat === 'auto' && target.isTTY === true);
}

export function createServerLogger(config: Pick<AiaasConfig, 'logLevel' | 'logFormat'>, target: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Logger {
  const options = { level: config.logLevel, redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' } };
  if (usesPrettyLogs(config, target)) return pino(options, prettyDestination(target));
  return target === process.stdout ? pino(options) : pino(options, target);
}

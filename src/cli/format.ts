/** Plain-text rendering shared by the commands: aligned tables, sizes, durations. */
import type { CommandContext } from './command.ts';

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] as number)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = count / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m${String(rest).padStart(2, '0')}s`;
  return `${rest}s`;
}

/** Timestamps shortened to the minute: listings need "when", not milliseconds. */
export function timestamp(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') return '-';
  return iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, 'Z');
}

/** Short metric names as Keras prints them. */
export function metricName(name: string): string {
  return name === 'accuracy' ? 'acc' : name;
}

export function metrics(values: Readonly<Record<string, number>> | undefined, prefix = ''): string {
  return Object.entries(values ?? {})
    .map(([name, value]) => `${prefix}${metricName(name)} ${value.toFixed(4)}`)
    .join(' ');
}

/** Indented JSON with arrays of plain values kept on one line, so a tensor does not take a line per number. */
export function json(value: unknown): string {
  const text = JSON.stringify(value, null, 2) ?? 'null';
  return `${text.replace(/\[\n\s*((?:-?[\d.eE+-]+|true|false|null|"[^"\\\n[\]{}]*")(?:,\n\s*(?:-?[\d.eE+-]+|true|false|null|"[^"\\\n[\]{}]*"))*)\n\s*\]/g, (_match, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`)}\n`;
}

/** A listing on stdout: JSON with --json, otherwise an aligned table, or `no WHAT` when there is nothing. */
export function writeListing<T>(
  context: Pick<CommandContext, 'io' | 'json'>,
  what: string,
  items: readonly T[],
  headers: readonly string[],
  row: (item: T) => string[],
): void {
  context.io.stdout.write(context.json ? json(items) : table(headers, items.map(row)) || `no ${what}\n`);
}

const sparkBlocks = '▁▂▃▄▅▆▇█';

/**
 * A series as one line of block characters scaled between its own minimum and maximum, e.g.
 * `█▅▃▂▁▁`; a flat series is drawn at mid height. Non-finite values are drawn as spaces.
 */
export function sparkline(values: readonly number[]): string {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return '';
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  return values
    .map((value) => {
      if (!Number.isFinite(value)) return ' ';
      if (high === low) return sparkBlocks[3];
      return sparkBlocks[Math.round(((value - low) / (high - low)) * (sparkBlocks.length - 1))];
    })
    .join('');
}

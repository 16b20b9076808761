/**
 * A backup directory's `manifest.json`: every file with its size and SHA-256, written last, with
 * a checksum over its own content. A backup without a manifest whose checksum holds is incomplete.
 */
import { createHash } from 'node:crypto';

export const manifestFileName = 'manifest.json';
export const databaseFileName = 'aiaas.db';
export const artifactsDirectoryName = 'artifacts';
/** A backup is written into `<out>.partial` and renamed to `<out>` once complete. */
export const partialSuffix = '.partial';
export const manifestFormat = 'aiaas-backup';
export const manifestFormatVersion = 1;

export interface BackupFileEntry {
  /** Relative to the backup directory, `/`-separated. */
  path: string;
  bytes: number;
  /** lowercase hex */
  sha256: string;
}

/** Caller-defined facts about the backup (the startup layer records how the server secret is carried). */
export type BackupMetadata = Readonly<Record<string, string | number | boolean | null>>;

export interface BackupManifestBody {
  format: typeof manifestFormat;
  formatVersion: typeof manifestFormatVersion;
  createdAt: string;
  /** Migrations applied to the copied database: a restore needs a server that knows all of them. */
  migrations: string[];
  counts: { tenants: number; artifacts: number; bytes: number };
  metadata: BackupMetadata;
  /** Sorted by path. */
  files: BackupFileEntry[];
}

export interface BackupManifest extends BackupManifestBody {
  /** `sha256:` of the JSON text of every other field, in this order. */
  checksum: string;
}

function checksumOf(body: BackupManifestBody): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(body), 'utf8').digest('hex')}`;
}

export function sealManifest(body: BackupManifestBody): BackupManifest {
  // Fixed key order: the checksum is recomputed from the parsed text, which keeps this order.
  const ordered: BackupManifestBody = {
    format: body.format,
    formatVersion: body.formatVersion,
    createdAt: body.createdAt,
    migrations: body.migrations,
    counts: body.counts,
    metadata: body.metadata,
    files: [...body.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  return { ...ordered, checksum: checksumOf(ordered) };
}

export function manifestText(manifest: BackupManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Parses and checks a manifest's shape and checksum; returns the problems found (empty: sound). */
export function parseManifest(text: string): { manifest?: BackupManifest; problems: string[] } {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return { problems: [`${manifestFileName} is not valid JSON (${(error as Error).message}): the backup was cut short or altered`] };
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return { problems: [`${manifestFileName} is not a JSON object`] };
  const record = document as Record<string, unknown>;
  if (record.format !== manifestFormat) return { problems: [`${manifestFileName} is not an aiaas backup manifest (format ${JSON.stringify(record.format)})`] };
  if (record.formatVersion !== manifestFormatVersion) {
    return { problems: [`${manifestFileName} has format version ${JSON.stringify(record.formatVersion)}; this aiaas reads version ${manifestFormatVersion}`] };
  }
  const { checksum, ...body } = record;
  if (typeof checksum !== 'string') return { problems: [`${manifestFileName} has no checksum`] };
  const files = body.files;
  const validFiles =
    Array.isArray(files) &&
    files.every(
      (entry: unknown) =>
        typeof entry === 'object' &&
        entry !== null &&
        typeof (entry as BackupFileEntry).path === 'string' &&
        Number.isSafeInteger((entry as BackupFileEntry).bytes) &&
        typeof (entry as BackupFileEntry).sha256 === 'string',
    );
  if (!validFiles || !Array.isArray(body.migrations) || typeof body.createdAt !== 'string' || typeof body.counts !== 'object' || typeof body.metadata !== 'object') {
    return { problems: [`${manifestFileName} is missing fields or has fields of the wrong type`] };
  }
  const expected = `sha256:${createHash('sha256').update(JSON.stringify(body), 'utf8').digest('hex')}`;
  if (expected !== checksum) return { problems: [`${manifestFileName} does not match its own checksum: it was altered or written incompletely`] };
  return { manifest: record as unknown as BackupManifest, problems: [] };
}

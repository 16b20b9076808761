/**
 * The storage half of `aiaas admin check`: every artifact file hashed against its name, the
 * database's integrity, and the two directions of drift between rows and files: orphans (a file
 * no row of a live tenant names) and missing files (a row names a file that is not there).
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { artifactRelativePath, isArtifactRef } from './artifact-references.ts';
import { hashFile, isMissing, scanArtifactDirectory } from './backup/files.ts';
import { inspectConnection } from './backup/snapshot.ts';

export interface StorageCheck {
  problems: string[];
  /** Not wrong, worth knowing: uploads in flight, temporary files a restart sweeps. */
  warnings: string[];
  artifacts: number;
  artifactBytes: number;
  references: number;
  migrations: string[];
}

export interface CheckStorageOptions {
  /** A connection to the database (read-only is enough). */
  connection: BetterSqlite3.Database;
  artifactDir: string;
  /** Unreferenced files younger than this are reported as warnings: an upload may be between its file and its row. */
  recentMs?: number;
  now?: () => Date;
}

export async function checkStorage(options: CheckStorageOptions): Promise<StorageCheck> {
  const now = options.now ?? (() => new Date());
  const recentMs = options.recentMs ?? 60_000;
  const result: StorageCheck = { problems: [], warnings: [], artifacts: 0, artifactBytes: 0, references: 0, migrations: [] };
  // Files first, rows second: an artifact is written before the row naming it, so a file listed
  // here whose row commits meanwhile is seen as referenced, not as an orphan.
  const scan = await scanArtifactDirectory(options.artifactDir);
  const facts = inspectConnection(options.connection);
  result.migrations = facts.migrations;
  if (facts.integrity.length !== 1 || facts.integrity[0] !== 'ok') {
    result.problems.push(`database fails PRAGMA integrity_check: ${facts.integrity.slice(0, 10).join('; ')}`);
  }
  if (facts.foreignKeyViolations > 0) result.problems.push(`database has ${facts.foreignKeyViolations} foreign key violations`);

  const live = new Map<string, string>();
  const ofDeletedTenants = new Map<string, string>();
  for (const reference of facts.references) {
    if (!isArtifactRef(reference.ref)) {
      result.problems.push(`malformed artifact ref at ${reference.where}`);
      continue;
    }
    if (reference.tenantDeleted) ofDeletedTenants.set(reference.ref, reference.tenantId);
    else if (!live.has(reference.ref)) live.set(reference.ref, reference.where);
  }
  result.references = live.size;

  const onDisk = new Set<string>();
  for (const file of scan.artifacts) {
    onDisk.add(file.ref);
    const path = join(options.artifactDir, ...file.relativePath.split('/'));
    let hashed;
    try {
      hashed = await hashFile(path);
    } catch (error) {
      if (isMissing(error)) continue; // deleted since the scan
      result.problems.push(`artifact ${file.relativePath} cannot be read: ${(error as Error).message}`);
      continue;
    }
    result.artifacts += 1;
    result.artifactBytes += hashed.bytes;
    if (`sha256:${hashed.sha256}` !== file.ref) result.problems.push(`artifact ${file.ref} is corrupt: its bytes hash to sha256:${hashed.sha256}`);
    if (live.has(file.ref)) continue;
    const deletedTenant = ofDeletedTenants.get(file.ref);
    if (deletedTenant !== undefined) {
      result.problems.push(`orphan artifact ${file.ref}: it belongs to the deleted tenant ${deletedTenant}, whose key is destroyed; remove it`);
    } else if (now().getTime() - file.modifiedMs < recentMs) {
      result.warnings.push(`artifact ${file.ref} is not referenced yet (written ${Math.round((now().getTime() - file.modifiedMs) / 1000)} s ago: an upload in progress?)`);
    } else {
      result.problems.push(`orphan artifact ${file.ref}: on disk, but no row references it`);
    }
  }
  for (const [ref, where] of live) {
    if (onDisk.has(ref)) continue;
    // Written after the scan? Then it is there now.
    const info: Stats | undefined = await stat(join(options.artifactDir, ...artifactRelativePath(ref as `sha256:${string}`).split('/'))).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (info === undefined) result.problems.push(`missing artifact ${ref}: referenced by ${where}, not on disk`);
  }
  for (const path of scan.temporary) result.warnings.push(`temporary file ${path} (a write in progress, or left by a crash; removed at the next start)`);
  for (const path of scan.unexpected) result.problems.push(`unexpected entry artifacts/${path}: not written by the artifact store`);
  return result;
}

/**
 * Moves a data dir's artifacts from the single-blob format (whole-file AES-GCM, written before
 * streamed artifacts) to the segmented stream format, once, at startup before the server serves.
 *
 * Crash safety, step by step for each old artifact:
 *   1. write the re-encrypted artifact (temp file, fsync, rename: a complete file or none). Its
 *      bytes are a function of the old ref, so a rerun after a crash writes the very same file;
 *   2. point every row naming the old ref at the new one, in one database transaction;
 *   3. delete the old file.
 * A crash before 2 leaves the old rows and files intact (the rerun redoes 1 idempotently); a crash
 * between 2 and 3 leaves an unreferenced old-format file, which the final sweep of the next run
 * deletes (nothing writes that format any more, so an unreferenced one is always such a leftover).
 * Only when every artifact is done is `<dataDir>/artifact-format` written, so later starts skip the
 * walk. Reads never depend on the migration: the format is told by each file's magic bytes.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AiaasError } from '../errors.ts';
import type { EncryptedArtifactStore } from '../security/encrypted-artifact-store.ts';
import type { ArtifactRef, FileSystemArtifactStore, Repositories } from '../storage/index.ts';

export const artifactFormatFileName = 'artifact-format';
const currentFormat = 'stream-v1';

export interface ArtifactFormatMigrationReport {
  /** Artifacts named by rows. */
  referenced: number;
  migrated: number;
  /** Unreadable for good (the tenant's key was destroyed): nothing to migrate. */
  unreadable: number;
  /** Could not be migrated now (corrupt, missing); the next start tries again. */
  failed: number;
  /** Unreferenced old-format files left by an interrupted earlier run, deleted. */
  leftoversRemoved: number;
}

export interface ArtifactFormatMigrationOptions {
  dataDir: string;
  repositories: Repositories;
  artifacts: EncryptedArtifactStore;
  store: FileSystemArtifactStore;
  logger: Logger;
}

/** Runs the migration unless the data dir is already marked done; returns what it did (undefined: nothing to do). */
export async function migrateArtifactFormat(options: ArtifactFormatMigrationOptions): Promise<ArtifactFormatMigrationReport | undefined> {
  const markerPath = join(options.dataDir, artifactFormatFileName);
  const marker = await readFile(markerPath, 'utf8').catch(() => '');
  if (marker.trim() === currentFormat) return undefined;

  const { repositories, artifacts, store, logger } = options;
  const report: ArtifactFormatMigrationReport = { referenced: 0, migrated: 0, unreadable: 0, failed: 0, leftoversRemoved: 0 };
  for (const { tenantId, ref } of await repositories.artifactReferences.list()) {
    report.referenced += 1;
    try {
      if (!(await artifacts.has(ref))) throw new AiaasError('NOT_FOUND', `Artifact ${ref} is missing`);
      if ((await artifacts.formatOf(ref)) !== 'single-blob') continue;
      const newRef = await artifacts.reencryptSingleBlob(tenantId, ref);
      await repositories.artifactReferences.replace(tenantId, ref, newRef);
      await artifacts.delete(ref);
      report.migrated += 1;
    } catch (error) {
      if (AiaasError.isInstance(error) && error.code === 'KEY_DESTROYED') {
        report.unreadable += 1;
        continue;
      }
      report.failed += 1;
      logger.error({ err: error, tenantId, ref }, 'could not migrate an artifact to the stream format; it stays readable as it is, and the next start tries again');
    }
  }

  const referenced = new Set((await repositories.artifactReferences.list()).map((reference) => reference.ref));
  for await (const ref of store.list()) {
    if (referenced.has(ref)) continue;
    const format = await artifacts.formatOf(ref as ArtifactRef).catch(() => undefined);
    if (format !== 'single-blob') continue;
    await artifacts.delete(ref);
    report.leftoversRemoved += 1;
  }

  if (report.failed === 0) await writeMarker(markerPath);
  return report;
}

/** temp → fsync → rename, so the marker is either absent or complete. */
async function writeMarker(path: string): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${currentFormat}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

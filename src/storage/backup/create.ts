/**
 * Online backups: a consistent copy of the database, the artifact files it references, caller
 * supplied extra files, and a manifest written last. Everything goes into `<out>.partial`, which
 * is renamed to `<out>` only once complete, so a crash at any point leaves no directory that
 * `verifyBackup` accepts.
 */
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AiaasError } from '../../errors.ts';
import type { ArtifactRef } from '../artifact-store.ts';
import { artifactRelativePath, isArtifactRef } from '../artifact-references.ts';
import { copyHashed, hashFile, isMissing, scanArtifactDirectory, syncDirectory, writeDurably } from './files.ts';
import {
  artifactsDirectoryName,
  databaseFileName,
  manifestFileName,
  manifestFormat,
  manifestFormatVersion,
  manifestText,
  partialSuffix,
  sealManifest,
  type BackupFileEntry,
  type BackupManifest,
  type BackupMetadata,
} from './manifest.ts';
import { finishSnapshotOffThread, type DatabaseSnapshotter, type SnapshotFacts } from './snapshot.ts';

export interface ExtraBackupFile {
  /** A top-level file name in the backup, e.g. `server-secret.wrapped`. */
  name: string;
  bytes: Uint8Array | string;
}

export interface CreateBackupOptions {
  /** The backup directory to create; must not exist. */
  out: string;
  snapshotDatabase: DatabaseSnapshotter;
  /** The live artifact root (`<dataDir>/artifacts`). */
  artifactDir: string;
  extraFiles?: readonly ExtraBackupFile[];
  metadata?: BackupMetadata;
  now?: () => Date;
  /** Progress for the CLI: after the database copy, and per artifact copied. */
  onProgress?: (event: BackupProgress) => void;
  /** Snapshots taken at most, when artifacts vanish between a snapshot and their copy. */
  maxAttempts?: number;
}

export type BackupProgress =
  | { stage: 'database'; attempt: number }
  | { stage: 'artifact'; copied: number; total: number }
  | { stage: 'manifest' };

export interface BackupSummary {
  path: string;
  manifest: BackupManifest;
}

export const extraFileNamePattern = /^[a-z0-9][a-z0-9.-]{0,100}$/;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

export async function createBackup(options: CreateBackupOptions): Promise<BackupSummary> {
  const now = options.now ?? (() => new Date());
  const out = resolve(options.out);
  const partial = `${out}${partialSuffix}`;
  for (const extra of options.extraFiles ?? []) {
    if (!extraFileNamePattern.test(extra.name) || extra.name === manifestFileName || extra.name === databaseFileName) {
      throw new AiaasError('INTERNAL', `'${extra.name}' cannot be an extra backup file name`);
    }
  }
  if (await exists(out)) {
    throw new AiaasError('TARGET_NOT_EMPTY', `${out} already exists; a backup is written to a new directory`, { details: { path: out } });
  }
  await mkdir(dirname(out), { recursive: true, mode: 0o700 });
  // Only an interrupted backup into this same directory leaves this behind: it is never complete.
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { mode: 0o700 });
  try {
    const startedAt = now();
    const { facts, copied } = await copyConsistently(options, partial);
    const files: BackupFileEntry[] = [{ path: databaseFileName, ...(await hashFile(join(partial, databaseFileName))) }];
    for (const [ref, entry] of copied) {
      files.push({ path: `${artifactsDirectoryName}/${artifactRelativePath(ref)}`, bytes: entry.bytes, sha256: entry.sha256 });
    }
    for (const extra of options.extraFiles ?? []) {
      await writeDurably(join(partial, extra.name), extra.bytes);
      files.push({ path: extra.name, ...(await hashFile(join(partial, extra.name))) });
    }
    options.onProgress?.({ stage: 'manifest' });
    const manifest = sealManifest({
      format: manifestFormat,
      formatVersion: manifestFormatVersion,
      createdAt: startedAt.toISOString(),
      migrations: facts.migrations,
      counts: { tenants: facts.tenants, artifacts: copied.size, bytes: files.reduce((sum, file) => sum + file.bytes, 0) },
      metadata: options.metadata ?? {},
      files,
    });
    await syncTree(partial, [...copied.keys()]);
    // The manifest is the last file written: without it (or with a torn one) verify rejects the directory.
    await writeDurably(join(partial, manifestFileName), manifestText(manifest));
    await syncDirectory(partial);
    await rename(partial, out);
    await syncDirectory(dirname(out));
    return { path: out, manifest };
  } catch (error) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}

type CopiedArtifacts = Map<ArtifactRef, { bytes: number; sha256: string }>;

/** Copies one artifact, checking its bytes against its name; false when the file is gone. */
async function copyArtifact(artifactDir: string, partial: string, ref: ArtifactRef, copied: CopiedArtifacts): Promise<boolean> {
  const relative = artifactRelativePath(ref);
  let entry;
  try {
    entry = await copyHashed(join(artifactDir, relative), join(partial, artifactsDirectoryName, relative));
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
  if (`sha256:${entry.sha256}` !== ref) {
    throw new AiaasError('ARTIFACT_CORRUPT', `Artifact ${ref} on disk does not match its name (it hashes to sha256:${entry.sha256}); run aiaas admin check`, {
      details: { ref },
    });
  }
  copied.set(ref, entry);
  return true;
}

/**
 * Copy first, snapshot second, then copy the difference. Artifacts are immutable and written
 * before the rows naming them, so after the bulk copy the snapshot's references are nearly all
 * in hand; only the few written since are copied after it, which keeps the window in which a
 * deletion (a superseded checkpoint, a deleted dataset) can remove a referenced file small. If
 * one does, the snapshot is taken again. Files the final snapshot neither references nor
 * predates (uploads in flight, files deleted meanwhile) are dropped from the backup.
 */
async function copyConsistently(options: CreateBackupOptions, partial: string): Promise<{ facts: SnapshotFacts; copied: CopiedArtifacts }> {
  const maxAttempts = options.maxAttempts ?? 5;
  const copied: CopiedArtifacts = new Map();
  const initial = (await scanArtifactDirectory(options.artifactDir)).artifacts;
  // Reported before the first copy too, so a watcher sees the stage start even if that copy blocks.
  options.onProgress?.({ stage: 'artifact', copied: 0, total: initial.length });
  for (const [index, file] of initial.entries()) {
    await copyArtifact(options.artifactDir, partial, file.ref, copied);
    options.onProgress?.({ stage: 'artifact', copied: index + 1, total: initial.length });
  }

  const databaseCopy = join(partial, databaseFileName);
  for (let attempt = 1; ; attempt += 1) {
    const snapshotStartedMs = Date.now();
    await rm(databaseCopy, { force: true });
    await options.snapshotDatabase(databaseCopy);
    const facts = await finishSnapshotOffThread(databaseCopy);
    if (facts.integrity.length !== 1 || facts.integrity[0] !== 'ok') {
      throw new AiaasError('DATABASE_CORRUPT', `The live database fails PRAGMA integrity_check: ${facts.integrity.slice(0, 5).join('; ')}`);
    }
    options.onProgress?.({ stage: 'database', attempt });

    // A deleted tenant's artifacts are unreadable without its key: carried only while still on disk.
    const required = new Map<ArtifactRef, string>();
    const anyReference = new Set<string>();
    for (const reference of facts.references) {
      if (!isArtifactRef(reference.ref)) {
        throw new AiaasError('ARTIFACT_CORRUPT', `The database holds a malformed artifact ref at ${reference.where}`, { details: { where: reference.where } });
      }
      anyReference.add(reference.ref);
      if (!reference.tenantDeleted && !required.has(reference.ref)) required.set(reference.ref, reference.where);
    }
    const wanted = new Set<ArtifactRef>(required.keys());
    for (const file of (await scanArtifactDirectory(options.artifactDir)).artifacts) {
      if (file.modifiedMs <= snapshotStartedMs || anyReference.has(file.ref)) wanted.add(file.ref);
    }
    const missing: string[] = [];
    for (const ref of [...wanted].sort()) {
      if (copied.has(ref)) continue;
      const present = await copyArtifact(options.artifactDir, partial, ref, copied);
      if (!present) {
        wanted.delete(ref);
        if (required.has(ref)) missing.push(`${ref} (${required.get(ref)})`);
      }
    }
    if (missing.length === 0) {
      for (const ref of [...copied.keys()]) {
        if (wanted.has(ref)) continue;
        await unlink(join(partial, artifactsDirectoryName, artifactRelativePath(ref)));
        copied.delete(ref);
      }
      return { facts, copied: new Map([...copied].sort(([a], [b]) => (a < b ? -1 : 1))) };
    }
    if (attempt >= maxAttempts) {
      throw new AiaasError('ARTIFACT_CORRUPT', `The database references artifacts that are not on disk: ${missing.slice(0, 5).join(', ')}; run aiaas admin check`, {
        details: { missing: missing.slice(0, 20) },
      });
    }
  }
}

/** fsyncs every directory the artifact copies created, deepest first, then the artifacts root. */
async function syncTree(partial: string, refs: readonly ArtifactRef[]): Promise<void> {
  const directories = new Set<string>();
  for (const ref of refs) {
    const relative = artifactRelativePath(ref);
    directories.add(join(partial, artifactsDirectoryName, dirname(relative)));
    directories.add(join(partial, artifactsDirectoryName, dirname(dirname(relative))));
  }
  for (const directory of [...directories].sort((a, b) => b.length - a.length)) await syncDirectory(directory);
  if (refs.length > 0) await syncDirectory(join(partial, artifactsDirectoryName));
}

/** Whether a directory name is an interrupted backup's leftover. */
export function isPartialBackupName(path: string): boolean {
  return basename(path).endsWith(partialSuffix);
}

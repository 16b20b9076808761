/**
 * Restores a verified backup into a new data directory. The files are assembled in a sibling
 * staging directory and renamed into place at the end, so an interrupted restore never leaves a
 * half-filled data directory a server could start on.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AiaasError } from '../../errors.ts';
import { copyHashed, isMissing, syncDirectory } from './files.ts';
import { artifactsDirectoryName, databaseFileName, type BackupManifest } from './manifest.ts';
import { verifyBackup } from './verify.ts';

export interface RestoreBackupOptions {
  backupDir: string;
  /** Must not exist, or be an empty directory. */
  dataDir: string;
  /**
   * Turns the backup's extra files into data-directory files (the startup layer unwraps the
   * server secret here). Receives the staging directory and a reader for extra files.
   */
  restoreExtras?: (context: { stagingDir: string; manifest: BackupManifest; readExtra(name: string): Promise<Buffer> }) => Promise<void>;
}

export interface RestoreSummary {
  dataDir: string;
  manifest: BackupManifest;
  artifacts: number;
}

async function assertEmptyTarget(dataDir: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dataDir);
  } catch (error) {
    if (isMissing(error)) return false;
    if ((error as { code?: unknown }).code === 'ENOTDIR') names = ['(a file)'];
    else throw error;
  }
  if (names.length > 0) {
    throw new AiaasError('TARGET_NOT_EMPTY', `${dataDir} is not empty; restore into a new or empty directory, never over live data`, {
      details: { path: dataDir, entries: names.slice(0, 10) },
    });
  }
  return true;
}

export async function restoreBackup(options: RestoreBackupOptions): Promise<RestoreSummary> {
  const backupDir = resolve(options.backupDir);
  const dataDir = resolve(options.dataDir);
  const targetExists = await assertEmptyTarget(dataDir);
  const verification = await verifyBackup(backupDir);
  if (!verification.ok || verification.manifest === undefined) {
    throw new AiaasError('BACKUP_INVALID', `${backupDir} is not a complete, intact backup: ${verification.problems.slice(0, 5).join('; ')}`, {
      details: { problems: verification.problems.slice(0, 50) },
    });
  }
  const manifest = verification.manifest;
  const staging = join(dirname(dataDir), `.${basename(dataDir)}.restoring-${randomBytes(4).toString('hex')}`);
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    let artifacts = 0;
    for (const entry of manifest.files) {
      const isDatabase = entry.path === databaseFileName;
      const isArtifact = entry.path.startsWith(`${artifactsDirectoryName}/`);
      if (!isDatabase && !isArtifact) continue;
      const copy = await copyHashed(join(backupDir, ...entry.path.split('/')), join(staging, ...entry.path.split('/')));
      // Checked again while copying: the backup may sit on media that changed since it was verified.
      if (copy.sha256 !== entry.sha256 || copy.bytes !== entry.bytes) {
        throw new AiaasError('BACKUP_INVALID', `${entry.path} changed while it was being restored; verify the backup again`, { details: { path: entry.path } });
      }
      if (isArtifact) artifacts += 1;
    }
    await mkdir(join(staging, artifactsDirectoryName), { recursive: true, mode: 0o700 });
    await options.restoreExtras?.({ stagingDir: staging, manifest, readExtra: (name) => readFile(join(backupDir, name)) });
    await syncDirectory(staging);
    if (targetExists) {
      // Checked again right before taking its place: rmdir fails if anything appeared meanwhile.
      await rmdir(dataDir);
    }
    await rename(staging, dataDir);
    await chmod(dataDir, 0o700);
    await syncDirectory(dirname(dataDir));
    return { dataDir, manifest, artifacts };
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}

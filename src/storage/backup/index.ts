export { createBackup, isPartialBackupName, type BackupProgress, type BackupSummary, type CreateBackupOptions, type ExtraBackupFile } from './create.ts';
export { listBackups, pruneBackups, type BackupListing } from './catalog.ts';
export { artifactsDirectoryName, databaseFileName, manifestFileName, partialSuffix, type BackupManifest, type BackupMetadata } from './manifest.ts';
export { restoreBackup, type RestoreBackupOptions, type RestoreSummary } from './restore.ts';
export { snapshotDatabaseFile, type DatabaseSnapshotter } from './snapshot.ts';
export { verifyBackup, type BackupVerification } from './verify.ts';

/**
 * `aiaas backup verify`: a backup is accepted only when its manifest is whole and matches its own
 * checksum, every listed file has the listed size and SHA-256, nothing unlisted lies beside them,
 * the database copy passes `PRAGMA integrity_check`, and every artifact it references is present.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { artifactRelativePath, isArtifactRef } from '../artifact-references.ts';
import { extraFileNamePattern } from './create.ts';
import { hashFile, isMissing } from './files.ts';
import { artifactsDirectoryName, databaseFileName, manifestFileName, parseManifest, partialSuffix, type BackupManifest } from './manifest.ts';
import { inspectDatabase } from './snapshot.ts';

export interface BackupVerification {
  ok: boolean;
  path: string;
  /** Each problem in one sentence; empty when ok. */
  problems: string[];
  /** Present when the manifest itself is sound. */
  manifest?: BackupManifest;
  /** Files whose size and hash were checked. */
  checkedFiles: number;
}

const artifactPathPattern = new RegExp(`^${artifactsDirectoryName}/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$`);

/** Where a manifest path may point: nothing outside the backup, nothing unexpected. */
function pathProblem(path: string): string | undefined {
  if (path === databaseFileName) return undefined;
  const artifact = artifactPathPattern.exec(path);
  if (artifact !== null) return artifact[3]!.startsWith(artifact[1]! + artifact[2]!) ? undefined : `manifest lists ${path}, which is not in the artifact layout`;
  if (extraFileNamePattern.test(path) && path !== manifestFileName) return undefined;
  return `manifest lists the path ${JSON.stringify(path.slice(0, 200))}, which a backup never holds`;
}

async function filesBelow(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isDirectory()) continue;
    found.push(relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'));
  }
  return found.sort();
}

export interface VerifyBackupOptions {
  /** Called per file hashed (the CLI shows progress on large backups). */
  onFile?: (path: string) => void;
}

export async function verifyBackup(path: string, options: VerifyBackupOptions = {}): Promise<BackupVerification> {
  const result: BackupVerification = { ok: false, path, problems: [], checkedFiles: 0 };
  const problem = (text: string) => result.problems.push(text);
  try {
    if (!(await stat(path)).isDirectory()) {
      problem(`${path} is not a directory`);
      return result;
    }
  } catch (error) {
    if (!isMissing(error)) throw error;
    problem(`${path} does not exist`);
    return result;
  }
  if (basename(path).endsWith(partialSuffix)) {
    problem(`${basename(path)} is an interrupted backup (a complete one is renamed from *${partialSuffix}); it cannot be restored`);
  }

  let manifestSource: string;
  try {
    manifestSource = await readFile(join(path, manifestFileName), 'utf8');
  } catch (error) {
    if (!isMissing(error)) throw error;
    problem(`${manifestFileName} is missing: the backup never completed`);
    return result;
  }
  const parsed = parseManifest(manifestSource);
  for (const text of parsed.problems) problem(text);
  const manifest = parsed.manifest;
  if (manifest === undefined) return result;
  result.manifest = manifest;

  const listed = new Set<string>();
  for (const entry of manifest.files) {
    const badPath = pathProblem(entry.path);
    if (badPath !== undefined) {
      problem(badPath);
      continue;
    }
    if (listed.has(entry.path)) problem(`manifest lists ${entry.path} twice`);
    listed.add(entry.path);
    const artifact = artifactPathPattern.exec(entry.path);
    if (artifact !== null && artifact[3] !== entry.sha256) problem(`manifest gives ${entry.path} the hash ${entry.sha256}, not its name`);
    let actual;
    try {
      actual = await hashFile(join(path, ...entry.path.split('/')));
    } catch (error) {
      if (!isMissing(error)) throw error;
      problem(`${entry.path} is missing`);
      continue;
    }
    result.checkedFiles += 1;
    options.onFile?.(entry.path);
    if (actual.bytes !== entry.bytes) problem(`${entry.path} has ${actual.bytes} bytes; the manifest says ${entry.bytes}`);
    else if (actual.sha256 !== entry.sha256) problem(`${entry.path} does not match its SHA-256 in the manifest: it was altered`);
  }
  if (!listed.has(databaseFileName)) problem(`manifest does not list ${databaseFileName}`);
  for (const file of await filesBelow(path)) {
    if (file !== manifestFileName && !listed.has(file)) problem(`${file} is in the backup directory but not in the manifest`);
  }

  if (listed.has(databaseFileName) && !result.problems.some((text) => text.startsWith(`${databaseFileName} `))) {
    let facts;
    try {
      facts = inspectDatabase(join(path, databaseFileName));
    } catch (error) {
      problem(`${databaseFileName} cannot be opened as a SQLite database: ${(error as Error).message}`);
    }
    if (facts !== undefined) {
      if (facts.integrity.length !== 1 || facts.integrity[0] !== 'ok') problem(`${databaseFileName} fails PRAGMA integrity_check: ${facts.integrity.slice(0, 5).join('; ')}`);
      if (facts.foreignKeyViolations > 0) problem(`${databaseFileName} has ${facts.foreignKeyViolations} foreign key violations`);
      const missing = new Map<string, string>();
      for (const reference of facts.references) {
        if (!isArtifactRef(reference.ref)) {
          problem(`${databaseFileName} holds a malformed artifact ref at ${reference.where}`);
          continue;
        }
        if (reference.tenantDeleted) continue;
        const entryPath = `${artifactsDirectoryName}/${artifactRelativePath(reference.ref)}`;
        if (!listed.has(entryPath) && !missing.has(reference.ref)) missing.set(reference.ref, reference.where);
      }
      for (const [ref, where] of [...missing].slice(0, 20)) problem(`the database references ${ref} (${where}), which the backup does not hold`);
      if (missing.size > 20) problem(`… and ${missing.size - 20} more referenced artifacts are missing`);
      if (facts.migrations.join(',') !== manifest.migrations.join(',')) problem(`${databaseFileName} has migrations ${facts.migrations.join(', ')}; the manifest says ${manifest.migrations.join(', ')}`);
    }
  }
  result.ok = result.problems.length === 0;
  return result;
}

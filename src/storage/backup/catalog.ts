/** The backups in a backup directory (`aiaas backup list`, `GET /api/v1/admin/backups`) and retention. */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isMissing } from './files.ts';
import { manifestFileName, parseManifest, partialSuffix, type BackupMetadata } from './manifest.ts';

export interface BackupListing {
  name: string;
  path: string;
  /**
   * complete: the manifest is whole and matches its checksum (file hashes are checked by verify,
   * not here); incomplete: an interrupted `*.partial` or a directory without a sound manifest.
   */
  state: 'complete' | 'incomplete';
  createdAt: string | null;
  tenants: number | null;
  artifacts: number | null;
  bytes: number | null;
  metadata: BackupMetadata | null;
  problem: string | null;
}

/** Every directory in `backupDir`, newest first (by manifest time; incomplete ones last, by name). */
export async function listBackups(backupDir: string): Promise<BackupListing[]> {
  let entries;
  try {
    entries = await readdir(backupDir, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
  const listings: BackupListing[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(backupDir, entry.name);
    const base = { name: entry.name, path, createdAt: null, tenants: null, artifacts: null, bytes: null, metadata: null };
    if (entry.name.endsWith(partialSuffix)) {
      listings.push({ ...base, state: 'incomplete', problem: 'interrupted (or still running)' });
      continue;
    }
    let text: string;
    try {
      text = await readFile(join(path, manifestFileName), 'utf8');
    } catch (error) {
      if (!isMissing(error)) throw error;
      listings.push({ ...base, state: 'incomplete', problem: `no ${manifestFileName}` });
      continue;
    }
    const { manifest, problems } = parseManifest(text);
    if (manifest === undefined) {
      listings.push({ ...base, state: 'incomplete', problem: problems[0] ?? 'unreadable manifest' });
      continue;
    }
    listings.push({
      ...base,
      state: 'complete',
      createdAt: manifest.createdAt,
      tenants: manifest.counts.tenants,
      artifacts: manifest.counts.artifacts,
      bytes: manifest.counts.bytes,
      metadata: manifest.metadata,
      problem: null,
    });
  }
  return listings.sort((a, b) => {
    if (a.createdAt !== null && b.createdAt !== null) return a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.name < b.name ? 1 : -1;
    if (a.createdAt !== null) return -1;
    if (b.createdAt !== null) return 1;
    return a.name < b.name ? 1 : -1;
  });
}

/**
 * Retention: keeps the newest `keep` complete backups whose names start with `prefix` and
 * removes older ones, plus interrupted `prefix…partial` leftovers other than `except`. Directories
 * not named by this scheduler (an operator's manual backup in the same place) are left alone.
 */
export async function pruneBackups(backupDir: string, options: { keep: number; prefix: string; except?: string }): Promise<string[]> {
  const removed: string[] = [];
  const ours = (await listBackups(backupDir)).filter((listing) => listing.name.startsWith(options.prefix));
  const stale = [
    ...ours.filter((listing) => listing.state === 'complete').slice(options.keep),
    ...ours.filter((listing) => listing.name.endsWith(partialSuffix)),
  ];
  for (const listing of stale) {
    if (listing.path === options.except) continue;
    await rm(listing.path, { recursive: true, force: true });
    removed.push(listing.name);
  }
  return removed;
}

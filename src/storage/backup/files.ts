/** File work shared by backups, restores and the data-directory check: hashing copies, durable writes, scanning. */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { listDirectory, type ArtifactRef } from '../artifact-store.ts';

const chunkBytes = 1024 * 1024;

export interface HashedFile {
  bytes: number;
  /** lowercase hex */
  sha256: string;
}

/**
 * Copies `source` to `destination` (created exclusively, 0600, parents made), hashing what it
 * reads, and fsyncs the copy. Refuses anything but a regular file: a backup must not follow a
 * symlink planted in the data directory to somewhere else.
 */
export async function copyHashed(source: string, destination: string): Promise<HashedFile> {
  await mkdir(dirname(destination), { recursive: true, mode: 0o700 });
  const input = await open(source, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    if (!(await input.stat()).isFile()) throw Object.assign(new Error(`${source} is not a regular file`), { code: 'EINVAL', path: source });
    const output = await open(destination, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(chunkBytes);
      let total = 0;
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        await output.write(chunk);
        total += bytesRead;
      }
      await output.sync();
      return { bytes: total, sha256: hash.digest('hex') };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/** SHA-256 and size of a file, read in chunks. */
export async function hashFile(path: string): Promise<HashedFile> {
  const handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(chunkBytes);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      total += bytesRead;
    }
    return { bytes: total, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** Writes bytes to a new file (exclusive, 0600) and fsyncs it. */
export async function writeDurably(path: string, bytes: Uint8Array | string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes renames and new entries in a directory durable (one implementation, the artifact store's). */
export { syncDirectory } from '../artifact-store.ts';

export function isMissing(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}


export interface ArtifactFile {
  ref: ArtifactRef;
  /** `ab/cd/<hex>` below the artifact root. */
  relativePath: string;
  /** Modification time in milliseconds. */
  modifiedMs: number;
}

export interface ArtifactDirectoryScan {
  artifacts: ArtifactFile[];
  /** `.tmp-*` files of puts in progress (or left by a crash; swept at the next start). */
  temporary: string[];
  /** Anything else: not written by the artifact store. */
  unexpected: string[];
}

/** Lists an artifact root in FileSystemArtifactStore's `ab/cd/<hex>` layout, sorted by path. */
export async function scanArtifactDirectory(root: string): Promise<ArtifactDirectoryScan> {
  const scan: ArtifactDirectoryScan = { artifacts: [], temporary: [], unexpected: [] };
  for (const first of await listDirectory(root)) {
    const firstPath = join(root, first);
    if (!/^[0-9a-f]{2}$/.test(first) || !(await stat(firstPath)).isDirectory()) {
      scan.unexpected.push(first);
      continue;
    }
    for (const second of await listDirectory(firstPath)) {
      const secondPath = join(firstPath, second);
      if (!/^[0-9a-f]{2}$/.test(second) || !(await stat(secondPath)).isDirectory()) {
        scan.unexpected.push(`${first}/${second}`);
        continue;
      }
      for (const name of await listDirectory(secondPath)) {
        const relativePath = `${first}/${second}/${name}`;
        if (name.startsWith('.tmp-')) scan.temporary.push(relativePath);
        else if (/^[0-9a-f]{64}$/.test(name) && name.startsWith(first + second)) {
          const info = await stat(join(secondPath, name)).catch((error: unknown) => {
            if (isMissing(error)) return undefined;
            throw error;
          });
          if (info !== undefined) scan.artifacts.push({ ref: `sha256:${name}`, relativePath, modifiedMs: info.mtimeMs });
        } else scan.unexpected.push(relativePath);
      }
    }
  }
  return scan;
}

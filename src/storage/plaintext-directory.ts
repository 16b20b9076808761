/**
 * The one place decrypted model files live: `<data-dir>/plain/<tenant>/<versionId>/`, mode 0700 at
 * every level, files 0600. A runtime opens a model from a path here, so anything the model file
 * names relative to itself (ONNX external data) resolves inside its own version's directory and
 * nowhere else. A version's directory exists only while it is loaded; the whole tree is emptied when
 * the server starts (a crash leaves plaintext behind) and a tenant's subtree when it is deleted.
 * Backups skip this folder (`plaintextDirectoryName`).
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AiaasError } from '../errors.ts';

/** The folder under the data dir; backups and data-dir checks skip it. */
export const plaintextDirectoryName = 'plain';

/** Scratch directories (upload validation) live here, apart from tenant subtrees. */
const scratchFolderName = '.scratch';

/** Ids are ours (`tnt_…`, `ver_…`), but a path segment is checked anyway: it is what keeps writes inside the root. */
const segmentPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** A relative file path inside a version directory: safe segments joined by `/`. */
const fileSegmentPattern = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$/;

function segment(value: string, what: string): string {
  if (!segmentPattern.test(value)) throw new AiaasError('INTERNAL', `refusing ${what} '${value.slice(0, 40)}' as a path segment`);
  return value;
}

/** Whether `path` is a relative path of safe segments (no `.`, `..`, empty or hidden segments, no backslashes). */
export function isSafeRelativePath(path: string): boolean {
  if (path.length === 0 || path.length > 1024) return false;
  return path.split('/').every((part) => fileSegmentPattern.test(part) && part !== '.' && part !== '..');
}

export type PlaintextFile = {
  /** Relative to the version directory; must satisfy `isSafeRelativePath`. */
  path: string;
} & (
  | { bytes: Uint8Array }
  /** Large files: written by the caller (a decrypting stream), never held whole; returns the size written. */
  | { writeTo(path: string): Promise<number> }
);

export interface PlaintextVersion {
  directory: string;
  /** Sum of the files' sizes. */
  sizeBytes: number;
  /** Removes the directory; safe to call more than once. */
  remove(): Promise<void>;
}

async function privateDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory's mode alone, and the umask could narrow but never widen it.
  await chmod(path, 0o700);
}

export class PlaintextDirectory {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /** Opens `<dataDir>/plain`, deleting whatever an earlier run left there. */
  static async open(dataDir: string): Promise<PlaintextDirectory> {
    const directory = new PlaintextDirectory(join(dataDir, plaintextDirectoryName));
    await directory.clear();
    return directory;
  }

  /** Empties the whole tree (startup). */
  async clear(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
    await privateDirectory(this.root);
    await privateDirectory(this.scratchRoot);
  }

  versionDirectory(tenantId: string, versionId: string): string {
    return join(this.root, segment(tenantId, 'tenant id'), segment(versionId, 'version id'));
  }

  /**
   * Writes a version's files into its own directory, replacing whatever was there. The caller makes
   * sure one version is not written while it is still loaded (the model manager serialises them).
   */
  async write(tenantId: string, versionId: string, files: readonly PlaintextFile[]): Promise<PlaintextVersion> {
    const directory = this.versionDirectory(tenantId, versionId);
    await privateDirectory(this.root);
    await privateDirectory(dirname(directory));
    await rm(directory, { recursive: true, force: true });
    const remove = () => rm(directory, { recursive: true, force: true });
    try {
      await privateDirectory(directory);
      let sizeBytes = 0;
      for (const file of files) {
        if (!isSafeRelativePath(file.path)) throw new AiaasError('INTERNAL', `refusing the file path '${file.path.slice(0, 80)}'`);
        const path = join(directory, file.path);
        if (file.path.includes('/')) await privateDirectory(dirname(path));
        if ('bytes' in file) {
          // 'wx': never follow or overwrite something already there.
          await writeFile(path, file.bytes, { mode: 0o600, flag: 'wx' });
          sizeBytes += file.bytes.byteLength;
        } else {
          sizeBytes += await file.writeTo(path);
        }
      }
      return { directory, sizeBytes, remove };
    } catch (error) {
      await remove();
      throw error;
    }
  }

  async removeVersion(tenantId: string, versionId: string): Promise<void> {
    await rm(this.versionDirectory(tenantId, versionId), { recursive: true, force: true });
  }

  /** A deleted tenant's subtree: nothing of it may stay on disk. */
  async removeTenant(tenantId: string): Promise<void> {
    await rm(join(this.root, segment(tenantId, 'tenant id')), { recursive: true, force: true });
  }

  /**
   * Where short-lived plaintext (upload validation) goes, apart from tenant subtrees: emptied with
   * the rest at startup, so a crash mid-validation leaves nothing behind for long.
   */
  get scratchRoot(): string {
    return join(this.root, scratchFolderName);
  }
}

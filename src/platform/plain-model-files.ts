/**
 * Decrypted copies of model files for runtimes that read a file path (llama.cpp memory-maps its
 * GGUF; the GGUF validator reads the header by offset). Each copy is a 0600 file in a 0700
 * directory private to this server, removed when its model unloads and when the server closes.
 *
 * Interim home: a private temporary directory. The data-dir layout `<dataDir>/plain/<tenant>/<version>/`
 * (shared with the data-safety work) replaces `openPlainModelFiles` alone; callers see only this interface.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PlainModelFiles {
  /** Writes plaintext bytes to a new private file and returns its path. */
  write(tenantId: string, label: string, bytes: Uint8Array): Promise<string>;
  /** Removes a file `write` returned (missing files are fine). */
  remove(path: string): Promise<void>;
  /** Removes every file and the directory. */
  close(): Promise<void>;
}

export async function openPlainModelFiles(): Promise<PlainModelFiles> {
  const directory = await mkdtemp(join(tmpdir(), 'aiaas-plain-'));
  await chmod(directory, 0o700);
  return {
    async write(tenantId, label, bytes) {
      // The names carry no tenant text: ids and a random part only.
      const safe = `${tenantId}-${label}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100);
      const path = join(directory, `${safe}-${randomUUID()}`);
      await writeFile(path, bytes, { mode: 0o600, flag: 'wx' });
      return path;
    },
    async remove(path) {
      await rm(path, { force: true });
    },
    async close() {
      await rm(directory, { recursive: true, force: true });
    },
  };
}

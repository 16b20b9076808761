import { createHash, randomBytes, type Hash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { AiaasError } from '../errors.ts';

/** `sha256:` + 64 lowercase hex digits of the bytes as stored. */
export type ArtifactRef = `sha256:${string}`;

/**
 * Immutable, content-addressed blob storage. Byte-agnostic: encryption and
 * compression are layered on top by callers, and the hash covers what is stored.
 */
export interface ArtifactStore {
  /** Stores the bytes (idempotent for identical content) and returns their ref. */
  put(bytes: Uint8Array): Promise<ArtifactRef>;
  /**
   * Stores what `source` yields without holding it whole (it is written to a temporary file while
   * hashed); the ref is the same as `put` of the same bytes. If `source` throws, nothing is stored.
   */
  putStream(source: AsyncIterable<Uint8Array>): Promise<{ ref: ArtifactRef; bytes: number }>;
  /** Throws NOT_FOUND when absent and ARTIFACT_CORRUPT when the stored bytes no longer match the ref. */
  get(ref: ArtifactRef): Promise<Uint8Array>;
  /**
   * The stored bytes as a stream: NOT_FOUND at once; the hash is checked at the end, so a consumer
   * must treat what it read as unverified until the stream ends without ARTIFACT_CORRUPT.
   */
  getStream(ref: ArtifactRef): Promise<Readable>;
  has(ref: ArtifactRef): Promise<boolean>;
  /** Removing an absent artifact is not an error. */
  delete(ref: ArtifactRef): Promise<void>;
  list(): AsyncIterable<ArtifactRef>;
}

const refPattern = /^sha256:([0-9a-f]{64})$/;
const temporaryPrefix = '.tmp-';

export function artifactRefOf(bytes: Uint8Array): ArtifactRef {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Refs come from the database or from clients; parsing them strictly is what keeps paths inside the root. */
function hexOf(ref: string): string {
  const match = refPattern.exec(ref);
  if (match === null || match[1] === undefined) {
    throw new AiaasError('INVALID_REQUEST', `'${ref}' is not an artifact reference`, {
      details: { expected: 'sha256:<64 lowercase hex digits>' },
    });
  }
  return match[1];
}

function isMissing(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}

export interface FileSystemArtifactStoreOptions {
  /**
   * Temporary files younger than this survive the sweep at open: another
   * process or worker thread sharing the root may be writing them right now.
   */
  readonly sweepTemporaryFilesOlderThanMs?: number;
  readonly now?: () => Date;
}

/**
 * Layout `root/ab/cd/<hex>`. A put writes `.tmp-*` beside its destination,
 * fsyncs it, renames it into place and fsyncs the directory, so a crash leaves
 * either no artifact or a complete one, plus at worst a temp file that the
 * next open sweeps away.
 */
export class FileSystemArtifactStore implements ArtifactStore {
  readonly rootDir: string;
  readonly #now: () => Date;
  #deleteHolds = 0;
  readonly #deferredDeletes = new Set<ArtifactRef>();

  constructor(rootDir: string, options: Pick<FileSystemArtifactStoreOptions, 'now'> = {}) {
    this.rootDir = rootDir;
    this.#now = options.now ?? (() => new Date());
  }

  /** Creates the root if needed and sweeps temp files left by a crash. */
  static async open(rootDir: string, options: FileSystemArtifactStoreOptions = {}): Promise<FileSystemArtifactStore> {
    const store = new FileSystemArtifactStore(rootDir, options);
    await mkdir(rootDir, { recursive: true });
    await store.sweepTemporaryFiles({ olderThanMs: options.sweepTemporaryFilesOlderThanMs ?? 10 * 60 * 1000 });
    return store;
  }

  #directoryOf(hex: string): string {
    return join(this.rootDir, hex.slice(0, 2), hex.slice(2, 4));
  }

  #pathOf(hex: string): string {
    return join(this.#directoryOf(hex), hex);
  }

  async put(bytes: Uint8Array): Promise<ArtifactRef> {
    const ref = artifactRefOf(bytes);
    const hex = hexOf(ref);
    const destination = this.#pathOf(hex);
    // Same name means same content; the size check lets a put heal a truncated file.
    const existing = await stat(destination).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (existing !== undefined && existing.size === bytes.byteLength) return ref;

    const directory = this.#directoryOf(hex);
    const firstCreated = await mkdir(directory, { recursive: true });
    if (firstCreated !== undefined) {
      // A new `ab/` or `ab/cd/` is itself a directory entry: unless its parent is synced a
      // crash could lose the directory, and with it an artifact whose row was committed.
      if (firstCreated !== directory) await syncDirectory(this.rootDir);
      await syncDirectory(dirname(directory));
    }
    const temporary = join(directory, `${temporaryPrefix}${hex}-${randomBytes(6).toString('hex')}`);
    try {
      const handle = await open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, destination);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    await syncDirectory(directory);
    return ref;
  }

  async get(ref: ArtifactRef): Promise<Uint8Array> {
    const hex = hexOf(ref);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#pathOf(hex));
    } catch (error) {
      if (isMissing(error)) throw new AiaasError('NOT_FOUND', `Artifact ${ref} not found`, { details: { ref } });
      throw error;
    }
    const actual = artifactRefOf(bytes);
    if (actual !== ref) {
      throw new AiaasError('ARTIFACT_CORRUPT', `Artifact ${ref} failed its integrity check`, {
        details: { ref, actual },
      });
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async putStream(source: AsyncIterable<Uint8Array>): Promise<{ ref: ArtifactRef; bytes: number }> {
    // The name is known only at the end, so the temporary file lives at the root (swept like the others).
    const temporary = join(this.rootDir, `${temporaryPrefix}stream-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const handle = await open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.byteLength;
          // One chunk at a time: the source is not read further until this write is done.
          let written = 0;
          while (written < chunk.byteLength) written += (await handle.write(chunk, written)).bytesWritten;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      const ref: ArtifactRef = `sha256:${hash.digest('hex')}`;
      await this.#moveIntoPlace(temporary, hexOf(ref), bytes);
      return { ref, bytes };
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  /** Renames a complete, synced temporary file to the artifact's name (or drops it if an equal one exists). */
  async #moveIntoPlace(temporary: string, hex: string, size: number): Promise<void> {
    const destination = this.#pathOf(hex);
    const existing = await stat(destination).catch((error: unknown) => {
      if (isMissing(error)) return undefined;
      throw error;
    });
    if (existing !== undefined && existing.size === size) {
      await rm(temporary, { force: true });
      return;
    }
    const directory = this.#directoryOf(hex);
    const firstCreated = await mkdir(directory, { recursive: true });
    if (firstCreated !== undefined) {
      if (firstCreated !== directory) await syncDirectory(this.rootDir);
      await syncDirectory(dirname(directory));
    }
    await rename(temporary, destination);
    await syncDirectory(directory);
  }

  async getStream(ref: ArtifactRef): Promise<Readable> {
    const hex = hexOf(ref);
    let handle;
    try {
      handle = await open(this.#pathOf(hex), fsConstants.O_RDONLY);
    } catch (error) {
      if (isMissing(error)) throw new AiaasError('NOT_FOUND', `Artifact ${ref} not found`, { details: { ref } });
      throw error;
    }
    const file = handle.createReadStream({ highWaterMark: 256 * 1024 });
    const verifier = new HashVerifier(ref);
    pipeline(file, verifier, () => undefined);
    return verifier;
  }

  async has(ref: ArtifactRef): Promise<boolean> {
    try {
      return (await stat(this.#pathOf(hexOf(ref)))).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  /**
   * Until the returned release is called, deletes are recorded instead of done: a backup copying
   * the files a database snapshot names must not see one vanish (a superseded checkpoint) first.
   * Releasing the last hold performs the deferred deletes.
   */
  holdDeletes(): () => Promise<void> {
    this.#deleteHolds += 1;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      this.#deleteHolds -= 1;
      if (this.#deleteHolds > 0) return;
      const deferred = [...this.#deferredDeletes];
      this.#deferredDeletes.clear();
      for (const ref of deferred) await this.delete(ref);
    };
  }

  /** Bytes the artifact takes on disk (what storage is billed by); undefined when it is missing. */
  async sizeOf(ref: string): Promise<number | undefined> {
    try {
      return (await stat(this.#pathOf(hexOf(ref)))).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async delete(ref: ArtifactRef): Promise<void> {
    const hex = hexOf(ref);
    if (this.#deleteHolds > 0) {
      this.#deferredDeletes.add(ref);
      return;
    }
    try {
      await unlink(this.#pathOf(hex));
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    await syncDirectory(this.#directoryOf(hex));
  }

  async *list(): AsyncIterable<ArtifactRef> {
    for (const first of await listDirectory(this.rootDir)) {
      if (!/^[0-9a-f]{2}$/.test(first)) continue;
      for (const second of await listDirectory(join(this.rootDir, first))) {
        if (!/^[0-9a-f]{2}$/.test(second)) continue;
        for (const name of await listDirectory(join(this.rootDir, first, second))) {
          if (/^[0-9a-f]{64}$/.test(name) && name.startsWith(first + second)) yield `sha256:${name}`;
        }
      }
    }
  }

  /** Removes `.tmp-*` files older than `olderThanMs` (0 = all). Returns how many went. */
  async sweepTemporaryFiles(options: { olderThanMs?: number } = {}): Promise<number> {
    const cutoff = this.#now().getTime() - (options.olderThanMs ?? 0);
    let removed = 0;
    const sweep = async (path: string): Promise<void> => {
      const info = await stat(path).catch(() => undefined);
      if (info === undefined || !info.isFile() || info.mtimeMs > cutoff) return;
      await rm(path, { force: true });
      removed += 1;
    };
    for (const first of await listDirectory(this.rootDir)) {
      // Streamed puts write at the root until their hash, hence their directory, is known.
      if (first.startsWith(temporaryPrefix)) await sweep(join(this.rootDir, first));
      for (const second of await listDirectory(join(this.rootDir, first))) {
        const directory = join(this.rootDir, first, second);
        for (const name of await listDirectory(directory)) {
          if (name.startsWith(temporaryPrefix)) await sweep(join(directory, name));
        }
      }
    }
    return removed;
  }
}

/** Passes bytes through and, at the end, fails with ARTIFACT_CORRUPT unless their sha256 matches the ref. */
class HashVerifier extends Transform {
  readonly #ref: ArtifactRef;
  readonly #hash: Hash = createHash('sha256');

  constructor(ref: ArtifactRef) {
    super();
    this.#ref = ref;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const actual = `sha256:${this.#hash.digest('hex')}`;
    if (actual === this.#ref) return callback();
    callback(new AiaasError('ARTIFACT_CORRUPT', `Artifact ${this.#ref} failed its integrity check`, { details: { ref: this.#ref, actual } }));
  }
}

/** Entries of a directory, sorted, or none if it is missing or not a directory. */
export async function listDirectory(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

/** Makes a rename or unlink durable. Some platforms cannot fsync a directory; that is only lost durability. */
export async function syncDirectory(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, fsConstants.O_RDONLY);
    await handle.sync();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw error;
  } finally {
    await handle?.close();
  }
}

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AiaasError } from '../errors.ts';

export const masterKeyLength = 32;

export interface MasterKey {
  readonly version: number;
  readonly key: Buffer;
}

const howToCreate =
  'Create one with `aiaas admin gen-master-key` or ' +
  '`node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64\'))"`, ' +
  'then set AIAAS_MASTER_KEY=<base64 key> (or a versioned list "1:<base64>,2:<base64>" when rotating), ' +
  'or write it to a file and set AIAAS_MASTER_KEY_FILE=<path>. ' +
  'Keep it outside the database and back it up: without it no stored data can be decrypted.';

function configError(problem: string): AiaasError {
  return new AiaasError('CONFIG_INVALID', `${problem} ${howToCreate}`);
}

/** A fresh master key as base64, the form AIAAS_MASTER_KEY expects. */
export function generateMasterKey(): string {
  return randomBytes(masterKeyLength).toString('base64');
}

function decodeMasterKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  // Buffer.from(…, 'base64') silently skips junk, so validate the alphabet first.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw configError(`The master key ${where} is not base64.`);
  }
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== masterKeyLength) {
    throw configError(`The master key ${where} decodes to ${key.length} bytes; it must be exactly ${masterKeyLength}.`);
  }
  return key;
}

function parseVersion(text: string, where: string): number {
  const version = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(version) || version < 1) {
    throw configError(`The master key version ${where} must be a positive integer.`);
  }
  return version;
}

/**
 * The master keys this server knows, by version. The highest version is current: it
 * wraps every new data key. Older versions stay only until every data key wrapped
 * under them has been re-wrapped (see TenantKeyService.retirableVersions).
 */
export class MasterKeyRing {
  readonly #keys: ReadonlyMap<number, Buffer>;
  readonly current: MasterKey;

  constructor(keys: readonly MasterKey[]) {
    if (keys.length === 0) throw configError('No master key configured.');
    const byVersion = new Map<number, Buffer>();
    for (const { version, key } of keys) {
      if (!Number.isSafeInteger(version) || version < 1) {
        throw configError(`Master key version ${String(version)} must be a positive integer.`);
      }
      if (key.length !== masterKeyLength) {
        throw configError(`Master key version ${version} is ${key.length} bytes; it must be exactly ${masterKeyLength}.`);
      }
      if (byVersion.has(version)) throw configError(`Master key version ${version} is listed twice.`);
      byVersion.set(version, Buffer.from(key));
    }
    this.#keys = byVersion;
    const currentVersion = Math.max(...byVersion.keys());
    this.current = { version: currentVersion, key: byVersion.get(currentVersion)! };
  }

  /** Parses `<base64>` (version 1), `1:<base64>,2:<base64>` (commas or whitespace) or JSON. */
  static parse(text: string, source = 'AIAAS_MASTER_KEY'): MasterKeyRing {
    const trimmed = text.trim();
    if (trimmed === '') throw configError(`${source} is empty.`);
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) return MasterKeyRing.#parseJson(trimmed, source);
    const entries = trimmed.split(/[\s,]+/).filter((entry) => entry !== '');
    if (entries.length === 1 && !entries[0]!.includes(':')) {
      return new MasterKeyRing([{ version: 1, key: decodeMasterKey(entries[0]!, `in ${source}`) }]);
    }
    return new MasterKeyRing(
      entries.map((entry, index) => {
        const colon = entry.indexOf(':');
        if (colon === -1) {
          throw configError(`Entry ${index + 1} of ${source} must have the form <version>:<base64 key>.`);
        }
        const where = `in entry ${index + 1} of ${source}`;
        return { version: parseVersion(entry.slice(0, colon), where), key: decodeMasterKey(entry.slice(colon + 1), where) };
      }),
    );
  }

  /** Accepts `{"keys":[{"version":1,"key":"<base64>"}]}`, the bare array, or `{"1":"<base64>"}`. */
  static #parseJson(text: string, source: string): MasterKeyRing {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw configError(`${source} looks like JSON but does not parse.`);
    }
    const list =
      typeof document === 'object' && document !== null && !Array.isArray(document) && 'keys' in document
        ? (document as { keys: unknown }).keys
        : document;
    if (Array.isArray(list)) {
      return new MasterKeyRing(
        list.map((item: unknown, index) => {
          const where = `in entry ${index + 1} of ${source}`;
          if (typeof item !== 'object' || item === null) throw configError(`Entry ${index + 1} of ${source} must be {"version","key"}.`);
          const { version, key } = item as { version?: unknown; key?: unknown };
          if (typeof key !== 'string') throw configError(`The "key" ${where} must be a base64 string.`);
          return { version: parseVersion(String(version), where), key: decodeMasterKey(key, where) };
        }),
      );
    }
    if (typeof list === 'object' && list !== null) {
      return new MasterKeyRing(
        Object.entries(list).map(([version, key]) => {
          const where = `for version ${version} in ${source}`;
          if (typeof key !== 'string') throw configError(`The key ${where} must be a base64 string.`);
          return { version: parseVersion(version, where), key: decodeMasterKey(key, where) };
        }),
      );
    }
    throw configError(`${source} must be a JSON object or array of master keys.`);
  }

  get versions(): readonly number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  has(version: number): boolean {
    return this.#keys.has(version);
  }

  get(version: number): MasterKey | undefined {
    const key = this.#keys.get(version);
    return key === undefined ? undefined : { version, key };
  }

  /** A new ring with one more, freshly generated (or given) key as the new current version. */
  withNewKey(key: Buffer = randomBytes(masterKeyLength)): MasterKeyRing {
    return new MasterKeyRing([...this.#entries(), { version: this.current.version + 1, key }]);
  }

  /** A new ring without `version`; the current version cannot be removed. */
  without(version: number): MasterKeyRing {
    if (version === this.current.version) {
      throw new AiaasError('CONFIG_INVALID', `Master key version ${version} is current and cannot be retired.`);
    }
    return new MasterKeyRing(this.#entries().filter((entry) => entry.version !== version));
  }

  /** The `1:<base64>,2:<base64>` text form, for writing a key file. */
  serialize(): string {
    return this.#entries()
      .map(({ version, key }) => `${version}:${key.toString('base64')}`)
      .join(',');
  }

  #entries(): MasterKey[] {
    return this.versions.map((version) => ({ version, key: this.#keys.get(version)! }));
  }

  // Keys must never reach logs or error reports through a casual console.log or JSON.stringify.
  toJSON(): { versions: readonly number[]; current: number } {
    return { versions: this.versions, current: this.current.version };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `MasterKeyRing { versions: [${this.versions.join(', ')}], current: ${this.current.version} }`;
  }
}

export interface MasterKeySource {
  /** The AIAAS_MASTER_KEY value. */
  masterKey?: string | undefined;
  /** The AIAAS_MASTER_KEY_FILE value: a file holding the same text or JSON forms. */
  masterKeyFile?: string | undefined;
}

export function loadMasterKeyRing(
  source: MasterKeySource,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): MasterKeyRing {
  const hasKey = source.masterKey !== undefined && source.masterKey.trim() !== '';
  const hasFile = source.masterKeyFile !== undefined && source.masterKeyFile.trim() !== '';
  if (hasKey && hasFile) {
    throw new AiaasError('CONFIG_INVALID', 'Set either AIAAS_MASTER_KEY or AIAAS_MASTER_KEY_FILE, not both.');
  }
  if (hasKey) return MasterKeyRing.parse(source.masterKey!, 'AIAAS_MASTER_KEY');
  if (hasFile) {
    const path = source.masterKeyFile!.trim();
    let text: string;
    try {
      text = readFile(path);
    } catch (error) {
      throw new AiaasError('CONFIG_INVALID', `Cannot read the master key file ${path} (AIAAS_MASTER_KEY_FILE). ${howToCreate}`, {
        cause: error,
      });
    }
    return MasterKeyRing.parse(text, `the master key file ${path}`);
  }
  throw configError('No master key configured: AIAAS_MASTER_KEY and AIAAS_MASTER_KEY_FILE are both unset.');
}

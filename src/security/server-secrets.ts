import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AiaasError } from '../errors.ts';
import type { MasterKeyRing } from './key-ring.ts';

/*
 * The secrets a data directory needs besides its database and artifacts, for backups to carry
 * wrapped under the master key: `server-secret` (the API-key hashing secret; without it no
 * API key authenticates after a restore) and `signing-key` (the provenance signing key). The
 * master key itself (or `insecure-dev-master-key`) is never among them, and neither are data
 * keys: those stay in the key store, which backups do not copy.
 */
export const serverSecretFileName = 'server-secret';
/** The provenance signing key's file (already wrapped under the master key itself; see signing-key.ts). */
export const signingKeyFileName = 'signing-key';
export const serverSecretFileNames: readonly string[] = [serverSecretFileName, signingKeyFileName];

export const wrappedServerSecretsFormat = 'aiaas-server-secrets-1';

export interface WrappedServerSecret {
  /** File name inside the data directory. */
  readonly name: string;
  /** base64 of nonce 12 | ciphertext | tag 16 (AES-256-GCM). */
  readonly sealed: string;
}

/** JSON-safe; write it into the backup as is. */
export interface WrappedServerSecrets {
  readonly format: typeof wrappedServerSecretsFormat;
  readonly masterKeyVersion: number;
  readonly secrets: readonly WrappedServerSecret[];
}

const nonceLength = 12;
const tagLength = 16;

// A key derived for this purpose only, so these ciphertexts can never be confused with wrapped data keys.
function secretsKey(ring: MasterKeyRing, version: number): Buffer {
  const master = ring.get(version);
  if (master === undefined) {
    throw new AiaasError(
      'MASTER_KEY_MISMATCH',
      `The server secrets were wrapped under master key version ${version}, which the configured ring (versions ${ring.versions.join(', ')}) lacks. ` +
        'Configure it with --master-key (AIAAS_MASTER_KEY) or --master-key-file (AIAAS_MASTER_KEY_FILE).',
    );
  }
  return Buffer.from(hkdfSync('sha256', master.key, Buffer.alloc(0), `aiaas server secrets v1/${version}`, 32));
}

function associatedData(version: number, name: string): Buffer {
  return Buffer.from(`${wrappedServerSecretsFormat}\0${version}\0${name}`, 'utf8');
}

/** Reads the data directory's secret files (absent ones are skipped) and wraps them under `ring.current`. */
export async function wrapServerSecrets(ring: MasterKeyRing, dataDir: string): Promise<WrappedServerSecrets> {
  const version = ring.current.version;
  const key = secretsKey(ring, version);
  const secrets: WrappedServerSecret[] = [];
  for (const name of serverSecretFileNames) {
    let plaintext: Buffer;
    try {
      plaintext = await readFile(join(dataDir, name));
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') continue;
      throw error;
    }
    const nonce = randomBytes(nonceLength);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: tagLength });
    cipher.setAAD(associatedData(version, name));
    const sealed = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    plaintext.fill(0);
    secrets.push({ name, sealed: sealed.toString('base64') });
  }
  key.fill(0);
  return { format: wrappedServerSecretsFormat, masterKeyVersion: version, secrets };
}

/**
 * Decrypts `wrapped` and writes each secret into `dataDir` (mode 0600). Refuses to overwrite an
 * existing file, and throws MASTER_KEY_MISMATCH when the ring's key does not authenticate them.
 * Returns the names written.
 */
export async function unwrapServerSecrets(ring: MasterKeyRing, wrapped: WrappedServerSecrets, dataDir: string): Promise<string[]> {
  if (wrapped.format !== wrappedServerSecretsFormat) {
    throw new AiaasError('INVALID_REQUEST', `Unknown server secrets format ${String(wrapped.format)}.`);
  }
  const key = secretsKey(ring, wrapped.masterKeyVersion);
  const plaintexts: { name: string; bytes: Buffer }[] = [];
  try {
    for (const { name, sealed } of wrapped.secrets) {
      if (!serverSecretFileNames.includes(name)) throw new AiaasError('INVALID_REQUEST', `Unknown server secret ${name}.`);
      const blob = Buffer.from(sealed, 'base64');
      if (blob.length < nonceLength + tagLength) throw new AiaasError('INVALID_REQUEST', `The wrapped server secret ${name} is truncated.`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, nonceLength), { authTagLength: tagLength });
        decipher.setAAD(associatedData(wrapped.masterKeyVersion, name));
        decipher.setAuthTag(blob.subarray(blob.length - tagLength));
        plaintexts.push({ name, bytes: Buffer.concat([decipher.update(blob.subarray(nonceLength, blob.length - tagLength)), decipher.final()]) });
      } catch (error) {
        throw new AiaasError(
          'MASTER_KEY_MISMATCH',
          `The server secret ${name} does not authenticate under master key version ${wrapped.masterKeyVersion}: wrong master key, or the backup was altered.`,
          { cause: error },
        );
      }
    }
    // All decrypted before any is written: a wrong key leaves the target untouched.
    const written: string[] = [];
    for (const { name, bytes } of plaintexts) {
      const handle = await open(join(dataDir, name), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      written.push(name);
    }
    return written;
  } finally {
    key.fill(0);
    for (const { bytes } of plaintexts) bytes.fill(0);
  }
}

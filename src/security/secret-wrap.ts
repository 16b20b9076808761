import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AiaasError } from '../errors.ts';
import type { MasterKeyRing } from './key-ring.ts';

/*
 * Wraps a small server secret (the API-key HMAC secret) under the current master key, so a backup
 * can carry it without carrying it in clear. The purpose is authenticated with it: a wrapped
 * server secret cannot be passed off as some other secret. One module, so the key store's own
 * wrapping can replace it without touching backups.
 *
 * Text form (JSON): {"format":"aiaas-wrapped-secret","formatVersion":1,"purpose":…,
 * "masterKeyVersion":N,"nonce":b64,"ciphertext":b64,"tag":b64}.
 */

const format = 'aiaas-wrapped-secret';
const formatVersion = 1;
const nonceLength = 12;
const tagLength = 16;

export interface WrappedSecret {
  format: typeof format;
  formatVersion: typeof formatVersion;
  purpose: string;
  masterKeyVersion: number;
  nonce: string;
  ciphertext: string;
  tag: string;
}

function associatedData(purpose: string, masterKeyVersion: number): Buffer {
  return Buffer.from(JSON.stringify([format, formatVersion, purpose, masterKeyVersion]), 'utf8');
}

export function wrapSecret(ring: MasterKeyRing, purpose: string, secret: Uint8Array): WrappedSecret {
  const master = ring.current;
  const nonce = randomBytes(nonceLength);
  const cipher = createCipheriv('aes-256-gcm', master.key, nonce, { authTagLength: tagLength });
  cipher.setAAD(associatedData(purpose, master.version));
  const ciphertext = Buffer.concat([cipher.update(secret), cipher.final()]);
  return {
    format,
    formatVersion,
    purpose,
    masterKeyVersion: master.version,
    nonce: nonce.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

/** Parses the JSON text form; throws DATA_KEY_UNWRAP_FAILED when it is not one. */
export function parseWrappedSecret(text: string, where: string): WrappedSecret {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new AiaasError('DATA_KEY_UNWRAP_FAILED', `${where} is not a wrapped secret (not JSON)`, { cause: error });
  }
  const value = document as Partial<WrappedSecret> | null;
  if (
    value === null ||
    typeof value !== 'object' ||
    value.format !== format ||
    value.formatVersion !== formatVersion ||
    typeof value.purpose !== 'string' ||
    !Number.isSafeInteger(value.masterKeyVersion) ||
    typeof value.nonce !== 'string' ||
    typeof value.ciphertext !== 'string' ||
    typeof value.tag !== 'string'
  ) {
    throw new AiaasError('DATA_KEY_UNWRAP_FAILED', `${where} is not a wrapped secret in format ${format} ${formatVersion}`);
  }
  return value as WrappedSecret;
}

export function unwrapSecret(ring: MasterKeyRing, purpose: string, wrapped: WrappedSecret): Buffer {
  if (wrapped.purpose !== purpose) {
    throw new AiaasError('DATA_KEY_UNWRAP_FAILED', `The wrapped secret is a ${wrapped.purpose}, not a ${purpose}`);
  }
  const master = ring.get(wrapped.masterKeyVersion);
  if (master === undefined) {
    throw new AiaasError(
      'CONFIG_INVALID',
      `The ${purpose} is wrapped with master key version ${wrapped.masterKeyVersion}, which the configured master keys ` +
        `(versions ${ring.versions.join(', ')}) do not include. Add "${wrapped.masterKeyVersion}:<base64 key>" to AIAAS_MASTER_KEY.`,
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.key, Buffer.from(wrapped.nonce, 'base64'), { authTagLength: tagLength });
    decipher.setAAD(associatedData(wrapped.purpose, wrapped.masterKeyVersion));
    decipher.setAuthTag(Buffer.from(wrapped.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(wrapped.ciphertext, 'base64')), decipher.final()]);
  } catch (error) {
    throw new AiaasError(
      'DATA_KEY_UNWRAP_FAILED',
      `The ${purpose} failed authentication under master key version ${wrapped.masterKeyVersion}: the configured key for that version is wrong, or the file was altered.`,
      { cause: error },
    );
  }
}

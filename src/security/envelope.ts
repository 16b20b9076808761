import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AiaasError } from '../errors.ts';
import type { MasterKeyRing } from './key-ring.ts';

/*
 * Envelope encryption: each tenant has its own random 256-bit data key that encrypts
 * the tenant's data; the data key is stored only wrapped (AES-256-GCM) by a master key
 * that lives outside the database. Rotating the master key re-wraps 32-byte data keys
 * instead of re-encrypting every artifact, and destroying one tenant's wrapped key
 * makes all of that tenant's data unreadable (crypto-shredding).
 */

export const dataKeyLength = 32;
const nonceLength = 12;
const tagLength = 16;

// Wrapped data key: 'AIWK' | format 1 | master version uint32 BE | nonce 12 | ciphertext 32 | tag 16.
const wrappedMagic = Buffer.from('AIWK', 'ascii');
const wrappedFormat = 1;
const wrappedHeaderLength = wrappedMagic.length + 1 + 4;
const wrappedLength = wrappedHeaderLength + nonceLength + dataKeyLength + tagLength;

export interface WrappedDataKey {
  /** base64 of the wrapped blob, which records the master version, nonce and tag itself. */
  wrappedKey: string;
  masterKeyVersion: number;
}

// The tenant id is authenticated with the wrapped key, so copying one tenant's wrapped key
// onto another tenant's row in the database yields an unwrap failure, not shared keys.
function wrapAssociatedData(header: Buffer, tenantId: string): Buffer {
  return Buffer.concat([header, Buffer.from(tenantId, 'utf8')]);
}

export function generateDataKey(): Buffer {
  return randomBytes(dataKeyLength);
}

export function wrapDataKey(ring: MasterKeyRing, tenantId: string, dataKey: Uint8Array): WrappedDataKey {
  if (dataKey.byteLength !== dataKeyLength) throw new RangeError(`A data key must be ${dataKeyLength} bytes.`);
  const master = ring.current;
  const header = Buffer.alloc(wrappedHeaderLength);
  wrappedMagic.copy(header, 0);
  header.writeUInt8(wrappedFormat, wrappedMagic.length);
  header.writeUInt32BE(master.version, wrappedMagic.length + 1);
  const nonce = randomBytes(nonceLength);
  const cipher = createCipheriv('aes-256-gcm', master.key, nonce, { authTagLength: tagLength });
  cipher.setAAD(wrapAssociatedData(header, tenantId));
  const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  const blob = Buffer.concat([header, nonce, ciphertext, cipher.getAuthTag()]);
  return { wrappedKey: blob.toString('base64'), masterKeyVersion: master.version };
}

/** The master key version recorded inside a wrapped key, without unwrapping it. */
export function wrappedKeyMasterVersion(wrappedKey: string): number {
  const blob = Buffer.from(wrappedKey, 'base64');
  if (blob.length !== wrappedLength || !blob.subarray(0, wrappedMagic.length).equals(wrappedMagic)) {
    throw new AiaasError('DATA_KEY_UNWRAP_FAILED', 'A stored tenant data key is not in the wrapped-key format.');
  }
  return blob.readUInt32BE(wrappedMagic.length + 1);
}

export function unwrapDataKey(ring: MasterKeyRing, tenantId: string, wrapped: WrappedDataKey): Buffer {
  const blob = Buffer.from(wrapped.wrappedKey, 'base64');
  const version = wrappedKeyMasterVersion(wrapped.wrappedKey);
  if (blob.readUInt8(wrappedMagic.length) !== wrappedFormat) {
    throw new AiaasError('DATA_KEY_UNWRAP_FAILED', `Tenant ${tenantId}'s data key uses an unknown wrapped-key format.`);
  }
  if (version !== wrapped.masterKeyVersion) {
    throw new AiaasError(
      'DATA_KEY_UNWRAP_FAILED',
      `Tenant ${tenantId}'s data key row says master key version ${wrapped.masterKeyVersion} but the blob says ${version}.`,
    );
  }
  const master = ring.get(version);
  if (master === undefined) {
    throw new AiaasError(
      'CONFIG_INVALID',
      `Tenant ${tenantId}'s data key is wrapped with master key version ${version}, which the configured master keys ` +
        `(versions ${ring.versions.join(', ')}) do not include. Add "${version}:<base64 key>" back to AIAAS_MASTER_KEY; ` +
        'retire a version only once retirableVersions() lists it.',
    );
  }
  const header = blob.subarray(0, wrappedHeaderLength);
  const nonce = blob.subarray(wrappedHeaderLength, wrappedHeaderLength + nonceLength);
  const ciphertext = blob.subarray(wrappedHeaderLength + nonceLength, wrappedLength - tagLength);
  const tag = blob.subarray(wrappedLength - tagLength);
  try {
    const decipher = createDecipheriv('aes-256-gcm', master.key, nonce, { authTagLength: tagLength });
    decipher.setAAD(wrapAssociatedData(header, tenantId));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw new AiaasError(
      'DATA_KEY_UNWRAP_FAILED',
      `Tenant ${tenantId}'s data key failed authentication under master key version ${version}: ` +
        'the configured master key for that version is wrong, or the stored wrapped key was altered.',
      { cause: error },
    );
  }
}

/*
 * The single-blob artifact format written before streamed artifacts (stream-aead.ts). It is still
 * read, and startup migrates such files to the stream format; new artifacts are never written in it.
 *
 * Sealed artifact: 'AIAE' | format 1 | nonce 12 | ciphertext | tag 16; AAD = tenant id.
 */
const sealedMagic = Buffer.from('AIAE', 'ascii');
const sealedFormat = 1;
const sealedHeaderLength = sealedMagic.length + 1;
export const sealedOverhead = sealedHeaderLength + nonceLength + tagLength;

/** True when the bytes start like a single-blob artifact (a format sniff, not a check). */
export function isSingleBlobSealed(prefix: Uint8Array): boolean {
  return prefix.byteLength >= sealedMagic.length && Buffer.from(prefix.buffer, prefix.byteOffset, sealedMagic.length).equals(sealedMagic);
}

/*
 * Random 96-bit nonces are safe for about 2^32 encryptions under one key (NIST SP 800-38D);
 * one key per tenant and one encryption per stored artifact keeps us far below that.
 */
export function sealBytes(dataKey: Uint8Array, tenantId: string, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(nonceLength);
  const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: tagLength });
  cipher.setAAD(Buffer.from(tenantId, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([sealedMagic, Buffer.of(sealedFormat), nonce, ciphertext, cipher.getAuthTag()]);
}

/** Decrypts or throws ARTIFACT_CORRUPT; never returns unauthenticated bytes. */
export function openBytes(dataKey: Uint8Array, tenantId: string, sealed: Uint8Array): Buffer {
  const blob = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (blob.length < sealedOverhead || !blob.subarray(0, sealedMagic.length).equals(sealedMagic)) {
    throw new AiaasError('ARTIFACT_CORRUPT', 'The stored artifact is not an aiaas encrypted artifact.');
  }
  if (blob[sealedMagic.length] !== sealedFormat) {
    throw new AiaasError('ARTIFACT_CORRUPT', `The stored artifact has unknown encryption format ${blob[sealedMagic.length]}.`);
  }
  const nonce = blob.subarray(sealedHeaderLength, sealedHeaderLength + nonceLength);
  const ciphertext = blob.subarray(sealedHeaderLength + nonceLength, blob.length - tagLength);
  const tag = blob.subarray(blob.length - tagLength);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: tagLength });
    decipher.setAAD(Buffer.from(tenantId, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw new AiaasError(
      'ARTIFACT_CORRUPT',
      'The stored artifact failed decryption: it was altered, or it belongs to another tenant.',
      { cause: error },
    );
  }
}

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AiaasError } from '../errors.ts';
import type { DataKeyProvider } from './tenant-keys.ts';

/*
 * Column-level encryption of tenant-supplied text (descriptions, dataset schemas, job specs,
 * metrics) under the tenant's data key, so the database file and its WAL hold no tenant content
 * in clear and crypto-shredding a tenant also shreds its rows.
 *
 * Stored form: `enc:v1:` + base64(nonce 12 | ciphertext | tag 16), AES-256-GCM. The AAD binds the
 * tenant and the value's place (table, column, row id), so a ciphertext copied to another row,
 * column or tenant fails authentication instead of showing up there.
 */

export const sealedTextPrefix = 'enc:v1:';
const nonceLength = 12;
const tagLength = 16;

/** Where a sealed value lives; part of its AAD. */
export interface TextPlace {
  readonly table: string;
  readonly column: string;
  /** The row's id (or, for rows whose id the database assigns, the id of the row they belong to). */
  readonly rowId: string;
}

function associatedData(tenantId: string, place: TextPlace): Buffer {
  // JSON of an array is unambiguous whatever characters the parts hold.
  return Buffer.from(JSON.stringify(['aiaas-text-v1', tenantId, place.table, place.column, place.rowId]), 'utf8');
}

export function isSealedText(stored: string): boolean {
  return stored.startsWith(sealedTextPrefix);
}

export function sealText(dataKey: Uint8Array, tenantId: string, place: TextPlace, plaintext: string): string {
  const nonce = randomBytes(nonceLength);
  const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: tagLength });
  cipher.setAAD(associatedData(tenantId, place));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return sealedTextPrefix + Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]).toString('base64');
}

function corrupt(place: TextPlace, reason: string, cause?: unknown): AiaasError {
  return new AiaasError('STORED_TEXT_CORRUPT', `The stored ${place.table}.${place.column} of ${place.rowId} ${reason}.`, {
    details: { table: place.table, column: place.column, rowId: place.rowId },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Decrypts or throws STORED_TEXT_CORRUPT; a value in clear is refused, not passed through. */
export function openText(dataKey: Uint8Array, tenantId: string, place: TextPlace, stored: string): string {
  if (!isSealedText(stored)) throw corrupt(place, 'is not sealed');
  const blob = Buffer.from(stored.slice(sealedTextPrefix.length), 'base64');
  if (blob.length < nonceLength + tagLength) throw corrupt(place, 'is truncated');
  const nonce = blob.subarray(0, nonceLength);
  const ciphertext = blob.subarray(nonceLength, blob.length - tagLength);
  const tag = blob.subarray(blob.length - tagLength);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: tagLength });
    decipher.setAAD(associatedData(tenantId, place));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch (error) {
    throw corrupt(place, 'failed decryption: it was altered, or moved from another row or tenant', error);
  }
}

/**
 * Seals and opens text with the tenant's cached data key (no unwrap per value). Satisfies
 * storage's `TextCipher`, which the repositories of tenant content are given, so storage
 * itself never holds key material.
 */
export class TenantTextCipher {
  readonly #keys: DataKeyProvider;

  constructor(options: { keys: DataKeyProvider }) {
    this.#keys = options.keys;
  }

  /** Throws KEY_DESTROYED after crypto-shredding. */
  async seal(tenantId: string, place: TextPlace, plaintext: string): Promise<string> {
    return sealText(await this.#keys.dataKeyFor(tenantId), tenantId, place, plaintext);
  }

  /** Throws STORED_TEXT_CORRUPT on any alteration or move, KEY_DESTROYED after crypto-shredding. */
  async open(tenantId: string, place: TextPlace, stored: string): Promise<string> {
    // The key is used synchronously right after the await, so TenantKeyService.forget cannot zero it mid-use.
    return openText(await this.#keys.dataKeyFor(tenantId), tenantId, place, stored);
  }
}

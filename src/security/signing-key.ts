/**
 * The server's Ed25519 signing key for provenance records. It lives in `<dataDir>/signing-key`,
 * wrapped under the master key like the other server secrets (never in clear on disk), is generated
 * on first start, and rides along in backups with them. The public half is published at
 * `GET /api/v1/signing-key` so anyone can verify a record offline.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { AiaasError } from '../errors.ts';
import type { MasterKeyRing } from './key-ring.ts';
import { canonicalJson, keyIdOf, rawPublicKey } from './provenance-signature.ts';
import { parseWrappedSecret, unwrapSecret, wrapSecret } from './secret-wrap.ts';

import { signingKeyFileName } from './server-secrets.ts';

export { signingKeyFileName };
const purpose = 'provenance signing key';

export interface PublishedSigningKey {
  algorithm: 'Ed25519';
  keyId: string;
  /** SPKI PEM. */
  publicKeyPem: string;
  /** The raw 32-byte public key, base64. */
  publicKey: string;
}

export class SigningKey {
  readonly #privateKey: KeyObject;
  readonly published: PublishedSigningKey;

  constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    const publicKey = createPublicKey(privateKey);
    const raw = rawPublicKey(publicKey);
    this.published = {
      algorithm: 'Ed25519',
      keyId: keyIdOf(raw),
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      publicKey: raw.toString('base64'),
    };
  }

  /** The record's canonical JSON text and the base64 signature over its bytes. */
  signRecord(record: unknown): { text: string; signature: string } {
    const text = canonicalJson(record);
    return { text, signature: sign(null, Buffer.from(text, 'utf8'), this.#privateKey).toString('base64') };
  }
}

async function writeNew(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const handle = await open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

/**
 * Re-wraps an existing signing key under `ring.current` (offline master-key rotation, so the old
 * version can be retired); does nothing when the data directory has none yet.
 */
export async function rewrapSigningKey(ring: MasterKeyRing, dataDir: string): Promise<boolean> {
  const path = join(dataDir, signingKeyFileName);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return false;
    throw error;
  }
  const wrapped = parseWrappedSecret(text, path);
  if (wrapped.masterKeyVersion === ring.current.version) return false;
  const der = unwrapSecret(ring, purpose, wrapped);
  try {
    await writeNew(path, `${JSON.stringify(wrapSecret(ring, purpose, der))}\n`);
  } finally {
    der.fill(0);
  }
  return true;
}

/**
 * Reads the wrapped key (re-wrapping it under the current master key version after a rotation), or
 * generates and stores one on first start.
 */
export async function loadSigningKey(ring: MasterKeyRing, dataDir: string): Promise<SigningKey> {
  const path = join(dataDir, signingKeyFileName);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  if (text === undefined) {
    const { privateKey } = generateKeyPairSync('ed25519');
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    await writeNew(path, `${JSON.stringify(wrapSecret(ring, purpose, der))}\n`);
    der.fill(0);
    return new SigningKey(privateKey);
  }
  const wrapped = parseWrappedSecret(text, path);
  const der = unwrapSecret(ring, purpose, wrapped);
  try {
    const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new AiaasError('CONFIG_INVALID', `${path} does not hold an Ed25519 key`);
    if (wrapped.masterKeyVersion !== ring.current.version) await writeNew(path, `${JSON.stringify(wrapSecret(ring, purpose, der))}\n`);
    return new SigningKey(privateKey);
  } finally {
    der.fill(0);
  }
}

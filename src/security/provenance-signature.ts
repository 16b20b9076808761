/**
 * Provenance records are signed with Ed25519 over their canonical JSON: object keys sorted at every
 * level, no whitespace, UTF-8. The same functions verify a record offline (`aiaas models verify`),
 * from the record, its signature and the server's published public key alone.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';

/** Canonical JSON: sorted keys, no insignificant whitespace, so the same record always has the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

/** The raw 32-byte Ed25519 public key of a KeyObject (the last 32 bytes of its SPKI DER). */
export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32);
}

/** A short, stable name for a public key: the first 16 hex digits of SHA-256 over its raw bytes. */
export function keyIdOf(rawKey: Uint8Array): string {
  return createHash('sha256').update(rawKey).digest('hex').slice(0, 16);
}

/** SPKI DER prefix of an Ed25519 public key (RFC 8410); the raw 32 bytes follow it. */
const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

/** A public key from PEM text or raw base64 (as `GET /api/v1/signing-key` publishes both). */
export function publicKeyFrom(pemOrRawBase64: string): KeyObject {
  const text = pemOrRawBase64.trim();
  if (text.startsWith('-----BEGIN')) return createPublicKey(text);
  const raw = Buffer.from(text, 'base64');
  if (raw.length !== 32) throw new RangeError(`an Ed25519 public key is 32 bytes; this one is ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([ed25519SpkiPrefix, raw]), format: 'der', type: 'spki' });
}

/** Whether `signature` (base64) is the key's Ed25519 signature over the record's canonical JSON. */
export function verifyRecord(record: unknown, signatureBase64: string, publicKey: KeyObject): boolean {
  const signature = Buffer.from(signatureBase64, 'base64');
  if (signature.length !== 64) return false;
  return verify(null, Buffer.from(canonicalJson(record), 'utf8'), publicKey, signature);
}

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AiaasError } from '../errors.ts';

export const apiKeyPrefixMarker = 'aiaas_';
/** 43 base62 characters carry 256.03 bits: as strong as the HMAC that stores them. */
export const apiKeyRandomLength = 43;
export const apiKeyDisplayPrefixLength = 12;

const base62Alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// 248 = 4 * 62: bytes at or above it are rejected so every character is exactly uniform (no modulo bias).
const largestUnbiasedByte = 248;
const wellFormedApiKey = new RegExp(`^${apiKeyPrefixMarker}[0-9A-Za-z]{${apiKeyRandomLength}}$`);

export interface GeneratedApiKey {
  /** The secret, shown to the user once and never stored. */
  key: string;
  /** The first 12 characters, safe to store and show so users can tell keys apart. */
  prefix: string;
}

export function randomBase62(length: number): string {
  let text = '';
  while (text.length < length) {
    for (const byte of randomBytes(Math.ceil((length - text.length) * 1.1) + 8)) {
      if (byte >= largestUnbiasedByte) continue;
      text += base62Alphabet[byte % 62];
      if (text.length === length) break;
    }
  }
  return text;
}

export function generateApiKey(): GeneratedApiKey {
  const key = apiKeyPrefixMarker + randomBase62(apiKeyRandomLength);
  return { key, prefix: apiKeyPrefix(key) };
}

export function apiKeyPrefix(key: string): string {
  return key.slice(0, apiKeyDisplayPrefixLength);
}

export function isWellFormedApiKey(key: string): boolean {
  return wellFormedApiKey.test(key);
}

/**
 * Keyed rather than a plain SHA-256 so a leaked `api_keys` table cannot be checked
 * offline against guessed keys without also stealing the server secret.
 */
export function hashApiKey(serverSecret: Uint8Array, key: string): string {
  if (serverSecret.byteLength < 16) {
    throw new AiaasError('CONFIG_INVALID', 'The API key hashing secret must be at least 16 bytes long.');
  }
  return createHmac('sha256', serverSecret).update(key, 'utf8').digest('hex');
}

/**
 * Compares digests of both inputs so neither the content nor the length of the
 * secret side leaks through timing.
 */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const digestA = createHash('sha256').update(a).digest();
  const digestB = createHash('sha256').update(b).digest();
  const sameDigest = timingSafeEqual(digestA, digestB);
  const lengthA = typeof a === 'string' ? Buffer.byteLength(a) : a.byteLength;
  const lengthB = typeof b === 'string' ? Buffer.byteLength(b) : b.byteLength;
  return sameDigest && lengthA === lengthB;
}

export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

function headerValue(headers: RequestHeaders, name: string): string | undefined {
  let found: string | undefined;
  // for…in rather than Object.entries: this runs on every authenticated request, and the entries
  // array and its pairs were a measurable share of the allocations per inference.
  for (const headerName in headers) {
    if (!Object.hasOwn(headers, headerName) || headerName.toLowerCase() !== name) continue;
    const value = headers[headerName];
    if (value === undefined) continue;
    if (typeof value !== 'string' || found !== undefined) {
      throw new AiaasError('UNAUTHENTICATED', `Send the ${name} header only once.`);
    }
    found = value;
  }
  return found;
}

/**
 * Reads the API key from `Authorization: Bearer <key>` or `x-api-key: <key>`.
 * Returns undefined when neither header is present (the caller decides whether
 * anonymous access is allowed); throws UNAUTHENTICATED when a header is present
 * but unusable, so a typo is reported rather than treated as anonymous.
 * Messages never echo the presented value: it may be a real secret.
 */
export function parseAuthorization(headers: RequestHeaders): string | undefined {
  const authorization = headerValue(headers, 'authorization');
  const apiKeyHeader = headerValue(headers, 'x-api-key');
  let bearer: string | undefined;
  if (authorization !== undefined) {
    const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) {
      throw new AiaasError('UNAUTHENTICATED', 'The Authorization header must have the form "Bearer <api key>".');
    }
    bearer = match[1];
  }
  const direct = apiKeyHeader?.trim();
  if (direct === '') {
    throw new AiaasError('UNAUTHENTICATED', 'The x-api-key header is empty.');
  }
  if (bearer !== undefined && direct !== undefined && !constantTimeEqual(bearer, direct)) {
    throw new AiaasError('UNAUTHENTICATED', 'The Authorization and x-api-key headers carry different keys; send one.');
  }
  const key = bearer ?? direct;
  if (key === undefined) return undefined;
  if (!isWellFormedApiKey(key)) {
    throw new AiaasError(
      'UNAUTHENTICATED',
      `The API key is malformed: aiaas keys start with "${apiKeyPrefixMarker}" followed by ${apiKeyRandomLength} letters and digits.`,
    );
  }
  return key;
}

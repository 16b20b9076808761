import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import {
  constantTimeEqual,
  generateApiKey,
  hashApiKey,
  isWellFormedApiKey,
  parseAuthorization,
} from '../../src/security/api-keys.ts';

function thrownCode(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return AiaasError.isInstance(error) ? error.code : 'not an AiaasError';
  }
  return undefined;
}

describe('generateApiKey', () => {
  it('produces distinct, well-formed keys with a 12-character prefix', () => {
    const keys = Array.from({ length: 200 }, () => generateApiKey());
    expect(new Set(keys.map(({ key }) => key)).size).toBe(200);
    for (const { key, prefix } of keys) {
      expect(key).toMatch(/^aiaas_[0-9A-Za-z]{43}$/);
      expect(key.length - 'aiaas_'.length).toBeGreaterThanOrEqual(40);
      expect(prefix).toBe(key.slice(0, 12));
      expect(prefix.startsWith('aiaas_')).toBe(true);
      expect(isWellFormedApiKey(key)).toBe(true);
    }
  });

  it('uses the whole base62 alphabet roughly uniformly (no bias, no truncated alphabet)', () => {
    const counts = new Map<string, number>();
    for (let index = 0; index < 500; index += 1) {
      for (const character of generateApiKey().key.slice(6)) counts.set(character, (counts.get(character) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    // 21,500 characters over 62 symbols: expected ~347 each; a 4-sigma band is ~±75.
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(250);
      expect(count).toBeLessThan(450);
    }
  });
});

describe('hashApiKey', () => {
  const secret = Buffer.from('0123456789abcdef0123456789abcdef');

  it('is a stable HMAC-SHA256 hex digest that depends on the secret', () => {
    const { key } = generateApiKey();
    const hash = hashApiKey(secret, key);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey(secret, key)).toBe(hash);
    expect(hashApiKey(Buffer.from('another-secret-of-32-bytes-long!'), key)).not.toBe(hash);
    expect(hashApiKey(secret, `${key}x`)).not.toBe(hash);
  });

  it('matches the RFC 4231 HMAC-SHA256 test case 1', () => {
    expect(hashApiKey(Buffer.alloc(20, 0x0b), 'Hi There')).toBe(
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    );
  });

  it('refuses a short secret', () => {
    expect(thrownCode(() => hashApiKey(Buffer.alloc(8), 'aiaas_x'))).toBe('CONFIG_INVALID');
  });
});

describe('constantTimeEqual', () => {
  it('compares strings and bytes, including different lengths', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual(Buffer.from('abc'), 'abc')).toBe(true);
  });
});

describe('parseAuthorization', () => {
  const { key } = generateApiKey();

  it('reads Bearer and x-api-key headers', () => {
    expect(parseAuthorization({ authorization: `Bearer ${key}` })).toBe(key);
    expect(parseAuthorization({ authorization: `bearer   ${key}  ` })).toBe(key);
    expect(parseAuthorization({ 'x-api-key': key })).toBe(key);
    expect(parseAuthorization({ 'X-Api-Key': key })).toBe(key);
    expect(parseAuthorization({ authorization: `Bearer ${key}`, 'x-api-key': key })).toBe(key);
  });

  it('returns undefined when no credentials are sent', () => {
    expect(parseAuthorization({ host: 'example.test' })).toBeUndefined();
  });

  it('rejects unusable headers without echoing the secret', () => {
    const other = generateApiKey().key;
    const cases: Array<Record<string, string | string[]>> = [
      { authorization: `Basic ${key}` },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${key} extra` },
      { 'x-api-key': '' },
      { 'x-api-key': [key, key] },
      { authorization: `Bearer ${key}`, 'x-api-key': other },
      { authorization: 'Bearer sk-not-ours-1234567890' },
    ];
    for (const headers of cases) {
      try {
        parseAuthorization(headers);
        expect.unreachable(`accepted ${JSON.stringify(Object.keys(headers))}`);
      } catch (error) {
        expect(AiaasError.isInstance(error) && error.code).toBe('UNAUTHENTICATED');
        expect((error as Error).message).not.toContain(key.slice(6));
      }
    }
  });
});

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateDataKey } from '../../src/security/envelope.ts';
import { isSealedText, openText, sealedTextPrefix, sealText, TenantTextCipher } from '../../src/security/tenant-text.ts';
import { generateMasterKey, MasterKeyRing } from '../../src/security/key-ring.ts';
import { InMemoryDataKeyStore, TenantKeyService } from '../../src/security/tenant-keys.ts';
import { sealedTextPrefix as storagePrefix } from '../../src/storage/text-cipher.ts';

const place = { table: 'models', column: 'description', rowId: 'mdl_one' } as const;

describe('sealText / openText', () => {
  it('round-trips any text, with a fresh nonce each time', () => {
    const key = generateDataKey();
    const text = 'Säulen: naïve “quotes”, emoji 🚀, and NUL \u0000 too';
    const first = sealText(key, 'tnt_a', place, text);
    const second = sealText(key, 'tnt_a', place, text);
    expect(first.startsWith(sealedTextPrefix)).toBe(true);
    expect(first).not.toBe(second);
    expect(first).not.toContain('Säulen');
    expect(openText(key, 'tnt_a', place, first)).toBe(text);
    expect(openText(key, 'tnt_a', place, sealText(key, 'tnt_a', place, ''))).toBe('');
  });

  it('binds tenant, table, column and row: a value moved anywhere else fails', () => {
    const key = generateDataKey();
    const sealed = sealText(key, 'tnt_a', place, 'secret');
    const elsewhere = [
      ['tnt_b', place],
      ['tnt_a', { ...place, rowId: 'mdl_two' }],
      ['tnt_a', { ...place, column: 'batching_json' }],
      ['tnt_a', { ...place, table: 'datasets' }],
    ] as const;
    for (const [tenantId, other] of elsewhere) {
      expect(() => openText(key, tenantId, other, sealed)).toThrow(expect.objectContaining({ code: 'STORED_TEXT_CORRUPT' }));
    }
    expect(() => openText(generateDataKey(), 'tnt_a', place, sealed)).toThrow(expect.objectContaining({ code: 'STORED_TEXT_CORRUPT' }));
  });

  it('refuses plaintext, truncation and a flipped bit instead of passing them through', () => {
    const key = generateDataKey();
    const sealed = sealText(key, 'tnt_a', place, 'secret');
    const body = Buffer.from(sealed.slice(sealedTextPrefix.length), 'base64');
    body[body.length - 1]! ^= 1;
    for (const stored of ['secret', `${sealedTextPrefix}AAAA`, sealedTextPrefix + body.toString('base64')]) {
      expect(() => openText(key, 'tnt_a', place, stored)).toThrow(expect.objectContaining({ code: 'STORED_TEXT_CORRUPT', status: 500 }));
    }
    expect(isSealedText(sealed)).toBe(true);
    expect(isSealedText('{"a":1}')).toBe(false);
  });

  it('uses the prefix that storage looks for when it seals older rows', () => {
    expect(storagePrefix).toBe(sealedTextPrefix);
  });
});

describe('TenantTextCipher', () => {
  it('seals under the tenant’s data key and fails with KEY_DESTROYED once it is destroyed', async () => {
    const keys = new TenantKeyService({ store: new InMemoryDataKeyStore(), ring: MasterKeyRing.parse(generateMasterKey()) });
    const cipher = new TenantTextCipher({ keys });
    const tenantId = `tnt_${randomBytes(4).toString('hex')}`;
    const sealed = await cipher.seal(tenantId, place, 'SECRET');
    expect(openText(await keys.dataKeyFor(tenantId), tenantId, place, sealed)).toBe('SECRET');
    expect(await cipher.open(tenantId, place, sealed)).toBe('SECRET');
    await keys.destroyTenantKey(tenantId);
    await expect(cipher.open(tenantId, place, sealed)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
  });
});

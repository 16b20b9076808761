import { describe, expect, it } from 'vitest';
import { canonicalJson, chainEntry, computeEntryHash, genesisHash, verifyChain } from '../../src/security/audit-chain.ts';
import type { AuditEntry } from '../../src/security/audit-chain.ts';

function buildChain(length: number): AuditEntry[] {
  const entries: AuditEntry[] = [];
  for (let index = 0; index < length; index += 1) {
    entries.push(
      chainEntry(entries.at(-1), {
        tenantId: 'tenant-a',
        keyId: index % 2 === 0 ? 'key-1' : null,
        action: index % 3 === 0 ? 'model.create' : 'inference',
        resource: `models/m${index}`,
        outcome: 'success',
        ip: '10.0.0.1',
        at: new Date(Date.UTC(2025, 0, 1, 0, 0, index)).toISOString(),
        detail: { index, tags: ['a', 'b'], nested: { z: 1, a: null } },
      }),
    );
  }
  return entries;
}

describe('canonicalJson', () => {
  it('sorts keys recursively and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: true }], e: null })).toBe('{"a":[{"c":true,"d":"x"}],"b":1,"e":null}');
    expect(canonicalJson({ b: 1, a: 2 })).toBe(canonicalJson({ a: 2, b: 1 }));
    expect(canonicalJson({ text: 'quote " and \\n' })).toBe('{"text":"quote \\" and \\\\n"}');
    expect(() => canonicalJson({ at: new Date() })).toThrow(TypeError);
    expect(() => canonicalJson(Number.NaN)).toThrow(TypeError);
  });
});

describe('audit chain', () => {
  it('links from the genesis hash and verifies', () => {
    const chain = buildChain(6);
    expect(chain[0]!.prevHash).toBe(genesisHash);
    expect(chain[0]!.seq).toBe(1);
    expect(chain[1]!.prevHash).toBe(chain[0]!.hash);
    expect(chain[2]!.hash).toBe(computeEntryHash(chain[1]!.hash, chain[2]!));
    expect(verifyChain(chain)).toEqual({ ok: true, count: 6 });
    expect(verifyChain([])).toEqual({ ok: true, count: 0 });
  });

  it('survives a database round trip that reorders JSON keys and adds columns', () => {
    const chain = buildChain(3).map((entry) => ({
      id: `row-${entry.seq}`,
      ...entry,
      detail: JSON.parse(JSON.stringify({ nested: { a: null, z: 1 }, tags: ['a', 'b'], index: entry.seq - 1 })),
    }));
    expect(verifyChain(chain).ok).toBe(true);
  });

  it('detects an altered field at that entry', () => {
    for (const field of ['outcome', 'ip', 'at', 'seq', 'prevHash'] as const) {
      const chain = buildChain(6);
      const target = chain[3]!;
      chain[3] = { ...target, [field]: field === 'seq' ? 99 : field === 'prevHash' ? genesisHash : 'forged' };
      expect(verifyChain(chain), field).toMatchObject({ ok: false, position: 4, reason: 'altered' });
    }
    const chain = buildChain(6);
    chain[2] = { ...chain[2]!, detail: { index: 2, tags: ['a'], nested: { z: 1, a: null } } };
    expect(verifyChain(chain)).toMatchObject({ ok: false, position: 3, seq: 3, reason: 'altered' });
  });

  it('blames the edited entry when it was re-hashed to hide the change', () => {
    const chain = buildChain(6);
    const { hash: _hash, ...edited } = { ...chain[2]!, outcome: 'denied' };
    chain[2] = { ...edited, hash: computeEntryHash(edited.prevHash, edited) };
    expect(verifyChain(chain)).toMatchObject({ ok: false, position: 3, seq: 3, reason: 'altered' });
  });

  it('detects a deleted entry at the entry after the hole', () => {
    const middle = buildChain(6);
    middle.splice(2, 1);
    expect(verifyChain(middle)).toMatchObject({ ok: false, position: 3, seq: 4, reason: 'deleted' });

    const first = buildChain(6).slice(1);
    expect(verifyChain(first)).toMatchObject({ ok: false, position: 1, seq: 2, reason: 'deleted' });

    const several = buildChain(8);
    several.splice(4, 3);
    expect(verifyChain(several)).toMatchObject({ ok: false, position: 5, seq: 8, reason: 'deleted' });
  });

  it('detects a deleted tail only against a recorded head', () => {
    const chain = buildChain(6);
    const head = { seq: 6, hash: chain[5]!.hash };
    const truncated = chain.slice(0, 4);
    expect(verifyChain(truncated).ok).toBe(true);
    expect(verifyChain(truncated, { expectedHead: head })).toMatchObject({ ok: false, position: 5, seq: 5, reason: 'deleted' });
    expect(verifyChain(chain, { expectedHead: head })).toEqual({ ok: true, count: 6 });
  });

  it('detects reordered entries at the first one out of place', () => {
    const swapped = buildChain(6);
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    expect(verifyChain(swapped)).toMatchObject({ ok: false, position: 3, seq: 4, reason: 'reordered' });

    const lastTwo = buildChain(6);
    [lastTwo[4], lastTwo[5]] = [lastTwo[5]!, lastTwo[4]!];
    expect(verifyChain(lastTwo)).toMatchObject({ ok: false, position: 5, seq: 6, reason: 'reordered' });

    const movedToFront = buildChain(5);
    movedToFront.unshift(movedToFront.pop()!);
    expect(verifyChain(movedToFront)).toMatchObject({ ok: false, position: 1, seq: 5, reason: 'reordered' });

    const movedBack = buildChain(6);
    const [moved] = movedBack.splice(1, 1);
    movedBack.splice(4, 0, moved!);
    // seq 1, 3, 4, 5, 2, 6: seq 3 links to seq 2, which sits at position 5.
    expect(verifyChain(movedBack)).toMatchObject({ ok: false, position: 2, seq: 3, reason: 'reordered' });

    const duplicated = buildChain(4);
    duplicated.splice(2, 0, duplicated[1]!);
    expect(verifyChain(duplicated)).toMatchObject({ ok: false, position: 3, seq: 2, reason: 'reordered' });
  });

  it('verifies a segment from a known previous hash', () => {
    const chain = buildChain(6);
    expect(verifyChain(chain.slice(3), { startPrevHash: chain[2]!.hash })).toEqual({ ok: true, count: 3 });
    expect(verifyChain(chain.slice(3), { startPrevHash: chain[1]!.hash })).toMatchObject({ ok: false, position: 1, reason: 'altered' });
  });
});

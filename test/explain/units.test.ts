import { describe, expect, it } from 'vitest';
import { applyOutputPolicy, parseOutputPolicy } from '../../src/inference/output-policy.ts';
import { imageLayout, windowPositions, windowShape } from '../../src/explain/windows.ts';
import { canonicalJson } from '../../src/security/provenance-signature.ts';

describe('output policies', () => {
  const scores = { name: 'p', datatype: 'FP32' as const, shape: [2, 4], data: Float32Array.of(0.1, 0.5, 0.3, 0.1, 0.25, 0.25, 0.4, 0.1) };

  it('top-k keeps the k best class indices per row, best first, ties by lower index', () => {
    expect(applyOutputPolicy({ topK: 2 }, [scores])).toEqual([{ name: 'p', datatype: 'INT64', shape: [2, 2], data: BigInt64Array.of(1n, 2n, 2n, 0n) }]);
  });

  it('turns one probability per row into a 0/1 label and leaves integer outputs alone', () => {
    const binary = { name: 'b', datatype: 'FP64' as const, shape: [3, 1], data: Float64Array.of(0.2, 0.5, 0.9) };
    const labels = { name: 'l', datatype: 'INT64' as const, shape: [1], data: BigInt64Array.of(7n) };
    expect(applyOutputPolicy({ topK: 1 }, [binary, labels])).toEqual([{ name: 'b', datatype: 'INT64', shape: [3, 1], data: BigInt64Array.of(0n, 1n, 1n) }, labels]);
  });

  it('rounds to N digits as FP64', () => {
    const [rounded] = applyOutputPolicy({ roundDigits: 1 }, [scores]);
    expect(rounded).toMatchObject({ datatype: 'FP64', shape: [2, 4] });
    expect(Array.from(rounded!.data as Float64Array)).toEqual([0.1, 0.5, 0.3, 0.1, 0.3, 0.3, 0.4, 0.1]);
  });

  it('validates documents', () => {
    expect(parseOutputPolicy({})).toBeNull();
    expect(parseOutputPolicy({ topK: 3, roundDigits: 2 })).toEqual({ topK: 3, roundDigits: 2 });
    expect(() => parseOutputPolicy({ topK: 1.5 })).toThrow(/topK/);
    expect(() => parseOutputPolicy({ labels: true })).toThrow(/Unknown outputPolicy setting/);
    expect(() => parseOutputPolicy([])).toThrow(/object/);
  });
});

describe('windows', () => {
  it('reads image layouts', () => {
    expect(imageLayout([784])).toEqual({ height: 28, width: 28, channels: 1, channelsFirst: false });
    expect(imageLayout([3, 32, 32])).toEqual({ height: 32, width: 32, channels: 3, channelsFirst: true });
    expect(imageLayout([28, 28, 1])).toEqual({ height: 28, width: 28, channels: 1, channelsFirst: false });
    expect(imageLayout([10])).toBeUndefined();
  });

  it('covers every element; the last window sits flush with the end', () => {
    const dims = [5, 6];
    const window = windowShape(dims, 2);
    expect(window).toEqual([2, 2]);
    const positions = windowPositions(dims, window, window);
    expect(positions).toHaveLength(3 * 3);
    const covered = new Set(positions.flat());
    expect(covered.size).toBe(30);
    expect(positions.at(-1)).toEqual([3 * 6 + 4, 3 * 6 + 5, 4 * 6 + 4, 4 * 6 + 5]);
  });

  it('keeps channels together for images', () => {
    expect(windowShape([3, 28, 28], 4)).toEqual([3, 4, 4]);
    expect(windowShape([28, 28, 3], undefined)).toEqual([4, 4, 3]);
    expect(windowShape([10], undefined)).toEqual([1]);
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined, x: 'é' }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":"é","z":1}]},"b":1}');
  });
});

describe('the server version', () => {
  it('is package.json\'s (it goes into provenance records)', async () => {
    const { aiaasVersion } = await import('../../src/version.ts');
    const { readFile } = await import('node:fs/promises');
    expect(aiaasVersion).toBe(JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version);
  });
});

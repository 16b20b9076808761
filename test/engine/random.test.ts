import { describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.ts';

describe('Random', () => {
  it('is deterministic per seed and resumes exactly from its saved state', () => {
    const a = new Random(5);
    const b = new Random(5);
    expect(Array.from({ length: 5 }, () => a.nextUint32())).toEqual(Array.from({ length: 5 }, () => b.nextUint32()));
    const saved = a.state();
    const continued = Array.from({ length: 5 }, () => a.next());
    const resumed = new Random(saved);
    expect(Array.from({ length: 5 }, () => resumed.next())).toEqual(continued);
    expect(new Random(6).nextUint32()).not.toBe(new Random(5).nextUint32());
  });

  it('dropout masks hold only 0 and 1/(1 − rate), keeping 1 − rate of the elements', () => {
    const mask = new Float32Array(100_001);
    new Random(1).fillDropoutMask(mask, 0.2);
    const scale = Math.fround(1 / 0.8);
    let kept = 0;
    for (const value of mask) {
      expect(value === 0 || value === scale).toBe(true);
      if (value !== 0) kept++;
    }
    expect(kept / mask.length).toBeGreaterThan(0.795);
    expect(kept / mask.length).toBeLessThan(0.805);
  });

  it('permutations contain every index once', () => {
    const order = new Random(3).permutation(1000);
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, index) => index));
  });
});

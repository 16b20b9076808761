import { describe, expect, it } from 'vitest';
import { parseServerTiming, percentiles } from '../../src/quality/latency.ts';

describe('load-test summaries', () => {
  it('takes nearest-rank percentiles of measured samples', () => {
    const samples = Array.from({ length: 1000 }, (_, index) => 1000 - index);
    expect(percentiles(samples)).toEqual({ p50: 500, p90: 900, p99: 990, p999: 999, mean: 500.5, max: 1000 });
    expect(percentiles([7])).toEqual({ p50: 7, p90: 7, p99: 7, p999: 7, mean: 7, max: 7 });
    expect(percentiles([3, 1, 2, 4])).toMatchObject({ p50: 2, p90: 4, p99: 4 });
    expect(percentiles([])).toBeNull();
  });

  it('reads the dur of each Server-Timing metric', () => {
    expect(parseServerTiming('queue;dur=1.25, compute;dur=3.5')).toEqual({ queue: 1.25, compute: 3.5 });
    expect(parseServerTiming('queue;desc="waiting";dur=0, compute;dur="2"')).toEqual({ queue: 0, compute: 2 });
    expect(parseServerTiming('junk, ;dur=1, other;dur=abc')).toEqual({});
    expect(parseServerTiming(null)).toEqual({});
  });
});

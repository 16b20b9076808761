import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { RateLimiter, TokenBucket, rateLimitedError } from '../../src/security/rate-limit.ts';

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (milliseconds: number) => void (now += milliseconds) };
}

describe('TokenBucket', () => {
  it('allows a burst of capacity, then refuses with a whole-second Retry-After', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ capacity: 3, refillPerSecond: 0.5, now: clock.now });
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([{ allowed: true }, { allowed: true }, { allowed: true }]);
    expect(bucket.take()).toEqual({ allowed: false, retryAfterSeconds: 2 });
    clock.advance(1_000);
    expect(bucket.take()).toEqual({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(1_000);
    expect(bucket.take()).toEqual({ allowed: true });
    expect(bucket.take()).toEqual({ allowed: false, retryAfterSeconds: 2 });
  });

  it('refills continuously up to capacity, never beyond', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ capacity: 10, refillPerSecond: 5, now: clock.now });
    for (let index = 0; index < 10; index += 1) bucket.take();
    clock.advance(300);
    expect(bucket.tokens).toBeCloseTo(1.5);
    clock.advance(3_600_000);
    expect(bucket.tokens).toBe(10);
    expect(bucket.full).toBe(true);
  });

  it('a retry after the advertised delay succeeds', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ capacity: 1, refillPerSecond: 0.3, now: clock.now });
    bucket.take();
    const refused = bucket.take();
    expect(refused.allowed).toBe(false);
    if (refused.allowed) return;
    clock.advance(refused.retryAfterSeconds * 1000);
    expect(bucket.take()).toEqual({ allowed: true });
  });

  it('does not mint tokens when the clock steps back, and charges costs', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ capacity: 4, refillPerSecond: 1, now: clock.now });
    expect(bucket.take(4)).toEqual({ allowed: true });
    clock.advance(-60_000);
    expect(bucket.take()).toEqual({ allowed: false, retryAfterSeconds: 1 });
    clock.advance(2_000);
    expect(bucket.take(3)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(bucket.take(2)).toEqual({ allowed: true });
    expect(() => bucket.take(5)).toThrow(RangeError);
  });

  it('validates its options at construction', () => {
    const { now } = fakeClock();
    expect(() => new TokenBucket({ capacity: 0, refillPerSecond: 1, now })).toThrow(/capacity/);
    expect(() => new TokenBucket({ capacity: 1, refillPerSecond: Number.NaN, now })).toThrow(/refillPerSecond/);
  });
});

describe('RateLimiter', () => {
  it('keeps one bucket per key', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ capacity: 1, refillPerSecond: 1, now: clock.now });
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('stays within maxKeys, evicting the least recently used bucket', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ capacity: 1, refillPerSecond: 0.001, now: clock.now, maxKeys: 3 });
    limiter.take('a');
    limiter.take('b');
    limiter.take('c');
    limiter.take('a'); // refused, and now most recently used
    limiter.take('d'); // evicts b
    expect(limiter.size).toBe(3);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('c').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true); // fresh bucket after eviction
    for (let index = 0; index < 1000; index += 1) limiter.take(`flood-${index}`);
    expect(limiter.size).toBe(3);
  });

  it('sweep drops only full (idle) buckets', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ capacity: 2, refillPerSecond: 1, now: clock.now });
    limiter.take('idle');
    clock.advance(5_000);
    limiter.take('busy');
    expect(limiter.sweep()).toBe(1);
    expect(limiter.size).toBe(1);
  });

  it('rateLimitedError carries RATE_LIMITED and Retry-After', () => {
    const error = rateLimitedError(7);
    expect(AiaasError.isInstance(error)).toBe(true);
    expect(error.status).toBe(429);
    expect(error.headers).toEqual({ 'retry-after': '7' });
  });
});

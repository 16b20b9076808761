import { AiaasError } from '../errors.ts';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface TokenBucketOptions {
  /** Largest burst: tokens held when full. */
  capacity: number;
  refillPerSecond: number;
  /** Milliseconds; injected so tests and callers control time. */
  now: () => number;
}

function validate(options: TokenBucketOptions): void {
  if (!Number.isFinite(options.capacity) || options.capacity <= 0) {
    throw new AiaasError('CONFIG_INVALID', `Rate limit capacity must be a positive number, got ${options.capacity}.`);
  }
  if (!Number.isFinite(options.refillPerSecond) || options.refillPerSecond <= 0) {
    throw new AiaasError('CONFIG_INVALID', `Rate limit refillPerSecond must be a positive number, got ${options.refillPerSecond}.`);
  }
}

export class TokenBucket {
  readonly capacity: number;
  readonly refillPerSecond: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedAt: number;

  constructor(options: TokenBucketOptions) {
    validate(options);
    this.capacity = options.capacity;
    this.refillPerSecond = options.refillPerSecond;
    this.#now = options.now;
    this.#tokens = options.capacity;
    this.#updatedAt = options.now();
  }

  #refill(): void {
    const now = this.#now();
    // A clock stepping backwards must not mint tokens, nor delay the next refill forever.
    const elapsedMilliseconds = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.capacity, this.#tokens + (elapsedMilliseconds / 1000) * this.refillPerSecond);
    this.#updatedAt = now;
  }

  /** Tokens available now. */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** True when the bucket is full, i.e. indistinguishable from a brand-new one. */
  get full(): boolean {
    return this.tokens >= this.capacity;
  }

  take(cost = 1): RateDecision {
    if (!(cost > 0) || cost > this.capacity) {
      throw new RangeError(`A rate limit cost must be in (0, ${this.capacity}], got ${cost}.`);
    }
    this.#refill();
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return { allowed: true };
    }
    const waitSeconds = (cost - this.#tokens) / this.refillPerSecond;
    // Whole seconds for the Retry-After header; rounded up so a client that waits is served.
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds - 1e-9)) };
  }
}

export interface RateLimiterOptions extends TokenBucketOptions {
  /** Buckets kept at most; beyond it the least recently used bucket is dropped. */
  maxKeys?: number;
}

/**
 * One token bucket per key (API key id, tenant, IP), bounded in memory: beyond maxKeys
 * the least recently used bucket is dropped, which at worst grants that idle key a fresh
 * burst. `sweep()` drops full buckets, which is lossless (a full bucket equals a new one).
 */
export class RateLimiter {
  readonly #options: TokenBucketOptions;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, TokenBucket>();
  /** The most recently used key: already last in the map's order, so taking from it again needs no reinsertion. */
  #latest: string | undefined;

  constructor(options: RateLimiterOptions) {
    validate(options);
    this.#options = { capacity: options.capacity, refillPerSecond: options.refillPerSecond, now: options.now };
    this.#maxKeys = options.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(this.#maxKeys) || this.#maxKeys < 1) {
      throw new AiaasError('CONFIG_INVALID', `Rate limiter maxKeys must be a positive integer, got ${this.#maxKeys}.`);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, cost = 1): RateDecision {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#options);
      this.#buckets.set(key, bucket);
    } else if (key !== this.#latest) {
      // Re-inserting keeps the map in least-recently-used order.
      this.#buckets.delete(key);
      this.#buckets.set(key, bucket);
    }
    this.#latest = key;
    const decision = bucket.take(cost);
    if (this.#buckets.size > this.#maxKeys) this.#evict(key);
    return decision;
  }

  /** Drops every full bucket; call periodically to return memory from idle keys. */
  sweep(): number {
    let removed = 0;
    for (const [key, bucket] of this.#buckets) {
      if (bucket.full) {
        this.#buckets.delete(key);
        removed += 1;
      }
    }
    return removed;
  }

  // O(1) per call: sweeping here would make a flood of new keys cost O(n) each.
  #evict(keep: string): void {
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#maxKeys) break;
      if (key !== keep) this.#buckets.delete(key);
    }
  }
}

/** The error an HTTP layer throws for a refused request, with the Retry-After header set. */
export function rateLimitedError(retryAfterSeconds: number): AiaasError {
  return new AiaasError('RATE_LIMITED', `Rate limit exceeded; retry in ${retryAfterSeconds} s.`, {
    details: { retryAfterSeconds },
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

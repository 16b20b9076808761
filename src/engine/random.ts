/**
 * xoshiro128** — small, fast, and its whole state is four uint32s, so a checkpoint can store it
 * and a resumed run continues the exact same stream of shuffles, dropout masks and initialisations.
 */
export type RandomState = [number, number, number, number];

export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number | RandomState) {
    if (Array.isArray(seed)) {
      [this.s0, this.s1, this.s2, this.s3] = seed;
      return;
    }
    // SplitMix32 spreads a small integer seed over the four state words.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() || 1;
  }

  state(): RandomState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotateLeft(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  fillUniform(target: Float32Array): void {
    for (let index = 0; index < target.length; index++) target[index] = this.nextUint32() / 4294967296;
  }

  /**
   * An inverted-dropout mask: 1/(1 − rate) with probability 1 − rate, else 0. Each 32-bit draw
   * decides two elements (16 bits each: the keep probability is exact to 1/65536), halving the
   * generator calls on the training hot path.
   */
  fillDropoutMask(target: Float32Array, rate: number): void {
    const threshold = Math.round(rate * 65536);
    const scale = 1 / (1 - rate);
    const length = target.length;
    // The generator is inlined on local variables: this loop runs for every activation of every step.
    let s0 = this.s0;
    let s1 = this.s1;
    let s2 = this.s2;
    let s3 = this.s3;
    for (let index = 0; index < length; index += 2) {
      const bits = Math.imul(rotateLeft(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = (s1 << 9) >>> 0;
      s2 = (s2 ^ s0) >>> 0;
      s3 = (s3 ^ s1) >>> 0;
      s1 = (s1 ^ s2) >>> 0;
      s0 = (s0 ^ s3) >>> 0;
      s2 = (s2 ^ t) >>> 0;
      s3 = rotateLeft(s3, 11);
      target[index] = (bits & 0xffff) >= threshold ? scale : 0;
      if (index + 1 < length) target[index + 1] = bits >>> 16 >= threshold ? scale : 0;
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  /** Standard normal via Box–Muller. */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates permutation of 0..count-1. */
  permutation(count: number): Uint32Array {
    const order = new Uint32Array(count);
    for (let index = 0; index < count; index++) order[index] = index;
    for (let index = count - 1; index > 0; index--) {
      const other = this.nextUint32() % (index + 1);
      const swap = order[index]!;
      order[index] = order[other]!;
      order[other] = swap;
    }
    return order;
  }
}

function rotateLeft(value: number, bits: number): number {
  return ((value << bits) | (value >>> (32 - bits))) >>> 0;
}

/**
 * mulberry32: a one-word seeded generator, uniform in [0, 1). Its streams are part of documented
 * orders (the MNIST package's sample order, sweep samples, occlusion shuffles), so it must never change.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small seeded PRNG (mulberry32) so every fuzz run with the same seed tries the same cases. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let value = this.#state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, bound). */
  int(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let index = 0; index < length; index++) out[index] = this.int(256);
    return out;
  }
}

/** Values at the edges of the integer and float ranges parsers convert lengths and counts with. */
export const boundaryNumbers: readonly number[] = [
  0, -0, 1, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, -(2 ** 53) - 2, 1e308, -1e308, 5e-324, 0.5, 1e21,
];

/** Byte-level mutations: flips, truncations, insertions, deletions, duplications and huge length fields. */
export function mutateBytes(random: Random, input: Uint8Array, others: readonly Uint8Array[] = []): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(input);
  const rounds = 1 + random.int(4);
  for (let round = 0; round < rounds; round++) {
    const position = bytes.length === 0 ? 0 : random.int(bytes.length);
    switch (random.int(9)) {
      case 8: {
        // deep nesting: parsers that recurse per level overflow the stack on this
        const opener = new TextEncoder().encode(random.pick(['[', '{"a":', '[[', '{"x":[']));
        const levels = random.chance(0.5) ? 100 + random.int(200) : 20_000 + random.int(200_000);
        const nested = new Uint8Array(opener.length * levels);
        for (let level = 0; level < levels; level++) nested.set(opener, level * opener.length);
        bytes = concat(bytes.subarray(0, position), nested, bytes.subarray(position));
        break;
      }
      case 0: // flip a few bits
        if (bytes.length > 0) bytes[position]! ^= 1 << random.int(8);
        break;
      case 1: // truncate
        bytes = bytes.slice(0, position);
        break;
      case 2: {
        // insert random bytes
        const inserted = random.bytes(1 + random.int(random.chance(0.1) ? 4096 : 16));
        bytes = concat(bytes.subarray(0, position), inserted, bytes.subarray(position));
        break;
      }
      case 3: {
        // delete a range
        const end = Math.min(bytes.length, position + 1 + random.int(64));
        bytes = concat(bytes.subarray(0, position), bytes.subarray(end));
        break;
      }
      case 4: {
        // duplicate a range
        const end = Math.min(bytes.length, position + 1 + random.int(512));
        bytes = concat(bytes.subarray(0, end), bytes.subarray(position, end), bytes.subarray(end));
        break;
      }
      case 5: {
        // a huge or boundary length field, 4 or 8 bytes, either endianness
        const width = random.pick([1, 2, 4, 8]);
        const value = random.pick([0xff, 0x7f, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0, 1]);
        for (let index = 0; index < width && position + index < bytes.length; index++) {
          bytes[position + index] = random.chance(0.5) ? (value >>> ((index % 4) * 8)) & 0xff : index === 0 ? value & 0xff : 0xff;
        }
        break;
      }
      case 6: // ASCII digits where numbers are written as text (tar sizes, CSV values, JSON lengths)
        if (bytes.length > 0) bytes[position] = random.pick([0x30, 0x37, 0x39, 0x2d, 0x2e, 0x65, 0x22, 0x5b, 0x7b, 0x2c, 0x0a, 0x00]);
        break;
      default: {
        // splice in part of another sample
        const other = others.length > 0 ? random.pick(others) : input;
        const start = other.length === 0 ? 0 : random.int(other.length);
        bytes = concat(bytes.subarray(0, position), other.subarray(start, start + 1 + random.int(256)));
        break;
      }
    }
  }
  return bytes;
}

export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function randomString(random: Random, length: number): string {
  const alphabet = 'abcXYZ019-_.:;$%/\\ "\'<>{}[]é漢\u0000\u202e';
  let out = '';
  for (let index = 0; index < length; index++) out += alphabet[random.int(alphabet.length)];
  return out;
}

const deepMarker = '"\u0000deep\u0000"';

/** Applies one JSON-level mutation; deep nesting is spliced in as text (building it as a value would overflow JSON.stringify). */
export function mutateJson(random: Random, value: unknown): string {
  const leaves: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const collect = (node: unknown, depth: number): void => {
    if (depth > 8 || node === null || typeof node !== 'object') return;
    for (const [key, child] of Object.entries(node)) {
      leaves.push({ parent: node as Record<string, unknown>, key: Array.isArray(node) ? Number(key) : key });
      collect(child, depth + 1);
    }
  };
  const root = { root: structuredClone(value) };
  collect(root, 0);
  const target = random.pick(leaves);
  const set = (replacement: unknown): void => {
    (target.parent as Record<string | number, unknown>)[target.key] = replacement;
  };
  switch (random.int(9)) {
    case 0:
      set(random.pick([null, true, 0, -1, 'text', [], {}, [[1]], { a: 1 }]));
      break;
    case 1:
      set('x'.repeat(random.pick([1000, 100_000, 1_000_000])));
      break;
    case 2:
      set(random.pick(boundaryNumbers));
      break;
    case 3:
      if (!Array.isArray(target.parent)) delete (target.parent as Record<string, unknown>)[target.key as string];
      break;
    case 4:
      if (!Array.isArray(target.parent)) (target.parent as Record<string, unknown>)[random.pick(['extra', 'x'.repeat(100_000), '', 'constructor', 'toString', 'prototype'])] = random.pick([1, 'y', { a: [] }]);
      break;
    case 5:
      set(deepMarker);
      break;
    case 6:
      set(Array.from({ length: random.pick([1000, 50_000]) }, () => random.pick([0, 1.5, 'a', null])));
      break;
    default:
      set(randomString(random, 1 + random.int(40)));
  }
  let text = JSON.stringify(root.root) ?? 'null';
  if (text.includes(deepMarker)) {
    const levels = random.pick([101, 5000, 200_000]);
    const opener = random.pick(['[', '{"a":']);
    const closer = opener === '[' ? ']' : '}';
    text = text.replace(deepMarker, `${opener.repeat(levels)}1${closer.repeat(levels)}`);
  }
  if (random.chance(0.05)) text = text.replace(/\d+/, 'NaN');
  if (random.chance(0.05)) text = text.replace('{', '{"__proto__":{"polluted":1},');
  return text;
}


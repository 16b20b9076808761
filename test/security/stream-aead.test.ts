import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { generateDataKey } from '../../src/security/envelope.ts';
import {
  createDecryptStream,
  createEncryptStream,
  defaultSegmentSize,
  openStreamBytes,
  sealStreamBytes,
  streamHeaderLength,
  streamSealedLength,
} from '../../src/security/stream-aead.ts';

const tenant = 'tenant-a';
const segmentSize = 32;
const sealedSegment = segmentSize + 16;

function failureCode(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    return AiaasError.isInstance(error) ? error.code : `not an AiaasError: ${String(error)}`;
  }
  return 'no error';
}

/** Runs bytes through a Transform in chunks of `chunkSize`, collecting the output. */
async function throughStream(transform: NodeJS.ReadWriteStream, bytes: Uint8Array, chunkSize: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  async function* source() {
    for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) yield Buffer.from(bytes.subarray(offset, offset + chunkSize));
  }
  await pipeline(source(), transform, async (stream: AsyncIterable<Buffer | string>) => {
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  });
  return Buffer.concat(chunks);
}

async function streamFailureCode(transform: NodeJS.ReadWriteStream, bytes: Uint8Array): Promise<string> {
  try {
    await throughStream(transform, bytes, 7);
  } catch (error) {
    return AiaasError.isInstance(error) ? error.code : `not an AiaasError: ${String(error)}`;
  }
  return 'no error';
}

describe('streaming AEAD format', () => {
  const key = generateDataKey();
  const plaintext = randomBytes(segmentSize * 5 + 11);
  const sealed = sealStreamBytes(key, tenant, plaintext, { segmentSize });
  const segmentAt = (index: number) => streamHeaderLength + index * sealedSegment;

  it('round-trips many segments, and the stream and buffer forms agree on the format', async () => {
    expect(sealed.subarray(0, 4).toString('latin1')).toBe('AIAS');
    expect(sealed.length).toBe(streamSealedLength(plaintext.length, segmentSize));
    expect(openStreamBytes(key, tenant, sealed).equals(plaintext)).toBe(true);
    // Chunk sizes that do not line up with segments, in both directions.
    for (const chunkSize of [1, 5, 32, 48, 1000]) {
      const streamed = await throughStream(createEncryptStream(key, tenant, { segmentSize }), plaintext, chunkSize);
      expect(streamed.length).toBe(sealed.length);
      expect(openStreamBytes(key, tenant, streamed).equals(plaintext)).toBe(true);
      expect((await throughStream(createDecryptStream(key, tenant), sealed, chunkSize)).equals(plaintext)).toBe(true);
    }
  });

  it('round-trips the default 64 KiB segments over several segments', async () => {
    const big = randomBytes(defaultSegmentSize * 3 + 1234);
    const streamed = await throughStream(createEncryptStream(key, tenant), big, 10_000);
    expect(streamed.length).toBe(streamHeaderLength + big.length + 4 * 16);
    expect((await throughStream(createDecryptStream(key, tenant), streamed, 65_536)).equals(big)).toBe(true);
  });

  it('handles zero-length plaintext and exact multiples of the segment size', async () => {
    const empty = sealStreamBytes(key, tenant, new Uint8Array(0), { segmentSize });
    expect(empty.length).toBe(streamHeaderLength + 16);
    expect(openStreamBytes(key, tenant, empty).length).toBe(0);
    expect((await throughStream(createEncryptStream(key, tenant, { segmentSize }), new Uint8Array(0), 1)).length).toBe(streamHeaderLength + 16);
    for (const length of [segmentSize, segmentSize * 4]) {
      const exact = randomBytes(length);
      const streamed = await throughStream(createEncryptStream(key, tenant, { segmentSize }), exact, 3);
      // Exactly length/segmentSize segments: the last one is full, no empty segment is added.
      expect(streamed.length).toBe(streamHeaderLength + length + (length / segmentSize) * 16);
      expect(openStreamBytes(key, tenant, streamed).equals(exact)).toBe(true);
      expect((await throughStream(createDecryptStream(key, tenant), streamed, 13)).equals(exact)).toBe(true);
    }
  });

  it('refuses a flipped byte in any segment, and in the header', async () => {
    for (const position of [4, 10, streamHeaderLength - 1, segmentAt(0), segmentAt(2) + 20, segmentAt(5) + 1, sealed.length - 1]) {
      const flipped = Buffer.from(sealed);
      flipped[position]! ^= 0x40;
      expect(failureCode(() => openStreamBytes(key, tenant, flipped)), `byte ${position}`).toBe('ARTIFACT_CORRUPT');
      expect(await streamFailureCode(createDecryptStream(key, tenant), flipped), `byte ${position}`).toBe('ARTIFACT_CORRUPT');
    }
  });

  it('refuses truncation at a segment boundary, a dropped last segment, swapped segments and an appended segment', async () => {
    const atBoundary = sealed.subarray(0, segmentAt(3));
    const withoutLast = sealed.subarray(0, segmentAt(5));
    const swapped = Buffer.concat([sealed.subarray(0, segmentAt(1)), sealed.subarray(segmentAt(2), segmentAt(3)), sealed.subarray(segmentAt(1), segmentAt(2)), sealed.subarray(segmentAt(3))]);
    // Appending: a second file's segment sealed under the same key and header cannot exist, so
    // append this file's own first segment, and also a copy of its last one.
    const appendedFirst = Buffer.concat([sealed, sealed.subarray(segmentAt(0), segmentAt(1))]);
    const appendedLast = Buffer.concat([sealed, sealed.subarray(segmentAt(5))]);
    const headerOnly = sealed.subarray(0, streamHeaderLength);
    const partHeader = sealed.subarray(0, 20);
    for (const [name, bytes] of Object.entries({ atBoundary, withoutLast, swapped, appendedFirst, appendedLast, headerOnly, partHeader })) {
      expect(failureCode(() => openStreamBytes(key, tenant, bytes)), name).toBe('ARTIFACT_CORRUPT');
      expect(await streamFailureCode(createDecryptStream(key, tenant), bytes), name).toBe('ARTIFACT_CORRUPT');
    }
  });

  it('refuses a file under another tenant id even with the same data key, and under another key', async () => {
    expect(failureCode(() => openStreamBytes(key, 'tenant-b', sealed))).toBe('ARTIFACT_CORRUPT');
    expect(await streamFailureCode(createDecryptStream(key, 'tenant-b'), sealed)).toBe('ARTIFACT_CORRUPT');
    expect(failureCode(() => openStreamBytes(generateDataKey(), tenant, sealed))).toBe('ARTIFACT_CORRUPT');
  });

  it('seals the same plaintext differently each time unless given a deterministic seed', () => {
    expect(sealStreamBytes(key, tenant, plaintext).equals(sealStreamBytes(key, tenant, plaintext))).toBe(false);
    const seed = Buffer.from('sha256:old-ref');
    const first = sealStreamBytes(key, tenant, plaintext, { deterministicSeed: seed });
    expect(first.equals(sealStreamBytes(key, tenant, plaintext, { deterministicSeed: seed }))).toBe(true);
    expect(first.equals(sealStreamBytes(generateDataKey(), tenant, plaintext, { deterministicSeed: seed }))).toBe(false);
  });

  it('refuses a header that declares a segment size it would have to buffer unauthenticated', () => {
    const hostile = Buffer.from(sealed);
    hostile.writeUInt32BE(2 ** 31, 5);
    expect(failureCode(() => openStreamBytes(key, tenant, hostile))).toBe('ARTIFACT_CORRUPT');
  });
});

describe('streaming AEAD memory', () => {
  it('keeps at most about one segment buffered when fed from a slow reader', async () => {
    const key = generateDataKey();
    const encrypt = createEncryptStream(key, tenant);
    const decrypt = createDecryptStream(key, tenant);
    let produced = 0;
    const total = 64 * 1024 * 640;
    const source = Readable.from(
      (function* () {
        for (let offset = 0; offset < total; offset += 16_384) {
          produced += 16_384;
          yield Buffer.alloc(16_384, offset % 251);
        }
      })(),
    );
    let consumed = 0;
    let maximumAhead = 0;
    await pipeline(source, encrypt, decrypt, async (stream: AsyncIterable<Buffer>) => {
      for await (const chunk of stream) {
        consumed += chunk.length;
        maximumAhead = Math.max(maximumAhead, produced - consumed);
      }
    });
    expect(consumed).toBe(total);
    // Ahead = what the source, both transforms and their buffers hold: about a megabyte at most,
    // whatever the total (40 MiB here).
    expect(maximumAhead).toBeLessThan(1024 * 1024);
  });
});

import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { encodeIdx, loadIdxPair, parseIdx } from '../../src/data/idx.ts';

function thrown(action: () => unknown): AiaasError {
  try {
    action();
  } catch (error) {
    if (AiaasError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected an error');
}

const images = new Uint8Array(3 * 2 * 2);
images.forEach((_, index) => (images[index] = index * 20));
const imagesFile = encodeIdx({ dataType: 'uint8', dims: [3, 2, 2], data: images });
const labelsFile = encodeIdx({ dataType: 'uint8', dims: [3], data: new Uint8Array([7, 0, 9]) });

describe('IDX', () => {
  it('writes the MNIST layout byte for byte', () => {
    expect(Array.from(labelsFile)).toEqual([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]);
    expect(Array.from(imagesFile.subarray(0, 16))).toEqual([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2]);
  });

  it('round-trips every data type big-endian', () => {
    const cases = [
      { dataType: 'int8', data: new Int8Array([-128, -1, 0, 127]) },
      { dataType: 'int16', data: new Int16Array([-32768, -2, 300, 32767]) },
      { dataType: 'int32', data: new Int32Array([-2147483648, -5, 70000, 2147483647]) },
      { dataType: 'float32', data: new Float32Array([-1.5, 0, 3.25, 1e-7]) },
      { dataType: 'float64', data: new Float64Array([-1.5, Math.PI, 1e300, -0]) },
    ] as const;
    for (const { dataType, data } of cases) {
      const bytes = encodeIdx({ dataType, dims: [2, 2], data });
      const parsed = parseIdx(bytes, 'x.idx');
      expect(parsed.dataType).toBe(dataType);
      expect(parsed.dims).toEqual([2, 2]);
      expect(Array.from(parsed.data)).toEqual(Array.from(data));
    }
    const int16 = encodeIdx({ dataType: 'int16', dims: [1], data: new Int16Array([0x0102]) });
    expect(Array.from(int16.subarray(8))).toEqual([1, 2]);
  });

  it('loads an image/label pair, raw or gzip (detected by magic, not name), scaled to [0, 1]', () => {
    for (const [imageBytes, labelBytes] of [
      [imagesFile, labelsFile],
      [gzipSync(imagesFile), gzipSync(labelsFile)],
      [gzipSync(imagesFile), labelsFile],
    ] as const) {
      const dataset = loadIdxPair(imageBytes, labelBytes, { scale: true, fileNames: { images: 'train-images', labels: 'train-labels' } });
      expect(dataset.count).toBe(3);
      expect(dataset.featureShape).toEqual([2, 2]);
      expect(dataset.labelShape).toEqual([]);
      expect(Array.from(dataset.labels)).toEqual([7, 0, 9]);
      expect(dataset.features[1]).toBeCloseTo(20 / 255, 6);
      expect(Math.max(...dataset.features)).toBeLessThanOrEqual(1);
    }
    const unscaled = loadIdxPair(imagesFile, labelsFile, { scale: false });
    expect(unscaled.features[11]).toBe(220);
  });

  it('reports bad magic with the file name and offset', () => {
    const bad = imagesFile.slice();
    bad[0] = 0x50;
    const error = thrown(() => parseIdx(bad, 'images.idx'));
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toMatch(/^images\.idx \(byte offset 0\): bad magic number 0x50 0x00 0x08 0x03/);
    const badType = imagesFile.slice();
    badType[2] = 0x0a;
    expect(thrown(() => parseIdx(badType, 'images.idx')).message).toMatch(/^images\.idx \(byte offset 2\): unknown data type code 0x0a/);
  });

  it('reports truncated headers and data with expected and actual sizes', () => {
    expect(thrown(() => parseIdx(imagesFile.subarray(0, 10), 'images.idx')).message).toBe(
      'images.idx (byte offset 4): truncated header: expected 12 bytes of dimension sizes for 3 dimensions, got 6',
    );
    const truncated = thrown(() => parseIdx(imagesFile.subarray(0, imagesFile.length - 5), 'images.idx'));
    expect(truncated.message).toBe(
      'images.idx (byte offset 16): truncated data for dimensions [3, 2, 2] of uint8: expected 12 bytes, got 7',
    );
    expect(truncated.details).toMatchObject({ file: 'images.idx', offset: 16 });
    const gzipped = thrown(() => parseIdx(gzipSync(imagesFile.subarray(0, 20)), 'images.idx.gz'));
    expect(gzipped.message).toMatch(/^images\.idx\.gz \(byte offset 16 after gunzip\): .*expected 12 bytes, got 4$/);
    expect(thrown(() => parseIdx(new Uint8Array([0, 0]), 'tiny')).message).toMatch(/truncated magic number/);
    const corrupt = gzipSync(imagesFile);
    expect(thrown(() => parseIdx(corrupt.subarray(0, 12), 'c.gz')).message).toMatch(/^c\.gz: corrupt gzip data/);
  });

  it('rejects a count mismatch between images and labels', () => {
    const fourLabels = encodeIdx({ dataType: 'uint8', dims: [4], data: new Uint8Array(4) });
    const error = thrown(() => loadIdxPair(imagesFile, fourLabels, { fileNames: { images: 'a-images', labels: 'a-labels' } }));
    expect(error.message).toBe('a-images holds 3 samples but a-labels holds 4 labels (the first dimension must match)');
  });

  it('refuses gzip bombs past the decompression limit', () => {
    const bomb = gzipSync(new Uint8Array(1_000_000));
    expect(thrown(() => parseIdx(bomb, 'bomb.gz', { maxDecompressedBytes: 1000 })).code).toBe('PAYLOAD_TOO_LARGE');
  });
});

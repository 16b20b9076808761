import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx } from '../../src/data/idx.ts';
import { detectDatasetFormat, loadDatasetBytes, loadDatasetFile } from '../../src/data/load.ts';

const directory = mkdtempSync(join(tmpdir(), 'aiaas-data-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const images = encodeIdx({ dataType: 'uint8', dims: [2, 3, 3], data: new Uint8Array(18).fill(255) });
const labels = encodeIdx({ dataType: 'uint8', dims: [2], data: new Uint8Array([4, 2]) });
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('loadDatasetFile / loadDatasetBytes', () => {
  it('detects IDX by content even when gzipped and unnamed', async () => {
    writeFileSync(join(directory, 'train-images-idx3-ubyte.gz'), gzipSync(images));
    writeFileSync(join(directory, 'train-labels'), labels);
    const dataset = await loadDatasetFile(join(directory, 'train-images-idx3-ubyte.gz'), { labelsPath: join(directory, 'train-labels') });
    expect(dataset.featureShape).toEqual([3, 3]);
    expect(Array.from(dataset.labels)).toEqual([4, 2]);
    expect(dataset.features[0]).toBe(1);
    await expect(loadDatasetFile(join(directory, 'train-images-idx3-ubyte.gz'))).rejects.toThrow(/is an IDX file; pass the matching labels file/);
  });

  it('says an IDX error offset is after gunzip when the file on disk is gzipped', async () => {
    writeFileSync(join(directory, 'short-images.gz'), gzipSync(images.subarray(0, images.length - 4)));
    writeFileSync(join(directory, 'short-labels'), labels);
    await expect(loadDatasetFile(join(directory, 'short-images.gz'), { labelsPath: join(directory, 'short-labels') })).rejects.toThrow(
      /^short-images\.gz \(byte offset 16 after gunzip\): truncated data/,
    );
  });

  it('dispatches CSV and JSON lines by extension, gzip or not', async () => {
    writeFileSync(join(directory, 'rows.csv.gz'), gzipSync(encode('a,b,target\n1,2,1\n')));
    writeFileSync(join(directory, 'rows.ndjson'), '{"a":1,"target":1}\n');
    const csv = await loadDatasetFile(join(directory, 'rows.csv.gz'), { label: 'target' });
    expect(csv.featureNames).toEqual(['a', 'b']);
    const jsonl = await loadDatasetFile(join(directory, 'rows.ndjson'), { label: 'target' });
    expect(jsonl.featureNames).toEqual(['a']);
  });

  it('reports unreadable and unrecognisable files', async () => {
    writeFileSync(join(directory, 'mystery.bin'), new Uint8Array([1, 2, 3, 0, 9]));
    await expect(loadDatasetFile(join(directory, 'mystery.bin'))).rejects.toThrow(/mystery\.bin: cannot tell the dataset format/);
    await expect(loadDatasetFile(join(directory, 'missing.csv'))).rejects.toThrow(/no such file/);
  });

  it('loads uploaded bytes for the server', () => {
    expect(detectDatasetFormat(encode('x,label\n1,0'))).toBe('csv');
    expect(detectDatasetFormat(encode('{"x":1,"label":0}'))).toBe('jsonl');
    expect(detectDatasetFormat(gzipSync(images))).toBe('idx');
    const dataset = loadDatasetBytes('idx', images, { labelsBytes: labels, scale: false, fileName: 'upload' });
    expect(dataset.features[0]).toBe(255);
    expect(() => loadDatasetBytes('idx', images)).toThrow(/needs a matching IDX labels file/);
    expect(loadDatasetBytes('csv', encode('x,label\n1,0'), { fileName: 'u.csv' }).count).toBe(1);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType } from '../../src/runtimes/gguf/gguf-format.ts';
import { GgufFormatError, readGgufHeader } from '../../src/runtimes/gguf/gguf-reader.ts';
import { encodeGguf } from '../../src/runtimes/gguf/gguf-writer.ts';
import { randomLlamaGguf, toHalf } from '../../src/runtimes/gguf/random-llama.ts';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-gguf-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function headerOf(bytes: Uint8Array, name = `f${Math.random().toString(36).slice(2)}.gguf`) {
  const path = join(directory, name);
  await writeFile(path, bytes);
  return await readGgufHeader(path);
}

describe('GGUF writer and reader', () => {
  it('round-trips metadata, tensor descriptors and data offsets', async () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const bytes = encodeGguf(
      [
        ['general.architecture', { type: 'string', value: 'llama' }],
        ['some.count', { type: 'uint64', value: 12345678901234n }],
        ['some.flag', { type: 'bool', value: true }],
        ['some.list', { type: 'array', elementType: 'int32', values: [1, -2, 3] }],
      ],
      [
        { name: 'a', dimensions: [3, 2], type: GgmlType.F32, data: () => new Uint8Array(data.buffer) },
        { name: 'b', dimensions: [5], type: GgmlType.F16, data: () => new Uint8Array(10) },
      ],
    );
    const header = await headerOf(bytes);
    expect(header.version).toBe(3);
    expect(header.metadata.get('general.architecture')).toEqual({ type: 'string', value: 'llama' });
    expect(header.metadata.get('some.count')).toEqual({ type: 'uint64', value: 12345678901234n });
    expect(header.metadata.get('some.flag')).toEqual({ type: 'bool', value: true });
    expect(header.metadata.get('some.list')).toEqual({ type: 'array', elementType: 'int32', values: [1, -2, 3] });
    expect(header.tensors.map((tensor) => [tensor.name, tensor.dimensions, tensor.type, tensor.offset])).toEqual([
      ['a', [3, 2], GgmlType.F32, 0],
      ['b', [5], GgmlType.F16, 32],
    ]);
    expect(header.dataOffset % 32).toBe(0);
    const stored = new Float32Array(bytes.slice(header.dataOffset, header.dataOffset + 24).buffer);
    expect(Array.from(stored)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('writes a random llama whose header names the llama tensors and a chat template', async () => {
    const header = await headerOf(randomLlamaGguf({ blockCount: 1 }));
    const names = header.tensors.map((tensor) => tensor.name);
    expect(names).toContain('token_embd.weight');
    expect(names).toContain('blk.0.ffn_down.weight');
    expect(header.metadata.get('llama.context_length')).toEqual({ type: 'uint32', value: 2048 });
    expect(header.metadata.get('tokenizer.chat_template')?.type).toBe('string');
  });

  it('encodes halves with round-to-nearest-even', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(0.1)).toBe(0x2e66);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1e-8)).toBe(0);
  });
});

describe('GGUF reader refuses hostile files', () => {
  const valid = randomLlamaGguf({ blockCount: 1, embeddingLength: 32, headCount: 2 });
  const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ['empty file', () => new Uint8Array(0), /magic/],
    ['bad magic', () => { const b = valid.slice(); b[0] = 0x21; return b; }, /bad magic/],
    ['unknown version', () => { const b = valid.slice(); view(b).setUint32(4, 99, true); return b; }, /version 99/],
    ['huge tensor count', () => { const b = valid.slice(); view(b).setBigUint64(8, 1n << 60n, true); return b; }, /tensor count/],
    ['huge metadata count', () => { const b = valid.slice(); view(b).setBigUint64(16, 1n << 40n, true); return b; }, /metadata count/],
    ['truncated header', () => valid.slice(0, 200), /past the end/],
    ['truncated data', () => valid.slice(0, valid.length - 100), /runs past the end/],
    ['huge key length', () => { const b = valid.slice(); view(b).setBigUint64(24, 1n << 50n, true); return b; }, /length/],
    ['unknown value type', () => { const b = valid.slice(); const keyLength = Number(view(b).getBigUint64(24, true)); view(b).setUint32(32 + keyLength, 77, true); return b; }, /unknown value type 77/],
  ];

  it.each(cases)('%s', async (_name, make, message) => {
    const error = await headerOf(make()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GgufFormatError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses overlapping and misaligned tensors', async () => {
    const tensor = (name: string) => ({ name, dimensions: [8], type: GgmlType.F32, data: () => new Uint8Array(32) });
    const bytes = encodeGguf([], [tensor('a'), tensor('b')]);
    const header = await headerOf(bytes);
    expect(header.tensors[1]!.offset).toBe(32);
    // Header 24 bytes, no metadata, two descriptors of 33 bytes (name 8+1, rank 4, one dimension 8, type 4,
    // offset 8): b's offset is the last 8 bytes of the second descriptor.
    const offsetPosition = 24 + 2 * 33 - 8;
    const overlapping = bytes.slice();
    view(overlapping).setBigUint64(offsetPosition, 0n, true);
    await expect(headerOf(overlapping)).rejects.toThrow(/overlap/);
    const misaligned = bytes.slice();
    view(misaligned).setBigUint64(offsetPosition, 4n, true);
    await expect(headerOf(misaligned)).rejects.toThrow(/not aligned/);
  });
});

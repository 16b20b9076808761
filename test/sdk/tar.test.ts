import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packDirectory, packTar, parseTar, tarHeaderChecksum, TarError, type TarEntry } from '../../src/sdk/index.ts';

const directories: string[] = [];
afterEach(async () => {
  await Promise.all(directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })));
});

function bytesOf(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (index * 31 + seed) & 0xff);
}

/** Reads the header fields by offset, independently of parseTar, so a bug shared by both cannot hide. */
function headerAt(archive: Uint8Array, offset: number): { name: string; prefix: string; size: number; checksum: number; type: string; magic: string } {
  const block = archive.subarray(offset, offset + 512);
  const text = (start: number, length: number) => Buffer.from(block.subarray(start, start + length)).toString('latin1').replace(/\0.*$/s, '');
  return {
    name: text(0, 100),
    prefix: text(345, 155),
    size: parseInt(text(124, 12), 8),
    checksum: parseInt(text(148, 8).trim(), 8),
    type: text(156, 1),
    magic: Buffer.from(block.subarray(257, 265)).toString('latin1'),
  };
}

describe('tar', () => {
  it('round-trips files of every padding case with valid header checksums', () => {
    const entries: TarEntry[] = [
      { path: 'empty.txt', bytes: new Uint8Array(0) },
      { path: 'spec.json', bytes: new TextEncoder().encode('{"name":"m"}') },
      { path: 'exact.bin', bytes: bytesOf(512, 1) },
      { path: 'sub/' },
      { path: 'sub/model.onnx', bytes: bytesOf(1500, 2) },
    ];
    const archive = packTar(entries);
    expect(archive.length % 512).toBe(0);
    expect(archive.subarray(archive.length - 1024).every((byte) => byte === 0)).toBe(true);

    const first = headerAt(archive, 0);
    expect(first).toMatchObject({ name: 'empty.txt', size: 0, type: '0', magic: 'ustar\u000000' });
    expect(first.checksum).toBe(tarHeaderChecksum(archive.subarray(0, 512)));
    // Hand-computed: every byte counted, with the checksum field taken as eight spaces.
    const manual = [...archive.subarray(0, 512)].reduce((sum, byte, index) => sum + (index >= 148 && index < 156 ? 32 : byte), 0);
    expect(first.checksum).toBe(manual);

    const parsed = parseTar(archive);
    expect(parsed.map((entry) => entry.path)).toEqual(entries.map((entry) => entry.path));
    parsed.forEach((entry, index) => expect(entry.bytes).toEqual(entries[index]!.bytes));
  });

  it('splits long paths into prefix and name', () => {
    const path = `${'d'.repeat(90)}/${'e'.repeat(90)}/file.bin`;
    const archive = packTar([{ path, bytes: bytesOf(3, 0) }]);
    expect(headerAt(archive, 0)).toMatchObject({ prefix: 'd'.repeat(90), name: `${'e'.repeat(90)}/file.bin` });
    expect(parseTar(archive)[0]!.path).toBe(path);
    expect(() => packTar([{ path: 'x'.repeat(101), bytes: new Uint8Array(1) }])).toThrow(TarError);
  });

  it('refuses unsafe paths and detects a corrupted header', () => {
    expect(() => packTar([{ path: '../escape', bytes: new Uint8Array(1) }])).toThrow(/unsafe/);
    expect(() => packTar([{ path: '/abs', bytes: new Uint8Array(1) }])).toThrow(/unsafe/);
    const archive = packTar([{ path: 'a.bin', bytes: bytesOf(10, 0) }]);
    archive[0] = 'b'.charCodeAt(0);
    expect(() => parseTar(archive)).toThrow(/checksum mismatch/);
    expect(() => parseTar(packTar([{ path: 'a', bytes: bytesOf(600, 0) }]).subarray(0, 1024))).toThrow(/past the end/);
  });

  it('refuses entry types other than regular files and directories instead of returning them as files', () => {
    const archive = packTar([{ path: 'link', bytes: new Uint8Array(0) }]);
    archive[156] = '2'.charCodeAt(0);
    archive.set(new TextEncoder().encode(`${tarHeaderChecksum(archive).toString(8).padStart(6, '0')}\0 `), 148);
    expect(() => parseTar(archive)).toThrow(TarError);
    expect(() => parseTar(archive)).toThrow(/^link: unsupported entry type "2" at byte 0/);
  });

  it('packs a folder with sorted relative paths and the same bytes every time', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-tar-'));
    directories.push(directory);
    await writeFile(join(directory, 'spec.json'), '{"layers":[]}');
    await writeFile(join(directory, 'model.onnx'), bytesOf(700, 5));
    await mkdir(join(directory, 'extra'));
    await writeFile(join(directory, 'extra', 'notes.txt'), 'hi');
    const archive = await packDirectory(directory);
    const entries = parseTar(archive);
    expect(entries.map((entry) => entry.path)).toEqual(['extra/', 'extra/notes.txt', 'model.onnx', 'spec.json']);
    expect(entries[2]!.bytes).toEqual(bytesOf(700, 5));
    expect(await packDirectory(directory)).toEqual(archive);

    await symlink(join(directory, 'spec.json'), join(directory, 'link.json'));
    await expect(packDirectory(directory)).rejects.toThrow(/symbolic link/);
  });
});

import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/**
 * A minimal POSIX ustar writer and reader, enough to ship a saved-model folder as one upload
 * without a dependency. Only regular files and directories; every entry is written with fixed
 * owner, mode and mtime so the same folder always packs to the same bytes.
 */
export interface TarEntry {
  /** Forward-slash path inside the archive; directories end with `/`. */
  path: string;
  /** Absent for directories. */
  bytes?: Uint8Array;
}

export class TarError extends Error {
  readonly code = 'INVALID_ARCHIVE';
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

const blockSize = 512;
const maximumSize = 0o77777777777;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function writeString(header: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) throw new TarError(`'${value}' does not fit in a ${length}-byte tar header field`);
  header.set(bytes, offset);
}

/** Numeric fields are zero-padded octal followed by a NUL, filling the field. */
function writeOctal(header: Uint8Array, offset: number, length: number, value: number): void {
  writeString(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** ustar splits long paths at a slash into `prefix` (155 bytes) and `name` (100 bytes). */
function splitPath(path: string): { prefix: string; name: string } {
  const length = encoder.encode(path).length;
  if (length <= 100) return { prefix: '', name: path };
  for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
    const prefix = path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(name).length <= 100 && name !== '') return { prefix, name };
  }
  throw new TarError(`path '${path}' is too long for a ustar archive`);
}

/** Sum of all header bytes with the checksum field counted as eight spaces. */
export function tarHeaderChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let index = 0; index < blockSize; index++) sum += index >= 148 && index < 156 ? 0x20 : (header[index] as number);
  return sum;
}

function header(entry: TarEntry): Uint8Array {
  const isDirectory = entry.bytes === undefined;
  const size = entry.bytes?.length ?? 0;
  if (size > maximumSize) throw new TarError(`${entry.path} is larger than a ustar entry can hold (8 GiB)`);
  const block = new Uint8Array(blockSize);
  const { prefix, name } = splitPath(entry.path);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, isDirectory ? 0o755 : 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, 0);
  block[156] = isDirectory ? 0x35 : 0x30;
  writeString(block, 257, 6, 'ustar\0');
  writeString(block, 263, 2, '00');
  writeString(block, 345, 155, prefix);
  // The checksum field is six octal digits, a NUL and a space (the historical layout every reader accepts).
  writeString(block, 148, 8, `${tarHeaderChecksum(block).toString(8).padStart(6, '0')}\0 `);
  return block;
}

function validatePath(path: string): void {
  if (path === '' || path.startsWith('/') || path.split('/').some((part) => part === '..')) {
    throw new TarError(`unsafe archive path '${path}'`);
  }
}

/** Packs entries in the given order and ends with the two zero blocks the format requires. */
export function packTar(entries: readonly TarEntry[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  let total = 0;
  for (const entry of entries) {
    validatePath(entry.path);
    const head = header(entry);
    blocks.push(head);
    total += blockSize;
    if (entry.bytes !== undefined && entry.bytes.length > 0) {
      blocks.push(entry.bytes);
      const padded = Math.ceil(entry.bytes.length / blockSize) * blockSize;
      total += padded;
      if (padded > entry.bytes.length) blocks.push(new Uint8Array(padded - entry.bytes.length));
    }
  }
  total += 2 * blockSize;
  const output = new Uint8Array(total);
  let offset = 0;
  for (const block of blocks) {
    output.set(block, offset);
    offset += block.length;
  }
  return output;
}

/**
 * Packs a folder's regular files (recursively, sorted by path) with paths relative to the folder,
 * so `model.onnx` sits at the archive root. Symbolic links are refused rather than followed,
 * so a link cannot pull a file from outside the folder into an upload.
 */
export async function packDirectory(directory: string): Promise<Uint8Array> {
  const entries: TarEntry[] = [];
  const walk = async (current: string): Promise<void> => {
    const children = (await readdir(current, { withFileTypes: true })).sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
    for (const child of children) {
      const full = join(current, child.name);
      const path = relative(directory, full).split(sep).join('/');
      if (child.isSymbolicLink()) throw new TarError(`${full} is a symbolic link; copy the file into the folder instead`);
      if (child.isDirectory()) {
        entries.push({ path: `${path}/` });
        await walk(full);
      } else if (child.isFile()) {
        entries.push({ path, bytes: new Uint8Array(await readFile(full)) });
      }
    }
  };
  if (!(await stat(directory)).isDirectory()) throw new TarError(`${directory} is not a folder`);
  await walk(directory);
  if (!entries.some((entry) => entry.bytes !== undefined)) throw new TarError(`${directory} holds no files`);
  return packTar(entries);
}

function readString(block: Uint8Array, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return decoder.decode(end === -1 ? field : field.subarray(0, end));
}

function readOctal(block: Uint8Array, offset: number, length: number, what: string): number {
  const text = readString(block, offset, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new TarError(`bad ${what} field '${text}' at header offset ${offset}`);
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * Reads a ustar archive written by `packTar` (or any plain ustar of regular files and directories):
 * verifies each header checksum and refuses other entry types (links, pax headers) with a TarError.
 */
export function parseTar(archive: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (offset + blockSize <= archive.length) {
    const block = archive.subarray(offset, offset + blockSize);
    if (block.every((byte) => byte === 0)) return entries;
    const stored = readOctal(block, 148, 8, 'checksum');
    const computed = tarHeaderChecksum(block);
    if (stored !== computed) throw new TarError(`header checksum mismatch at byte ${offset}: stored ${stored}, computed ${computed}`);
    const name = readString(block, 0, 100);
    const prefix = readString(block, 345, 155);
    const path = prefix === '' ? name : `${prefix}/${name}`;
    const size = readOctal(block, 124, 12, 'size');
    const type = block[156];
    offset += blockSize;
    if (offset + size > archive.length) throw new TarError(`${path}: entry of ${size} bytes runs past the end of the archive`);
    if (type === 0x35) entries.push({ path });
    // '0', NUL (pre-POSIX) and '7' (contiguous) are regular files; links, devices and pax/GNU
    // extension headers are not, and returning them as files would invent empty or garbled ones.
    else if (type === 0x30 || type === 0x00 || type === 0x37) entries.push({ path, bytes: archive.slice(offset, offset + size) });
    else throw new TarError(`${path}: unsupported entry type ${JSON.stringify(String.fromCharCode(type ?? 0))} at byte ${offset - blockSize} (only regular files and directories)`);
    offset += Math.ceil(size / blockSize) * blockSize;
  }
  throw new TarError('archive ends without the two zero blocks');
}

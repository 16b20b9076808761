import { AiaasError } from '../errors.ts';

/**
 * A reader for the tar subset `tar -cf` produces (ustar, GNU long names, pax `path` records):
 * enough to unpack a saved-model folder from an upload without a dependency. Only regular files
 * are returned; directories, links and devices are skipped, and no path ever touches the disk.
 */
export interface TarEntry {
  name: string;
  bytes: Uint8Array;
}

const blockSize = 512;

function invalid(message: string): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', `the uploaded .tar is malformed: ${message}`);
}

function text(block: Uint8Array, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
}

function octal(block: Uint8Array, start: number, length: number, what: string): number {
  // Base-256 (GNU) sizes start with 0x80; files that large are not saved models.
  if ((block[start]! & 0x80) !== 0) throw invalid(`${what} uses base-256 encoding, which is not supported`);
  const value = text(block, start, length).trim();
  if (value === '') return 0;
  if (!/^[0-7]+$/.test(value)) throw invalid(`${what} is not an octal number`);
  return Number.parseInt(value, 8);
}

function checksumMatches(block: Uint8Array): boolean {
  const stored = octal(block, 148, 8, 'header checksum');
  let sum = 0;
  for (let index = 0; index < blockSize; index++) sum += index >= 148 && index < 156 ? 0x20 : block[index]!;
  return sum === stored;
}

/** Record lengths count bytes, so records are cut from the bytes before any UTF-8 decoding. */
function paxPath(bytes: Uint8Array): string | undefined {
  const decoder = new TextDecoder();
  let offset = 0;
  let path: string | undefined;
  while (offset < bytes.length) {
    const space = bytes.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number(decoder.decode(bytes.subarray(offset, space)));
    if (!Number.isSafeInteger(length) || length <= 0) throw invalid('a pax header record has a bad length');
    const record = decoder.decode(bytes.subarray(space + 1, offset + length - 1));
    const equals = record.indexOf('=');
    if (equals !== -1 && record.slice(0, equals) === 'path') path = record.slice(equals + 1);
    offset += length;
  }
  return path;
}

export function readTar(archive: Uint8Array): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  while (offset + blockSize <= archive.length) {
    const header = archive.subarray(offset, offset + blockSize);
    if (header.every((byte) => byte === 0)) return entries;
    if (!checksumMatches(header)) throw invalid(`header checksum mismatch at byte ${offset}`);
    const size = octal(header, 124, 12, 'file size');
    const type = String.fromCharCode(header[156]!);
    const dataStart = offset + blockSize;
    const dataEnd = dataStart + size;
    if (dataEnd > archive.length) throw invalid('the archive is truncated');
    const data = archive.subarray(dataStart, dataEnd);
    offset = dataStart + Math.ceil(size / blockSize) * blockSize;

    if (type === 'L') {
      longName = text(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (type === 'g') continue;
    const isUstar = text(header, 257, 5) === 'ustar';
    const prefix = isUstar ? text(header, 345, 155) : '';
    const name = longName ?? (prefix === '' ? text(header, 0, 100) : `${prefix}/${text(header, 0, 100)}`);
    longName = undefined;
    if (type === '0' || type === '\0' || type === '7') entries.push({ name, bytes: data });
  }
  if (entries.length === 0) throw invalid('no end-of-archive marker and no files');
  return entries;
}

/** Writes a ustar archive; used by tests and the SDK to pack a saved-model folder. */
export function writeTar(files: readonly TarEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const encoder = new TextEncoder();
  for (const file of files) {
    const header = new Uint8Array(blockSize);
    const name = encoder.encode(file.name);
    if (name.length > 100) throw new RangeError(`tar entry name too long: ${file.name}`);
    header.set(name, 0);
    const field = (start: number, length: number, value: number) =>
      header.set(encoder.encode(`${value.toString(8).padStart(length - 1, '0')}\0`), start);
    field(100, 8, 0o644);
    field(108, 8, 0);
    field(116, 8, 0);
    field(124, 12, file.bytes.length);
    field(136, 12, 0);
    header[156] = '0'.charCodeAt(0);
    header.set(encoder.encode('ustar\0'), 257);
    header.set(encoder.encode('00'), 263);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.set(encoder.encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
    parts.push(header, file.bytes);
    const padding = (blockSize - (file.bytes.length % blockSize)) % blockSize;
    if (padding > 0) parts.push(new Uint8Array(padding));
  }
  parts.push(new Uint8Array(blockSize * 2));
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let position = 0;
  for (const part of parts) {
    out.set(part, position);
    position += part.length;
  }
  return out;
}

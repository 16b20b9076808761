import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { AiaasError, quoteForError } from '../errors.ts';
import { gunzipIfCompressed } from './bytes.ts';
import { parseCsv } from './csv.ts';
import type { CsvOptions } from './csv.ts';
import type { Dataset } from './dataset.ts';
import { loadIdxPair, looksLikeIdx } from './idx.ts';
import type { IdxPairOptions } from './idx.ts';
import { parseJsonLines } from './jsonl.ts';
import type { JsonLinesOptions } from './jsonl.ts';

export type DatasetFormat = 'idx' | 'csv' | 'jsonl';

export const datasetFormats: readonly DatasetFormat[] = ['idx', 'csv', 'jsonl'];

export interface LoadDatasetFileOptions {
  /** Label column (CSV) or key (JSON lines). Default "label". Ignored for IDX. */
  label?: string;
  /** The labels IDX file; required when `path` is an IDX images file. */
  labelsPath?: string;
  /** Scale uint8 IDX images to [0, 1]. Default true. */
  scale?: boolean;
  /** Skip content detection. */
  format?: DatasetFormat;
  maxDecompressedBytes?: number;
}

export interface LoadDatasetBytesOptions {
  label?: string;
  /** The labels IDX file's bytes; required for format "idx". */
  labelsBytes?: Uint8Array;
  scale?: boolean;
  /** Names used in error messages (the upload's file name, for example). */
  fileName?: string;
  labelsFileName?: string;
  maxDecompressedBytes?: number;
}

/**
 * Guesses the format from content first and the name second: IDX magic (after gunzip if the bytes
 * are gzip), then a `.csv` / `.jsonl` / `.ndjson` extension (a trailing `.gz` is ignored), then the
 * text itself (a line starting with `{` means JSON lines, a comma in the first line means CSV).
 */
export function detectDatasetFormat(bytes: Uint8Array, fileName?: string, maxDecompressedBytes?: number): DatasetFormat | undefined {
  const plain = gunzipIfCompressed(bytes, fileName ?? 'dataset', maxDecompressedBytes);
  if (looksLikeIdx(plain)) return 'idx';
  const name = (fileName ?? '').toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl';
  // Sniffing looks at a bounded prefix so detection stays cheap on large uploads.
  const prefix = new TextDecoder('utf-8').decode(plain.subarray(0, 64 * 1024)).replace(/^\uFEFF/, '');
  if (prefix.includes('\0')) return undefined;
  const firstLine = prefix.split('\n').find((line) => line.trim() !== '')?.trim();
  if (firstLine === undefined) return undefined;
  if (firstLine.startsWith('{')) return 'jsonl';
  if (firstLine.includes(',')) return 'csv';
  return undefined;
}

function undetectable(fileName: string): AiaasError {
  return new AiaasError(
    'INVALID_DATA',
    `${fileName}: cannot tell the dataset format; expected IDX (optionally gzip), or a .csv, .jsonl or .ndjson file`,
    { details: { file: fileName, formats: [...datasetFormats] } },
  );
}

/** Parses an uploaded dataset whose format the caller already knows (see detectDatasetFormat otherwise). */
export function loadDatasetBytes(format: DatasetFormat, bytes: Uint8Array, options: LoadDatasetBytesOptions = {}): Dataset {
  switch (format) {
    case 'idx': {
      const imagesName = options.fileName ?? 'images IDX file';
      if (options.labelsBytes === undefined) {
        throw new AiaasError('INVALID_DATA', `${imagesName}: an IDX images file needs a matching IDX labels file`, {
          details: { file: imagesName, format: 'idx' },
        });
      }
      const idxOptions: IdxPairOptions = { fileNames: { images: imagesName, labels: options.labelsFileName ?? 'labels IDX file' } };
      if (options.scale !== undefined) idxOptions.scale = options.scale;
      if (options.maxDecompressedBytes !== undefined) idxOptions.maxDecompressedBytes = options.maxDecompressedBytes;
      return loadIdxPair(bytes, options.labelsBytes, idxOptions);
    }
    case 'csv': {
      const csvOptions: CsvOptions = { fileName: options.fileName ?? 'CSV data' };
      if (options.label !== undefined) csvOptions.label = options.label;
      if (options.maxDecompressedBytes !== undefined) csvOptions.maxDecompressedBytes = options.maxDecompressedBytes;
      return parseCsv(bytes, csvOptions);
    }
    case 'jsonl': {
      const jsonOptions: JsonLinesOptions = { fileName: options.fileName ?? 'JSON lines data' };
      if (options.label !== undefined) jsonOptions.label = options.label;
      if (options.maxDecompressedBytes !== undefined) jsonOptions.maxDecompressedBytes = options.maxDecompressedBytes;
      return parseJsonLines(bytes, jsonOptions);
    }
    default:
      throw new AiaasError('INVALID_REQUEST', `Unknown dataset format ${quoteForError(format)}; expected one of ${datasetFormats.join(', ')}`);
  }
}

async function readDatasetFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new AiaasError('INVALID_DATA', `Cannot read dataset file ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : 'permission denied'}`, {
        details: { file: path },
        cause: error,
      });
    }
    throw error;
  }
}

/** Reads a dataset from disk, detecting the format by content (see detectDatasetFormat). */
export async function loadDatasetFile(path: string, options: LoadDatasetFileOptions = {}): Promise<Dataset> {
  const fileName = basename(path);
  const raw = await readDatasetFile(path);
  // Gunzipped here for detection; CSV and JSON lines parse these plain bytes without a second gunzip.
  const bytes = gunzipIfCompressed(raw, fileName, options.maxDecompressedBytes);
  const format = options.format ?? detectDatasetFormat(bytes, fileName);
  if (format === undefined) throw undetectable(fileName);
  const bytesOptions: LoadDatasetBytesOptions = { fileName };
  if (options.label !== undefined) bytesOptions.label = options.label;
  if (options.scale !== undefined) bytesOptions.scale = options.scale;
  if (options.maxDecompressedBytes !== undefined) bytesOptions.maxDecompressedBytes = options.maxDecompressedBytes;
  if (format === 'idx') {
    if (options.labelsPath === undefined) {
      throw new AiaasError('INVALID_DATA', `${fileName} is an IDX file; pass the matching labels file (labelsPath / --labels)`, {
        details: { file: fileName, format: 'idx' },
      });
    }
    bytesOptions.labelsBytes = await readDatasetFile(options.labelsPath);
    bytesOptions.labelsFileName = basename(options.labelsPath);
  }
  // IDX errors name a byte offset, which is only meaningful when the parser knows whether the file
  // was compressed ("byte offset 16 after gunzip"): it gets the file's own bytes and gunzips them itself.
  return loadDatasetBytes(format, format === 'idx' ? raw : bytes, bytesOptions);
}

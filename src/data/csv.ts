import { AiaasError, quoteForError } from '../errors.ts';
import { GrowableFloat32Array, decodeText } from './bytes.ts';
import { classIndices, sortedClassNames } from './class-names.ts';
import type { Dataset } from './dataset.ts';

export interface CsvOptions {
  /**
   * Name of the label column. Default "label". Every other column is a numeric feature. Labels are
   * numbers, or strings (class names) when any label is not a decimal number.
   */
  label?: string;
  /** Used in error messages. */
  fileName?: string;
  maxDecompressedBytes?: number;
}

interface CsvRecord {
  fields: string[];
  /** 1-based physical line the record starts on (quoted fields may span lines). */
  line: number;
}

function invalid(fileName: string, line: number, problem: string, details: Record<string, unknown> = {}): AiaasError {
  return new AiaasError('INVALID_DATA', `${fileName}: line ${line}: ${problem}`, {
    details: { file: fileName, line, format: 'csv', ...details },
  });
}

/**
 * RFC 4180 records. Lines without a quote character (nearly all numeric data) take a split(',')
 * fast path; only lines containing quotes go through the character state machine.
 */
function* csvRecords(text: string, fileName: string): Generator<CsvRecord> {
  let position = 0;
  let line = 1;
  const length = text.length;
  while (position < length) {
    let lineEnd = text.indexOf('\n', position);
    if (lineEnd === -1) lineEnd = length;
    let content = text.slice(position, lineEnd);
    if (content.endsWith('\r')) content = content.slice(0, -1);
    if (!content.includes('"')) {
      if (content.trim() !== '') yield { fields: content.split(','), line };
      position = lineEnd + 1;
      line++;
      continue;
    }
    const startLine = line;
    const fields: string[] = [];
    let field = '';
    let index = position;
    let atFieldStart = true;
    for (;;) {
      if (atFieldStart && text[index] === '"') {
        // Quoted field: runs to the next lone quote; "" is an escaped quote; newlines are data.
        index++;
        for (;;) {
          const quote = text.indexOf('"', index);
          if (quote === -1) {
            throw invalid(fileName, startLine, `unterminated quoted field in column ${fields.length + 1}`, {
              column: fields.length + 1,
            });
          }
          const chunk = text.slice(index, quote);
          for (let scan = chunk.indexOf('\n'); scan !== -1; scan = chunk.indexOf('\n', scan + 1)) line++;
          field += chunk;
          if (text[quote + 1] === '"') {
            field += '"';
            index = quote + 2;
            continue;
          }
          index = quote + 1;
          break;
        }
        const next = text[index];
        if (next !== undefined && next !== ',' && next !== '\n' && !(next === '\r' && (text[index + 1] === '\n' || index + 1 === length))) {
          throw invalid(fileName, line, `unexpected character ${quoteForError(next)} after the closing quote in column ${fields.length + 1}`, {
            column: fields.length + 1,
          });
        }
        atFieldStart = false;
        continue;
      }
      const character = text[index];
      if (character === undefined || character === '\n' || (character === '\r' && (text[index + 1] === '\n' || index + 1 === length))) {
        fields.push(field);
        index = character === '\r' ? index + 2 : index + 1;
        break;
      }
      if (character === ',') {
        fields.push(field);
        field = '';
        atFieldStart = true;
        index++;
        continue;
      }
      if (character === '"') {
        throw invalid(fileName, line, `quote inside the unquoted field in column ${fields.length + 1} (quote the whole field and double inner quotes)`, {
          column: fields.length + 1,
        });
      }
      field += character;
      atFieldStart = false;
      index++;
    }
    yield { fields, line: startLine };
    position = index;
    line++;
  }
}

/**
 * Parses a decimal number allowing surrounding spaces; undefined for anything else (empty,
 * "NaN", "Infinity", hex/binary/octal). Number() does the parsing because a validating regex
 * costs five times as much on large files; the checks below reject what Number() accepts beyond
 * decimals: the empty string and 0x / 0b / 0o prefixes.
 */
export function parseDecimal(text: string): number | undefined {
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  let start = 0;
  while (start < text.length && (text.charCodeAt(start) === 0x20 || text.charCodeAt(start) === 0x09)) start++;
  const first = text.charCodeAt(start);
  if (first === 0x30) {
    const second = text.charCodeAt(start + 1) | 0x20;
    if (second === 0x78 || second === 0x62 || second === 0x6f) return undefined;
    return value;
  }
  const isDigit = first >= 0x30 && first <= 0x39;
  return isDigit || first === 0x2d || first === 0x2b || first === 0x2e ? value : undefined;
}

/**
 * CSV with a header row into a Dataset: featureShape [columns - 1], a scalar label, featureNames
 * from the header in file order. Accepts gzip bytes. Empty lines are ignored; CRLF is fine.
 */
export function parseCsv(input: Uint8Array | string, options: CsvOptions = {}): Dataset {
  const fileName = options.fileName ?? 'CSV data';
  const labelName = options.label ?? 'label';
  const text = typeof input === 'string' ? input : decodeText(input, fileName, options.maxDecompressedBytes);
  const records = csvRecords(text, fileName);
  const first = records.next();
  if (first.done === true) {
    throw new AiaasError('INVALID_DATA', `${fileName}: empty CSV, expected a header row`, { details: { file: fileName, format: 'csv' } });
  }
  const header = first.value.fields.map((name) => name.trim());
  const seen = new Set<string>();
  for (const [column, name] of header.entries()) {
    if (seen.has(name)) {
      throw invalid(fileName, first.value.line, `duplicate column name ${quoteForError(name)} (column ${column + 1})`, { column: column + 1 });
    }
    seen.add(name);
  }
  const labelColumn = header.indexOf(labelName);
  if (labelColumn === -1) {
    throw new AiaasError(
      'INVALID_DATA',
      `${fileName}: label column ${quoteForError(labelName)} not found; available columns: ${header.map((name) => quoteForError(name)).join(', ')}`,
      { details: { file: fileName, format: 'csv', label: labelName, columns: header } },
    );
  }
  if (header.length < 2) {
    throw invalid(fileName, first.value.line, `no feature columns besides the label column ${quoteForError(labelName)}`);
  }
  const featureNames = header.filter((_, column) => column !== labelColumn);
  const features = new GrowableFloat32Array(featureNames.length * 1024);
  const labels = new GrowableFloat32Array(1024);
  // Every label's text, kept until the end decides whether the labels are numbers or class names.
  const labelTexts: string[] = [];
  let numericLabels = true;
  let count = 0;
  for (const { fields, line } of records) {
    if (fields.length !== header.length) {
      throw invalid(fileName, line, `${fields.length} fields, but the header has ${header.length} columns`, {
        fields: fields.length,
        columns: header.length,
      });
    }
    for (let column = 0; column < fields.length; column++) {
      const raw = fields[column] as string;
      if (column === labelColumn) {
        const text = raw.trim();
        if (text === '') throw invalid(fileName, line, `column ${quoteForError(labelName)} (column ${column + 1}): empty value`, { column: column + 1, columnName: labelName, value: raw });
        labelTexts.push(text);
        if (numericLabels) {
          const value = parseDecimal(raw);
          if (value === undefined) numericLabels = false;
          else labels.push(value);
        }
        continue;
      }
      const value = parseDecimal(raw);
      if (value === undefined) {
        const name = header[column] as string;
        throw invalid(
          fileName,
          line,
          `column ${quoteForError(name)} (column ${column + 1}): ${raw.trim() === '' ? 'empty value' : `${quoteForError(raw)} is not a finite decimal number`}`,
          { column: column + 1, columnName: name, value: raw },
        );
      }
      features.push(value);
    }
    count++;
  }
  const dataset: Dataset = {
    features: features.toArray(),
    featureShape: [featureNames.length],
    labels: labels.toArray(),
    labelShape: [],
    count,
    featureNames,
    labelName,
  };
  if (!numericLabels) {
    const classNames = sortedClassNames(labelTexts, fileName);
    dataset.labels = classIndices(labelTexts, classNames);
    dataset.classNames = classNames;
  }
  return dataset;
}

import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { parseCsv } from '../../src/data/csv.ts';
import { parseJsonLines } from '../../src/data/jsonl.ts';

function thrown(action: () => unknown): AiaasError {
  try {
    action();
  } catch (error) {
    if (AiaasError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected an error');
}

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('CSV', () => {
  it('parses a header, picks the label column by name, ignores empty lines, accepts CRLF', () => {
    const text = 'x1,label,x2\r\n1,0,2.5\r\n\r\n-3e2, 1 ,.5\r\n';
    const dataset = parseCsv(encode(text), { label: 'label', fileName: 'small.csv' });
    expect(dataset.count).toBe(2);
    expect(dataset.featureShape).toEqual([2]);
    expect(dataset.labelShape).toEqual([]);
    expect(dataset.featureNames).toEqual(['x1', 'x2']);
    expect(dataset.labelName).toBe('label');
    expect(Array.from(dataset.features)).toEqual([1, 2.5, -300, 0.5]);
    expect(Array.from(dataset.labels)).toEqual([0, 1]);
  });

  it('handles RFC 4180 quoting: commas, doubled quotes and newlines inside quoted fields', () => {
    const text = '"a, the first","say ""hi""\nacross lines",y\n"1",2,"3"\n4,5,6\n7,x,8';
    const error = thrown(() => parseCsv(text, { label: 'y', fileName: 'q.csv' }));
    // Line numbers are physical lines, so the quoted newline in the header pushes "7,x,8" to line 5.
    expect(error.message).toBe('q.csv: line 5: column "say \\"hi\\"\\nacross lines" (column 2): "x" is not a finite decimal number');
    const dataset = parseCsv(text.slice(0, text.lastIndexOf('\n')), { label: 'y' });
    expect(dataset.featureNames).toEqual(['a, the first', 'say "hi"\nacross lines']);
    expect(Array.from(dataset.features)).toEqual([1, 2, 4, 5]);
    expect(Array.from(dataset.labels)).toEqual([3, 6]);
  });

  it('lists the available columns when the label column is missing', () => {
    const error = thrown(() => parseCsv('a,b,target\n1,2,3\n', { label: 'label', fileName: 'train.csv' }));
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toBe('train.csv: label column "label" not found; available columns: "a", "b", "target"');
  });

  it('names file, line, column and value for a bad number', () => {
    const error = thrown(() => parseCsv('a,b,label\n1,2,0\n\n3,abc,1\n', { fileName: 'bad.csv' }));
    expect(error.message).toBe('bad.csv: line 4: column "b" (column 2): "abc" is not a finite decimal number');
    expect(error.details).toMatchObject({ file: 'bad.csv', line: 4, column: 2, columnName: 'b', value: 'abc' });
    expect(thrown(() => parseCsv('a,label\n,1\n', { fileName: 'e.csv' })).message).toBe('e.csv: line 2: column "a" (column 1): empty value');
    expect(thrown(() => parseCsv('a,label\n0x10,1\n')).message).toMatch(/"0x10" is not a finite decimal number/);
    expect(thrown(() => parseCsv('a,label\nNaN,1\n')).message).toMatch(/"NaN"/);
  });

  it('reports wrong field counts and malformed quotes', () => {
    expect(thrown(() => parseCsv('a,label\n1,2,3\n', { fileName: 'f.csv' })).message).toBe(
      'f.csv: line 2: 3 fields, but the header has 2 columns',
    );
    expect(thrown(() => parseCsv('a,label\n"1,2\n', { fileName: 'f.csv' })).message).toBe(
      'f.csv: line 2: unterminated quoted field in column 1',
    );
    expect(thrown(() => parseCsv('a,label\n"1"x,2\n', { fileName: 'f.csv' })).message).toMatch(/line 2: unexpected character "x" after the closing quote/);
    expect(thrown(() => parseCsv('a,label\n1"2",2\n', { fileName: 'f.csv' })).message).toMatch(/line 2: quote inside the unquoted field/);
  });

  it('accepts gzip bytes and a byte-order mark', () => {
    const dataset = parseCsv(gzipSync(encode('\uFEFFf,label\n1,1\n2,0')), { fileName: 'g.csv.gz' });
    expect(dataset.featureNames).toEqual(['f']);
    expect(Array.from(dataset.features)).toEqual([1, 2]);
  });
});

describe('JSON lines', () => {
  it('reads {"features": nested array, "label": number} records', () => {
    const text = [
      '{"features": [[1, 2], [3, 4]], "label": 1, "id": "ignored"}',
      '',
      '{"features": [[5, 6], [7, 8]], "label": 0}',
    ].join('\n');
    const dataset = parseJsonLines(gzipSync(encode(text)), { fileName: 'n.jsonl.gz' });
    expect(dataset.count).toBe(2);
    expect(dataset.featureShape).toEqual([2, 2]);
    expect(dataset.labelShape).toEqual([]);
    expect(Array.from(dataset.features)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(dataset.labels)).toEqual([1, 0]);
    expect(dataset.featureNames).toBeUndefined();
  });

  it('reads vector labels', () => {
    const dataset = parseJsonLines('{"features":[1],"label":[0,1]}\n{"features":[2],"label":[1,0]}\r\n');
    expect(dataset.labelShape).toEqual([2]);
    expect(Array.from(dataset.labels)).toEqual([0, 1, 1, 0]);
  });

  it('reads flat rows with a label key option and keeps first-line key order', () => {
    const text = '{"b": 1, "a": 2, "y": 0}\n{"y": 1, "a": 4, "b": 3}\n';
    const dataset = parseJsonLines(text, { label: 'y' });
    expect(dataset.featureNames).toEqual(['b', 'a']);
    expect(dataset.featureShape).toEqual([2]);
    expect(dataset.labelName).toBe('y');
    expect(Array.from(dataset.features)).toEqual([1, 2, 3, 4]);
    expect(Array.from(dataset.labels)).toEqual([0, 1]);
  });

  it('names the line for bad records', () => {
    const cases: [string, string][] = [
      ['{"features":[1],"label":0}\n{"features":[1],"label":0\n', 'd.jsonl: line 2: invalid JSON'],
      ['{"features":[1],"label":0}\n\n{"features":[1,2],"label":0}', 'd.jsonl: line 3: "features" has shape [2], earlier lines have [1]'],
      ['{"features":[[1],[2,3]],"label":0}', 'd.jsonl: line 1: "features": ragged array'],
      ['{"features":[1,"x"],"label":0}', 'd.jsonl: line 1: "features": element [1] is "x", expected a finite number'],
      ['{"features":[1]}', 'd.jsonl: line 1: label key "label" not found; keys present: "features"'],
      ['{"a":1,"label":0}\n{"a":1,"c":2,"label":0}', 'd.jsonl: line 2: unexpected keys "c"'],
      ['{"a":1,"b":2,"label":0}\n{"a":1,"label":0}', 'd.jsonl: line 2: missing keys "b"'],
      ['{"a":1,"label":0}\n{"a":null,"label":0}', 'd.jsonl: line 2: key "a" is null, expected a finite number'],
      ['{"a":1,"label":0}\n[1,2]', 'd.jsonl: line 2: expected a JSON object, got an array'],
      ['{"a":1,"label":0}\n{"features":[1],"label":0}', 'd.jsonl: line 2: has a "features" key but earlier lines are flat'],
      ['\n\n', 'd.jsonl: no records'],
    ];
    for (const [text, message] of cases) {
      const error = thrown(() => parseJsonLines(text, { fileName: 'd.jsonl' }));
      expect(error.code).toBe('INVALID_DATA');
      expect(error.message.startsWith(message), `${error.message} should start with ${message}`).toBe(true);
    }
  });
});

describe('parseDecimal', () => {
  it('accepts decimals and rejects everything else Number() would take', async () => {
    const { parseDecimal } = await import('../../src/data/csv.ts');
    for (const [text, expected] of [
      ['12', 12], [' -3.5 ', -3.5], ['+.5', 0.5], ['1e-3', 0.001], ['0', 0], ['0.25', 0.25], ['1.', 1], ['\t7', 7],
    ] as const) expect(parseDecimal(text)).toBe(expected);
    for (const text of ['', '  ', '0x10', '0B1', '0o7', 'NaN', 'Infinity', '-Infinity', '1e999', '1,5', 'abc', '\u00a012', '--1']) {
      expect(parseDecimal(text), text).toBeUndefined();
    }
  });
});

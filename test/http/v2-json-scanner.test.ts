import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/engine/random.ts';
import { scanV2Body, unscanned } from '../../src/http/protocols/v2-json-scanner.ts';

/**
 * What the scanner must return: JSON.parse's value, with each non-empty flat numeric `inputs[].data`
 * as the tensor parser would store it (float32 for FP32, the doubles otherwise). The scanner may
 * return such data as Float32Array or Float64Array; both are compared by the values they hold.
 */
function reference(text: string): unknown {
  const value = JSON.parse(text) as { inputs?: unknown };
  if (typeof value === 'object' && value !== null && Array.isArray(value.inputs)) {
    for (const input of value.inputs as { data?: unknown; datatype?: unknown }[]) {
      if (typeof input !== 'object' || input === null || !Array.isArray(input.data) || input.data.length === 0) continue;
      if (!input.data.every((item) => typeof item === 'number')) continue;
      input.data = input.datatype === 'FP32' ? Array.from(Float32Array.from(input.data as number[])) : [...(input.data as number[])];
    }
  }
  return value;
}

/** The scanner's answer with typed arrays as the values a tensor would hold (FP32: float32s). */
function scanned(text: string): unknown {
  const value = scanV2Body(Buffer.from(text, 'utf8'));
  if (value === unscanned) return value;
  const envelope = value as { inputs?: unknown };
  if (typeof envelope === 'object' && envelope !== null && Array.isArray(envelope.inputs)) {
    for (const input of envelope.inputs as { data?: unknown; datatype?: unknown }[]) {
      if (typeof input !== 'object' || input === null) continue;
      if (input.data instanceof Float32Array || input.data instanceof Float64Array) {
        const values = input.datatype === 'FP32' ? Float32Array.from(input.data) : input.data;
        input.data = Array.from(values);
      }
    }
  }
  return value;
}

/** Bit-exact: distinguishes -0 from 0, unlike toEqual's number comparison in some positions. */
function expectSame(actual: unknown, expected: unknown): void {
  expect(actual).toStrictEqual(expected);
  const signs = (value: unknown): string => JSON.stringify(value, (_key, item: unknown) => (Object.is(item, -0) ? '-0' : item));
  expect(signs(actual)).toBe(signs(expected));
}

const envelope = (input: Record<string, unknown>, extra: Record<string, unknown> = {}): string => JSON.stringify({ ...extra, inputs: [input] });

describe('V2 body scanner', () => {
  it('reads an FP32 image into a Float32Array holding what the tensor parser would store', () => {
    const pixels = Array.from({ length: 784 }, (_, index) => (index % 7 === 0 ? Math.fround((index % 255) / 255) : 0));
    const text = envelope({ name: 'input', datatype: 'FP32', shape: [1, 28, 28], data: pixels });
    const value = scanV2Body(Buffer.from(text)) as { inputs: { data: unknown }[] };
    expect(value.inputs[0]!.data).toBeInstanceOf(Float32Array);
    expectSame(scanned(text), reference(text));
  });

  it('keeps exact doubles when the datatype is not FP32 or comes after the data', () => {
    const data = [0.1, 1e-7, 123456789012345680, 0.30000000000000004, -2.5e-300, 9007199254740993];
    for (const text of [
      envelope({ name: 'x', datatype: 'FP64', shape: [6], data }),
      envelope({ name: 'x', datatype: 'INT64', shape: [6], data }),
      JSON.stringify({ inputs: [{ name: 'x', shape: [6], data, datatype: 'FP32' }] }),
    ]) {
      const value = scanV2Body(Buffer.from(text)) as { inputs: { data: unknown }[] };
      expect(value.inputs[0]!.data).toBeInstanceOf(Float64Array);
      expectSame(scanned(text), reference(text));
    }
  });

  it('converts numbers exactly as JSON.parse does, to doubles and to float32', () => {
    // Seeded, so a failure names a reproducible case.
    const next = mulberry32(7);
    const texts: string[] = [
      '0', '-0', '0.0', '-0.0', '1', '-1', '0.5', '1e0', '1E+2', '1e-2', '-1.5e-7', '123456789012345', '1234567890123456',
      '12345678901234567890', '0.1', '0.2', '0.30000000000000004', '1e22', '1e23', '1e-22', '1e-23', '5e-324', '1e-400',
      '1.7976931348623157e308', '1e309', '-1e309', '3.4028234663852886e38', '3.4028235677973366e38', '3.4028236e38',
      '1.401298464324817e-45', '7.006492321624085e-46', '7.006492321624086e-46', '1.1754942106924411e-38',
      // Halfway between two float32s, and a hair either side: the approximation must give up or be right.
      '1.00000005960464477539062500', '1.0000000596046447753906249', '1.0000000596046447753906251', '0.000000000000000000000000000001',
      '0.21199999749660492', '0.5879999995231628', '100000000000000000000000', '0.00000000000000000000001', '2.00000000000000000000000000001',
    ];
    for (let index = 0; index < 4000; index++) {
      const kind = index % 5;
      const magnitude = 10 ** Math.floor(next() * 20 - 10);
      const double = (next() - 0.5) * magnitude;
      if (kind === 0) texts.push(String(double));
      else if (kind === 1) texts.push(String(Math.fround(double)));
      else if (kind === 2) texts.push(double.toPrecision(1 + Math.floor(next() * 21)));
      else if (kind === 3) texts.push(double.toExponential(Math.floor(next() * 20)));
      else texts.push(String(Math.round(double * 1000)));
    }
    // Halfway points between neighbouring float32s (exact doubles), written with 17 to 21 digits:
    // where an approximate double one ulp off rounds to the other float32.
    const float32s = new Float32Array(1);
    const bits = new Uint32Array(float32s.buffer);
    for (let index = 0; index < 3000; index++) {
      bits[0] = Math.floor(next() * 0x7f000000);
      const low = float32s[0]!;
      bits[0]! += 1;
      const halfway = (low + float32s[0]!) / 2;
      texts.push(halfway.toPrecision(17 + (index % 5)));
    }
    const fp32 = `{"inputs":[{"datatype":"FP32","data":[${texts.join(',')}]}]}`;
    const fp64 = `{"inputs":[{"datatype":"FP64","data":[${texts.join(',')}]}]}`;
    const float32 = (scanV2Body(Buffer.from(fp32)) as { inputs: { data: Float32Array }[] }).inputs[0]!.data;
    const doubles = (scanV2Body(Buffer.from(fp64)) as { inputs: { data: Float64Array }[] }).inputs[0]!.data;
    const wrong: string[] = [];
    texts.forEach((text, index) => {
      if (!Object.is(float32[index], Math.fround(JSON.parse(text) as number))) wrong.push(`float32 ${text}: ${float32[index]}`);
      if (!Object.is(doubles[index], JSON.parse(text) as number)) wrong.push(`double ${text}: ${doubles[index]}`);
    });
    expect(wrong).toEqual([]);
  });

  it('reads everything else as JSON.parse does', () => {
    const texts = [
      '{}',
      '[]',
      '{"inputs":[]}',
      '  {"inputs" : [ { "name" : "x" , "datatype" : "FP32" , "shape" : [ 2 ] , "data" : [ 1 , 2.5 ] } ] }  ',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[[1,2],[3,4]]}]}',
      '{"inputs":[{"name":"x","datatype":"BOOL","shape":[2],"data":[true,false]}]}',
      '{"inputs":[{"name":"x","datatype":"BYTES","shape":[2],"data":["a","b c"]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[0],"data":[]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,null]}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},[1,2],null,"s"]}',
      '{"id":"r-1","parameters":{"binary_data_output":true,"n":[1,{"a":[]}]},"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[7]}],"outputs":[{"name":"y","parameters":{"classification":2}}]}',
      '{"inputs":[{"name":"x","datatype":"FP32","data":[1],"data":[2,3],"shape":[2]}],"inputs":[{"name":"z","datatype":"INT32","shape":[1],"data":[4]}]}',
      '{"inputs":[{"name":"x","datatype":"INT32","datatype":"FP32","shape":[1],"data":[0.1]}]}',
      '{"a":{"inputs":[{"datatype":"FP32","data":[0.1]}]}}',
      '[{"inputs":[{"datatype":"FP32","data":[0.1]}]}]',
      '"text"',
      '12.5',
      'true',
      'null',
      '{"0":1,"b":2,"1":3}',
    ];
    for (const text of texts) {
      expect(scanned(text), text).not.toBe(unscanned);
      expectSame(scanned(text), reference(text));
    }
  });

  it('leaves invalid JSON and what it does not read to JSON.parse', () => {
    const texts = [
      '',
      '   ',
      '{',
      '{"inputs":[{"data":[1,2,]}]}',
      '{"inputs":[{"data":[1 2]}]}',
      '{"inputs":[{"data":[01]}]}',
      '{"inputs":[{"data":[1.]}]}',
      '{"inputs":[{"data":[.5]}]}',
      '{"inputs":[{"data":[+1]}]}',
      '{"inputs":[{"data":[1e]}]}',
      '{"inputs":[{"data":[-]}]}',
      '{"inputs":[{"data":[NaN]}]}',
      '{"inputs":[{"data":[1,-]}]}',
      '{"shape":[01]}',
      '{"shape":[1.5.5]}',
      '{"a":1,}',
      '{"a" 1}',
      '{a:1}',
      '{"a":1}x',
      '{"a":tru}',
      '{"a":"\\u0041"}',
      '{"a":"line\\nbreak"}',
      '{"é":1}',
      '{"a":"tab\there"}',
      '\ufeff{"a":1}',
      '{"__proto__":{"polluted":true}}',
      '{"inputs":[{"name":"x","datatype":"FP32","data":[0.1],"datatype":"FP64"}]}',
      `${'['.repeat(101)}${']'.repeat(101)}`,
      `{"inputs":[{"datatype":"FP32","data":[1,2],"parameters":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}]}`,
    ];
    for (const text of texts) expect(scanV2Body(Buffer.from(text, 'utf8')), text).toBe(unscanned);
    // The same depth JSON.parse reads, one level shallower, is read.
    expectSame(scanned(`${'['.repeat(100)}${']'.repeat(100)}`), reference(`${'['.repeat(100)}${']'.repeat(100)}`));
  });

  it('gives each FP32 tensor values of its own, however many bodies are scanned', () => {
    const tensors: Float32Array[] = [];
    for (let body = 0; body < 200; body++) {
      const text = envelope({ name: 'x', datatype: 'FP32', shape: [1, 500], data: Array.from({ length: 500 }, () => body) });
      tensors.push((scanV2Body(Buffer.from(text)) as { inputs: { data: Float32Array }[] }).inputs[0]!.data);
    }
    tensors.forEach((tensor, body) => expect(tensor.every((value) => value === body)).toBe(true));
    // A tensor larger than a quarter slab gets a buffer of its own.
    const large = (scanV2Body(Buffer.from(envelope({ name: 'x', datatype: 'FP32', shape: [20000], data: Array.from({ length: 20000 }, (_, index) => index) }))) as { inputs: { data: Float32Array }[] }).inputs[0]!.data;
    expect(large.length).toBe(20000);
    expect(large.byteOffset === 0 && large.byteLength === large.buffer.byteLength).toBe(true);
    expect(large[19999]).toBe(19999);
  });
});

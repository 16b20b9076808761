/**
 * Triton's binary tensor data extension on the V2 routes and TF-Serving's `{"b64": ...}` strings:
 * binary requests give the JSON requests' outputs bit for bit, in either direction.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fromHalf, toHalf } from '../../src/http/protocols/tensor-json.ts';
import { halfModel, identityModel, linearModel, linearReference, stringModel } from './fixtures/tiny-onnx.ts';
import { buildTestServer, type TestServer } from './fixtures/app.ts';

const servers: TestServer[] = [];
async function server(...args: Parameters<typeof buildTestServer>): Promise<TestServer> {
  const built = await buildTestServer(...args);
  servers.push(built);
  return built;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((item) => item.close()));
});

const models = () => [
  { name: 'linear', version: '1', bytes: linearModel() },
  { name: 'identity', version: '1', bytes: identityModel() },
  { name: 'half', version: '1', bytes: halfModel() },
  { name: 'text', version: '1', bytes: stringModel() },
];

function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** Triton's BYTES wire form: each element a 4-byte little-endian length, then its bytes. */
function lengthPrefixed(items: (string | Buffer)[]): Buffer {
  return Buffer.concat(
    items.flatMap((item) => {
      const bytes = typeof item === 'string' ? Buffer.from(item, 'utf8') : item;
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      return [length, bytes];
    }),
  );
}

function binaryRequest(header: object, sections: Uint8Array[], contentType = 'application/octet-stream') {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return {
    payload: Buffer.concat([json, ...sections]),
    headers: { 'content-type': contentType, 'inference-header-content-length': String(json.length) },
  };
}

interface BinaryOutput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size: number };
}

/** Splits a binary response and hands each binary output its bytes, in the order of `outputs`. */
function parseBinaryResponse(response: LightMyRequestResponse): { json: { outputs: BinaryOutput[] }; bytes: Map<string, Buffer> } {
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('application/octet-stream');
  const headerLength = Number(response.headers['inference-header-content-length']);
  const body = response.rawPayload;
  const json = JSON.parse(body.subarray(0, headerLength).toString('utf8')) as { outputs: BinaryOutput[] };
  const bytes = new Map<string, Buffer>();
  let offset = headerLength;
  for (const output of json.outputs) {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) continue;
    bytes.set(output.name, body.subarray(offset, offset + size));
    offset += size;
  }
  expect(offset).toBe(body.length);
  return { json, bytes };
}

const identityJsonInputs = [
  { name: 'i64', datatype: 'INT64', shape: [2, 2], data: [1, -2, '9007199254740993', '-9223372036854775808'] },
  { name: 'flag', datatype: 'BOOL', shape: [2], data: [true, false] },
  { name: 'u8', datatype: 'UINT8', shape: [2], data: [0, 255] },
  { name: 'f64', datatype: 'FP64', shape: [2], data: [0.1, -1e300] },
  { name: 'i32', datatype: 'INT32', shape: [2], data: [-2147483648, 7] },
];
const identityBinary: Record<string, Buffer> = {
  i64: bytesOf(BigInt64Array.from([1n, -2n, 9007199254740993n, -9223372036854775808n])),
  flag: Buffer.from([1, 0]),
  u8: Buffer.from([0, 255]),
  f64: bytesOf(Float64Array.from([0.1, -1e300])),
  i32: bytesOf(Int32Array.from([-2147483648, 7])),
};

describe('V2 binary tensor data: requests', () => {
  it('an FP32 binary input gives the JSON request its response byte for byte', async () => {
    const { app, usage } = await server(models());
    const rows = [[1, 2, 3], [-4, 0.1, 2.5]];
    const json = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: { id: 'a', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: rows.flat() }] } });
    const binary = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      ...binaryRequest({ id: 'a', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } }] }, [bytesOf(Float32Array.from(rows.flat()))]),
    });
    expect(json.statusCode).toBe(200);
    expect(binary.statusCode).toBe(200);
    // No binary output was asked for, so the answer is plain JSON, the same bytes as the JSON request's.
    expect(binary.headers['content-type']).toBe(json.headers['content-type']);
    expect(binary.headers['inference-header-content-length']).toBeUndefined();
    expect(binary.body).toBe(json.body);
    expect(json.json().outputs[0].data).toEqual(linearReference(rows).y.flat());
    expect(usage.map((entry) => entry.outcome)).toEqual(['ok', 'ok']);
  });

  it('INT64 (beyond 2^53), BOOL, UINT8, FP64 and INT32 binary inputs equal their JSON twins, in and out', async () => {
    const { app } = await server(models());
    const json = await app.inject({ method: 'POST', url: '/v2/models/identity/infer', payload: { inputs: identityJsonInputs } });
    expect(json.statusCode).toBe(200);
    const binaryInputs = identityJsonInputs.map(({ data: _data, ...input }) => ({ ...input, parameters: { binary_data_size: identityBinary[input.name]!.length } }));
    const binaryIn = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      ...binaryRequest({ inputs: binaryInputs }, identityJsonInputs.map((input) => identityBinary[input.name]!)),
    });
    expect(binaryIn.body).toBe(json.body);

    const binaryOut = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      ...binaryRequest({ inputs: binaryInputs, parameters: { binary_data_output: true } }, identityJsonInputs.map((input) => identityBinary[input.name]!)),
    });
    const { json: header, bytes } = parseBinaryResponse(binaryOut);
    const jsonOutputs = json.json().outputs as BinaryOutput[];
    expect(header.outputs.map((output) => output.name)).toEqual(jsonOutputs.map((output) => output.name));
    for (const output of header.outputs) {
      const twin = jsonOutputs.find((candidate) => candidate.name === output.name)!;
      expect(output).toMatchObject({ datatype: twin.datatype, shape: twin.shape });
      expect(output.data).toBeUndefined();
      // The model is the identity: each output's bytes are its input's bytes, exactly.
      expect(bytes.get(output.name)!.equals(identityBinary[output.name.replace(/_out$/, '')]!)).toBe(true);
    }
    // The JSON response wrote the same INT64 values exactly (JSON.parse would round the third one).
    expect(json.body).toContain('"name":"i64_out","datatype":"INT64","shape":[2,2],"data":[1,-2,9007199254740993,-9223372036854775808]');
  });

  it('FP16 travels as raw half bits', async () => {
    const { app } = await server(models());
    const values = [1, -2.5, 65504, 2 ** -24, 0.0999755859375, -0];
    const bits = Uint16Array.from(values, toHalf);
    const json = await app.inject({ method: 'POST', url: '/v2/models/half/infer', payload: { inputs: [{ name: 'h', datatype: 'FP16', shape: [3, 2], data: values }] } });
    expect(json.statusCode).toBe(200);
    const binary = await app.inject({
      method: 'POST',
      url: '/v2/models/half/infer',
      ...binaryRequest(
        { inputs: [{ name: 'h', datatype: 'FP16', shape: [3, 2], parameters: { binary_data_size: 12 } }], outputs: [{ name: 'h_out', parameters: { binary_data: true } }] },
        [bytesOf(bits)],
      ),
    });
    const { json: header, bytes } = parseBinaryResponse(binary);
    expect(header.outputs[0]).toEqual({ name: 'h_out', datatype: 'FP16', shape: [3, 2], parameters: { binary_data_size: 12 } });
    expect(bytes.get('h_out')!.equals(bytesOf(bits))).toBe(true);
    const returned = new Uint16Array(Uint8Array.from(bytes.get('h_out')!).buffer);
    expect(Array.from(returned, fromHalf).slice(0, 5)).toEqual(json.json().outputs[0].data.slice(0, 5));
    // JSON writes -0 as 0; the binary form keeps the sign bit.
    expect(json.json().outputs[0].data[5]).toBe(0);
    expect(returned[5]).toBe(0x8000);
  });

  it('BYTES are 4-byte length-prefixed strings, UTF-8 included, both ways', async () => {
    const { app } = await server(models());
    const strings = ['héllo', '', '日本語', 'a"b\\c'];
    const json = await app.inject({ method: 'POST', url: '/v2/models/text/infer', payload: { inputs: [{ name: 'text', datatype: 'BYTES', shape: [4], data: strings }] } });
    expect(json.json().outputs[0].data).toEqual(strings);
    const section = lengthPrefixed(strings);
    const binary = await app.inject({
      method: 'POST',
      url: '/v2/models/text/infer',
      ...binaryRequest({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [4], parameters: { binary_data_size: section.length } }] }, [section]),
    });
    expect(binary.body).toBe(json.body);
    const binaryOut = await app.inject({
      method: 'POST',
      url: '/v2/models/text/infer',
      ...binaryRequest({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [4], parameters: { binary_data_size: section.length } }], parameters: { binary_data_output: true } }, [section]),
    });
    expect(parseBinaryResponse(binaryOut).bytes.get('text_out')!.equals(section)).toBe(true);
  });

  it('mixes JSON and binary inputs, taking binary bytes in the order the inputs are listed', async () => {
    const { app } = await server(models());
    const json = await app.inject({ method: 'POST', url: '/v2/models/identity/infer', payload: { inputs: identityJsonInputs } });
    // Binary, JSON, binary, JSON, binary — listed in a different order from the model's signature.
    const order = ['i32', 'flag', 'i64', 'f64', 'u8'];
    const binaryNames = new Set(['i32', 'i64', 'u8']);
    const inputs = order.map((name) => {
      const input = identityJsonInputs.find((candidate) => candidate.name === name)!;
      if (!binaryNames.has(name)) return input;
      const { data: _data, ...header } = input;
      return { ...header, parameters: { binary_data_size: identityBinary[name]!.length } };
    });
    const mixed = await app.inject({
      method: 'POST',
      url: '/v2/models/identity/infer',
      ...binaryRequest({ inputs }, order.filter((name) => binaryNames.has(name)).map((name) => identityBinary[name]!), 'application/json'),
    });
    expect(mixed.statusCode).toBe(200);
    expect(mixed.body).toBe(json.body);
  });

  it('a raw binary request (header length 0) is the single input as batch 1, answered in binary', async () => {
    const { app } = await server(models());
    const row = [1, -2, 0.5];
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' },
      payload: bytesOf(Float32Array.from(row)),
    });
    const { json, bytes } = parseBinaryResponse(response);
    expect(json.outputs.map((output) => [output.name, output.shape])).toEqual([['y', [1, 2]], ['r', [1, 2]]]);
    expect(Array.from(new Float32Array(Uint8Array.from(bytes.get('y')!).buffer))).toEqual(linearReference([row]).y[0]);
    const text = await app.inject({
      method: 'POST',
      url: '/v2/models/text/infer',
      headers: { 'inference-header-content-length': '0' },
      payload: Buffer.from('raw ünïcode', 'utf8'),
    });
    expect(parseBinaryResponse(text).bytes.get('text_out')!.equals(lengthPrefixed(['raw ünïcode']))).toBe(true);
  });
});

describe('V2 binary tensor data: responses', () => {
  it('binary_data on one output overrides binary_data_output; binary outputs parse back to the JSON numbers', async () => {
    const { app } = await server(models());
    const rows = [[0.1, 0.2, 0.3], [3, -7, 1e-3]];
    const input = { name: 'x', datatype: 'FP32', shape: [2, 3], data: rows.flat() };
    const json = (await app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: { id: 'q', inputs: [input] } })).json();
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      payload: { id: 'q', inputs: [input], parameters: { binary_data_output: true }, outputs: [{ name: 'r' }, { name: 'y', parameters: { binary_data: false } }] },
    });
    const { json: header, bytes } = parseBinaryResponse(response);
    expect(header).toMatchObject({ model_name: 'linear', model_version: '1', id: 'q' });
    expect(header.outputs).toEqual([
      { name: 'r', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } },
      { name: 'y', datatype: 'FP32', shape: [2, 2], data: json.outputs[0].data },
    ]);
    expect(bytes.get('r')!.equals(bytesOf(Float32Array.from(json.outputs[1].data as number[])))).toBe(true);
    expect(Number(response.headers['content-length'])).toBe(response.rawPayload.length);
  });

  it('a request with binary_data: false everywhere is answered in JSON', async () => {
    const { app } = await server(models());
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      payload: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 1, 1] }], outputs: [{ name: 'y', parameters: { binary_data: false } }] },
    });
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json().outputs[0].data).toEqual(linearReference([[1, 1, 1]]).y[0]);
  });
});

describe('V2 binary tensor data: malformed requests are 400 with a clear message', () => {
  const x = (size: number, extra: object = {}) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], parameters: { binary_data_size: size }, ...extra }] });
  const twelve = bytesOf(Float32Array.from([1, 2, 3]));
  const cases: [string, () => { payload: Buffer | string; headers: Record<string, string> }, string, RegExp][] = [
    ['binary_data_size disagreeing with datatype × shape', () => binaryRequest(x(8), [twelve.subarray(0, 8)]), 'INVALID_TENSOR', /input 'x': binary_data_size is 8 bytes, but FP32 \[1,3\] is 12 bytes/],
    ['a truncated binary section', () => binaryRequest(x(12), [twelve.subarray(0, 7)]), 'INVALID_REQUEST', /binary section .* has 7 bytes, but the inputs' binary_data_size values add up to 12/],
    ['bytes beyond the declared inputs', () => binaryRequest(x(12), [twelve, Buffer.from([0])]), 'INVALID_REQUEST', /has 13 bytes, but .* add up to 12/],
    ['a header length beyond the body', () => ({ payload: '{"inputs": []}', headers: { 'inference-header-content-length': '500' } }), 'INVALID_REQUEST', /Inference-Header-Content-Length is 500 but the body has only 14 bytes/],
    ['a header length that is not a number', () => ({ payload: '{}', headers: { 'inference-header-content-length': '-1' } }), 'INVALID_REQUEST', /must be a non-negative integer, got "-1"/],
    ['a header cut inside the JSON', () => ({ payload: '{"inputs": []}', headers: { 'inference-header-content-length': '5' } }), 'INVALID_JSON', /not valid JSON/],
    ['binary_data_size without a binary section', () => ({ payload: JSON.stringify(x(12)), headers: { 'content-type': 'application/json' } }), 'INVALID_TENSOR', /no binary section .*Inference-Header-Content-Length/],
    ['both data and binary_data_size', () => binaryRequest(x(12, { data: [1, 2, 3] }), [twelve]), 'INVALID_TENSOR', /both 'data' and binary_data_size/],
    ['a negative binary_data_size', () => binaryRequest(x(-4), []), 'INVALID_TENSOR', /binary_data_size must be a non-negative integer/],
    ['a JSON header that breaks the request schema', () => binaryRequest({ inputs: [{ name: 'x', shape: [1, 3], parameters: { binary_data_size: 12 } }] }, [twelve]), 'INVALID_TENSOR', /'inputs\.0\.datatype' must be one of FP32/],
    ['an input with neither data nor binary_data_size', () => binaryRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3] }] }, []), 'INVALID_TENSOR', /input 'x': missing 'data'/],
    ['a raw request of the wrong length', () => ({ payload: twelve.subarray(0, 8), headers: { 'inference-header-content-length': '0' } }), 'INVALID_TENSOR', /raw binary request .* has 8 bytes, but FP32 \[1,3\] is 12 bytes/],
  ];
  it.each(cases)('%s', async (_label, build, code, message) => {
    const { app } = await server(models());
    const response = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', ...build() });
    expect(response.statusCode).toBe(400);
    expect(response.headers['x-aiaas-error-code']).toBe(code);
    expect(response.json().error).toMatch(message);
  });

  const stringCases: [string, Buffer, number, RegExp][] = [
    ['an element longer than the section', lengthPrefixed(['ab']).subarray(0, 5), 1, /BYTES element 0 declares 2 bytes but only 1 remain/],
    ['fewer elements than the shape', Buffer.concat([lengthPrefixed(['ab']), Buffer.from([0, 0])]), 2, /binary data ends after 1 of 2 BYTES elements/],
    ['bytes left after the elements', Buffer.concat([lengthPrefixed(['ab']), Buffer.from('zzzz')]), 1, /binary_data_size is 10 but its 1 BYTES elements take 6 bytes/],
    ['bytes that are not UTF-8', lengthPrefixed([Buffer.from([0xff, 0xfe])]), 1, /BYTES element 0 is not valid UTF-8/],
  ];
  it.each(stringCases)('BYTES: %s', async (_label, section, count, message) => {
    const { app } = await server(models());
    const response = await app.inject({
      method: 'POST',
      url: '/v2/models/text/infer',
      ...binaryRequest({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [count], parameters: { binary_data_size: section.length } }] }, [section]),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(message);
  });

  it('BOOL bytes other than 0 and 1 are refused', async () => {
    const { app } = await server(models());
    const inputs = identityJsonInputs.map((input) => (input.name === 'flag' ? { name: 'flag', datatype: 'BOOL', shape: [2], parameters: { binary_data_size: 2 } } : input));
    const response = await app.inject({ method: 'POST', url: '/v2/models/identity/infer', ...binaryRequest({ inputs }, [Buffer.from([1, 2])]) });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toMatch(/input 'flag': BOOL element 1 is byte 2/);
  });

  it('binary inputs count toward the element cap and the body limit', async () => {
    const capped = await server(models(), { maxTensorElements: 5 });
    const overCap = await capped.app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      ...binaryRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } }] }, [Buffer.alloc(24)]),
    });
    expect(overCap.statusCode).toBe(413);
    expect(overCap.headers['x-aiaas-error-code']).toBe('TOO_MANY_ELEMENTS');
    // Fastify's default body limit (1 MiB) holds in this test app; the binary tail is part of the body.
    const rows = 100_000;
    const { app } = await server(models(), { maxTensorElements: 10_000_000 });
    const tooLarge = await app.inject({
      method: 'POST',
      url: '/v2/models/linear/infer',
      ...binaryRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 3], parameters: { binary_data_size: rows * 12 } }] }, [Buffer.alloc(rows * 12)]),
    });
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.headers['x-aiaas-error-code']).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('TF-Serving binary strings', () => {
  const textModels = () => [
    { name: 'text', version: '1', bytes: stringModel() },
    { name: 'blob', version: '1', bytes: stringModel('text_bytes') },
  ];
  const b64 = (text: string) => ({ b64: Buffer.from(text, 'utf8').toString('base64') });

  it('takes {"b64": ...} in both formats and writes outputs named *_bytes as {"b64": ...}', async () => {
    const { app } = await server(textModels());
    const strings = ['héllo', '', '{"not": "json"}'];
    const row = await app.inject({ method: 'POST', url: '/tfserving/v1/models/blob:predict', payload: { instances: strings.map(b64) } });
    expect(row.statusCode).toBe(200);
    expect(row.json()).toEqual({ predictions: strings.map(b64) });
    const named = await app.inject({ method: 'POST', url: '/tfserving/v1/models/blob:predict', payload: { instances: strings.map((text) => ({ text: b64(text) })) } });
    expect(named.json()).toEqual({ predictions: strings.map(b64) });
    const columnar = await app.inject({ method: 'POST', url: '/tfserving/v1/models/blob:predict', payload: { inputs: { text: [b64('a'), 'plain'] } } });
    expect(columnar.json()).toEqual({ outputs: [b64('a'), b64('plain')] });
    // Without the suffix the same strings come back as plain JSON strings.
    const plain = await app.inject({ method: 'POST', url: '/tfserving/v1/models/text:predict', payload: { instances: strings.map(b64) } });
    expect(plain.json()).toEqual({ predictions: strings });
  });

  it('refuses b64 values that are not base64, or not UTF-8 text', async () => {
    const { app } = await server(textModels());
    const notBase64 = await app.inject({ method: 'POST', url: '/tfserving/v1/models/text:predict', payload: { instances: [{ b64: 'a!b=' }] } });
    expect(notBase64.statusCode).toBe(400);
    expect(notBase64.json().error).toMatch(/input 'text': element 0 has a "b64" value that is not base64/);
    const binary = await app.inject({ method: 'POST', url: '/tfserving/v1/models/text:predict', payload: { instances: [{ b64: Buffer.from([0xff, 0x00]).toString('base64') }] } });
    expect(binary.statusCode).toBe(400);
    expect(binary.json().error).toMatch(/input 'text': BYTES element 0 is not valid UTF-8/);
  });
});

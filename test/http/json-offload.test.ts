import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonParsePool, type OffloadedParse } from '../../src/http/protocols/json-offload.ts';
import { inlineWhenIdleMaxBytes, scanInlineMaxBytes } from '../../src/http/protocols/route-support.ts';
import { call, classifierModel, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

const parsed = (result: OffloadedParse): Record<string, unknown> => {
  expect(result).toHaveProperty('value');
  return (result as { value: Record<string, unknown> }).value;
};
const inputsOf = (result: OffloadedParse) => parsed(result).inputs as { name: string; datatype: string; data: unknown }[];

describe('JsonParsePool', () => {
  const pool = new JsonParsePool({ threads: 2 });
  afterAll(async () => {
    await pool.close();
  });

  it('packs flat numeric V2 data: float32 for FP32 inputs (the values a Float32Array stores), doubles for others', async () => {
    const values = [0.1, 1e40, -0, 3.4028235677973366e38, 2 ** -149, 123456789.123];
    const body = {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [6], data: values },
        { name: 'b', datatype: 'FP64', shape: [6], data: values },
        { name: 'c', datatype: 'INT32', shape: [2], data: [7, -3] },
        { name: 'd', datatype: 'BYTES', shape: [2], data: ['x', 'y'] },
        { name: 'e', datatype: 'FP32', shape: [2, 1], data: [[1], [2]] },
      ],
    };
    // -0 written by hand: JSON.stringify writes it as 0.
    const text = JSON.stringify(body).replaceAll('0.1,1e+40,0,', '0.1,1e+40,-0,');
    expect(text.match(/-0,/g)).toHaveLength(2);
    const [a, b, c, d, e] = inputsOf(await pool.parse(Buffer.from(text), { packTensors: true }));
    expect(a!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a!.data as Float32Array)).toEqual(Array.from(Float32Array.from(values)));
    expect(Object.is((a!.data as Float32Array)[2], -0)).toBe(true);
    expect(b!.data).toBeInstanceOf(Float64Array);
    expect(Array.from(b!.data as Float64Array)).toEqual(values);
    expect(Object.is((b!.data as Float64Array)[2], -0)).toBe(true);
    expect(c!.data).toBeInstanceOf(Float64Array);
    expect(Array.from(c!.data as Float64Array)).toEqual([7, -3]);
    // Not all numbers, or nested: left exactly as parsed, for the tensor parser's own checks.
    expect(d!.data).toEqual(['x', 'y']);
    expect(e!.data).toEqual([[1], [2]]);
  });

  it('leaves data unpacked when asked to (TF-Serving bodies)', async () => {
    const value = parsed(await pool.parse(Buffer.from('{"inputs": [{"datatype": "FP32", "data": [1, 2]}], "instances": [[1, 2]]}'), { packTensors: false }));
    expect(value).toEqual({ inputs: [{ datatype: 'FP32', data: [1, 2] }], instances: [[1, 2]] });
  });

  it('answers each body of a turn, in order, across its threads', async () => {
    const bodies = Array.from({ length: 40 }, (_, index) => ({ id: String(index), inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: [index, index + 0.5] }] }));
    const results = await Promise.all(bodies.map((body) => pool.parse(Buffer.from(JSON.stringify(body)), { packTensors: true })));
    results.forEach((result, index) => {
      expect(parsed(result).id).toBe(String(index));
      expect(Array.from(inputsOf(result)[0]!.data as Float32Array)).toEqual([index, index + 0.5]);
    });
  });

  it('sends what it cannot answer back to the caller: invalid JSON, bare NaN tokens, nesting deeper than 100', async () => {
    expect(await pool.parse(Buffer.from('{"inputs": [1, 2,]}'), { packTensors: true })).toEqual({ fallback: true });
    expect(await pool.parse(Buffer.from('{"instances": [NaN]}'), { packTensors: false })).toEqual({ fallback: true });
    expect(await pool.parse(Buffer.from(`{"a": ${'['.repeat(5000)}1${']'.repeat(5000)}}`), { packTensors: true })).toEqual({ fallback: true });
    expect(await pool.parse(Buffer.from(`{"a": ${'['.repeat(90)}1${']'.repeat(90)}}`), { packTensors: true })).toHaveProperty('value');
    expect(await pool.parse(Buffer.from(' \n '), { packTensors: true })).toEqual({ empty: true });
    // A byte-order mark is not JSON, here as on the main thread.
    expect(await pool.parse(Buffer.from('\uFEFF{"a": 1}'), { packTensors: true })).toEqual({ fallback: true });
    expect(() => JSON.parse(Buffer.from('\uFEFF{"a": 1}').toString('utf8'))).toThrow();
  });

  it('answers fallback when its worker dies or it is closed, and starts a new worker for later bodies', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-parse-worker-'));
    try {
      const script = join(directory, 'dies.mjs');
      await writeFile(script, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(3));\n");
      const dying = new JsonParsePool({ threads: 1, scriptPath: script });
      expect(await dying.parse(Buffer.from('{"a": 1}'), { packTensors: true })).toEqual({ fallback: true });
      expect(await dying.parse(Buffer.from('{"a": 2}'), { packTensors: true })).toEqual({ fallback: true });
      await dying.close();
      expect(await dying.parse(Buffer.from('{"a": 3}'), { packTensors: true })).toEqual({ fallback: true });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

describe('inference bodies parsed off the main thread', () => {
  let offloaded: TestServer;
  let inline: TestServer;
  beforeAll(async () => {
    offloaded = await startTestServer({ inferenceParseThreads: 2 });
    inline = await startTestServer({ inferenceParseThreads: 0 });
    const onnx = classifierModel(3).exportOnnx();
    for (const server of [offloaded, inline]) expect((await uploadOnnxModel(server, server.adminKey, 'clf', onnx)).statusCode).toBe(201);
  });
  afterAll(async () => {
    await offloaded.close();
    await inline.close();
  });

  /**
   * The same request to both servers; their answers, which must be the same bytes. Bodies are over
   * the size parsed inline while the threads are idle, so the offloaded server sends every one to a
   * parse thread (checked by its count).
   */
  async function both(path: string, body: string, expectParsedInWorker = true): Promise<{ status: number; body: string }> {
    expect(Buffer.byteLength(body)).toBeGreaterThan(inlineWhenIdleMaxBytes);
    const parsedBefore = offloaded.context.jsonParsing!.parsed;
    const answers = [];
    for (const server of [offloaded, inline]) {
      const response = await call(server.app, server.adminKey, 'POST', path, body, { 'content-type': 'application/json' });
      answers.push({ status: response.statusCode, body: response.body });
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(offloaded.context.jsonParsing!.parsed).toBe(parsedBefore + (expectParsedInWorker ? 1 : 0));
    expect(inline.context.jsonParsing).toBeUndefined();
    return answers[0]!;
  }

  const rowCount = 2048;
  const rows = Array.from({ length: rowCount }, (_, row) => Array.from({ length: 4 }, (_, column) => Math.sin(row * 4 + column) * 3.141592653589793));

  it('gives V2 answers byte for byte equal to parsing on the main thread, flat or nested', async () => {
    const flat = await both('/v2/models/clf/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rowCount, 4], data: rows.flat() }] }));
    expect(flat.status).toBe(200);
    expect((JSON.parse(flat.body) as { outputs: { shape: number[] }[] }).outputs[0]!.shape).toEqual([rowCount, 3]);
    const nested = await both('/v2/models/clf/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rowCount, 4], data: rows }] }));
    expect(nested).toEqual(flat);
  });

  it('reads small V2 bodies on the main thread with the V2 scanner, alone or not, answering as JSON.parse would', async () => {
    const pool = offloaded.context.jsonParsing!;
    const small = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [64, 4], data: rows.slice(0, 64).flat() }] });
    const before = pool.parsed;
    const together = await Promise.all(
      Array.from({ length: 4 }, () => call(offloaded.app, offloaded.adminKey, 'POST', '/v2/models/clf/infer', small, { 'content-type': 'application/json' })),
    );
    expect(together.map((response) => response.statusCode)).toEqual([200, 200, 200, 200]);
    expect(new Set(together.map((response) => response.body)).size).toBe(1);
    expect(pool.parsed).toBe(before);
    // The same requests padded past the scanner's limit are parsed by JSON.parse (on the server
    // without threads): the same answers, byte for byte, errors included.
    const bodies = [
      small,
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [64, 4], data: rows.slice(0, 64) }] }),
      JSON.stringify({ inputs: [{ name: 'input', shape: [64, 4], data: rows.slice(0, 64).flat(), datatype: 'FP32' }], outputs: [{ name: 'probabilities' }] }),
      JSON.stringify({ id: 'r-7', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [0.1, -0, 1e-7, 3.4e38, 1.5, 2.5, -3.25, 7] }] }),
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: rows.slice(0, 2).flat() }] }),
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 'four'] }] }),
    ];
    for (const body of bodies) {
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(scanInlineMaxBytes);
      const scanned = await call(inline.app, inline.adminKey, 'POST', '/v2/models/clf/infer', body, { 'content-type': 'application/json' });
      const parsed = await call(inline.app, inline.adminKey, 'POST', '/v2/models/clf/infer', body.padEnd(scanInlineMaxBytes + 1, ' '), { 'content-type': 'application/json' });
      expect({ status: scanned.statusCode, body: scanned.body }).toEqual({ status: parsed.statusCode, body: parsed.body });
    }
  });

  it('parses a small TF-Serving body on the main thread when it is the only request, and in a thread when others are in flight', async () => {
    const small = JSON.stringify({ instances: rows.slice(0, 64) });
    expect(Buffer.byteLength(small)).toBeGreaterThan(1024);
    const pool = offloaded.context.jsonParsing!;
    const before = pool.parsed;
    for (let repeat = 0; repeat < 3; repeat++) {
      expect((await call(offloaded.app, offloaded.adminKey, 'POST', '/tfserving/v1/models/clf:predict', small, { 'content-type': 'application/json' })).statusCode).toBe(200);
    }
    // One at a time: each was alone once the previous answer had closed.
    expect(pool.parsed).toBe(before);
    const together = await Promise.all(
      Array.from({ length: 4 }, () => call(offloaded.app, offloaded.adminKey, 'POST', '/tfserving/v1/models/clf:predict', small, { 'content-type': 'application/json' })),
    );
    expect(together.map((response) => response.statusCode)).toEqual([200, 200, 200, 200]);
    expect(new Set(together.map((response) => response.body)).size).toBe(1);
    // The first found none in flight; the other three did.
    expect(pool.parsed).toBe(before + 3);
  });

  it('gives TF-Serving answers equal to parsing on the main thread, bare NaN tokens included', async () => {
    const ok = await both('/tfserving/v1/models/clf:predict', JSON.stringify({ instances: rows }));
    expect(ok.status).toBe(200);
    // Not JSON to a parse thread: parsed again on the main thread, where TF-Serving's tokens are read.
    const withNaN = await both('/tfserving/v1/models/clf:predict', JSON.stringify({ instances: rows }).replace('[', '[[NaN, 1, 2, 3],'), false);
    expect(withNaN.status).toBe(200);
    // TF-Serving answers NaN as a bare token, as it was sent.
    expect(withNaN.body.startsWith('{"predictions":[[NaN,NaN,NaN],')).toBe(true);
  });

  it('refuses bad bodies with the same status and message: invalid JSON (with its place), wrong elements, wrong counts', async () => {
    const valid = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rowCount, 4], data: rows.flat() }] });
    const broken = await both('/v2/models/clf/infer', `${valid.slice(0, -2)},]}`, false);
    expect(broken.status).toBe(400);
    expect(broken.body).toMatch(/line 1, column \d+/);
    const wrongElement = await both('/v2/models/clf/infer', valid.replace(/"data":\[[^,]+/, '"data":["seven"'));
    expect(wrongElement.status).toBe(400);
    expect(wrongElement.body).toContain('element 0');
    const int = await both('/v2/models/clf/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'INT32', shape: [rowCount, 4], data: rows.flat().map(Math.round) }] }).padEnd(inlineWhenIdleMaxBytes + 1, ' '));
    expect(int.status).toBe(400);
    expect(int.body).toContain('datatype INT32');
    const short = await both('/v2/models/clf/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rowCount + 1, 4], data: rows.flat() }] }));
    expect(short.status).toBe(400);
    expect(short.body).toContain(`needs ${(rowCount + 1) * 4} elements, data has ${rowCount * 4}`);
  });
});

import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { AiaasClient } from '../../src/sdk/index.ts';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/index.ts';
import { savedModelBytes } from '../../src/engine/saved-model.ts';
import { packTar } from '../../src/sdk/tar.ts';
import { bearer, call, startTestServer, type TestServer } from './helpers.ts';

// A model of about 34 KB against a body limit of 4 KiB: only a streamed upload can take it.
const bigSpec = {
  name: 'wide',
  input: { shape: [64] },
  layers: [
    { type: 'dense', units: 128, activation: 'tanh' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.05 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};
const bodyLimitBytes = 4096;
const maxModelBytes = 64 * 1024;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ bodyLimitBytes, inferenceBodyLimitBytes: 4096, maxModelBytes });
  for (const name of ['wide', 'huge', 'chunked', 'tarred', 'sdk']) await call(server.app, server.adminKey, 'POST', '/api/v1/models', { name });
});
afterAll(async () => server.close());

async function storedFiles(): Promise<string[]> {
  const entries = await readdir(join(server.dataDir, 'artifacts'), { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** A body without Content-Length (chunked), in small pieces, as a slow client sends it. */
function chunked(bytes: Uint8Array, size = 1000): Readable {
  return Readable.from((function* () {
    for (let offset = 0; offset < bytes.byteLength; offset += size) yield Buffer.from(bytes.subarray(offset, offset + size));
  })());
}

describe('streamed model uploads', () => {
  it('accepts an .onnx body larger than bodyLimitBytes, stores it encrypted, serves it and gives it back byte for byte', async () => {
    const model = Model.fromSpec(bigSpec, { seed: 3 });
    const onnx = model.exportOnnx();
    expect(onnx.byteLength).toBeGreaterThan(bodyLimitBytes * 4);
    const before = (await storedFiles()).length;
    const uploaded = await call(server.app, server.adminKey, 'POST', '/api/v1/models/wide/versions', Buffer.from(onnx), { 'content-type': 'application/octet-stream' });
    expect(uploaded.statusCode, uploaded.body).toBe(201);
    expect(uploaded.json().version.signature.inputs[0]).toMatchObject({ name: 'input', shape: [-1, 64] });
    expect((await storedFiles()).length).toBe(before + 1);

    const input = Array.from({ length: 64 }, (_, index) => Math.sin(index));
    const inferred = await call(server.app, server.adminKey, 'POST', '/v2/models/wide/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: input }] });
    expect(inferred.statusCode, inferred.body).toBe(200);
    const expected = Array.from(await model.predict(Float32Array.from(input)));
    const served = inferred.json().outputs[0].data as number[];
    served.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));

    const download = await call(server.app, server.adminKey, 'GET', '/api/v1/models/wide/versions/1/files/model.onnx');
    expect(download.statusCode).toBe(200);
    expect(download.rawPayload.equals(Buffer.from(onnx))).toBe(true);
  });

  it('takes a chunked body without Content-Length', async () => {
    const onnx = Model.fromSpec(bigSpec, { seed: 4 }).exportOnnx();
    const response = await server.app.inject({
      method: 'POST',
      url: '/api/v1/models/chunked/versions',
      headers: { ...bearer(server.adminKey), 'content-type': 'application/octet-stream' },
      payload: chunked(onnx),
    });
    expect(response.statusCode, response.body).toBe(201);
  });

  it('refuses a body over maxModelBytes with 413, declared or discovered mid-stream, and keeps nothing', async () => {
    const before = await storedFiles();
    const tooBig = Buffer.alloc(maxModelBytes + 1, 0x08);
    const declared = await call(server.app, server.adminKey, 'POST', '/api/v1/models/huge/versions', tooBig, { 'content-type': 'application/octet-stream' });
    expect(declared.statusCode).toBe(413);
    expect(declared.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const undeclared = await server.app.inject({
      method: 'POST',
      url: '/api/v1/models/huge/versions',
      headers: { ...bearer(server.adminKey), 'content-type': 'application/octet-stream' },
      payload: chunked(tooBig, 4096),
    });
    expect(undeclared.statusCode).toBe(413);
    expect(undeclared.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    // The rest of the body is not read: the connection closes after the answer.
    expect(undeclared.headers.connection).toBe('close');
    expect(await storedFiles()).toEqual(before);
    expect((await readdir(join(server.dataDir, 'artifacts'))).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
  });

  it('refuses an invalid streamed model with 400 and keeps nothing', async () => {
    const before = await storedFiles();
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models/huge/versions', Buffer.alloc(10_000, 0x42), { 'content-type': 'application/octet-stream' });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
    expect(await storedFiles()).toEqual(before);
    const empty = await call(server.app, server.adminKey, 'POST', '/api/v1/models/huge/versions', Buffer.alloc(0), { 'content-type': 'application/octet-stream' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.code).toBe('INVALID_MODEL_FILE');
  });

  it('still parses a saved-model .tar in memory, within bodyLimitBytes (413 beyond it)', async () => {
    const files = savedModelBytes(Model.fromSpec(bigSpec, { seed: 5 }));
    const tar = packTar([{ path: 'model.onnx', bytes: files.onnx }]);
    const response = await call(server.app, server.adminKey, 'POST', '/api/v1/models/tarred/versions', Buffer.from(tar), { 'content-type': 'application/x-tar' });
    expect(response.statusCode).toBe(413);
    expect(response.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    // Detected by its ustar magic when the content type does not say so, and refused mid-stream.
    const sniffed = await server.app.inject({
      method: 'POST',
      url: '/api/v1/models/tarred/versions',
      headers: { ...bearer(server.adminKey), 'content-type': 'application/octet-stream' },
      payload: chunked(tar),
    });
    expect(sniffed.statusCode).toBe(413);
  });

  it('the SDK streams an .onnx file from disk over a real socket, and gets the 413 of one that is too large', async () => {
    const address = await server.app.listen({ port: 0, host: '127.0.0.1' });
    const directory = await mkdtemp(join(tmpdir(), 'aiaas-sdk-upload-'));
    try {
      const client = new AiaasClient({ baseUrl: address, apiKey: server.adminKey });
      const path = join(directory, 'wide.onnx');
      await writeFile(path, Model.fromSpec(bigSpec, { seed: 6 }).exportOnnx());
      const version = await client.versions.upload('sdk', { source: { path } });
      expect(version.version).toBe(1);
      const tooBig = join(directory, 'too-big.onnx');
      await writeFile(tooBig, Buffer.alloc(maxModelBytes * 4, 0x08));
      await expect(client.versions.upload('sdk', { source: { path: tooBig } })).rejects.toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

/**
 * Finding 1 of the security assessment: an uploaded ONNX model could read files of the server's
 * working directory through a relative `external_data` location. And finding 8: ONNX Runtime's error
 * texts, with host paths, reached clients. These tests upload such models through the HTTP API.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeOnnxModel, floatTensor, int64Tensor, OnnxDataType, type OnnxGraph, type OnnxTensor } from '../../src/onnx/model.ts';
import { ProtobufWriter } from '../../src/onnx/protobuf-writer.ts';
import { writeTar, type TarEntry } from '../../src/platform/tar.ts';
import { createServerContext } from '../../src/startup/context.ts';
import { plaintextDirectoryName } from '../../src/storage/plaintext-directory.ts';
import { hostileModels, initializerModel, leakedBytes } from '../onnx/hostile-models.ts';
import { call, createTenant, startTestServer, uploadOnnxModel, type TestServer } from './helpers.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function server(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const started = await startTestServer(...args);
  servers.push(started);
  return started;
}

const packageJson = await readFile('package.json');

async function uploadTar(target: TestServer, key: string, name: string, entries: TarEntry[]) {
  const created = await call(target.app, key, 'POST', '/api/v1/models', { name });
  if (created.statusCode !== 201 && created.statusCode !== 409) throw new Error(created.body);
  return call(target.app, key, 'POST', `/api/v1/models/${name}/versions`, Buffer.from(writeTar(entries)), { 'content-type': 'application/x-tar' });
}

const inferBytes = (target: TestServer, name: string, input: Record<string, unknown>) =>
  call(target.app, target.adminKey, 'POST', `/v2/models/${name}/infer`, { inputs: [input] });

/** Nothing of a host path, ORT source location or C++ signature may reach a client. */
function expectNoInternals(body: string): void {
  expect(body).not.toMatch(/onnxruntime_src|\.(?:cc|h):\d+|onnxruntime::|resolved path|\/(?:tmp|work|home|etc|root)\//);
  expect(body).not.toContain(process.cwd());
}

// ---- a small MLP whose weights live in external files

const weights = {
  w1: Float32Array.from({ length: 4 * 8 }, (_, index) => Math.sin(index + 1) / 2),
  b1: Float32Array.from({ length: 8 }, (_, index) => (index - 4) / 10),
  w2: Float32Array.from({ length: 8 * 3 }, (_, index) => Math.cos(index * 0.7)),
  b2: Float32Array.from([0.25, -0.5, 0.125]),
};

function mlp(tensors: Record<keyof typeof weights, OnnxTensor>): Uint8Array {
  const graph: OnnxGraph = {
    name: 'mlp',
    nodes: [
      { opType: 'MatMul', inputs: ['x', 'w1'], outputs: ['h0'], name: 'dense1' },
      { opType: 'Add', inputs: ['h0', 'b1'], outputs: ['h1'], name: 'bias1' },
      { opType: 'Relu', inputs: ['h1'], outputs: ['h2'], name: 'relu' },
      { opType: 'MatMul', inputs: ['h2', 'w2'], outputs: ['h3'], name: 'dense2' },
      { opType: 'Add', inputs: ['h3', 'b2'], outputs: ['y'], name: 'bias2' },
    ],
    initializers: [tensors.w1, tensors.b1, tensors.w2, tensors.b2],
    inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, shape: ['batch', 4] }],
    outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT, shape: ['batch', 3] }],
  };
  return encodeOnnxModel({ irVersion: 8, opsetVersion: 17, producerName: 'test', producerVersion: '1', graph });
}

const inlineMlp = () =>
  mlp({ w1: floatTensor('w1', [4, 8], weights.w1), b1: floatTensor('b1', [8], weights.b1), w2: floatTensor('w2', [8, 3], weights.w2), b2: floatTensor('b2', [3], weights.b2) });

/**
 * The same MLP with every weight in external files, laid out as `onnx.save_model(...,
 * save_as_external_data=True)` does: one data file (page-aligned offsets), plus one tensor in a
 * subfolder. Returns the archive's entries under `saved/`.
 */
function externalMlpArchive(): { entries: TarEntry[]; weightsFile: Uint8Array; biasFile: Uint8Array } {
  const bytesOf = (array: Float32Array) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  const weightsFile = new Uint8Array(4096 + weights.w2.byteLength);
  weightsFile.set(bytesOf(weights.w1), 0);
  weightsFile.set(bytesOf(weights.b1), weights.w1.byteLength);
  weightsFile.set(bytesOf(weights.w2), 4096);
  const biasFile = bytesOf(weights.b2).slice();
  const external = (name: string, dims: number[], location: string, offset: number, length: number): OnnxTensor => ({
    name,
    dataType: OnnxDataType.FLOAT,
    dims,
    raw: new Uint8Array(),
    external: { location, offset, length },
  });
  const onnx = mlp({
    w1: external('w1', [4, 8], 'weights.bin', 0, weights.w1.byteLength),
    b1: external('b1', [8], 'weights.bin', weights.w1.byteLength, weights.b1.byteLength),
    w2: external('w2', [8, 3], 'weights.bin', 4096, weights.w2.byteLength),
    b2: { name: 'b2', dataType: OnnxDataType.FLOAT, dims: [3], raw: new Uint8Array(), external: { location: 'data/bias2.bin' } },
  });
  return {
    entries: [
      { name: 'saved/model.onnx', bytes: onnx },
      { name: 'saved/weights.bin', bytes: weightsFile },
      { name: 'saved/data/bias2.bin', bytes: biasFile },
      { name: 'saved/README.txt', bytes: new TextEncoder().encode('not referenced; not stored') },
    ],
    weightsFile,
    biasFile,
  };
}

const mlpInput = { name: 'x', datatype: 'FP32', shape: [3, 4], data: [[1, 2, 3, 4], [-1, 0.5, 0, 2], [0, 0, 0, 0]] };

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('a bare .onnx upload with external data is refused', () => {
  it.each(hostileModels)('in %s: 400 INVALID_MODEL_FILE naming the tensor, never the file', async (_label, make, description) => {
    const target = await server();
    const response = await uploadOnnxModel(target, target.adminKey, 'leak', make('package.json'));
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
    expect(response.json().error.message).toContain(description);
    expect(response.json().error.message).toContain('a bare .onnx upload must hold all of its tensors');
    expect(response.body).not.toContain(packageJson.subarray(0, leakedBytes).toString());
    const versions = await call(target.app, target.adminKey, 'GET', '/api/v1/models/leak/versions');
    expect(versions.json().versions).toEqual([]);
  });

  it('also when the location is absolute or names the server secret', async () => {
    const target = await server();
    for (const location of ['/etc/passwd', 'server-secret', join(target.dataDir, 'server-secret'), '../../../etc/passwd']) {
      const response = await uploadOnnxModel(target, target.adminKey, 'leak', initializerModel(location));
      expect(response.statusCode, location).toBe(400);
      expect(response.json().error.message).toContain("initializer 'w'");
    }
  });
});

describe('a saved-model .tar with external data', () => {
  it('answers 201 and predicts exactly as the same model with inline weights', async () => {
    const target = await server();
    const inline = await uploadOnnxModel(target, target.adminKey, 'inline', inlineMlp());
    expect(inline.statusCode).toBe(201);
    const external = await uploadTar(target, target.adminKey, 'external', externalMlpArchive().entries);
    expect(external.statusCode, external.body).toBe(201);
    expect(external.json().version.signature).toEqual(inline.json().version.signature);
    expect(external.json().version.files).toEqual(['model.onnx']);

    const expected = await inferBytes(target, 'inline', mlpInput);
    const actual = await inferBytes(target, 'external', mlpInput);
    expect(expected.statusCode).toBe(200);
    expect(actual.statusCode).toBe(200);
    const outputs = actual.json().outputs[0];
    expect(outputs.shape).toEqual([3, 3]);
    expect(outputs.data).toEqual(expected.json().outputs[0].data);
    // Real weights were read: the outputs differ per row (the zero row gives the biases through the net).
    expect(new Set(outputs.data.map(String)).size).toBeGreaterThan(3);
  });

  const escapes: [string, string, RegExp][] = [
    ['a parent-directory path', '../package.json', /not a file of this archive/],
    ['an absolute path', '/etc/passwd', /not a file of this archive/],
    ['a backslash path', '..\\package.json', /not a file of this archive/],
    ['a path with a ./ segment', './weights.bin', /not a file of this archive/],
    ["ORT's memory-address tag", '*/_ORT_MEM_ADDR_/*', /not a file of this archive/],
    ['a file the archive does not hold', 'aiaas-data/server-secret', /which the archive does not hold/],
    ['a saved-model file', 'model.onnx', /a saved-model file, not a data file/],
  ];
  it.each(escapes)('refuses %s as a location with 400 naming the tensor', async (_label, location, message) => {
    const target = await server();
    const response = await uploadTar(target, target.adminKey, 'escape', [
      { name: 'saved/model.onnx', bytes: initializerModel(location) },
      { name: 'saved/weights.bin', bytes: new Uint8Array(leakedBytes) },
      { name: 'package.json', bytes: packageJson },
    ]);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
    expect(response.json().error.message).toContain("initializer 'w'");
    expect(response.json().error.message).toMatch(message);
  });

  it('refuses an offset or length beyond the data file', async () => {
    const target = await server();
    const onnx = encodeOnnxModel({
      irVersion: 8,
      opsetVersion: 17,
      producerName: 'test',
      producerVersion: '1',
      graph: {
        name: 'g',
        nodes: [{ opType: 'Identity', inputs: ['w'], outputs: ['y'], name: 'copy' }],
        initializers: [{ name: 'w', dataType: OnnxDataType.UINT8, dims: [16], raw: new Uint8Array(), external: { location: 'weights.bin', offset: 8, length: 16 } }],
        inputs: [],
        outputs: [{ name: 'y', elemType: OnnxDataType.UINT8, shape: [16] }],
      },
    });
    const response = await uploadTar(target, target.adminKey, 'short', [
      { name: 'model.onnx', bytes: onnx },
      { name: 'weights.bin', bytes: new Uint8Array(16) },
    ]);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.message).toMatch(/reads bytes 8 to 24 of 'weights.bin', which holds 16/);
  });
});

describe('the private plaintext directory', () => {
  it('holds a loaded version in plain/<tenant>/<version> (0700, files 0600) and loses it on unload and deletion', async () => {
    const target = await server();
    const archive = externalMlpArchive();
    const uploaded = await uploadTar(target, target.adminKey, 'external', archive.entries);
    const versionId: string = uploaded.json().version.id;
    const tenantId = target.context.bootstrap.tenantId;
    const root = join(target.dataDir, plaintextDirectoryName);
    const directory = join(root, tenantId, versionId);
    await expect(stat(directory)).rejects.toMatchObject({ code: 'ENOENT' });

    expect((await inferBytes(target, 'external', mlpInput)).statusCode).toBe(200);
    expect(await modeOf(root)).toBe(0o700);
    expect(await modeOf(join(root, tenantId))).toBe(0o700);
    expect(await modeOf(directory)).toBe(0o700);
    expect((await readdir(directory)).sort()).toEqual(['data', 'model.onnx', 'weights.bin']);
    expect(await modeOf(join(directory, 'data'))).toBe(0o700);
    for (const file of ['model.onnx', 'weights.bin', 'data/bias2.bin']) expect(await modeOf(join(directory, file)), file).toBe(0o600);
    expect(new Uint8Array(await readFile(join(directory, 'weights.bin')))).toEqual(archive.weightsFile);
    expect(new Uint8Array(await readFile(join(directory, 'data', 'bias2.bin')))).toEqual(archive.biasFile);
    // The encrypted store never holds plaintext: the data file's bytes appear under artifacts/ nowhere.
    const needle = Buffer.from(archive.weightsFile.subarray(0, 64));
    for (const file of await readdir(join(target.dataDir, 'artifacts'), { recursive: true })) {
      const path = join(target.dataDir, 'artifacts', file);
      if ((await stat(path)).isFile()) expect((await readFile(path)).includes(needle), file).toBe(false);
    }

    expect((await call(target.app, target.adminKey, 'POST', '/v2/repository/models/external/unload')).statusCode).toBe(200);
    await expect(stat(directory)).rejects.toMatchObject({ code: 'ENOENT' });

    // Loads again (the same directory, written afresh), then deleting the version removes it.
    expect((await inferBytes(target, 'external', mlpInput)).statusCode).toBe(200);
    expect((await readdir(directory)).sort()).toEqual(['data', 'model.onnx', 'weights.bin']);
    expect((await call(target.app, target.adminKey, 'DELETE', '/api/v1/models/external/versions/1')).statusCode).toBe(204);
    await expect(stat(directory)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is emptied when the server starts', async () => {
    const target = await server();
    await target.context.close();
    const root = join(target.dataDir, plaintextDirectoryName);
    // What a killed server leaves behind: a loaded version's files and a validation's scratch copy.
    await mkdir(join(root, 'tnt_crashed', 'ver_crashed'), { recursive: true });
    await writeFile(join(root, 'tnt_crashed', 'ver_crashed', 'model.onnx'), 'plaintext model');
    await mkdir(join(root, '.scratch', 'validate-abc'), { recursive: true });
    await writeFile(join(root, '.scratch', 'validate-abc', 'model.onnx'), 'plaintext upload');
    await writeFile(join(root, 'stray-file'), 'plaintext');

    const restarted = await createServerContext(target.config, { logger: pino({ level: 'silent' }) });
    try {
      expect(await readdir(root)).toEqual(['.scratch']);
      expect(await readdir(join(root, '.scratch'))).toEqual([]);
      expect(await modeOf(root)).toBe(0o700);
    } finally {
      await restarted.close();
    }
  });

  it("loses a deleted tenant's subtree, and only that", async () => {
    const target = await server();
    const other = await createTenant(target, 'other');
    expect((await uploadOnnxModel(target, other.adminKey, 'mlp', inlineMlp())).statusCode).toBe(201);
    expect((await uploadOnnxModel(target, target.adminKey, 'mlp', inlineMlp())).statusCode).toBe(201);
    expect((await call(target.app, other.adminKey, 'POST', '/v2/models/mlp/infer', { inputs: [mlpInput] })).statusCode).toBe(200);
    expect((await inferBytes(target, 'mlp', mlpInput)).statusCode).toBe(200);
    const root = join(target.dataDir, plaintextDirectoryName);
    // Also whatever a load in flight might have written.
    await mkdir(join(root, other.id, 'ver_inflight'), { recursive: true });
    await writeFile(join(root, other.id, 'ver_inflight', 'model.onnx'), 'plaintext');
    expect((await readdir(root)).sort()).toEqual(['.scratch', other.id, target.context.bootstrap.tenantId].sort());

    expect((await call(target.app, target.adminKey, 'DELETE', `/api/v1/tenants/${other.id}`)).statusCode).toBe(204);
    expect((await readdir(root)).sort()).toEqual(['.scratch', target.context.bootstrap.tenantId].sort());
    expect(await readdir(join(root, target.context.bootstrap.tenantId))).toHaveLength(1);
  });

  it('a version stored before this check (external data naming a server file) fails to load instead of serving the file', async () => {
    const target = await server();
    const tenantId = target.context.bootstrap.tenantId;
    const model = await target.context.registry.createModel(tenantId, { name: 'legacy' });
    // As today's main stored it: the upload check did not exist, so write the rows directly.
    await target.context.repositories.models.addVersion(tenantId, model.id, {
      source: 'upload',
      onnxRef: await target.context.artifacts.put(tenantId, initializerModel('package.json')),
      signature: { inputs: [{ name: 'x', datatype: 'UINT8', shape: [16] }], outputs: [{ name: 'y', datatype: 'UINT8', shape: [16] }] },
      metrics: null,
      jobId: null,
    });
    const response = await inferBytes(target, 'legacy', { name: 'x', datatype: 'UINT8', shape: [16], data: new Array(16).fill(0) });
    expect(response.statusCode).toBe(503);
    expect(response.headers['x-aiaas-error-code']).toBe('MODEL_LOAD_FAILED');
    expect(response.json().error).toContain("initializer 'w'");
    expect(response.body).not.toContain('aia');
    expect(await readdir(join(target.dataDir, plaintextDirectoryName, tenantId)).catch(() => [])).toEqual([]);
  });
});

describe('ONNX Runtime errors reach clients without host paths', () => {
  /** y = Reshape(x, [5, 7]): loads fine, fails at run time for any input but 35 elements. */
  const reshapeModel = () =>
    encodeOnnxModel({
      irVersion: 8,
      opsetVersion: 17,
      producerName: 'test',
      producerVersion: '1',
      graph: {
        name: 'g',
        nodes: [{ opType: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'], name: 'reshape' }],
        initializers: [int64Tensor('shape', [2], [5, 7])],
        inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, shape: ['n', 3] }],
        outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT, shape: [5, 7] }],
      },
    });
  const rows = { name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] };

  function logSink(): { logger: Logger; lines: string[] } {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    return { logger: pino<never>({ level: 'warn' }, stream), lines };
  }

  it('a failed run answers 422 INFERENCE_FAILED with the reason; the log keeps the detail', async () => {
    const { logger, lines } = logSink();
    const target = await server({ warmup: false }, { logger });
    expect((await uploadOnnxModel(target, target.adminKey, 'reshape', reshapeModel())).statusCode).toBe(201);
    const response = await inferBytes(target, 'reshape', rows);
    expect(response.statusCode).toBe(422);
    expect(response.headers['x-aiaas-error-code']).toBe('INFERENCE_FAILED');
    expect(response.json().error).toMatch(/^the model failed to run on this input: .*cannot be reshaped to the requested shape/);
    expectNoInternals(response.body);
    expect(lines.join('')).toMatch(/onnxruntime_src\/onnxruntime\/core\/providers\/cpu\/tensor\/reshape_helper\.h/);
  });

  it('a failed warm-up answers 503 MODEL_LOAD_FAILED without the runtime internals', async () => {
    const target = await server({ warmup: true });
    expect((await uploadOnnxModel(target, target.adminKey, 'reshape', reshapeModel())).statusCode).toBe(201);
    const response = await inferBytes(target, 'reshape', rows);
    expect(response.statusCode).toBe(503);
    expect(response.headers['x-aiaas-error-code']).toBe('MODEL_LOAD_FAILED');
    expect(response.json().error).toMatch(/warmup inference failed: .*cannot be reshaped/);
    expectNoInternals(response.body);
  });

  it('an upload ONNX Runtime refuses answers 400 with its reason, without the runtime internals', async () => {
    const target = await server();
    // No opset_import: ORT refuses it with a message that starts with its source path and a C++ signature.
    const noOpset = new ProtobufWriter()
      .int64(1, 8)
      .message(7, (graph) => graph.string(2, 'g'))
      .finish();
    const response = await uploadOnnxModel(target, target.adminKey, 'no-opset', noOpset);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('INVALID_MODEL_FILE');
    expect(response.json().error.message).toMatch(/Missing opset in the model/);
    expectNoInternals(response.body);
  });
});

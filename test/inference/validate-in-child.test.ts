import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateOnnxInChild } from '../../src/runtimes/onnx/validate-in-child.ts';
import { identityModel, linearModel, weightsModel } from './fixtures/tiny-onnx.ts';
import { initializerModel, leakedBytes } from '../onnx/hostile-models.ts';

let scripts: string;
beforeAll(async () => {
  scripts = await mkdtemp(join(tmpdir(), 'aiaas-validate-'));
  await writeFile(join(scripts, 'hang.mjs'), 'process.stdin.resume(); setInterval(() => {}, 1000);\n');
  await writeFile(join(scripts, 'crash.mjs'), 'process.stdin.resume(); process.stdin.on("end", () => process.abort());\n');
  await writeFile(
    join(scripts, 'balloon.mjs'),
    'process.stdin.resume(); const hold = []; setInterval(() => hold.push(Buffer.alloc(32 * 1024 * 1024, 1)), 5);\n',
  );
});

describe('validateOnnxInChild', () => {
  it('returns the signature of a valid model', async () => {
    const validation = await validateOnnxInChild({ onnx: linearModel() });
    expect(validation.signature).toEqual({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 2] },
        { name: 'r', datatype: 'FP32', shape: [-1, 2] },
      ],
    });
    expect(validation.warmupError).toBeUndefined();
  });

  it.skipIf(process.platform !== 'linux')('measures the memory of opening the model and one run on zeros: at least its weights, at most a few times them', async () => {
    const weightBytes = 1024 * 8192 * 4; // 32 MiB of FP32 weights
    const large = await validateOnnxInChild({ onnx: weightsModel(1024, 8192) }, { memoryLimitBytes: 1024 ** 3 });
    expect(large.warmupError).toBeUndefined();
    expect(large.measuredMemoryBytes).toBeGreaterThanOrEqual(weightBytes * 0.9);
    expect(large.measuredMemoryBytes).toBeLessThan(weightBytes * 5);
    // A model of a few bytes takes far less.
    const tiny = await validateOnnxInChild({ onnx: linearModel() });
    expect(tiny.measuredMemoryBytes).toBeLessThan(weightBytes / 2);
  });

  it.skipIf(process.platform !== 'linux')('refuses a model whose open and first run cross the memory limit, naming the limit', async () => {
    await expect(validateOnnxInChild({ onnx: weightsModel(4096, 8192) }, { memoryLimitBytes: 96 * 1024 ** 2, memoryPollMs: 10 })).rejects.toMatchObject({
      code: 'INVALID_MODEL_FILE',
      status: 400,
      message: expect.stringMatching(/exceeded the validation memory limit of 96 MiB/),
    });
  });

  const bad: [string, () => Uint8Array][] = [
    ['an empty file', () => new Uint8Array()],
    ['a truncated model', () => linearModel().subarray(0, 60)],
    ['a corrupted model', () => {
      const bytes = identityModel().slice();
      for (let index = 10; index < bytes.length; index += 7) bytes[index] = 0xff;
      return bytes;
    }],
    ['a text file', () => new TextEncoder().encode('name,value\nnot,onnx\n')],
  ];
  it.each(bad)('rejects %s with INVALID_MODEL_FILE', async (_label, make) => {
    await expect(validateOnnxInChild({ onnx: make() })).rejects.toMatchObject({ code: 'INVALID_MODEL_FILE', status: 400 });
  });

  it('kills a child that hangs', async () => {
    await expect(validateOnnxInChild({ onnx: linearModel() }, { scriptPath: join(scripts, 'hang.mjs'), timeoutMs: 500 })).rejects.toMatchObject({
      code: 'INVALID_MODEL_FILE',
      message: expect.stringMatching(/did not finish within 500 ms/),
    });
  });

  it('rejects cleanly when the child crashes', async () => {
    await expect(validateOnnxInChild({ onnx: linearModel() }, { scriptPath: join(scripts, 'crash.mjs') })).rejects.toMatchObject({
      code: 'INVALID_MODEL_FILE',
      message: expect.stringMatching(/validator crashed \(signal SIGABRT\)/),
    });
  });

  it.skipIf(process.platform !== 'linux')('kills a child above the memory limit', async () => {
    await expect(
      validateOnnxInChild({ onnx: linearModel() }, { scriptPath: join(scripts, 'balloon.mjs'), memoryLimitBytes: 256 * 1024 ** 2, memoryPollMs: 10, timeoutMs: 60_000 }),
    ).rejects.toMatchObject({ code: 'INVALID_MODEL_FILE', message: expect.stringMatching(/memory limit of 256 MiB/) });
  });

  it('keeps the parent working after failures', async () => {
    await Promise.allSettled([validateOnnxInChild({ onnx: new Uint8Array([8, 1, 2]) }), validateOnnxInChild({ onnx: linearModel() }, { scriptPath: join(scripts, 'crash.mjs') })]);
    const { signature } = await validateOnnxInChild({ onnx: identityModel() });
    expect(signature.inputs.map((input) => input.datatype)).toEqual(['INT64', 'BOOL', 'UINT8', 'FP64', 'INT32']);
  });

  it('opens the model from a private scratch directory, never against the working directory', async () => {
    const scratchRoot = await mkdtemp(join(tmpdir(), 'aiaas-scratch-'));
    // package.json exists in the test's working directory; the child must not find it there.
    await stat('package.json');
    await expect(validateOnnxInChild({ onnx: initializerModel('package.json') }, { scratchRoot })).rejects.toMatchObject({
      code: 'INVALID_MODEL_FILE',
      message: expect.not.stringContaining(process.cwd()),
    });
    // The same reference resolves when the file travels with the model, into the scratch directory.
    const { signature } = await validateOnnxInChild({ onnx: initializerModel('weights.bin'), externalData: new Map([['weights.bin', new Uint8Array(leakedBytes)]]) }, { scratchRoot });
    expect(signature.outputs).toEqual([{ name: 'y', datatype: 'UINT8', shape: [leakedBytes] }]);
    // Nothing of either upload is left behind.
    expect(await readdir(scratchRoot)).toEqual([]);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { Model } from '../../src/engine/index.ts';
import { captureIo, type CapturedIo } from './helpers.ts';

const spec = {
  name: 'tiny',
  input: { shape: [2] },
  layers: [{ type: 'dense', units: 2, activation: 'softmax' }],
  compile: { optimizer: { type: 'sgd', learningRate: 0.1 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

function waitForListening(io: CapturedIo): Promise<string> {
  return new Promise((resolve) => {
    const check = () => {
      const match = io.err().match(/aiaas listening on (\S+)/);
      if (match !== null) resolve(match[1] as string);
      return match !== null;
    };
    if (check()) return;
    const listener = () => {
      if (check()) io.stderr.off('write-observed', listener);
    };
    io.stderr.on('write-observed', listener);
  });
}

/** Runs `aiaas serve` in-process until `use` is done, then stops it the way Ctrl-C does. */
async function withServer(dataDirectory: string, env: NodeJS.ProcessEnv, args: string[], use: (url: string) => Promise<void>): Promise<string> {
  const io = captureIo({ env: { AIAAS_LOG_LEVEL: 'silent', ...env }, observe: true });
  const stop = new AbortController();
  const serving = main(['serve', '--port', '0', '--data-dir', dataDirectory, ...args], io, { signal: stop.signal });
  const url = await Promise.race([waitForListening(io), serving.then(() => Promise.reject(new Error(io.err())))]);
  try {
    await use(url);
  } finally {
    stop.abort();
    expect(await serving).toBe(0);
  }
  return io.err();
}

describe('aiaas admin rotate-master-key', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'aiaas-rotate-'));
    await writeFile(join(directory, 'tiny.onnx'), Model.fromSpec(spec, { seed: 1 }).exportOnnx());
    await writeFile(join(directory, 'request.json'), JSON.stringify({ instances: [[1, 2]] }));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('re-wraps the data keys so the stored model still decrypts under the printed ring', async () => {
    const data = join(directory, 'data');
    const bootstrapKey = 'aiaas_rotation_test_bootstrap_key_0123456789';
    const client = (url: string) => ({ AIAAS_SERVER: url, AIAAS_API_KEY: bootstrapKey });
    let before = '';
    await withServer(data, { AIAAS_BOOTSTRAP_KEY: bootstrapKey }, ['--insecure-dev'], async (url) => {
      expect(await main(['models', 'push', 'tiny', 'tiny.onnx'], captureIo({ env: client(url), cwd: directory }))).toBe(0);
      const io = captureIo({ env: client(url), cwd: directory });
      expect(await main(['predict', 'tiny', '--input', 'request.json'], io)).toBe(0);
      before = io.out();
    });

    const newKey = captureIo();
    await main(['admin', 'gen-master-key'], newKey);
    const rotation = captureIo({ env: {}, cwd: directory });
    const code = await main(['admin', 'rotate-master-key', '--data-dir', data, '--new-key', newKey.out().trim(), '--insecure-dev'], rotation);
    expect(rotation.err()).toMatch(/re-wrapped 1 tenant data keys under master key version 2/);
    expect(code).toBe(0);
    // Version 1 (the insecure-dev key) wraps nothing any more, so the printed ring holds only the new key.
    expect(rotation.out()).toBe(`2:${newKey.out().trim()}\n`);

    await withServer(data, { AIAAS_MASTER_KEY: rotation.out().trim() }, [], async (url) => {
      const io = captureIo({ env: client(url), cwd: directory });
      expect(await main(['predict', 'tiny', '--input', 'request.json'], io)).toBe(0);
      expect(io.out()).toBe(before);
    });

    const reused = captureIo({ env: { AIAAS_MASTER_KEY: rotation.out().trim() } });
    expect(await main(['admin', 'rotate-master-key', '--data-dir', data, '--new-key', newKey.out().trim()], reused)).toBe(2);
    expect(reused.err()).toMatch(/already in the master key ring/);
  });
});

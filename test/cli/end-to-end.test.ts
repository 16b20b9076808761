import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { Model } from '../../src/engine/index.ts';
import { saveModel } from '../../src/engine/saved-model.ts';
import { captureIo, type CapturedIo } from './helpers.ts';

/** A small network so the test stays fast; the CLI path is the same for any spec. */
const spec = {
  name: 'tiny',
  input: { shape: [4] },
  layers: [
    { type: 'dense', units: 8, activation: 'relu' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.01 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

const samples = [
  [0.1, 0.2, 0.3, 0.4],
  [0.9, 0.1, 0.5, 0.0],
];

/** Resolves once everything written to the stream so far matches `pattern`; no sleeping, no polling. */
function waitFor(io: CapturedIo, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve) => {
    const check = () => {
      const match = io.err().match(pattern);
      if (match === null) return false;
      resolve(match);
      return true;
    };
    if (check()) return;
    const listener = () => {
      if (check()) io.stderr.off('write-observed', listener);
    };
    io.stderr.on('write-observed', listener);
  });
}

describe('aiaas CLI against the real server', () => {
  let directory: string;
  let serverIo: CapturedIo;
  let stop: AbortController;
  let serving: Promise<number>;
  let env: NodeJS.ProcessEnv;
  let model: Model;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'aiaas-cli-e2e-'));
    serverIo = captureIo({ env: { AIAAS_LOG_LEVEL: 'silent' }, cwd: directory, observe: true });
    stop = new AbortController();
    serving = main(['serve', '--port', '0', '--data-dir', join(directory, 'data'), '--insecure-dev'], serverIo, { signal: stop.signal });
    const [, url] = await waitFor(serverIo, /aiaas listening on (\S+)/);
    const [key] = serverIo.err().match(/aiaas_[A-Za-z0-9_-]+/) ?? [];
    expect(key).toBeDefined();
    env = { AIAAS_SERVER: url, AIAAS_API_KEY: key };

    model = Model.fromSpec(spec, { seed: 7 });
    await writeFile(join(directory, 'tiny.onnx'), model.exportOnnx());
    await saveModel(model, join(directory, 'saved'), {});
    await writeFile(join(directory, 'data.csv'), 'a,b,c,d,label\n0.1,0.2,0.3,0.4,0\n0.9,0.1,0.5,0,1\n0.3,0.3,0.3,0.3,2\n');
    await writeFile(join(directory, 'v2.json'), JSON.stringify({ id: 'r1', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: samples.flat() }] }));
    await writeFile(join(directory, 'tfserving.json'), JSON.stringify({ instances: samples }));
  });

  afterAll(async () => {
    stop?.abort();
    expect(await serving).toBe(0);
    await model?.dispose();
    await rm(directory, { recursive: true, force: true });
  });

  async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const io = captureIo({ env, cwd: directory });
    const code = await main(argv, io);
    return { code, out: io.out(), err: io.err() };
  }

  it('pushes a dataset, pushes versions, sets an alias and predicts over both protocols', async () => {
    const pushed = await run('datasets', 'push', 'data.csv', '--label', 'label', '--name', 'tiny-data');
    expect(pushed).toMatchObject({ code: 0 });
    expect(pushed.out).toMatch(/^ds_\w+\n$/);
    const listed = await run('datasets', 'ls', '--json');
    expect(JSON.parse(listed.out)).toEqual([expect.objectContaining({ id: pushed.out.trim(), name: 'tiny-data', format: 'csv', rowCount: 3 })]);

    expect(await run('models', 'push', 'tiny', 'tiny.onnx')).toMatchObject({ code: 0, out: '1\n' });
    const fromFolder = await run('models', 'push', 'tiny', 'saved', '--json');
    expect(fromFolder.code).toBe(0);
    expect(JSON.parse(fromFolder.out)).toMatchObject({ version: 2, files: expect.arrayContaining(['model.onnx', 'spec.json', 'model.safetensors']) });
    expect(await run('models', 'alias', 'tiny', 'production', '2')).toMatchObject({ code: 0 });
    const models = await run('models', 'ls');
    expect(models.out).toMatch(/tiny\s+1,2\s+production→2/);

    const expected = Array.from(await model.predict(Float32Array.from(samples.flat())));
    const v2 = await run('predict', 'tiny@production', '--input', 'v2.json');
    expect(v2.code).toBe(0);
    const v2Response = JSON.parse(v2.out) as { id: string; model_version: string; outputs: { shape: number[]; data: number[] }[] };
    expect(v2Response).toMatchObject({ id: 'r1', model_version: '2', outputs: [{ shape: [2, 3] }] });
    v2Response.outputs[0]!.data.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));

    const tf = await run('predict', 'tiny@1', '--input', 'tfserving.json');
    expect(tf.code).toBe(0);
    const predictions = (JSON.parse(tf.out) as { predictions: number[][] }).predictions.flat();
    predictions.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 5));
  });

  it('reports server errors as `error CODE: message` with exit 1', async () => {
    const missing = await run('predict', 'nope@production', '--input', 'v2.json');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^error MODEL_NOT_FOUND: /);
    const inUse = await run('models', 'rm', 'tiny');
    expect(inUse.code).toBe(1);
    expect(inUse.err).toMatch(/^error ALIAS_IN_USE: /);
    const unauthenticated = await main(['datasets', 'ls'], captureIo({ env: { AIAAS_SERVER: env.AIAAS_SERVER }, cwd: directory }));
    expect(unauthenticated).toBe(1);
  });

  it('evaluates a version on a dataset and prints the per-class table and the confusion matrix', async () => {
    const pushed = await run('datasets', 'push', 'data.csv', '--label', 'label', '--name', 'eval-data');
    const datasetId = pushed.out.trim();
    const evaluated = await run('models', 'evaluate', 'tiny@production', '--dataset', datasetId, '--class-names', 'red,green,blue', '--wait');
    expect(evaluated.err).toContain('evaluation job_');
    expect(evaluated.code, evaluated.err).toBe(0);
    // Three samples, one per class: the confusion matrix's rows each sum to 1.
    const data = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.9, 0.1, 0.5, 0, 0.3, 0.3, 0.3, 0.3]);
    const predicted = await model.predict(data);
    const hits = [0, 1, 2].filter((row) => [0, 1, 2].reduce((best, column) => (predicted[row * 3 + column]! > predicted[row * 3 + best]! ? column : best), 0) === row).length;
    expect(evaluated.out).toContain(`accuracy ${(hits / 3).toFixed(4)}`);
    expect(evaluated.out).toMatch(/CLASS\s+PRECISION\s+RECALL\s+F1\s+SUPPORT/);
    expect(evaluated.out).toMatch(/red\s+\S+\s+\S+\s+\S+\s+1\n/);
    expect(evaluated.out).toMatch(/macro avg\s+\S+\s+\S+\s+\S+\s+3\n/);
    expect(evaluated.out).toContain('confusion matrix (rows: true class, columns: predicted)');
    expect(evaluated.out).toMatch(/TRUE \\ PRED\s+red\s+green\s+blue/);
    const asJson = await run('models', 'evaluate', 'tiny@2', '--dataset', datasetId, '--wait', '--json');
    expect(JSON.parse(asJson.out)).toMatchObject({ task: 'classification', count: 3, accuracy: hits / 3 });

    // A gate no version can pass, a split, and a shadow.
    const gated = await run('models', 'alias', 'tiny', 'production', '1', '--gate-metric', 'accuracy', '--gate-dataset', datasetId, '--gate-min', '1.01');
    expect(gated.code).toBe(1);
    expect(gated.err).toMatch(/^error GATE_FAILED: version 1 has accuracy /);
    const forced = await run('models', 'alias', 'tiny', 'production', '1', '--gate-metric', 'accuracy', '--gate-dataset', datasetId, '--gate-min', '1.01', '--force');
    expect(forced).toMatchObject({ code: 0, err: 'tiny@production → version 1, gate forced\n' });
    expect(await run('models', 'alias', 'tiny', 'canary', '--split', '1=90,2=10')).toMatchObject({ code: 0, err: 'tiny@canary → version 1 (90), version 2 (10)\n' });
    expect(await run('models', 'alias', 'tiny', 'shadowed', '2', '--shadow', '1')).toMatchObject({ code: 0, err: 'tiny@shadowed → version 2, shadow 1\n' });
    const shadow = await run('models', 'shadow', 'tiny', 'shadowed', '--json');
    expect(JSON.parse(shadow.out)).toMatchObject({ model: 'tiny', alias: 'shadowed', shadow: 1 });
  });
});

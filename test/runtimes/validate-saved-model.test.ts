import { describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../../src/data/safetensors.ts';
import { Model } from '../../src/engine/model.ts';
import { encodeWeights } from '../../src/engine/saved-model.ts';
import { validateSavedModelInChild } from '../../src/runtimes/onnx/validate-saved-model.ts';

const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const spec = {
  input: { shape: [4] },
  layers: [{ type: 'dense', units: 8, activation: 'tanh' }, { type: 'dense', units: 3, activation: 'softmax' }],
  compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
};

describe('validateSavedModelInChild', () => {
  it('builds the network from spec and weights in a child process and reports its parameter count', async () => {
    await expect(validateSavedModelInChild(text(spec), encodeWeights(Model.fromSpec(spec)))).resolves.toBe(4 * 8 + 8 + 8 * 3 + 3);
  });

  it("passes the engine's own errors through: weights that do not fit, a spec that is not one", async () => {
    const wrong = encodeSafetensors({ 'dense_1.kernel': { dtype: 'F32', shape: [8, 4], data: new Float32Array(32) } });
    await expect(validateSavedModelInChild(text(spec), wrong)).rejects.toMatchObject({
      code: 'INVALID_WEIGHTS',
      message: 'tensor "dense_1.kernel" has shape [8, 4], the model expects [4, 8]',
    });
    await expect(validateSavedModelInChild(text({ ...spec, layers: [] }), wrong)).rejects.toMatchObject({ code: 'INVALID_SPEC', status: 400 });
  });

  it.skipIf(process.platform !== 'linux')('kills a build above the memory limit and refuses the model with INVALID_MODEL_FILE', async () => {
    const large = { ...spec, input: { shape: [2000] }, layers: [{ type: 'dense', units: 2000 }, { type: 'dense', units: 3 }] };
    const weights = encodeSafetensors({
      'dense_1.kernel': { dtype: 'F32', shape: [2000, 2000], data: new Float32Array(4_000_000) },
      'dense_1.bias': { dtype: 'F32', shape: [2000], data: new Float32Array(2000) },
      'dense_2.kernel': { dtype: 'F32', shape: [2000, 3], data: new Float32Array(6000) },
      'dense_2.bias': { dtype: 'F32', shape: [3], data: new Float32Array(3) },
    });
    await expect(validateSavedModelInChild(text(large), weights, { memoryLimitBytes: 128 * 1024 ** 2, memoryPollMs: 10 })).rejects.toMatchObject({
      code: 'INVALID_MODEL_FILE',
      message: 'the network could not be built from spec.json and model.safetensors: building it exceeded the memory limit of 128 MiB',
    });
  });
});

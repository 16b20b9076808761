import { describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../../src/data/safetensors.ts';
import { checkParameterLimit, checkSavedModelHeaders, checkWeightsHeader, formatCount, layerParameterCounts } from '../../src/engine/parameters.ts';
import { planModel } from '../../src/engine/plan.ts';
import { resolveSpec } from '../../src/engine/spec.ts';
import { Model } from '../../src/engine/model.ts';
import { encodeWeights } from '../../src/engine/saved-model.ts';

const compile = { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' };
const plan = (document: unknown) => planModel(resolveSpec(document));

const cnn = {
  input: { shape: [28, 28, 1] },
  layers: [
    { type: 'conv2d', filters: 8, kernelSize: 3, activation: 'relu' },
    { type: 'maxPooling2d' },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.2 },
    { type: 'dense', units: 10, activation: 'softmax', useBias: false },
  ],
  compile,
};

describe('layerParameterCounts', () => {
  it('counts every layer from shapes: conv kernel + bias, nothing for pooling/flatten/dropout, dense without bias', () => {
    const counts = layerParameterCounts(plan(cnn));
    expect(counts.map((layer) => [layer.layerName, layer.parameters])).toEqual([
      ['conv2d_1', 8 * 1 * 3 * 3 + 8],
      ['max_pooling2d_1', 0],
      ['flatten_1', 0],
      ['dropout_1', 0],
      // 28 → 26 (valid 3×3) → 13 (2×2 pool): 13·13·8 inputs.
      ['dense_1', 13 * 13 * 8 * 10],
    ]);
    expect(counts[0]!.tensors).toEqual([
      { name: 'conv2d_1.kernel', shape: [8, 1, 3, 3] },
      { name: 'conv2d_1.bias', shape: [8] },
    ]);
  });

  it('agrees with the weights a built model actually allocates', () => {
    const model = Model.fromSpec(cnn);
    const allocated = [...model.parameters.values()].reduce((total, values) => total + values.length, 0);
    expect(layerParameterCounts(model.plan).reduce((total, layer) => total + layer.parameters, 0)).toBe(allocated);
  });

  it('handles sizes no machine could allocate, without allocating', () => {
    const counts = layerParameterCounts(plan({ input: { shape: [1e6] }, layers: [{ type: 'dense', units: 1e9 }], compile: { ...compile, loss: 'meanSquaredError' } }));
    expect(counts[0]!.parameters).toBe(1e15 + 1e9);
  });
});

describe('checkParameterLimit', () => {
  const huge = {
    input: { shape: [784] },
    layers: [{ type: 'dense', units: 64 }, { type: 'dense', name: 'wide', units: 1e7, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
    compile,
  };

  it('passes a spec at the limit and refuses one parameter more', () => {
    const small = plan({ input: { shape: [4] }, layers: [{ type: 'dense', units: 3 }], compile });
    expect(() => checkParameterLimit(small, 15)).not.toThrow();
    expect(() => checkParameterLimit(small, 14)).toThrow(expect.objectContaining({ code: 'TOO_MANY_PARAMETERS', status: 400 }));
  });

  it('names the largest layer, which is the one to shrink, with its shapes', () => {
    let caught: unknown;
    try {
      checkParameterLimit(plan(huge), 50_000_000);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({
      code: 'TOO_MANY_PARAMETERS',
      message:
        "the model has 750,050,250 parameters, more than this server's limit of 50,000,000 (maxModelParameters); layer 1 (wide, dense) alone has 650,000,000: kernel [64, 10000000], bias [10000000]",
      details: {
        parameters: 784 * 64 + 64 + 64 * 1e7 + 1e7 + 1e7 * 10 + 10,
        limit: 50_000_000,
        layerIndex: 1,
        layerName: 'wide',
        layers: [
          { layerIndex: 0, layerName: 'dense_1', parameters: 50_240 },
          { layerIndex: 1, layerName: 'wide', parameters: 650_000_000 },
          { layerIndex: 2, layerName: 'dense_2', parameters: 100_000_010 },
        ],
      },
    });
  });

  it('formats counts beyond exact integers without inventing digits', () => {
    expect(formatCount(7_850_000_000)).toBe('7,850,000,000');
    expect(formatCount(1e17 + 3)).toBe('1.000e+17');
    expect(formatCount(Number.POSITIVE_INFINITY)).toBe('more than 1e308');
  });
});

describe('checkWeightsHeader / checkSavedModelHeaders', () => {
  const spec = { input: { shape: [4] }, layers: [{ type: 'dense', units: 3 }], compile };
  const header = (entries: Record<string, { dtype: string; shape: number[] }>) => new Map(Object.entries(entries));

  it('accepts F32 and F64 tensors of exactly the planned shapes, ignoring extra tensors', () => {
    expect(() => checkWeightsHeader(plan(spec), header({ 'dense_1.kernel': { dtype: 'F32', shape: [4, 3] }, 'dense_1.bias': { dtype: 'F64', shape: [3] }, extra: { dtype: 'I32', shape: [1] } }))).not.toThrow();
  });

  it.each([
    ['a missing tensor', { 'dense_1.kernel': { dtype: 'F32', shape: [4, 3] } }, 'weights have no tensor "dense_1.bias" (expected shape [3])'],
    ['a transposed kernel', { 'dense_1.kernel': { dtype: 'F32', shape: [3, 4] }, 'dense_1.bias': { dtype: 'F32', shape: [3] } }, 'tensor "dense_1.kernel" has shape [3, 4], the model expects [4, 3]'],
    ['an extra dimension', { 'dense_1.kernel': { dtype: 'F32', shape: [4, 3] }, 'dense_1.bias': { dtype: 'F32', shape: [1, 3] } }, 'tensor "dense_1.bias" has shape [1, 3], the model expects [3]'],
    ['integer weights', { 'dense_1.kernel': { dtype: 'I32', shape: [4, 3] }, 'dense_1.bias': { dtype: 'F32', shape: [3] } }, 'tensor "dense_1.kernel" has dtype I32; weights must be F32 (or F64)'],
  ])('refuses %s with INVALID_WEIGHTS', (_label, entries, message) => {
    expect(() => checkWeightsHeader(plan(spec), header(entries))).toThrow(expect.objectContaining({ code: 'INVALID_WEIGHTS', message }));
  });

  it('reads only the safetensors header: a file a real model saved passes, and the spec is returned planned', () => {
    const model = Model.fromSpec(spec);
    expect(checkSavedModelHeaders(spec, encodeWeights(model), 1000).parameterCount).toBe(15);
  });

  it('checks the parameter limit before the weights, and the spec before both', () => {
    const weights = encodeSafetensors({ 'dense_1.kernel': { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    expect(() => checkSavedModelHeaders(spec, weights, 10)).toThrow(expect.objectContaining({ code: 'TOO_MANY_PARAMETERS' }));
    expect(() => checkSavedModelHeaders(spec, weights, 1000)).toThrow(expect.objectContaining({ code: 'INVALID_WEIGHTS' }));
    expect(() => checkSavedModelHeaders({ ...spec, layers: [{ type: 'dense', units: 0 }] }, weights, 10)).toThrow(expect.objectContaining({ code: 'INVALID_SPEC' }));
    expect(() => checkSavedModelHeaders(spec, new Uint8Array(4), 1000)).toThrow(expect.objectContaining({ code: 'INVALID_WEIGHTS', message: expect.stringMatching(/too small/) }));
  });
});

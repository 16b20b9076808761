import { describe, expect, it } from 'vitest';
import { AiaasError } from '../../src/errors.ts';
import { Model } from '../../src/engine/model.ts';
import { planModel } from '../../src/engine/plan.ts';
import { resolveSpec } from '../../src/engine/spec.ts';

const base = {
  name: 'mnist-mlp',
  input: { shape: [28, 28] },
  layers: [
    { type: 'flatten' },
    { type: 'dense', units: 128, activation: 'relu' },
    { type: 'dropout', rate: 0.2 },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.001 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

function specErrorOf(document: unknown): AiaasError {
  try {
    planModel(resolveSpec(document));
  } catch (error) {
    if (AiaasError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the spec to be rejected');
}

describe('model spec', () => {
  it('generates Keras-style layer names and parameter shapes', () => {
    const plan = planModel(resolveSpec(base));
    expect(plan.layers.map((layer) => layer.layer.name)).toEqual(['flatten_1', 'dense_1', 'dropout_1', 'dense_2']);
    expect(plan.parameters.map((parameter) => [parameter.name, parameter.shape])).toEqual([
      ['dense_1.kernel', [784, 128]],
      ['dense_1.bias', [128]],
      ['dense_2.kernel', [128, 10]],
      ['dense_2.bias', [10]],
    ]);
    expect(plan.parameterCount).toBe(784 * 128 + 128 + 128 * 10 + 10);
  });

  it('infers convolution and pooling shapes (same/valid, strides)', () => {
    const plan = planModel(
      resolveSpec({
        input: { shape: [28, 28, 1] },
        layers: [
          { type: 'conv2d', filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' },
          { type: 'maxPooling2d', poolSize: 2 },
          { type: 'conv2d', filters: 16, kernelSize: [3, 3], strides: 2, activation: 'relu' },
          { type: 'flatten' },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
        compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
      }),
    );
    expect(plan.layers.map((layer) => layer.outputShape)).toEqual([[28, 28, 8], [14, 14, 8], [6, 6, 16], [576], [10]]);
    expect(plan.parameters[0]).toMatchObject({ name: 'conv2d_1.kernel', shape: [8, 1, 3, 3] });
  });

  it('names the layer index, name and field of a bad value', () => {
    const error = specErrorOf({ ...base, layers: [{ type: 'flatten' }, { type: 'dense', name: 'hidden', units: -3 }] });
    expect(error.code).toBe('INVALID_SPEC');
    expect(error.status).toBe(400);
    expect(error.message).toBe('layer 1 (hidden) field "units": expected a positive integer, got -3');
    expect(error.details).toMatchObject({ layerIndex: 1, layerName: 'hidden', field: 'units' });
  });

  it('reports a shape mismatch found at build time with expected vs actual', () => {
    const error = specErrorOf({ ...base, layers: [{ type: 'dense', units: 10, activation: 'softmax' }] });
    expect(error.message).toContain('layer 0 (dense_1)');
    expect(error.message).toContain('add a flatten layer');
    expect(error.message).toContain('input shape [28, 28]');
  });

  it('rejects unknown layer types, unknown fields and unknown losses', () => {
    expect(specErrorOf({ ...base, layers: [{ type: 'lstm' }] }).message).toMatch(/layer 0 .*field "type": expected one of dense, dropout/);
    expect(specErrorOf({ ...base, layers: [{ type: 'flatten', unit: 3 }] }).message).toMatch(/unknown field "unit"/);
    expect(specErrorOf({ ...base, compile: { ...base.compile, loss: 'hinge' } }).message).toMatch(/compile\.loss: expected one of/);
    expect(specErrorOf({ ...base, compile: { ...base.compile, optimizer: { type: 'adam', beta1: 2 } } }).message).toMatch(/beta1/);
    expect(specErrorOf({ ...base, layers: [{ type: 'dropout', rate: 1 }] }).message).toMatch(/rate/);
    expect(specErrorOf('not an object').message).toMatch(/expected a JSON object/);
  });

  it('checks the loss against the output (softmax output with binary cross-entropy)', () => {
    const error = specErrorOf({ ...base, compile: { optimizer: 'adam', loss: 'binaryCrossentropy' } });
    expect(error.message).toMatch(/sigmoid/);
  });

  it('Model.fromSpec validates before building', () => {
    expect(() => Model.fromSpec({ ...base, layers: [] })).toThrow(/layers/);
  });
});

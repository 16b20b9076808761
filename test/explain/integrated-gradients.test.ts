import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exportInputGradientModel, inputGradientNames } from '../../src/engine/input-gradients.ts';
import { Model } from '../../src/engine/model.ts';
import { encodeOnnxModel } from '../../src/onnx/model.ts';
import { integratedGradients, type GradientRunner } from '../../src/explain/integrated-gradients.ts';
import { sample } from '../engine/gradient-check.ts';

const mlp = {
  name: 'mlp',
  input: { shape: [6] },
  layers: [
    { type: 'dense', units: 12, activation: 'tanh' },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
  compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
};

// Preprocessing in the graph (input.scale / offset): attributions must flow through it to the raw input.
const scaledMlp = { ...mlp, name: 'scaled-mlp', input: { shape: [6], scale: 0.5, offset: 0.25 } };

const cnn = {
  name: 'cnn',
  input: { shape: [8, 8, 1] },
  layers: [
    { type: 'conv2d', filters: 3, kernelSize: 3, activation: 'relu', padding: 'same' },
    { type: 'maxPooling2d', poolSize: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' },
};

async function runnerFor(model: Model): Promise<GradientRunner> {
  const session = await ort.InferenceSession.create(encodeOnnxModel(exportInputGradientModel(model.plan, model.parameters)));
  const inputShape = model.plan.spec.inputShape;
  const outputs = model.plan.outputShape;
  return async (input, rows, weights) => {
    const result = await session.run({
      [inputGradientNames.input]: new ort.Tensor('float32', input, [rows, ...inputShape]),
      [inputGradientNames.targetWeights]: new ort.Tensor('float32', weights, [rows, ...outputs]),
    });
    return { output: result[inputGradientNames.output]!.data as Float32Array, gradient: result[inputGradientNames.gradient]!.data as Float32Array };
  };
}

describe('the input-gradient graph', () => {
  it('matches central finite differences of the prediction', async () => {
    const model = Model.fromSpec(mlp, { seed: 4 });
    const run = await runnerFor(model);
    const x = sample(6, 17, 1);
    const weights = Float32Array.of(0, 0, 1, 0);
    const { output, gradient } = await run(x.slice(), 1, weights);
    expect(output[2]).toBeCloseTo((await model.predict(x.slice()))[2]!, 5);
    const epsilon = 1e-2;
    for (let index = 0; index < 6; index++) {
      const up = x.slice();
      const down = x.slice();
      up[index]! += epsilon;
      down[index]! -= epsilon;
      const numeric = ((await model.predict(up))[2]! - (await model.predict(down))[2]!) / (2 * epsilon);
      expect(gradient[index]).toBeCloseTo(numeric, 3);
    }
  });

  it('keeps rows apart: each row gets the gradient of its own target', async () => {
    const model = Model.fromSpec(mlp, { seed: 4 });
    const run = await runnerFor(model);
    const x = sample(12, 3, 1);
    const both = await run(x.slice(), 2, Float32Array.of(1, 0, 0, 0, 0, 0, 0, 1));
    const first = await run(x.slice(0, 6), 1, Float32Array.of(1, 0, 0, 0));
    const second = await run(x.slice(6), 1, Float32Array.of(0, 0, 0, 1));
    for (let index = 0; index < 6; index++) {
      expect(both.gradient[index]).toBeCloseTo(first.gradient[index]!, 6);
      expect(both.gradient[6 + index]).toBeCloseTo(second.gradient[index]!, 6);
    }
  });
});

describe('integrated gradients', () => {
  for (const [name, spec, features] of [['MLP', mlp, 6], ['MLP with input scale and offset', scaledMlp, 6], ['CNN', cnn, 64]] as const) {
    for (const rule of ['trapezoid', 'midpoint'] as const) {
      it(`are complete on the ${name} at 128 steps (${rule}): Σ attributions = F(x) − F(0) within 2 %`, async () => {
        const model = Model.fromSpec(spec, { seed: 7 });
        const run = await runnerFor(model);
        const input = sample(features, 29, 2);
        const classes = model.plan.outputShape[0]!;
        const prediction = await model.predict(input.slice());
        const target = prediction.indexOf(Math.max(...prediction));
        const targetWeights = new Float32Array(classes);
        targetWeights[target] = 1;
        const result = await integratedGradients({ input, baseline: new Float32Array(features), targetWeights, steps: 128, rule, rowsPerRun: 32, run });
        const baselineScore = (await model.predict(new Float32Array(features)))[target]!;
        expect(result.inputScore).toBeCloseTo(prediction[target]!, 5);
        expect(result.baselineScore).toBeCloseTo(baselineScore, 5);
        const sum = result.attributions.reduce((total, value) => total + value, 0);
        const difference = prediction[target]! - baselineScore;
        expect(Math.abs(difference)).toBeGreaterThan(0.01);
        expect(Math.abs(sum - difference)).toBeLessThanOrEqual(0.02 * Math.abs(difference));
        expect(result.delta).toBeCloseTo(sum - difference, 6);
      });
    }
  }
});

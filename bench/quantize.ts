/**
 * npm run bench:quantize — the goal on the Fashion-MNIST MLP (Flatten, Dense 128 relu,
 * Dropout 0.2, Dense 10 softmax; Adam; 10 epochs, batch 128, seed 42, as examples/fashion-mnist):
 * trains it, quantizes it with dynamic-int8, and prints JSON with the size ratio, the accuracy of
 * both on the 10,000 test images, the largest output difference on 1,000 of them, and p50 latency of
 * both at batch 1, 32 and 256 (alternating rounds, one thread each, measured in this same run).
 * BENCH_MODEL=DIR (a saved model, as `aiaas train --out` writes it) skips the training. Needs Debian's
 * dataset-fashion-mnist.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIdxPair } from '../src/data/idx.ts';
import { Model } from '../src/engine/model.ts';
import { resolveSpec, scalesIdxPixelsAtLoad } from '../src/engine/spec.ts';
import { compareModels } from '../src/jobs/quantize-compare.ts';
import { quantizeDynamicInt8 } from '../src/onnx/quantize.ts';

const directory = '/usr/share/datasets/fashion-mnist';
const file = (name: string) => join(directory, name);
if (!existsSync(file('t10k-images-idx3-ubyte.gz'))) {
  console.error(`${directory} is missing: apt-get install dataset-fashion-mnist`);
  process.exit(1);
}
const savedModel = process.env.BENCH_MODEL;
const spec = JSON.parse(readFileSync(savedModel === undefined ? new URL('../examples/fashion-mnist/mlp.json', import.meta.url) : join(savedModel, 'spec.json'), 'utf8')) as unknown;
// Pixels as the model's training saw them: raw when its graph scales them (input preprocessing).
const scale = scalesIdxPixelsAtLoad(resolveSpec(spec));
const test = loadIdxPair(readFileSync(file('t10k-images-idx3-ubyte.gz')), readFileSync(file('t10k-labels-idx1-ubyte.gz')), { scale });

let floatOnnx: Uint8Array;
if (savedModel !== undefined) floatOnnx = readFileSync(join(savedModel, 'model.onnx'));
else {
  const train = loadIdxPair(readFileSync(file('train-images-idx3-ubyte.gz')), readFileSync(file('train-labels-idx1-ubyte.gz')), { scale });
  const model = Model.fromSpec(spec, { seed: 42 });
  await model.fit(train, { epochs: 10, batchSize: 128, shuffle: true, seed: 42 });
  floatOnnx = model.exportOnnx();
  await model.dispose();
}

const quantized = quantizeDynamicInt8(floatOnnx);
const comparison = await compareModels(floatOnnx, quantized.bytes, {
  signature: { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 28, 28] }], outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 10] }] },
  evaluation: test,
  sampleItems: 1000,
  latencyBatches: [1, 32, 256],
  latencyRounds: 300,
});
const goal = {
  sizeRatioAtMost: 0.3,
  accuracyDropAtMostPercentagePoints: 0.5,
  latencyRatioAtMost: 1,
};
const sizeRatio = quantized.bytes.byteLength / floatOnnx.byteLength;
console.log(
  JSON.stringify(
    {
      floatBytes: floatOnnx.byteLength,
      quantizedBytes: quantized.bytes.byteLength,
      sizeRatio: Math.round(sizeRatio * 1e4) / 1e4,
      ...comparison,
      quantizedNodes: quantized.quantizedNodes,
      floatNodes: quantized.floatNodes,
      goal,
      goalMet: {
        size: sizeRatio <= goal.sizeRatioAtMost,
        accuracy: comparison.accuracy !== null && -comparison.accuracy.deltaPercentagePoints <= goal.accuracyDropAtMostPercentagePoints,
        latency: comparison.latency.every((entry) => entry.ratio <= goal.latencyRatioAtMost),
      },
    },
    null,
    2,
  ),
);

/**
 * npm run bench:train — trains the article's MLP (Flatten, Dense 128 relu, Dropout 0.2, Dense 10
 * softmax; Adam; batch 128; shuffled) on 60,000 × 784 inputs for 3 epochs and prints JSON:
 * samples/s, peak RSS, achieved GFLOP/s, the machine's ORT GEMM ceiling, and PyTorch's samples/s
 * on the same workload (best of 1 and 2 threads) when `/usr/bin/python3 -c 'import torch'` works.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { Dataset } from '../src/data/dataset.ts';
import { loadIdxPair } from '../src/data/idx.ts';
import { Model } from '../src/engine/model.ts';
import { Random } from '../src/engine/random.ts';
import { resolveSpec, scalesIdxPixelsAtLoad } from '../src/engine/spec.ts';

const epochs = Number(process.env.BENCH_EPOCHS ?? 3);
const fashionDirectory = '/usr/share/datasets/fashion-mnist';
const fashionImages = join(fashionDirectory, 'train-images-idx3-ubyte.gz');
const fashionLabels = join(fashionDirectory, 'train-labels-idx1-ubyte.gz');
const spec = JSON.parse(readFileSync(new URL('../examples/mnist-mlp/spec.json', import.meta.url), 'utf8')) as unknown;

function syntheticData(): Dataset {
  const random = new Random(1);
  const count = 60_000;
  const features = new Float32Array(count * 784);
  random.fillUniform(features);
  const labels = Float32Array.from({ length: count }, () => random.nextUint32() % 10);
  return { features, featureShape: [28, 28], labels, labelShape: [], count };
}

const fashion = existsSync(fashionImages) && existsSync(fashionLabels);
// The spec scales pixels in its graph (input.scale), so the IDX pixels are loaded raw, as a job loads them.
const data = fashion
  ? loadIdxPair(readFileSync(fashionImages), readFileSync(fashionLabels), { scale: scalesIdxPixelsAtLoad(resolveSpec(spec)) })
  : syntheticData();

// Matrix-multiply FLOPs per sample of one train step: forward (784·128 + 128·10 MACs), the two
// weight gradients, and the hidden-layer input gradient (none for the network input).
const flopsPerSample = 2 * (784 * 128 + 128 * 10) + 2 * (784 * 128 + 128 * 10) + 2 * (128 * 10);

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
const model = Model.fromSpec(spec, { seed: 1 });
const result = await model.fit(data, { epochs, batchSize: 128, shuffle: true, seed: 1 });
// Steady-state speed: the first epoch includes session creation and warm-up.
const steady = result.history.slice(1);
const steadySamplesPerSecond = steady.length > 0 ? steady.reduce((sum, event) => sum + event.samplesPerSecond, 0) / steady.length : result.samplesPerSecond;
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
await model.dispose();

async function gemmGflops(m: number, k: number, n: number, runs: number): Promise<number> {
  const { GraphBuilder } = await import('../src/engine/graph.ts');
  const { createSession } = await import('../src/engine/session.ts');
  const graph = new GraphBuilder('gemm');
  const a = graph.input('a', [m, k]);
  const b = graph.input('b', [k, n]);
  graph.output(graph.node1('MatMul', [a, b], [m, n]), 'c');
  const session = await createSession(graph.toModel());
  const feeds = { a: new ort.Tensor('float32', new Float32Array(m * k).fill(0.5), [m, k]), b: new ort.Tensor('float32', new Float32Array(k * n).fill(0.25), [k, n]) };
  for (let index = 0; index < 3; index++) await session.run(feeds);
  const start = performance.now();
  for (let index = 0; index < runs; index++) await session.run(feeds);
  const seconds = (performance.now() - start) / 1000;
  await session.release();
  return (2 * m * k * n * runs) / seconds / 1e9;
}

const gemmLarge = await gemmGflops(1024, 1024, 1024, 20);
const gemmLayer = await gemmGflops(128, 784, 128, 2000);

let torch: { best: number; runs: unknown[] } | { unavailable: string };
try {
  execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  const script = new URL('./torch_mlp.py', import.meta.url).pathname;
  const args = fashion ? [fashionImages, fashionLabels] : [];
  const runs = [1, 2].map((threads) => {
    const output = execFileSync('/usr/bin/python3', [script, String(threads), String(epochs), ...args], { encoding: 'utf8' });
    return JSON.parse(output.trim().split('\n').at(-1)!) as { threads: number; samplesPerSecond: number };
  });
  torch = { best: Math.max(...runs.map((run) => run.samplesPerSecond)), runs };
} catch (error) {
  torch = { unavailable: `PyTorch baseline not run: ${(error as Error).message.split('\n')[0]}` };
}

const report = {
  benchmark: 'train-mlp',
  data: fashion ? 'fashion-mnist (60,000 × 784)' : 'synthetic seeded (60,000 × 784)',
  epochs,
  batchSize: 128,
  samplesPerSecond: Math.round(steadySamplesPerSecond),
  samplesPerSecondAllEpochs: Math.round(result.samplesPerSecond),
  finalLoss: result.loss,
  trainAccuracy: result.metrics.accuracy,
  peakRssMiB: Math.round(peakRss / 2 ** 20),
  achievedGflops: Number(((steadySamplesPerSecond * flopsPerSample) / 1e9).toFixed(2)),
  ortGemmGflops: { '1024x1024x1024': Number(gemmLarge.toFixed(1)), '128x784x128': Number(gemmLayer.toFixed(1)) },
  pytorch: torch,
  ...('best' in torch ? { ratioToPytorch: Number((steadySamplesPerSecond / torch.best).toFixed(2)) } : {}),
};
console.log(JSON.stringify(report, null, 2));

/**
 * npm run bench:train — trains the article's MLP (Flatten, Dense 128 relu, Dropout 0.2, Dense 10
 * softmax; Adam; batch 128; shuffled; loss and accuracy summed every step) on 60,000 × 784 inputs
 * for BENCH_EPOCHS (3) epochs, at each thread count of BENCH_THREADS (default "1,<cores>"), and
 * prints JSON: per thread count, aiaas's and PyTorch's samples/s over the same epochs (2..N, and all
 * N), peak RSS, achieved GFLOP/s, and the machine's ORT GEMM ceiling. PyTorch runs when
 * `/usr/bin/python3 -c 'import torch'` works; otherwise the report says why it is missing.
 * bench/README.md says what each figure covers.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
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

const threadCounts = [...new Set((process.env.BENCH_THREADS ?? `1,${availableParallelism()}`).split(',').map(Number))].filter((count) => Number.isInteger(count) && count >= 1);

/** Samples/s over the epochs from `first` (1-based) on: total samples over total seconds. */
function rate(epochSeconds: readonly number[], samplesPerEpoch: number, first: number): number {
  const counted = epochSeconds.slice(first - 1);
  const seconds = counted.reduce((sum, value) => sum + value, 0);
  return counted.length === 0 || seconds === 0 ? Number.NaN : (counted.length * samplesPerEpoch) / seconds;
}

interface RunFigures {
  /** Epochs 2..N: steady state, without session creation and warm-up in epoch 1. */
  samplesPerSecond: number;
  samplesPerSecondAllEpochs: number;
  epochSeconds: number[];
  finalLoss: number;
  trainAccuracy: number | undefined;
}

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
const aiaasRuns = new Map<number, RunFigures>();
for (const threads of threadCounts) {
  const model = Model.fromSpec(spec, { seed: 1, intraOpThreads: threads });
  const result = await model.fit(data, { epochs, batchSize: 128, shuffle: true, seed: 1 });
  // `seconds` of an epoch covers its steps only (the same span PyTorch's per-epoch timer covers).
  const epochSeconds = result.history.map((event) => event.seconds);
  aiaasRuns.set(threads, {
    samplesPerSecond: Math.round(rate(epochSeconds, data.count, 2)),
    samplesPerSecondAllEpochs: Math.round(rate(epochSeconds, data.count, 1)),
    epochSeconds: epochSeconds.map((value) => Number(value.toFixed(3))),
    finalLoss: result.loss,
    trainAccuracy: result.metrics.accuracy,
  });
  await model.dispose();
}
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);

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

const torchRuns = new Map<number, RunFigures>();
let torchMissing: string | undefined;
try {
  execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  const script = new URL('./torch_mlp.py', import.meta.url).pathname;
  const args = fashion ? [fashionImages, fashionLabels] : [];
  for (const threads of threadCounts) {
    const output = execFileSync('/usr/bin/python3', [script, String(threads), String(epochs), ...args], { encoding: 'utf8' });
    const run = JSON.parse(output.trim().split('\n').at(-1)!) as { threads: number; epochSeconds: number[]; samplesPerEpoch: number; finalLoss: number; trainAccuracy: number };
    torchRuns.set(threads, {
      samplesPerSecond: Math.round(rate(run.epochSeconds, run.samplesPerEpoch, 2)),
      samplesPerSecondAllEpochs: Math.round(rate(run.epochSeconds, run.samplesPerEpoch, 1)),
      epochSeconds: run.epochSeconds.map((value) => Number(value.toFixed(3))),
      finalLoss: run.finalLoss,
      trainAccuracy: run.trainAccuracy,
    });
  }
} catch (error) {
  torchMissing = `PyTorch baseline not run (/usr/bin/python3 with torch; Debian: apt-get install python3-torch libopenblas0-pthread): ${(error as Error).message.split('\n')[0]}`;
}

const steadyBest = Math.max(...[...aiaasRuns.values()].map((run) => run.samplesPerSecond));
const report = {
  benchmark: 'train-mlp',
  data: fashion ? 'fashion-mnist (60,000 × 784)' : 'synthetic seeded (60,000 × 784)',
  epochs,
  batchSize: 128,
  timed: 'samplesPerSecond: epochs 2..N (both frameworks, each epoch timed around its training steps); samplesPerSecondAllEpochs: epochs 1..N',
  perStep: 'both compute the batch loss and accuracy every step',
  threads: threadCounts.map((threads) => {
    const aiaas = aiaasRuns.get(threads)!;
    const pytorch = torchRuns.get(threads);
    return {
      threads,
      aiaas,
      pytorch: pytorch ?? null,
      ratioToPytorch: pytorch === undefined ? null : Number((aiaas.samplesPerSecond / pytorch.samplesPerSecond).toFixed(2)),
    };
  }),
  ...(torchMissing === undefined ? {} : { pytorchMissing: torchMissing }),
  peakRssMiB: Math.round(peakRss / 2 ** 20),
  achievedGflops: Number(((steadyBest * flopsPerSample) / 1e9).toFixed(2)),
  ortGemmGflops: { '1024x1024x1024': Number(gemmLarge.toFixed(1)), '128x784x128': Number(gemmLayer.toFixed(1)) },
};
console.log(JSON.stringify(report, null, 2));

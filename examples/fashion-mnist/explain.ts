/**
 * Explains one Fashion-MNIST test image with a trained saved model, through the server's own
 * routes (an in-process server on a scratch data directory): integrated gradients (completeness
 * error), occlusion, and the heatmap PNG.
 *
 *   npx tsx examples/fashion-mnist/explain.ts SAVED_MODEL_DIR TEST_IMAGES.idx.gz TEST_LABELS.idx.gz [INDEX] [OUT.png]
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.ts';
import { loadDatasetFile } from '../../src/data/load.ts';
import { buildApp } from '../../src/http/app.ts';
import { packTar } from '../../src/sdk/tar.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { createServerContext } from '../../src/startup/context.ts';

const classes = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const [modelDir, imagesPath, labelsPath, indexText = '0', pngPath = 'explanation.png'] = process.argv.slice(2);
if (modelDir === undefined || imagesPath === undefined || labelsPath === undefined) {
  console.error('usage: explain.ts SAVED_MODEL_DIR TEST_IMAGES TEST_LABELS [INDEX] [OUT.png]');
  process.exit(2);
}
const index = Number(indexText);
const data = await loadDatasetFile(imagesPath, { labelsPath });
const image = Array.from(data.features.subarray(index * 784, (index + 1) * 784));
const label = data.labels[index]!;

const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-explain-'));
const config = loadConfig({ flags: { dataDir, masterKey: generateMasterKey(), logLevel: 'silent', warmup: false }, env: {} });
const context = await createServerContext(config, { logger: pino({ level: 'silent' }) });
const app = await buildApp(context);
const headers = { authorization: `Bearer ${context.bootstrap.generatedKey!}` };
try {
  const entries = await Promise.all((await readdir(modelDir)).map(async (name) => ({ path: name, bytes: new Uint8Array(await readFile(join(modelDir, name))) })));
  await app.inject({ method: 'POST', url: '/api/v1/models', headers, payload: { name: 'fashion' } });
  const pushed = await app.inject({ method: 'POST', url: '/api/v1/models/fashion/versions', headers: { ...headers, 'content-type': 'application/x-tar' }, payload: Buffer.from(packTar(entries)) });
  if (pushed.statusCode !== 201) throw new Error(pushed.body);
  const input = { name: 'input', datatype: 'FP32', shape: [1, 28, 28], data: image };
  const explain = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v2/models/fashion/explain', headers, payload: { inputs: [input], ...body } });

  const started = performance.now();
  const ig = (await explain({ steps: 128 })).json();
  const igSeconds = (performance.now() - started) / 1000;
  const attributions = ig.outputs[0].data as number[];
  const { targets, scores, baseline_scores: baselineScores, deltas } = ig.explanation;
  const sum = attributions.reduce((total, value) => total + value, 0);
  const difference = scores[0] - baselineScores[0];
  // Where the attribution sits: on the garment (pixels > 0.1) or the background, and which rows.
  let onObject = 0;
  let total = 0;
  const rowMass = new Array<number>(28).fill(0);
  const columnMass = new Array<number>(28).fill(0);
  attributions.forEach((value, pixel) => {
    total += Math.abs(value);
    if (image[pixel]! > 0.1) onObject += Math.abs(value);
    rowMass[Math.floor(pixel / 28)]! += Math.max(0, value);
    columnMass[pixel % 28]! += Math.max(0, value);
  });
  const positive = rowMass.reduce((a, b) => a + b, 0);
  const centroid = (mass: number[]) => mass.reduce((acc, value, position) => acc + value * position, 0) / positive;
  const band = (from: number, to: number) => rowMass.slice(from, to).reduce((a, b) => a + b, 0) / positive;
  const top = [...attributions.keys()].sort((a, b) => attributions[b]! - attributions[a]!).slice(0, 20).map((pixel) => [Math.floor(pixel / 28), pixel % 28]);

  const occlusion = (await explain({ method: 'occlusion', window: 4 })).json();
  const occluded = occlusion.outputs[0].data as number[];
  const strongest = [...occluded.keys()].reduce((best, pixel) => (occluded[pixel]! > occluded[best]! ? pixel : best), 0);

  const png = await explain({ format: 'png' });
  await writeFile(pngPath, png.rawPayload);
  console.log(JSON.stringify({
    image: index,
    label: classes[label],
    predicted: classes[targets[0]],
    score: scores[0],
    baselineScore: baselineScores[0],
    attributionSum: sum,
    completenessError: deltas[0],
    completenessErrorRelative: Math.abs(deltas[0] / difference),
    integratedGradientsSeconds: igSeconds,
    shareOfAbsoluteAttributionOnGarmentPixels: onObject / total,
    garmentPixelShare: image.filter((value) => value > 0.1).length / 784,
    positiveAttributionCentroid: { row: centroid(rowMass), column: centroid(columnMass) },
    positiveAttributionByRows: { '0-9': band(0, 10), '10-18': band(10, 19), '19-27': band(19, 28) },
    top20PositivePixels: top,
    occlusionStrongestWindowAt: { row: Math.floor(strongest / 28), column: strongest % 28, drop: occluded[strongest] },
    png: { path: pngPath, bytes: png.rawPayload.length, contentType: png.headers['content-type'] },
  }, null, 2));
} finally {
  await app.close();
  await context.close();
  await rm(dataDir, { recursive: true, force: true });
}

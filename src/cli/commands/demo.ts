import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config.ts';
import { encodeIdx } from '../../data/idx.ts';
import { loadMnistPackage } from '../../data/mnist-package.ts';
import { AiaasClient } from '../../sdk/client.ts';
import { AiaasApiError } from '../../sdk/errors.ts';
import type { JsonObject, TfServingPredictRequest, TfServingValue, V2InferRequest } from '../../sdk/types.ts';
import { CliFailure, CliUsageError, integerOption, stringOption, type CommandContext, type CommandDefinition } from '../command.ts';
import { watchJob } from './jobs.ts';
import { untilAborted } from './serve.ts';

const trainCount = 8_000;
const testCount = 2_000;
const imageSize = 28 * 28;
/** The demo's own model and datasets: a demo run never moves an alias of a model it did not create. */
const modelName = 'demo-mnist';
const modelDescription = 'aiaas demo: the Keras MLP on MNIST digits';
const trainDatasetName = 'demo-mnist-train';
const testDatasetName = 'demo-mnist-test';
const alias = 'production';
/** Rows per V2 request when scoring the whole test set: well under the default 8 MiB inference body limit. */
const scoringBatch = 500;
const sampleCount = 3;

interface Digits {
  /** uint8 pixels, [count, 28, 28]. */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/**
 * A digit's raw 0–255 pixels, as the IDX file holds them: the spec's `input.scale` (1/255) is part of
 * the trained model, so clients send what the dataset had.
 */
function image(digits: Digits, index: number): number[] {
  return Array.from(digits.pixels.subarray(index * imageSize, (index + 1) * imageSize));
}

function nested(flat: readonly number[]): number[][] {
  return Array.from({ length: 28 }, (_, row) => flat.slice(row * 28, (row + 1) * 28));
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let index = 1; index < values.length; index++) if ((values[index] as number) > (values[best] as number)) best = index;
  return best;
}

/** A 28×28 digit of 0–255 pixels in 14 text rows (two pixel rows per line), for the sample prediction. */
function drawDigit(flat: readonly number[]): string {
  const shades = ' .:-=+*#%@';
  const lines: string[] = [];
  for (let row = 0; row < 28; row += 2) {
    let line = '';
    for (let column = 0; column < 28; column++) {
      const value = Math.max(flat[row * 28 + column] ?? 0, flat[(row + 1) * 28 + column] ?? 0) / 256;
      line += shades[Math.min(shades.length - 1, Math.floor(value * shades.length))];
    }
    lines.push(line.trimEnd());
  }
  while (lines[0] === '') lines.shift();
  while (lines.at(-1) === '') lines.pop();
  return lines.map((line) => `    ${line}`.trimEnd()).join('\n') + '\n';
}

function rows(value: TfServingValue | undefined): number[][] {
  if (!Array.isArray(value)) throw new CliFailure('DEMO_FAILED', 'the TF-Serving answer has no predictions list');
  return value.map((row) => {
    if (!Array.isArray(row) || !row.every((item) => typeof item === 'number')) throw new CliFailure('DEMO_FAILED', 'a TF-Serving prediction is not a list of numbers');
    return row as number[];
  });
}

/**
 * The request bodies the printed curl commands send: test digit 0, shipped as files in
 * examples/requests/ (so the demo leaves nothing behind and the README can point at them). The demo
 * sends these very files; examples/requests/generate.ts rewrites them from this function.
 */
export const requestFiles = {
  v2: fileURLToPath(new URL('../../../examples/requests/mnist-v2.json', import.meta.url)),
  tfserving: fileURLToPath(new URL('../../../examples/requests/mnist-tfserving.json', import.meta.url)),
} as const;

export function demoRequestBodies(): { v2: V2InferRequest; tfserving: TfServingPredictRequest } {
  const pixels = image(loadDigits().test, 0);
  return {
    v2: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 28, 28], data: pixels }] },
    tfserving: { instances: [nested(pixels)] },
  };
}

async function readRequestFile(path: string): Promise<JsonObject> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as JsonObject;
  } catch (error) {
    throw new CliFailure('DEMO_FAILED', `cannot read the shipped request file ${path}: ${(error as Error).message}`);
  }
}

function loadDigits(): { train: Digits; test: Digits } {
  const split = loadMnistPackage({ train: trainCount, test: testCount });
  const toDigits = (dataset: { features: Float32Array; labels: Float32Array; count: number }): Digits => ({
    pixels: Uint8Array.from(dataset.features, (value) => Math.round(value * 255)),
    labels: Uint8Array.from(dataset.labels),
    count: dataset.count,
  });
  return { train: toDigits(split.train), test: toDigits(split.test) };
}

/** The digits as an IDX pair, the format `datasets push --labels` sends. */
function encode(digits: Digits): { images: Uint8Array; labels: Uint8Array } {
  return {
    images: encodeIdx({ dataType: 'uint8', dims: [digits.count, 28, 28], data: digits.pixels }),
    labels: encodeIdx({ dataType: 'uint8', dims: [digits.count], data: digits.labels }),
  };
}

interface DemoServer {
  url: string;
  apiKey: string;
  close(): Promise<void>;
}

/** Starts the embedded server on an ephemeral port, with the bootstrap admin key it generates. */
async function startEmbeddedServer(context: CommandContext, dataDirectory: string, say: (text: string) => void): Promise<DemoServer> {
  const env = context.io.env;
  // The demo's own output is the interesting part; server logs stay at errors unless asked for.
  const flags = { 'data-dir': dataDirectory, host: '127.0.0.1', port: 0, ...(env.AIAAS_LOG_LEVEL === undefined ? { 'log-level': 'error' } : {}) };
  const config = loadConfig({ flags, env, cwd: context.io.cwd });
  if (config.masterKey === undefined && config.masterKeyFile === undefined && !config.insecureDev) {
    config.insecureDev = true;
    say(
      'note: no master key is configured (AIAAS_MASTER_KEY / AIAAS_MASTER_KEY_FILE), so this demo runs in insecure-dev mode:\n' +
        `      a generated master key is kept in ${dataDirectory}. Never do this with real data.\n`,
    );
  }
  const { startServer } = await import('../../startup/start.ts');
  const server = await startServer(config, { handleSignals: false, printSecret: () => undefined });
  const apiKey = server.context.bootstrap.generatedKey ?? config.bootstrapKey ?? context.apiKey;
  if (apiKey === undefined) {
    await server.close();
    throw new CliFailure('UNAUTHENTICATED', `${dataDirectory} already holds a server's data; pass that server's admin key with --api-key or AIAAS_API_KEY`);
  }
  say(`server: ${server.url} (data in ${dataDirectory})\n`);
  if (server.context.bootstrap.generatedKey !== undefined) say(`api key (admin, generated for this data directory): ${apiKey}\n`);
  return { url: server.url, apiKey, close: () => server.close() };
}

/**
 * Creates the demo's model, or reuses it when an earlier demo run created it (same description).
 * Any other model of that name belongs to someone else: the demo refuses rather than move its alias.
 */
async function claimModel(client: AiaasClient, signal: AbortSignal | undefined): Promise<void> {
  try {
    const model = await client.models.get(modelName, { signal });
    if (model.description !== modelDescription) {
      throw new CliFailure('DEMO_MODEL_EXISTS', `this server already has a model "${modelName}" the demo did not create; the demo will not move its ${alias} alias (delete or rename it first)`);
    }
  } catch (error) {
    if (!(AiaasApiError.isInstance(error) && error.status === 404)) throw error;
    await client.models.create({ name: modelName, description: modelDescription }, { signal });
  }
}

async function scoreTestSet(client: AiaasClient, test: Digits, inputName: string, signal: AbortSignal | undefined): Promise<number> {
  let correct = 0;
  for (let start = 0; start < test.count; start += scoringBatch) {
    const count = Math.min(scoringBatch, test.count - start);
    const data: number[] = [];
    for (let index = start; index < start + count; index++) data.push(...image(test, index));
    const response = await client.inferV2(modelName, { inputs: [{ name: inputName, datatype: 'FP32', shape: [count, 28, 28], data }] }, { version: alias, signal });
    const output = response.outputs[0];
    if (output === undefined) throw new CliFailure('DEMO_FAILED', 'the V2 answer has no outputs');
    const classes = output.shape[1] ?? 10;
    const values = output.data as number[];
    for (let row = 0; row < count; row++) {
      if (argmax(values.slice(row * classes, (row + 1) * classes)) === test.labels[start + row]) correct++;
    }
  }
  return correct / test.count;
}

export const demoCommand: CommandDefinition = {
  path: ['demo'],
  summary: 'start a server, train MNIST as a job, deploy it and call it over V2 and TF-Serving',
  usage: '[--server URL] [--api-key KEY] [--data-dir DIR] [--epochs N] [--keep-running]',
  description:
    'Without --server, starts the server in this process on a free port (data in a temporary directory removed\n' +
    'at the end, or --data-dir) and uses the admin key it generates. Uploads 8,000 training and 2,000 test digits from the\n' +
    '`mnist` package as IDX pairs, trains examples/mnist-mlp/spec.json as a job with live progress, aliases\n' +
    'the new version `production`, predicts a few digits over KServe V2 and TF-Serving, scores all test\n' +
    'digits over V2, and prints curl commands to repeat the calls. Exit 0 only if every step worked.',
  options: {
    server: { type: 'string', valueName: 'URL', description: 'use this running server instead of starting one (with AIAAS_API_KEY / --api-key)' },
    'api-key': { type: 'string', valueName: 'KEY', description: 'API key for --server, or for a --data-dir that already has data (env AIAAS_API_KEY)' },
    'data-dir': { type: 'string', valueName: 'DIR', description: 'data directory of the embedded server (default: a temporary one, removed afterwards)' },
    epochs: { type: 'string', valueName: 'N', description: 'training epochs (default 10)' },
    'keep-running': { type: 'boolean', description: 'keep the embedded server running afterwards (until Ctrl-C) so the curl commands work' },
  },
  examples: ['aiaas demo', 'aiaas demo --epochs 3', 'AIAAS_API_KEY=aiaas_… aiaas demo --server http://127.0.0.1:8080'],
  async run(context) {
    const { io, signal } = context;
    const say = (text: string) => void io.stdout.write(text);
    const epochs = integerOption(context.values, 'epochs', 'demo', 1) ?? 10;
    const serverUrl = stringOption(context.values, 'server');
    const givenDataDirectory = stringOption(context.values, 'data-dir');
    const keepRunning = context.values['keep-running'] === true;
    if (serverUrl !== undefined && givenDataDirectory !== undefined) throw new CliUsageError('--server and --data-dir exclude each other: --data-dir is for the embedded server', 'demo');
    // Built (and its address validated, a usage error) before anything is printed or started.
    const remoteClient = serverUrl === undefined ? undefined : context.client();

    let server: DemoServer | undefined;
    let temporaryDirectory: string | undefined;
    try {
      say('== aiaas demo: MNIST from upload to two inference protocols ==\n');
      let baseUrl: string;
      let apiKey: string | undefined;
      if (serverUrl === undefined) {
        const dataDirectory = givenDataDirectory === undefined ? (temporaryDirectory = await mkdtemp(join(tmpdir(), 'aiaas-demo-'))) : resolve(io.cwd, givenDataDirectory);
        await mkdir(dataDirectory, { recursive: true });
        server = await startEmbeddedServer(context, dataDirectory, say);
        baseUrl = server.url;
        apiKey = server.apiKey;
      } else {
        baseUrl = remoteClient?.baseUrl ?? serverUrl;
        apiKey = context.apiKey;
        say(`server: ${baseUrl}\n`);
      }
      const client = remoteClient ?? new AiaasClient({ baseUrl, apiKey });
      // First, before anything is uploaded: a server where the name is taken is left untouched.
      await claimModel(client, signal);

      say(`\n1. Upload ${trainCount.toLocaleString('en')} training and ${testCount.toLocaleString('en')} test digits (IDX pairs)\n`);
      const { train, test } = loadDigits();
      const existing = await client.datasets.list({ signal });
      const upload = async (digits: Digits, name: string) => {
        // Names are unique per tenant: a second run against the same server reuses its earlier upload.
        const previous = existing.find((dataset) => dataset.name === name);
        if (previous !== undefined && previous.rowCount === digits.count && previous.schema.featureShape.join(',') === '28,28') {
          say(`   ${previous.name}: ${previous.id} (uploaded before; reused)\n`);
          return previous;
        }
        const files = encode(digits);
        const dataset = await client.datasets.push({ name, file: files.images, labels: files.labels, format: 'idx', signal });
        say(`   ${dataset.name}: ${dataset.id} (${dataset.rowCount} rows, features [${dataset.schema.featureShape.join(', ')}])\n`);
        return dataset;
      };
      const trainSet = await upload(train, trainDatasetName);
      const testSet = await upload(test, testDatasetName);

      say(`\n2. Train examples/mnist-mlp/spec.json as a job: ${epochs} epoch${epochs === 1 ? '' : 's'}, batch 128\n`);
      const spec = JSON.parse(await readFile(new URL('../../../examples/mnist-mlp/spec.json', import.meta.url), 'utf8')) as JsonObject;
      const job = await client.jobs.submit({ model: modelName, spec, datasetId: trainSet.id, testDatasetId: testSet.id, epochs, batchSize: 128, seed: 42 }, { signal });
      say(`   job ${job.id}\n`);
      // Progress goes to stdout here, so the demo reads as one story in order even when piped.
      const outcome = await watchJob(client, { ...io, stderr: io.stdout }, job.id, { json: false, signal });
      if (outcome.version === undefined) throw new CliFailure('DEMO_FAILED', `job ${job.id} succeeded but reported no version`);
      const jobAccuracy = outcome.testMetrics?.accuracy;

      say(`\n3. Deploy: ${modelName}@${alias} → version ${outcome.version}\n`);
      await client.aliases.set(modelName, alias, outcome.version, { signal });
      const version = await client.versions.get(modelName, alias, { signal });
      const input = 'inputs' in version.signature ? version.signature.inputs[0] : undefined;
      if (input === undefined) throw new CliFailure('DEMO_FAILED', 'the trained model has no inputs');

      say(`\n4. Predict ${sampleCount} test digits over KServe V2 and TF-Serving (both via ${alias})\n`);
      const samples = Array.from({ length: sampleCount }, (_, index) => image(test, index));
      const v2Request: V2InferRequest = { id: 'demo', inputs: [{ name: input.name, datatype: 'FP32', shape: [sampleCount, 28, 28], data: samples.flat() }] };
      const v2 = await client.inferV2(modelName, v2Request, { version: alias, signal });
      const v2Output = v2.outputs[0];
      if (v2Output === undefined) throw new CliFailure('DEMO_FAILED', 'the V2 answer has no outputs');
      const classes = v2Output.shape[1] ?? 10;
      const v2Rows = Array.from({ length: sampleCount }, (_, row) => (v2Output.data as number[]).slice(row * classes, (row + 1) * classes));
      const tfRequest = { instances: samples.map(nested) };
      const tf = await client.predictTfServing(modelName, tfRequest, { label: alias, signal });
      const tfRows = rows('predictions' in tf ? tf.predictions : undefined);
      const disagreement = Math.max(...v2Rows.flatMap((row, index) => row.map((value, column) => Math.abs(value - (tfRows[index]?.[column] ?? Number.NaN)))));
      if (!(disagreement < 1e-5)) throw new CliFailure('DEMO_FAILED', `V2 and TF-Serving answers differ by ${disagreement}`);
      v2Rows.forEach((row, index) => say(`   digit ${index}: true ${test.labels[index]}, V2 ${argmax(row)}, TF-Serving ${argmax(tfRows[index] ?? [])}\n`));
      // The files the printed curl commands send must ask exactly what was asked above for digit 0.
      const shippedV2 = (await client.inferV2(modelName, (await readRequestFile(requestFiles.v2)) as unknown as V2InferRequest, { version: alias, signal })).outputs[0]?.data as number[] | undefined;
      const shippedTf = rows(
        ((await client.predictTfServing(modelName, (await readRequestFile(requestFiles.tfserving)) as unknown as TfServingPredictRequest, { label: alias, signal })) as { predictions?: TfServingValue })
          .predictions,
      )[0];
      const expected = v2Rows[0] ?? [];
      const shippedDisagreement = Math.max(...expected.map((value, column) => Math.max(Math.abs(value - (shippedV2?.[column] ?? Number.NaN)), Math.abs(value - (shippedTf?.[column] ?? Number.NaN)))));
      if (!(shippedDisagreement < 1e-5)) {
        throw new CliFailure('DEMO_FAILED', `examples/requests/ does not hold test digit 0 as the demo sends it (answers differ by ${shippedDisagreement}); rewrite it with \`npx tsx examples/requests/generate.ts\``);
      }

      say(`\n5. Score all ${testCount.toLocaleString('en')} test digits over V2 (batches of ${scoringBatch})\n`);
      const v2Accuracy = await scoreTestSet(client, test, input.name, signal);

      const probabilities = v2Rows[0] ?? [];
      say('\nSample prediction (test digit 0):\n');
      say(drawDigit(samples[0] ?? []));
      say(`   true label ${test.labels[0]}, predicted ${argmax(probabilities)}\n`);
      say(`   probabilities: ${probabilities.map((value, digit) => `${digit}:${value.toFixed(3)}`).join(' ')}\n`);

      say('\nTest accuracy\n');
      say(`   from the job's test metrics: ${jobAccuracy === undefined ? 'not reported' : jobAccuracy.toFixed(4)}${outcome.testLoss === undefined ? '' : ` (test loss ${outcome.testLoss.toFixed(4)})`}\n`);
      say(`   from V2 predictions:         ${v2Accuracy.toFixed(4)}\n`);
      if (jobAccuracy !== undefined && Math.abs(jobAccuracy - v2Accuracy) > 0.01) {
        say(`   warning: the two differ by ${Math.abs(jobAccuracy - v2Accuracy).toFixed(4)}; served predictions should match evaluation\n`);
      }

      say('\nRepeat the calls with curl');
      say(server !== undefined && !keepRunning ? ' (this embedded server stops now: run `aiaas demo --keep-running`, or use `aiaas serve`):\n' : ':\n');
      say(`   export AIAAS_API_KEY=${server !== undefined ? apiKey : '<your key>'}\n`);
      say(`   curl -s ${baseUrl}/v2/models/${modelName}/versions/${alias}/infer -H "Authorization: Bearer $AIAAS_API_KEY" -H 'content-type: application/json' -d @${requestFiles.v2}\n`);
      say(`   curl -s ${baseUrl}/tfserving/v1/models/${modelName}/labels/${alias}:predict -H "Authorization: Bearer $AIAAS_API_KEY" -H 'content-type: application/json' -d @${requestFiles.tfserving}\n`);

      if (server !== undefined && keepRunning) {
        say(`\nThe server keeps running at ${baseUrl}; press Ctrl-C to stop it.\n`);
        await untilAborted(signal);
      }
      say('\ndemo finished: every step worked\n');
      return 0;
    } finally {
      await server?.close();
      if (temporaryDirectory !== undefined) await rm(temporaryDirectory, { recursive: true, force: true });
    }
  },
};

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx } from '../../src/data/idx.ts';
import { Random } from '../../src/engine/random.ts';
import { AiaasClient, type JsonObject } from '../../src/sdk/index.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { servedUrl } from './served-url.ts';

const root = new URL('../..', import.meta.url).pathname;
const apiKey = `aiaas_${'r'.repeat(44)}`;
const masterKey = generateMasterKey();
const children: ChildProcess[] = [];
let dataDir = '';

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** `aiaas serve` as a real child process; resolves with its URL once it listens. */
async function serve(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['bin/aiaas.js', 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: root,
    env: { ...process.env, AIAAS_MASTER_KEY: masterKey, AIAAS_BOOTSTRAP_KEY: apiKey, AIAAS_LOG_LEVEL: 'warn', AIAAS_JOB_LEASE_MS: '1000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return { child, url: await servedUrl(child) };
}

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a training job survives SIGKILL of the server', () => {
  it('resumes from its last checkpoint after a restart and finishes with the same number of epochs', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'aiaas-kill-'));
    const first = await serve();
    const client = new AiaasClient({ baseUrl: first.url, apiKey });
    const random = new Random(4);
    const count = 3000;
    const pixels = new Uint8Array(count * 64);
    const labels = new Uint8Array(count);
    for (let index = 0; index < count; index++) {
      labels[index] = index % 4;
      for (let pixel = 0; pixel < 64; pixel++) pixels[index * 64 + pixel] = (pixel % 4 === labels[index]! ? 160 : 0) + (random.nextUint32() % 90);
    }
    const dataset = await client.datasets.push({
      name: 'blocks',
      file: encodeIdx({ dataType: 'uint8', dims: [count, 8, 8], data: pixels }),
      labels: encodeIdx({ dataType: 'uint8', dims: [count], data: labels }),
    });
    const spec: JsonObject = {
      input: { shape: [8, 8] },
      layers: [{ type: 'flatten' }, { type: 'dense', units: 64, activation: 'relu' }, { type: 'dense', units: 4, activation: 'softmax' }],
      compile: { optimizer: 'adam', loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
    };
    const totalEpochs = 40;
    const job = await client.jobs.submit({ model: 'blocks', spec, datasetId: dataset.id, epochs: totalEpochs, batchSize: 8, seed: 2 });

    // Kill as soon as a checkpoint exists and the job is still running.
    const atKill = await until(async () => {
      const current = await client.jobs.get(job.id);
      return current.status === 'running' && current.epoch >= 1 ? current : undefined;
    });
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    expect(atKill.epoch).toBeLessThan(totalEpochs);

    const second = await serve();
    const resumedClient = new AiaasClient({ baseUrl: second.url, apiKey });
    const finished = await until(async () => {
      const current = await resumedClient.jobs.get(job.id);
      return ['succeeded', 'failed', 'cancelled'].includes(current.status) ? current : undefined;
    });
    expect(finished.error).toBeNull();
    expect(finished.status).toBe('succeeded');
    expect(finished.epoch).toBe(totalEpochs);
    expect(finished.history).toHaveLength(totalEpochs);
    expect((finished.history as { epoch: number }[]).map((entry) => entry.epoch)).toEqual(Array.from({ length: totalEpochs }, (_, index) => index + 1));

    const events: { type: string; data: unknown }[] = [];
    for await (const event of resumedClient.jobs.watch(job.id)) events.push({ type: event.type, data: event.data });
    const resumed = events.find((event) => event.type === 'job-resumed');
    expect(resumed, 'a job-resumed event').toBeDefined();
    const fromEpoch = (resumed!.data as { fromEpoch: number }).fromEpoch;
    expect(fromEpoch).toBeGreaterThanOrEqual(atKill.epoch);
    expect(fromEpoch).toBeLessThan(totalEpochs);
    // Not from scratch: after the resume, training continues at the epoch after the checkpoint.
    const afterResume = events.slice(events.indexOf(resumed!)).filter((event) => event.type === 'epoch-end').map((event) => (event.data as { epoch: number }).epoch);
    expect(afterResume).toEqual(Array.from({ length: totalEpochs - fromEpoch }, (_, index) => fromEpoch + 1 + index));

    const versions = await resumedClient.versions.list('blocks');
    expect(versions).toHaveLength(1);
    second.child.kill('SIGTERM');
  });
});

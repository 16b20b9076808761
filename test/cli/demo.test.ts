import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { demoRequestBodies, requestFiles } from '../../src/cli/commands/demo.ts';
import { json } from '../../src/cli/format.ts';
import { main } from '../../src/cli/main.ts';
import { captureIo, fakeServer, sendJson } from './helpers.ts';


describe('aiaas demo', () => {
  it('starts the embedded server, trains MNIST as a job, serves it and scores it over V2, and leaves no temporary folder', async () => {
    // A private TMPDIR: whatever the demo leaves in it is visible, and other processes' files are not.
    const privateTemporary = await mkdtemp(`${tmpdir()}/aiaas-demo-test-`);
    const previousTemporary = process.env.TMPDIR;
    process.env.TMPDIR = privateTemporary;
    let code: number;
    // No master key in the environment: the demo runs in insecure-dev mode in a temporary directory.
    const io = captureIo({ env: {} });
    let leftBehind: string[];
    try {
      code = await main(['demo', '--epochs', '1'], io);
      // Training processes leave their own runtime files (tsx caches, …); the demo's are named aiaas-*.
      leftBehind = (await readdir(privateTemporary)).filter((name) => name.startsWith('aiaas-'));
    } finally {
      if (previousTemporary === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previousTemporary;
      await rm(privateTemporary, { recursive: true, force: true });
    }
    const out = io.out();
    expect(code, `${out}\n${io.err()}`).toBe(0);

    expect(out).toContain('runs in insecure-dev mode');
    expect(out).toMatch(/epoch 1\/1/);
    expect(out).toMatch(/digit 0: true \d, V2 \d, TF-Serving \d/);
    const fromJob = Number(out.match(/from the job's test metrics: (\d\.\d{4})/)?.[1]);
    const fromV2 = Number(out.match(/from V2 predictions: +(\d\.\d{4})/)?.[1]);
    // One epoch on 8,000 digits reaches about 0.89; the two measurements must agree.
    expect(fromJob).toBeGreaterThan(0.7);
    expect(Math.abs(fromJob - fromV2)).toBeLessThanOrEqual(0.01);
    // The curl commands point at the shipped request files, under the demo's own model name.
    expect(out).toContain(`/v2/models/demo-mnist/versions/production/infer`);
    expect(out).toContain(`-d @${requestFiles.v2}\n`);
    expect(out).toContain(`-d @${requestFiles.tfserving}\n`);
    expect(out).toMatch(/demo finished: every step worked\n$/);
    expect(leftBehind).toEqual([]);
  });

  it('ships request files that hold exactly what the demo sends for test digit 0', async () => {
    const bodies = demoRequestBodies();
    // When this fails after a change to how the demo scales pixels: npx tsx examples/requests/generate.ts
    expect(await readFile(requestFiles.v2, 'utf8')).toBe(json(bodies.v2));
    expect(await readFile(requestFiles.tfserving, 'utf8')).toBe(json(bodies.tfserving));
    expect(bodies.v2.inputs[0]?.shape).toEqual([1, 28, 28]);
    expect(bodies.v2.inputs[0]?.data).toHaveLength(784);
  });

  it('with --server, refuses (and changes nothing) when a model of its name exists that it did not create', async () => {
    const server = await fakeServer({
      'GET /api/v1/models/demo-mnist': sendJson(200, { model: { name: 'demo-mnist', description: 'my own digits', versions: [1], aliases: [{ name: 'production', version: 1 }] } }),
    });
    try {
      const io = captureIo({ env: { AIAAS_API_KEY: 'aiaas_test' } });
      expect(await main(['demo', '--server', server.url], io)).toBe(1);
      expect(io.err()).toMatch(/^error DEMO_MODEL_EXISTS: this server already has a model "demo-mnist" the demo did not create/);
      expect(server.requests.map((request) => `${request.method} ${request.url}`)).toEqual(['GET /api/v1/models/demo-mnist']);
    } finally {
      await server.close();
    }
  });
});

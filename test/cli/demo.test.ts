import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { captureIo } from './helpers.ts';

describe('aiaas demo', () => {
  it('starts the embedded server, trains MNIST as a job, serves it and scores it over V2', async () => {
    // No master key in the environment: the demo runs in insecure-dev mode in a temporary directory.
    const io = captureIo({ env: {} });
    const code = await main(['demo', '--epochs', '1'], io);
    const out = io.out();
    const requestFile = out.match(/-d @(\S+v2-infer\.json)/)?.[1];
    if (requestFile !== undefined) await rm(dirname(requestFile), { recursive: true, force: true });
    expect(code, `${out}\n${io.err()}`).toBe(0);

    expect(out).toContain('runs in insecure-dev mode');
    expect(out).toMatch(/epoch 1\/1/);
    expect(out).toMatch(/digit 0: true \d, V2 \d, TF-Serving \d/);
    const fromJob = Number(out.match(/from the job's test metrics: (\d\.\d{4})/)?.[1]);
    const fromV2 = Number(out.match(/from V2 predictions: +(\d\.\d{4})/)?.[1]);
    // One epoch on 8,000 digits reaches about 0.89; the two measurements must agree.
    expect(fromJob).toBeGreaterThan(0.7);
    expect(Math.abs(fromJob - fromV2)).toBeLessThanOrEqual(0.01);
    expect(requestFile).toBeDefined();
    expect(out).toMatch(/demo finished: every step worked\n$/);
  });
});

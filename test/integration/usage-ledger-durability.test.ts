/**
 * The usage ledger's durability, against `aiaas serve` as a real process: after N answered
 * requests a SIGTERM leaves exactly N in the ledger; a `kill -9` loses at most what arrived since
 * the last flush (the flush interval's worth) and never invents any.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/index.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { classifierSpec } from '../http/helpers.ts';
import { servedUrl } from './served-url.ts';

const root = new URL('../..', import.meta.url).pathname;
const apiKey = `aiaas_${'u'.repeat(44)}`;
const requestCount = 25;
const children: ChildProcess[] = [];
const directories: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

interface Served {
  url: string;
  dataDir: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function serve(flushIntervalMs: number): Promise<Served> {
  const dataDir = await mkdtemp(join(tmpdir(), 'aiaas-ledger-'));
  directories.push(dataDir);
  const child = spawn(process.execPath, ['bin/aiaas.js', 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: root,
    env: {
      ...process.env,
      AIAAS_MASTER_KEY: generateMasterKey(),
      AIAAS_BOOTSTRAP_KEY: apiKey,
      AIAAS_LOG_LEVEL: 'warn',
      AIAAS_WARMUP: 'false',
      AIAAS_RATE_LIMIT_BURST: '1000',
      AIAAS_USAGE_FLUSH_INTERVAL_MS: String(flushIntervalMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await servedUrl(child);
  return { url, dataDir, child, exited };
}

const headers = { authorization: `Bearer ${apiKey}` };

/** Uploads a model, then answers `requestCount` inferences; returns when the last answer is read. */
async function answerRequests(url: string): Promise<void> {
  expect((await fetch(`${url}/api/v1/models`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'metered' }) })).status).toBe(201);
  const onnx = Model.fromSpec(classifierSpec, { seed: 3 }).exportOnnx();
  const upload = await fetch(`${url}/api/v1/models/metered/versions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
  expect(upload.status).toBe(201);
  for (let index = 0; index < requestCount; index += 1) {
    const response = await fetch(`${url}/v2/models/metered/infer`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }] }),
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  }
}

/** What the ledger file holds for the model, read by another process (as after a crash). */
function recorded(dataDir: string): { requests: number; items: number } {
  const database = new Database(join(dataDir, 'aiaas.db'), { readonly: true });
  try {
    const row = database.prepare("select coalesce(sum(requests), 0) as requests, coalesce(sum(items), 0) as items from usage_ledger where model_name = 'metered'").get() as {
      requests: number;
      items: number;
    };
    return row;
  } finally {
    database.close();
  }
}

describe('usage ledger durability (real server process)', () => {
  it('SIGTERM: every answered request is in the ledger afterwards, exactly once', async () => {
    // A flush interval far longer than the test: only the shutdown can have written the usage.
    const server = await serve(3_600_000);
    await answerRequests(server.url);
    expect(recorded(server.dataDir).requests).toBe(0);
    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(recorded(server.dataDir)).toEqual({ requests: requestCount, items: 2 * requestCount });
  });

  it('kill -9 before any flush: between 0 and N are recorded, never more than N', async () => {
    const server = await serve(3_600_000);
    await answerRequests(server.url);
    server.child.kill('SIGKILL');
    expect((await server.exited).signal).toBe('SIGKILL');
    const { requests } = recorded(server.dataDir);
    expect(requests).toBeGreaterThanOrEqual(0);
    expect(requests).toBeLessThanOrEqual(requestCount);
  });

  it('kill -9 after the flush interval passed: nothing is lost, nothing is counted twice', async () => {
    const server = await serve(100);
    await answerRequests(server.url);
    // The bound: once an interval has passed since the last answer, the timer has written it all.
    // Polled (not slept) so a loaded machine's late timer does not fail the test; the kill comes after.
    await expect.poll(() => recorded(server.dataDir).requests, { timeout: 30_000, interval: 100 }).toBe(requestCount);
    server.child.kill('SIGKILL');
    expect((await server.exited).signal).toBe('SIGKILL');
    expect(recorded(server.dataDir)).toEqual({ requests: requestCount, items: 2 * requestCount });
  });
});

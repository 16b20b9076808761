/**
 * `aiaas serve` as a real process with a language model loaded stops cleanly on SIGTERM. Once
 * node-llama-cpp has loaded, its lockfile dependency's signal-exit hook re-raises a signal that no
 * other listener remains for: with a `once` listener the server died by the signal (exit 143) and
 * left the model's plaintext file and unflushed usage behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { servedUrl } from './served-url.ts';

const root = new URL('../..', import.meta.url).pathname;
const apiKey = `aiaas_${'s'.repeat(44)}`;
let child: ChildProcess | undefined;
let dataDir = '';

afterAll(async () => {
  child?.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

it('stops cleanly on SIGTERM with a language model loaded: exit 0, plaintext removed, tokens metered', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'aiaas-sigterm-'));
  const server = spawn(process.execPath, ['bin/aiaas.js', 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: root,
    env: { ...process.env, AIAAS_MASTER_KEY: generateMasterKey(), AIAAS_BOOTSTRAP_KEY: apiKey, AIAAS_LOG_LEVEL: 'warn', AIAAS_LLM_THREADS: '1', AIAAS_LLM_CONTEXT_LENGTH: '512' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = server;
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  server.stdout!.on('data', collect);
  server.stderr!.on('data', collect);
  const url = await servedUrl(server);
  const headers = { authorization: `Bearer ${apiKey}` };
  expect((await fetch(`${url}/api/v1/models`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tiny' }) })).status).toBe(201);
  const upload = await fetch(`${url}/api/v1/models/tiny/versions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: Buffer.from(randomLlamaGguf({ seed: 2 })) });
  expect(upload.status).toBe(201);
  const chat = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, temperature: 0 }),
  });
  const completion = (await chat.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
  expect(chat.status).toBe(200);
  expect(await filesUnder(join(dataDir, 'plain'))).toEqual(['model.gguf']);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  server.kill('SIGTERM');
  expect(await exited).toEqual({ code: 0, signal: null });
  expect(output).toContain('stopping');
  expect(await filesUnder(join(dataDir, 'plain'))).toEqual([]);

  // The usage ledger was flushed on the way out.
  const database = new Database(join(dataDir, 'aiaas.db'), { readonly: true });
  try {
    expect(database.prepare("select protocol, sum(requests) as requests, sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens from usage_ledger where model_name = 'tiny' group by protocol").all()).toEqual([
      { protocol: 'openai', requests: 1, prompt_tokens: completion.usage.prompt_tokens, completion_tokens: completion.usage.completion_tokens },
    ]);
  } finally {
    database.close();
  }
});

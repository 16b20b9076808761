/**
 * `aiaas chat` against the real OpenAI-compatible route serving a generated random-weight llama
 * through llama.cpp (the route's model resolution injected, as in test/http/llm-routes.test.ts,
 * until the registry serves GGUF versions). The answers are noise; what matters is that they
 * stream, that the history goes back with each turn, and that Ctrl-C frees the generation.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { getLlama, type Llama } from 'node-llama-cpp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { AiaasError } from '../../src/errors.ts';
import type { LanguageModelDeps, LanguageModelEntry } from '../../src/http/protocols/llm-support.ts';
import { openAiRoutes } from '../../src/http/routes/openai.ts';
import { LlamaCppRuntime } from '../../src/runtimes/gguf/llama-cpp-runtime.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { captureIo, type CapturedIo } from './helpers.ts';

let directory: string;
let llama: Llama;
let runtime: LlamaCppRuntime;
let app: FastifyInstance;
let baseUrl: string;
const bodies: { messages: { role: string; content: string }[]; max_tokens?: number }[] = [];
const outcomes: string[] = [];
const entry: LanguageModelEntry = { name: 'tiny', version: '1', versionId: 'v1', createdAt: new Date('2026-11-01T00:00:00Z'), aliases: [], fileBytes: 1, sha256: 'sha256:ab' };

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'aiaas-chat-llama-'));
  await writeFile(join(directory, 'tiny.gguf'), randomLlamaGguf({ seed: 21 }));
  llama = await getLlama({ gpu: 'auto', build: 'never' });
  runtime = await LlamaCppRuntime.open(llama, join(directory, 'tiny.gguf'), { parallel: 1, maxWaiting: 0, contextLength: 512, threads: 1 });
  const deps: LanguageModelDeps = {
    async resolve(_request, name) {
      if (name !== 'tiny') throw new AiaasError('MODEL_NOT_FOUND', `Model '${name}' not found`);
      return entry;
    },
    list: async () => [entry],
    open: async () => runtime,
    loaded: async () => [{ entry, memoryBytes: runtime.memoryBytes() }],
    limits: () => ({ defaultMaxTokens: 400, maxTokens: 400, maxContextLength: 512 }),
    metrics: { generationFinished: (_labels, measures) => outcomes.push(measures.outcome) },
  };
  // Without it, close() waited about 70 s (a keep-alive connection of the streamed chat outlived it).
  app = Fastify({ forceCloseConnections: true });
  app.addHook('preHandler', async (request) => {
    if (request.url !== '/v1/chat/completions') return;
    const body = request.body as (typeof bodies)[number];
    bodies.push(structuredClone(body));
    // The first answer is kept short so it completes; later ones run to 400 tokens unless stopped.
    if (bodies.length === 1) body.max_tokens = 4;
  });
  await app.register(openAiRoutes, { ...deps, prefix: '/v1' });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await runtime?.dispose();
  await llama?.dispose();
  await rm(directory, { recursive: true, force: true });
});

function whenOutput(io: CapturedIo, ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (ready()) return resolve();
    const check = () => {
      if (!ready()) return;
      io.stdout.off('write-observed', check);
      io.stderr.off('write-observed', check);
      resolve();
    };
    io.stdout.on('write-observed', check);
    io.stderr.on('write-observed', check);
  });
}

it('streams answers from the random llama, sends the history back, and Ctrl-C stops a long answer', async () => {
  const stdin = new PassThrough();
  const interrupts = new EventTarget();
  const io: CapturedIo = { ...captureIo({ observe: true }), stdin };
  const finished = main(['chat', 'tiny', '--server', baseUrl, '--temperature', '0'], io, { interrupts });

  stdin.write('hello\n');
  await whenOutput(io, () => io.out().endsWith('\n'));
  const firstAnswer = io.out().slice(0, -1);
  expect(firstAnswer.length).toBeGreaterThan(0);

  // A long answer: stopped after its first piece arrives.
  const before = io.out().length;
  const generationsBefore = outcomes.length;
  stdin.write('tell me more\n');
  await whenOutput(io, () => io.out().length > before);
  const interrupt = new Event('interrupt', { cancelable: true });
  interrupts.dispatchEvent(interrupt);
  expect(interrupt.defaultPrevented).toBe(true);
  await whenOutput(io, () => io.err().includes('(stopped)'));
  stdin.end();
  expect(await finished).toBe(0);

  expect(bodies[1]!.messages).toEqual([
    { role: 'user', content: 'hello' },
    { role: 'assistant', content: firstAnswer },
    { role: 'user', content: 'tell me more' },
  ]);
  // The server saw the client go and ended that generation without finishing it.
  await new Promise<void>((resolve) => {
    const poll = () => (outcomes.length > generationsBefore ? resolve() : setTimeout(poll, 10));
    poll();
  });
  expect(outcomes.at(-1)).not.toBe('ok');
}, 60_000);

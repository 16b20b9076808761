/**
 * `aiaas chat` with a scripted stdin against a local server that speaks OpenAI's streaming chat
 * format (SSE chunks, `data: [DONE]`), and `aiaas models pull --watch` against a real aiaas server.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { startFileServer, type FileServer } from '../platform/file-server.ts';
import { classifierModel, startTestServer, type TestServer } from '../http/helpers.ts';
import { captureIo, fakeServer, type CapturedIo, type RecordedRequest } from './helpers.ts';

function chunk(content: string): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'tiny', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
}

/** Resolves when the captured output satisfies `ready` (checked on every write), without sleeping. */
function outputWhere(io: CapturedIo, stream: 'stdout' | 'stderr', ready: (text: string) => boolean): Promise<void> {
  const text = () => (stream === 'stdout' ? io.out() : io.err());
  return new Promise((resolve) => {
    if (ready(text())) return resolve();
    const check = () => {
      if (ready(text())) {
        io.stdout.off('write-observed', check);
        io.stderr.off('write-observed', check);
        resolve();
      }
    };
    io.stdout.on('write-observed', check);
    io.stderr.on('write-observed', check);
  });
}

describe('aiaas chat', () => {
  it('streams answers, keeps the history, and Ctrl-C stops only the current answer', async () => {
    const bodies: { messages: { role: string; content: string }[]; stream: boolean; model: string }[] = [];
    let hungResponse: ServerResponse | undefined;
    let hungClosed!: () => void;
    const hangEnded = new Promise<void>((resolve) => (hungClosed = resolve));
    const server = await fakeServer({
      'POST /v1/chat/completions': (request: RecordedRequest, response) => {
        const body = JSON.parse(request.body.toString('utf8'));
        bodies.push(body);
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        if (bodies.length === 2) {
          // The second answer never ends on its own: the user stops it.
          response.write(chunk('partial'));
          hungResponse = response;
          response.on('close', () => hungClosed());
          return;
        }
        response.write(chunk(bodies.length === 1 ? 'Hello' : 'Third'));
        response.write(chunk(' there'));
        response.end('data: [DONE]\n\n');
      },
    });
    const stdin = new PassThrough();
    const interrupts = new EventTarget();
    const io: CapturedIo = { ...captureIo({ observe: true }), stdin };
    const finished = main(['chat', 'tiny@production', '--server', server.url, '--api-key', 'aiaas_test', '--system', 'Be brief.', '--max-tokens', '32'], io, { interrupts });

    stdin.write('hi\n');
    await outputWhere(io, 'stdout', (text) => text === 'Hello there\n');
    stdin.write('again\n');
    await outputWhere(io, 'stdout', (text) => text.endsWith('partial'));
    const interrupt = new Event('interrupt', { cancelable: true });
    interrupts.dispatchEvent(interrupt);
    // Handled by chat: the binary must not end the command.
    expect(interrupt.defaultPrevented).toBe(true);
    await hangEnded;
    await outputWhere(io, 'stderr', (text) => text.includes('(stopped)'));
    stdin.write('third\n');
    await outputWhere(io, 'stdout', (text) => text.endsWith('Third there\n'));
    // At the prompt, Ctrl-C is not chat's to take: the binary's signal then ends it.
    const idle = new Event('interrupt', { cancelable: true });
    interrupts.dispatchEvent(idle);
    expect(idle.defaultPrevented).toBe(false);
    stdin.end();

    expect(await finished).toBe(0);
    expect(hungResponse?.writableEnded).toBe(false);
    expect(io.out()).toBe('Hello there\npartial\nThird there\n');
    expect(bodies.map((body) => [body.model, body.stream])).toEqual([
      ['tiny@production', true],
      ['tiny@production', true],
      ['tiny@production', true],
    ]);
    expect(bodies[2]!.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello there' },
      { role: 'user', content: 'again' },
      { role: 'assistant', content: 'partial' },
      { role: 'user', content: 'third' },
    ]);
    expect(server.requests[0]!.headers.authorization).toBe('Bearer aiaas_test');
    expect(JSON.parse(server.requests[0]!.body.toString('utf8')).max_tokens).toBe(32);
    await server.close();
  });

  it('reports a refused turn and leaves it out of the history; end of input exits', async () => {
    const bodies: { messages: unknown[] }[] = [];
    const server = await fakeServer({
      'POST /v1/chat/completions': (request, response) => {
        bodies.push(JSON.parse(request.body.toString('utf8')));
        if (bodies.length === 1) {
          response.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'the queue is full', type: 'server_error', param: null, code: 'QUEUE_FULL' } }));
          return;
        }
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.end(`${chunk('ok')}data: [DONE]\n\n`);
      },
    });
    const stdin = new PassThrough();
    const io: CapturedIo = { ...captureIo({ observe: true }), stdin };
    const finished = main(['chat', 'tiny', '--server', server.url], io);
    stdin.write('first\n');
    await outputWhere(io, 'stderr', (text) => text.includes('QUEUE_FULL'));
    stdin.end('second\n');
    expect(await finished).toBe(0);
    expect(io.err()).toContain('error: QUEUE_FULL: the queue is full');
    expect(io.out()).toBe('ok\n');
    expect(bodies[1]!.messages).toEqual([{ role: 'user', content: 'second' }]);
    await server.close();
  });

  it('refuses a malformed model reference', async () => {
    const io: CapturedIo = { ...captureIo(), stdin: new PassThrough() };
    expect(await main(['chat', 'a/b'], io)).toBe(2);
    expect(io.err()).toContain('NAME or NAME@ALIAS');
  });
});

describe('aiaas models pull', () => {
  const onnx = classifierModel(9).exportOnnx();
  const sha256 = createHash('sha256').update(onnx).digest('hex');
  let server: TestServer;
  let files: FileServer;
  let url: string;

  beforeAll(async () => {
    files = await startFileServer(onnx);
    server = await startTestServer({ pullAllowedHosts: '127.0.0.1' });
    server.context.jobs.start();
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await files?.close();
  });

  it('--watch follows the download and prints the new version', async () => {
    const io = captureIo();
    const code = await main(['models', 'pull', 'cli-pulled', `${files.origin}/file`, '--sha256', sha256, '--watch', '--server', url, '--api-key', server.adminKey], io);
    expect(io.err()).toContain('downloading');
    expect(code).toBe(0);
    expect(io.out()).toBe('1\n');
    expect(io.err()).toContain(`verifying sha256 ${sha256}`);
    expect(io.err()).toContain('pulled cli-pulled version 1');
  });

  it('exits 1 with the job error when the hash does not match', async () => {
    const io = captureIo();
    const code = await main(['models', 'pull', 'cli-bad', `${files.origin}/file`, '--sha256', '0'.repeat(64), '--watch', '--server', url, '--api-key', server.adminKey], io);
    expect(code).toBe(1);
    expect(io.err()).toContain('PULL_HASH_MISMATCH');
  });

  it('without --watch prints the job id', async () => {
    const io = captureIo();
    expect(await main(['models', 'pull', 'cli-later', `${files.origin}/file`, '--server', url, '--api-key', server.adminKey], io)).toBe(0);
    expect(io.out()).toMatch(/^job_[A-Za-z0-9_-]+\n$/);
  });
});

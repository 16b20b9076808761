import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { CliIo } from '../../src/cli/io.ts';

export interface CapturedIo extends CliIo {
  out(): string;
  err(): string;
}

function capture(isTTY: boolean, observe: boolean): { stream: Writable & { isTTY?: boolean }; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      // Lets a test wait for output (a server's URL) by event rather than by sleeping.
      if (observe) stream.emit('write-observed');
      callback();
    },
  }) as Writable & { isTTY?: boolean };
  if (isTTY) stream.isTTY = true;
  return { stream, text: () => chunks.join('') };
}

export function captureIo(options: { env?: NodeJS.ProcessEnv; cwd?: string; tty?: boolean; observe?: boolean } = {}): CapturedIo {
  const stdout = capture(false, options.observe === true);
  const stderr = capture(options.tty === true, options.observe === true);
  return {
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    out: stdout.text,
    err: stderr.text,
  };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type Route = (request: RecordedRequest, response: ServerResponse) => void;

/** A stand-in server on 127.0.0.1:0 that records every request and answers from `routes` ("METHOD /path" keys, query ignored). */
export async function fakeServer(routes: Record<string, Route>): Promise<{ url: string; requests: RecordedRequest[]; close(): Promise<void> }> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const recorded: RecordedRequest = { method: incoming.method ?? '', url: incoming.url ?? '', headers: incoming.headers, body: Buffer.concat(chunks) };
      requests.push(recorded);
      const route = routes[`${recorded.method} ${recorded.url.split('?')[0]}`];
      if (route === undefined) {
        response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${recorded.method} ${recorded.url}` } }));
        return;
      }
      route(recorded, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function sendJson(status: number, body: unknown): Route {
  return (_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
  };
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AiaasApiError, AiaasClient, ServerSentEventParser, type JobEvent, type ServerSentEvent } from '../../src/sdk/index.ts';

function feed(chunks: (string | Uint8Array)[]): ServerSentEvent[] {
  const parser = new ServerSentEventParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
}

describe('ServerSentEventParser', () => {
  it('parses type, data and id', () => {
    expect(feed(['event: job-progress\nid: 7\ndata: {"step":1}\n\n'])).toEqual([{ type: 'job-progress', data: '{"step":1}', lastEventId: '7' }]);
  });

  it('gives the same events whatever the chunk boundaries', () => {
    const stream = 'event: a\r\nid: 1\r\ndata: first\r\n\r\n: comment\r\ndata: second\rdata: more\r\r\nevent: b\ndata:third\n\n';
    const whole = feed([stream]);
    expect(whole).toEqual([
      { type: 'a', data: 'first', lastEventId: '1' },
      { type: 'message', data: 'second\nmore', lastEventId: '1' },
      { type: 'b', data: 'third', lastEventId: '1' },
    ]);
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let index = 0; index < stream.length; index += size) chunks.push(stream.slice(index, index + size));
      expect(feed(chunks)).toEqual(whole);
    }
    // Every two-way split, which puts each CR and LF of a CRLF into different chunks once.
    for (let cut = 0; cut <= stream.length; cut++) expect(feed([stream.slice(0, cut), stream.slice(cut)])).toEqual(whole);
  });

  it('joins multi-line data with newlines and keeps an empty data line', () => {
    expect(feed(['data: line one\ndata:\ndata:  indented\n\n'])).toEqual([{ type: 'message', data: 'line one\n\n indented', lastEventId: undefined }]);
    expect(feed(['data\n\n'])).toEqual([{ type: 'message', data: '', lastEventId: undefined }]);
  });

  it('ignores comments, unknown fields and events without data, but keeps their ids', () => {
    const parser = new ServerSentEventParser();
    expect(parser.push(': keep-alive\nfoo: bar\nid: 3\nevent: ping\n\n')).toEqual([]);
    expect(parser.lastEventId).toBe('3');
    expect(parser.push('data: x\n\n')).toEqual([{ type: 'message', data: 'x', lastEventId: '3' }]);
    expect(parser.push('id\ndata: y\n\n')).toEqual([{ type: 'message', data: 'y', lastEventId: '' }]);
  });

  it('reads retry, refuses ids with NUL, strips a BOM and splits UTF-8 across chunks', () => {
    const parser = new ServerSentEventParser('0');
    const bytes = new TextEncoder().encode('\uFEFFretry: 250\nid: a\u0000b\ndata: héllo ✓\n\n');
    const events = [...bytes].flatMap((byte) => parser.push(new Uint8Array([byte])));
    expect(events).toEqual([{ type: 'message', data: 'héllo ✓', lastEventId: '0' }]);
    expect(parser.retryMilliseconds).toBe(250);
  });

  it('discards an event left unfinished at the end of the stream', () => {
    const parser = new ServerSentEventParser();
    expect(parser.push('data: partial\n')).toEqual([]);
    parser.end();
    expect(parser.push('\n')).toEqual([]);
  });
});

type Handler = (request: IncomingMessage, response: ServerResponse, connection: number) => void;

let server: Server | undefined;

async function serve(handler: Handler): Promise<string> {
  let connection = 0;
  server = createServer((request, response) => handler(request, response, connection++));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

function streamHead(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

async function collect(iterable: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

describe('jobs.watch', () => {
  it('parses the stream, sends the key and stops after job-finished', async () => {
    const seen: { url: string | undefined; authorization: string | undefined; accept: string | undefined }[] = [];
    const baseUrl = await serve((request, response) => {
      seen.push({ url: request.url, authorization: request.headers.authorization, accept: request.headers.accept });
      streamHead(response);
      response.write(': hello\n\nid: 1\nevent: job-progress\ndata: {"epoch":1,"step":1,"loss":2.5}\n\n');
      response.write('id: 2\nevent: epoch-end\ndata: {"epoch":1,\ndata: "loss":1.5}\n\n');
      // Left open: the client must stop on its own after the terminal event.
      response.write('id: 3\nevent: job-finished\ndata: {"status":"succeeded","resultVersion":1}\n\n');
    });
    const client = new AiaasClient({ baseUrl, apiKey: 'aiaas_test' });
    const events = await collect(client.jobs.watch('job 1'));
    expect(events).toEqual([
      { type: 'job-progress', id: '1', data: { epoch: 1, step: 1, loss: 2.5 } },
      { type: 'epoch-end', id: '2', data: { epoch: 1, loss: 1.5 } },
      { type: 'job-finished', id: '3', data: { status: 'succeeded', resultVersion: 1 } },
    ]);
    expect(seen).toEqual([{ url: '/api/v1/jobs/job%201/events', authorization: 'Bearer aiaas_test', accept: 'text/event-stream' }]);
  });

  it('reconnects with Last-Event-ID after a dropped connection and loses no event', async () => {
    const lastEventIds: (string | undefined)[] = [];
    const baseUrl = await serve((request, response, connection) => {
      lastEventIds.push(request.headers['last-event-id'] as string | undefined);
      streamHead(response);
      if (connection === 0) {
        // The connection ends mid-event (FIN after the data, so nothing before it is lost): the
        // half-sent event, id included, must be dropped and resumed after the last complete one.
        response.write('retry: 0\nid: 1\nevent: job-progress\ndata: {"step":1}\n\nid: 2\nevent: job-progress\ndata: {"st', () => response.socket?.end());
      } else if (connection === 1) {
        response.end('id: 3\nevent: job-progress\ndata: {"step":3}\n\n');
      } else {
        response.end('id: 4\nevent: job-finished\ndata: {"status":"succeeded"}\n\n');
      }
    });
    // A clean end without a terminal event makes the client check the job before reconnecting.
    const fetchWithJob = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (String(input).endsWith('/api/v1/jobs/7')) return Response.json({ id: '7', status: 'running' });
      return await fetch(input, init);
    };
    const client = new AiaasClient({ baseUrl, fetch: fetchWithJob });
    const events = await collect(client.jobs.watch('7', { reconnectDelayMs: 0 }));
    expect(events.map((event) => [event.id, event.type])).toEqual([
      ['1', 'job-progress'],
      ['3', 'job-progress'],
      ['4', 'job-finished'],
    ]);
    expect(lastEventIds).toEqual([undefined, '1', '3']);
  });

  it('retries when the job check after a closed stream fails (a restarting server) instead of giving up', async () => {
    let jobChecks = 0;
    const baseUrl = await serve((request, response, connection) => {
      if (request.url === '/api/v1/jobs/8') {
        jobChecks++;
        response.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'starting' } }));
        return;
      }
      streamHead(response);
      if (connection === 0) response.end('id: 1\nevent: job-progress\ndata: {}\n\n');
      else response.end('id: 2\nevent: job-finished\ndata: {"status":"succeeded"}\n\n');
    });
    const events = await collect(new AiaasClient({ baseUrl }).jobs.watch('8', { reconnectDelayMs: 0 }));
    expect(events.map((event) => [event.id, event.type])).toEqual([
      ['1', 'job-progress'],
      ['2', 'job-finished'],
    ]);
    expect(jobChecks).toBe(1);
  });

  it('ends quietly when the stream closes on a job that already finished', async () => {
    const baseUrl = await serve((request, response) => {
      if (request.url === '/api/v1/jobs/9') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: '9', status: 'cancelled' }));
        return;
      }
      streamHead(response);
      response.end('id: 5\nevent: epoch-end\ndata: {}\n\n');
    });
    const events = await collect(new AiaasClient({ baseUrl }).jobs.watch('9', { lastEventId: '4', reconnectDelayMs: 0 }));
    expect(events).toEqual([{ type: 'epoch-end', id: '5', data: {} }]);
  });

  it('throws the API error for an unknown job instead of retrying', async () => {
    let requests = 0;
    const baseUrl = await serve((_request, response) => {
      requests++;
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'JOB_NOT_FOUND', message: 'no job x' } }));
    });
    const error = await collect(new AiaasClient({ baseUrl }).jobs.watch('x', { reconnectDelayMs: 0 })).catch((caught: unknown) => caught);
    expect(AiaasApiError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ status: 404, code: 'JOB_NOT_FOUND', message: 'no job x' });
    expect(requests).toBe(1);
  });

  it('stops when its signal aborts, and the consumer may break out early', async () => {
    const baseUrl = await serve((_request, response) => {
      streamHead(response);
      response.write('id: 1\nevent: job-progress\ndata: {}\n\n');
    });
    const client = new AiaasClient({ baseUrl });
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await (async () => {
      for await (const event of client.jobs.watch('1', { signal: controller.signal })) {
        seen.push(event.type);
        controller.abort();
      }
    })().catch((caught: unknown) => caught);
    expect(seen).toEqual(['job-progress']);
    expect((error as Error).name).toBe('AbortError');

    for await (const event of client.jobs.watch('1')) {
      expect(event.type).toBe('job-progress');
      break;
    }
  });
});

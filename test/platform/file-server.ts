/** A local HTTP server (127.0.0.1) that serves one generated file in the ways a pull must cope with. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  port: number;
  /** Every request seen: path and Range header. */
  requests: { path: string; range: string | undefined }[];
  /** Called when `/hang` has sent its first half, so a test can act mid-download. */
  hanging: Promise<void>;
  /** Resolves when the `/hang` connection is closed by the client. */
  hangClosed: Promise<void>;
  close(): Promise<void>;
}

/**
 * Routes:
 * - `/file`: 200 with Content-Length, or 206 for `Range: bytes=N-`;
 * - `/drop-once`: the first request sends the headers and half the body, then cuts the connection;
 *   later ones behave like `/file` (so a Range resume completes the download);
 * - `/no-range-drop-once`: as `/drop-once`, but ignores Range afterwards (200 with the whole file);
 * - `/redirect?to=URL`: 302 to URL;
 * - `/hang`: sends half the body and then nothing until the client goes away;
 * - `/missing`: 404.
 */
export async function startFileServer(file: Uint8Array): Promise<FileServer> {
  const requests: FileServer['requests'] = [];
  let dropped = new Set<string>();
  let markHanging!: () => void;
  let markHangClosed!: () => void;
  const hanging = new Promise<void>((resolve) => (markHanging = resolve));
  const hangClosed = new Promise<void>((resolve) => (markHangClosed = resolve));
  const half = Math.floor(file.byteLength / 2);
  const body = Buffer.from(file.buffer, file.byteOffset, file.byteLength);

  const serve = (request: IncomingMessage, response: ServerResponse, honourRange: boolean) => {
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    if (honourRange && range !== null) {
      const start = Number(range[1]);
      response.writeHead(206, { 'content-length': body.byteLength - start, 'content-range': `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`, 'accept-ranges': 'bytes' });
      response.end(body.subarray(start));
      return;
    }
    response.writeHead(200, { 'content-length': body.byteLength, 'accept-ranges': honourRange ? 'bytes' : 'none' });
    response.end(body);
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    requests.push({ path: url.pathname, range: request.headers.range });
    switch (url.pathname) {
      case '/file':
        serve(request, response, true);
        return;
      case '/drop-once':
      case '/no-range-drop-once':
        if (!dropped.has(url.pathname)) {
          dropped.add(url.pathname);
          response.writeHead(200, { 'content-length': body.byteLength });
          response.write(body.subarray(0, half), () => {
            // Give the bytes time to leave, then cut the connection as a failing network would.
            setImmediate(() => request.socket.destroy());
          });
          return;
        }
        serve(request, response, url.pathname === '/drop-once');
        return;
      case '/redirect':
        response.writeHead(302, { location: url.searchParams.get('to') ?? '/' });
        response.end();
        return;
      case '/hang':
        response.writeHead(200, { 'content-length': body.byteLength });
        response.write(body.subarray(0, half), () => markHanging());
        request.socket.on('close', () => markHangClosed());
        return;
      default:
        response.writeHead(404);
        response.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    hanging,
    hangClosed,
    close: async () => {
      dropped = new Set();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

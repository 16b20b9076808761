/** Request helpers shared by the platform routes: strict query and body reading, raw and multipart uploads. */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AiaasError } from '../../../errors.ts';
import type { ServerContext } from '../../../startup/context.ts';

/** What the /api/v1 routes use of the composition root. */
export type PlatformRouteContext = Pick<
  ServerContext,
  'access' | 'audit' | 'backups' | 'config' | 'datasets' | 'invoices' | 'jobs' | 'ledger' | 'plans' | 'quotas' | 'registry' | 'repositories' | 'signingKey' | 'webhooks' | 'drift' | 'shadows' | 'costs'
>;

export interface PlatformRouteOptions {
  context: PlatformRouteContext;
}

/**
 * The query string as strings. Unknown parameters are refused rather than ignored: a typo (or a
 * `url=` someone hoped would be fetched) should fail loudly, not do something else.
 */
export function readQuery(request: FastifyRequest, allowed: readonly string[]): Record<string, string | undefined> {
  const query = (request.query ?? {}) as Record<string, unknown>;
  const result: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(query)) {
    if (!allowed.includes(key)) {
      throw new AiaasError('INVALID_REQUEST', `Unknown query parameter '${key}'`, { details: { parameter: key, allowed: [...allowed] } });
    }
    if (typeof value !== 'string') {
      throw new AiaasError('INVALID_REQUEST', `Query parameter '${key}' must be given once`, { details: { parameter: key } });
    }
    result[key] = value;
  }
  return result;
}

export function readJsonObject(request: FastifyRequest, allowed: readonly string[]): Record<string, unknown> {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AiaasError('INVALID_REQUEST', 'The request body must be a JSON object (Content-Type: application/json)');
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new AiaasError('INVALID_REQUEST', `Unknown field '${key}'`, { details: { field: key, allowed: [...allowed] } });
    }
  }
  return body as Record<string, unknown>;
}

export function requireString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value === '') {
    throw new AiaasError('INVALID_REQUEST', `'${field}' is required and must be a string`, { details: { field } });
  }
  return value;
}

export function parsePositiveInteger(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(text)) {
    throw new AiaasError('INVALID_REQUEST', `'${name}' must be a non-negative integer`, { details: { parameter: name } });
  }
  return Number(text);
}

/**
 * Routes registered on `app` take their body as raw bytes, whatever the content type: uploads
 * come from curl `--data-binary` (form-encoded by default), SDKs (octet-stream) and browsers (multipart).
 */
export function acceptRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
}

/**
 * Routes registered on `app` get the request body unread, as a stream (`requestBodyStream`): large
 * uploads go to storage as they arrive. Fastify's bodyLimit does not apply (it bounds buffered
 * parsers only); the route enforces its own limits while reading.
 */
export function acceptStreamedBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
}

/** The unread body of a route under `acceptStreamedBodies` (empty when the request has none). */
export function requestBodyStream(request: FastifyRequest): AsyncIterable<Uint8Array> {
  const body = request.body;
  // A reader that stops early (a limit, a validation error) must not destroy the request: the
  // socket would close before the 413 or 400 goes out. Node discards the unread rest instead.
  if (body instanceof Readable) return body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
  return (async function* () {})();
}

function tooLarge(limit: number): AiaasError {
  return new AiaasError('PAYLOAD_TOO_LARGE', 'The request body is larger than this route accepts', { details: { limit } });
}

/** The declared Content-Length, when the client sent one. */
export function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  return header === undefined || !/^[0-9]{1,16}$/.test(header) ? undefined : Number(header);
}

/** Reads a stream whole, refusing (413) as soon as it passes `limit` bytes: for bodies parsed in memory. */
export async function readWithin(source: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > limit) throw tooLarge(limit);
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks);
}

/** The first `count` bytes (fewer if the stream is shorter) and the whole stream again, those bytes included. */
export async function peekBytes(source: AsyncIterable<Uint8Array>, count: number): Promise<{ head: Buffer; whole: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length < count) {
    const next = await iterator.next();
    // A finished iterator answers done again, so the replay below needs no flag for it.
    if (next.done === true) break;
    chunks.push(next.value);
    length += next.value.byteLength;
  }
  return { head: Buffer.concat(chunks).subarray(0, count), whole: replayed(chunks, iterator) };
}

/**
 * What was already read of an iterator, then the rest of it; a consumer that stops early (a client
 * gone mid-transfer) closes the iterator, so its file or socket is not left open.
 */
export async function* replayed<T>(alreadyRead: Iterable<T>, iterator: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    yield* alreadyRead;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/** Throws 413 at once when the client declares a body over `limit`, before reading any of it. */
export function refuseDeclaredOver(request: FastifyRequest, limit: number): void {
  const declared = declaredLength(request);
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
}

export function rawBody(request: FastifyRequest): Buffer {
  const body = request.body;
  if (Buffer.isBuffer(body)) return body;
  return Buffer.alloc(0);
}

export interface MultipartPart {
  name: string;
  fileName?: string;
  contentType?: string;
  bytes: Buffer;
}

export function isMultipart(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith('multipart/form-data');
}

function boundaryOf(contentType: string): string {
  const match = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (boundary === undefined) throw new AiaasError('INVALID_REQUEST', 'multipart/form-data without a boundary');
  return boundary;
}

function parseDisposition(value: string): { name?: string; fileName?: string } {
  const name = /(?:^|;)\s*name="([^"]*)"/i.exec(value)?.[1];
  const fileName = /(?:^|;)\s*filename="([^"]*)"/i.exec(value)?.[1];
  return { ...(name === undefined ? {} : { name }), ...(fileName === undefined ? {} : { fileName }) };
}

/** Parses a buffered multipart/form-data body (RFC 7578); the body limit already bounds its size. */
export function parseMultipart(body: Buffer, contentType: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundaryOf(contentType)}`);
  const malformed = () => new AiaasError('INVALID_REQUEST', 'Malformed multipart/form-data body');
  let position = body.indexOf(delimiter);
  if (position === -1) throw malformed();
  const parts: MultipartPart[] = [];
  for (;;) {
    position += delimiter.length;
    if (body.subarray(position, position + 2).toString('latin1') === '--') return parts;
    if (body.subarray(position, position + 2).toString('latin1') !== '\r\n') throw malformed();
    position += 2;
    const headerEnd = body.indexOf('\r\n\r\n', position, 'latin1');
    if (headerEnd === -1) throw malformed();
    const headers = new Map<string, string>();
    for (const line of body.subarray(position, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const contentStart = headerEnd + 4;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), contentStart);
    if (next === -1) throw malformed();
    const disposition = parseDisposition(headers.get('content-disposition') ?? '');
    if (disposition.name === undefined) throw malformed();
    const partContentType = headers.get('content-type');
    parts.push({
      name: disposition.name,
      ...(disposition.fileName === undefined ? {} : { fileName: disposition.fileName }),
      ...(partContentType === undefined ? {} : { contentType: partContentType }),
      bytes: body.subarray(contentStart, next),
    });
    position = next + 2;
    if (parts.length > 16) throw new AiaasError('INVALID_REQUEST', 'Too many multipart parts (at most 16)');
  }
}

/** Multipart parts by name, refusing names outside `allowed` and duplicates. */
export function multipartParts(request: FastifyRequest, allowed: readonly string[], body: Buffer = rawBody(request)): Map<string, MultipartPart> {
  const parts = parseMultipart(body, request.headers['content-type'] ?? '');
  const byName = new Map<string, MultipartPart>();
  for (const part of parts) {
    if (!allowed.includes(part.name)) {
      throw new AiaasError('INVALID_REQUEST', `Unknown multipart field '${part.name}'`, { details: { field: part.name, allowed: [...allowed] } });
    }
    if (byName.has(part.name)) throw new AiaasError('INVALID_REQUEST', `Multipart field '${part.name}' given twice`);
    byName.set(part.name, part);
  }
  return byName;
}

/**
 * What the request log says about a request. Fastify's default serializer logs `req.url` whole,
 * query string included, so a client that sends `?api_key=…` (which aiaas never accepts) would
 * write its key into every log line of the request. We log the path without its query and the
 * route pattern instead: enough to find the request, nothing a client can smuggle a secret into.
 */
import type { FastifyRequest } from 'fastify';

export interface RequestLogFields {
  method: string | undefined;
  /** The path only; everything from the first `?` is dropped. */
  url: string | undefined;
  /** The matched route's pattern (`/v2/models/:name/infer`); absent when no route matched. */
  route: string | undefined;
  host: string | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

/** Everything before the query string (and before a fragment, which clients should not send). */
export function pathOnly(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

export function serializeRequestForLog(request: FastifyRequest): RequestLogFields {
  const partial = request as Partial<FastifyRequest>;
  return {
    method: partial.method,
    url: typeof partial.url === 'string' ? pathOnly(partial.url) : undefined,
    route: partial.routeOptions?.url,
    host: partial.host,
    remoteAddress: partial.ip,
    remotePort: partial.socket?.remotePort,
  };
}

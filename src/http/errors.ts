/**
 * The platform error contract: every failure leaves as `{"error": {code, message, details}}`
 * with the catalogue's status (V2 and TF-Serving routes: `{"error": "…"}` plus the code in the
 * `x-aiaas-error-code` header, as those protocols require). Anything not an AiaasError or a
 * recognised framework error is a 500 INTERNAL whose body says nothing about the cause: the stack
 * and paths go to the log only. Framework errors raised before routing (bad percent-encoding, an
 * over-long path segment) come through `handleFrameworkError`, so no response skips the catalogue.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AiaasError, quoteForError } from '../errors.ts';
import { renderOpenAiError } from './protocols/openai.ts';

interface FrameworkError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: unknown;
  validationContext?: string;
  name?: string;
}

/** Maps anything thrown to an AiaasError; logs what it hides. */
export function toPlatformError(error: unknown, request: FastifyRequest): AiaasError {
  if (AiaasError.isInstance(error)) {
    if (error.status >= 500) request.log.error({ err: error }, 'request failed');
    // Such as an ONNX Runtime error behind INVALID_MODEL_FILE: the client got a cleaned message, the log keeps the detail.
    else if (error.cause !== undefined) request.log.warn({ err: error.cause, code: error.code }, `request failed: ${error.message}`);
    return error;
  }
  const framework = (typeof error === 'object' && error !== null ? error : {}) as FrameworkError;
  switch (framework.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AiaasError('PAYLOAD_TOO_LARGE', 'The request body is larger than this route accepts', {
        details: { limit: request.routeOptions.bodyLimit },
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AiaasError('INVALID_JSON', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AiaasError('UNSUPPORTED_MEDIA_TYPE', `Unsupported content type ${quoteForError(request.headers['content-type'] ?? '')}`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AiaasError('INVALID_REQUEST', 'Content-Length does not match the body');
    case 'FST_ERR_BAD_URL':
      return new AiaasError('INVALID_URL', 'The URL has a malformed percent-encoding');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new AiaasError('URI_TOO_LONG', 'A path segment of the URL is longer than the server accepts', {
        details: { limit: maxPathParameterLength },
      });
    default:
      break;
  }
  if (framework.validation !== undefined) {
    return new AiaasError('INVALID_REQUEST', quoteMessage(framework.message ?? 'Invalid request'), {
      details: { where: framework.validationContext ?? 'request' },
    });
  }
  // The JSON parser marks syntax errors (and prototype-poisoning attempts) with status 400.
  if (framework.statusCode === 400 && (framework.name === 'SyntaxError' || /JSON|__proto__|constructor/i.test(framework.message ?? ''))) {
    return new AiaasError('INVALID_JSON', 'The request body is not valid JSON');
  }
  if (framework.statusCode !== undefined && framework.statusCode >= 400 && framework.statusCode < 500) {
    // Framework 4xx messages are generic ("Route not found"...), safe to pass on.
    return new AiaasError(framework.statusCode === 404 ? 'NOT_FOUND' : 'INVALID_REQUEST', quoteMessage(framework.message ?? 'Invalid request'));
  }
  request.log.error({ err: error }, 'unhandled error');
  return new AiaasError('INTERNAL', 'Internal error; the request id identifies it in the server log', {
    details: { requestId: request.id },
  });
}

/** Fastify's `maxParamLength`: a longer path segment is answered 414 URI_TOO_LONG. */
export const maxPathParameterLength = 256;

/** Longest message and details (as JSON) a client gets back; longer ones are cut (they quote input). */
const maxMessageLength = 2000;
const maxDetailsLength = 2000;

function quoteMessage(message: string): string {
  return message.length > maxMessageLength ? `${message.slice(0, maxMessageLength)}… (cut)` : message;
}

/** The error as a client may see it: message and details bounded, whatever a thrower put in them. */
export function boundedForClient(error: AiaasError): AiaasError {
  let detailsTooLong = false;
  if (error.details !== undefined) {
    try {
      detailsTooLong = JSON.stringify(error.details).length > maxDetailsLength;
    } catch {
      detailsTooLong = true;
    }
  }
  if (!detailsTooLong && error.message.length <= maxMessageLength) return error;
  const details = error.details === undefined ? undefined : detailsTooLong ? { cut: true } : { ...error.details };
  return new AiaasError(error.code, quoteMessage(error.message), {
    ...(details === undefined ? {} : { details }),
    ...(error.headers === undefined ? {} : { headers: { ...error.headers } }),
  });
}

export const errorCodeHeader = 'x-aiaas-error-code';

const inferencePrefixes = ['/v2', '/tfserving/'];

/** V2 and TF-Serving URLs answer errors in their protocols' shape. */
export function isInferenceUrl(rawUrl: string): boolean {
  // Checked on every answer: no split of the query string, no array.
  for (const prefix of inferencePrefixes) {
    if (!rawUrl.startsWith(prefix)) continue;
    if (prefix.endsWith('/')) return true;
    const next = rawUrl.charCodeAt(prefix.length);
    // The prefix alone, or followed by a path or a query string (NaN past the end).
    if (Number.isNaN(next) || next === 0x2f || next === 0x3f) return true;
  }
  return false;
}

export function sendPlatformError(reply: FastifyReply, error: AiaasError): FastifyReply {
  const bounded = boundedForClient(error);
  if (bounded.headers !== undefined) reply.headers(bounded.headers);
  return reply.status(bounded.status).type('application/json; charset=utf-8').send({ error: bounded.toJSON() });
}

/** The V2 / TF-Serving shape: `{"error": "message"}`, the code in a header. */
export function sendProtocolError(reply: FastifyReply, error: AiaasError): FastifyReply {
  const bounded = boundedForClient(error);
  return reply
    .status(bounded.status)
    .headers({ ...bounded.headers, [errorCodeHeader]: bounded.code })
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ error: bounded.message }));
}

/** The OpenAI-compatible routes: errors in OpenAI's shape, the code in the header. */
function isOpenAiUrl(rawUrl: string): boolean {
  const url = rawUrl.split('?', 1)[0]!;
  return url === '/v1' || url.startsWith('/v1/');
}

const ollamaPaths: ReadonlySet<string> = new Set(['/api/generate', '/api/chat', '/api/embed', '/api/tags', '/api/show', '/api/ps', '/api/version', '/api/pull', '/api/delete']);

/** Ollama's own paths, beside the management API: `{"error": "…"}`, like V2. */
function isOllamaUrl(rawUrl: string): boolean {
  return ollamaPaths.has(rawUrl.split('?', 1)[0]!);
}

/** Renders an error in the shape of the surface the URL belongs to. */
export function sendErrorForUrl(request: FastifyRequest, reply: FastifyReply, error: AiaasError): FastifyReply {
  if (isOpenAiUrl(request.url)) {
    const bounded = boundedForClient(error);
    return reply
      .status(bounded.status)
      .headers({ ...bounded.headers, [errorCodeHeader]: bounded.code })
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(renderOpenAiError(bounded)));
  }
  return isInferenceUrl(request.url) || isOllamaUrl(request.url) ? sendProtocolError(reply, error) : sendPlatformError(reply, error);
}

/** Fastify's `frameworkErrors` option: errors raised before a route is found. */
export function handleFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', request.id);
  void sendErrorForUrl(request, reply, toPlatformError(error, request));
}

function cutPath(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}… (${path.length} characters)` : path;
}

/** Installs the error and not-found handlers on `app` (the root: child plugins may override theirs). */
export function installErrorHandling(app: FastifyInstance): void {
  // Routes of the inference plugins have their own handler; this one also sees errors of requests that
  // found no route (a body that fails to parse on the way to the 404), so it picks the shape by URL.
  app.setErrorHandler((error: FastifyError, request, reply) => sendErrorForUrl(request, reply, toPlatformError(error, request)));
  app.setNotFoundHandler((request, reply) =>
    sendErrorForUrl(
      request,
      reply,
      new AiaasError('NOT_FOUND', `No route ${request.method} ${cutPath(request.url.split('?', 1)[0]!)}`, {
        details: { method: request.method },
      }),
    ),
  );
}

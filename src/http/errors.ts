/**
 * The platform error contract: every failure leaves as `{"error": {code, message, details}}`
 * with the catalogue's status. Anything not an AiaasError or a recognised framework error is a
 * 500 INTERNAL whose body says nothing about the cause: the stack and paths go to the log only.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AiaasError } from '../errors.ts';

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
      return new AiaasError('UNSUPPORTED_MEDIA_TYPE', `Unsupported content type ${JSON.stringify(request.headers['content-type'] ?? '')}`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AiaasError('INVALID_REQUEST', 'Content-Length does not match the body');
    default:
      break;
  }
  if (framework.validation !== undefined) {
    return new AiaasError('INVALID_REQUEST', framework.message ?? 'Invalid request', {
      details: { where: framework.validationContext ?? 'request' },
    });
  }
  // The JSON parser marks syntax errors (and prototype-poisoning attempts) with status 400.
  if (framework.statusCode === 400 && (framework.name === 'SyntaxError' || /JSON|__proto__|constructor/i.test(framework.message ?? ''))) {
    return new AiaasError('INVALID_JSON', 'The request body is not valid JSON');
  }
  if (framework.statusCode !== undefined && framework.statusCode >= 400 && framework.statusCode < 500) {
    // Framework 4xx messages are generic ("Route not found"...), safe to pass on.
    return new AiaasError(framework.statusCode === 404 ? 'NOT_FOUND' : 'INVALID_REQUEST', framework.message ?? 'Invalid request');
  }
  request.log.error({ err: error }, 'unhandled error');
  return new AiaasError('INTERNAL', 'Internal error; the request id identifies it in the server log', {
    details: { requestId: request.id },
  });
}

export function sendPlatformError(reply: FastifyReply, error: AiaasError): FastifyReply {
  if (error.headers !== undefined) reply.headers(error.headers);
  return reply.status(error.status).type('application/json; charset=utf-8').send({ error: error.toJSON() });
}

/** Installs the error and not-found handlers on `app` (the root: child plugins may override theirs). */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => sendPlatformError(reply, toPlatformError(error, request)));
  app.setNotFoundHandler((request, reply) =>
    sendPlatformError(
      reply,
      new AiaasError('NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`, {
        details: { method: request.method },
      }),
    ),
  );
}

import type { ErrorCode } from '../errors.ts';

/** Codes from the server's catalogue, plus any a newer server may add (clients must not break on those). */
export type ApiErrorCode = ErrorCode | (string & {});

/** The header V2 and TF-Serving routes use to carry the stable code their protocols have no field for. */
export const errorCodeHeader = 'x-aiaas-error-code';

const apiErrorBrand = Symbol.for('aiaas.sdk.api-error');
const connectionErrorBrand = Symbol.for('aiaas.sdk.connection-error');

/** A response with a non-2xx status, decoded from either error shape the server speaks. */
export class AiaasApiError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** Seconds, from `Retry-After` on 429 and 503 answers. */
  readonly retryAfterSeconds: number | undefined;
  readonly [apiErrorBrand] = true;

  constructor(status: number, code: ApiErrorCode, message: string, options: { details?: Record<string, unknown>; retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = 'AiaasApiError';
    this.status = status;
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** Works across duplicated module copies, unlike instanceof. */
  static isInstance(value: unknown): value is AiaasApiError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[apiErrorBrand] === true;
  }
}

/** The server could not be reached at all (refused, reset, DNS, TLS), so there is no status. */
export class AiaasConnectionError extends Error {
  readonly code = 'CONNECTION_FAILED';
  readonly url: string;
  readonly [connectionErrorBrand] = true;

  constructor(url: string, cause: unknown) {
    super(`could not reach ${url}: ${describeCause(cause)}`, { cause });
    this.name = 'AiaasConnectionError';
    this.url = url;
  }

  static isInstance(value: unknown): value is AiaasConnectionError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[connectionErrorBrand] === true;
  }
}

function describeCause(cause: unknown): string {
  // undici wraps the socket error: `TypeError: fetch failed` with the useful part in `cause`.
  const inner = (cause as { cause?: unknown } | undefined)?.cause;
  const source = inner ?? cause;
  if (typeof source === 'object' && source !== null) {
    const { code, message } = source as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && typeof message === 'string') return message.includes(code) ? message : `${code} ${message}`;
    if (typeof message === 'string') return message;
  }
  return String(source);
}

/** Fallback codes by status, for answers that carry no code (a proxy's 502, a protocol route without the header). */
function codeForStatus(status: number): ApiErrorCode {
  switch (status) {
    case 400:
      return 'INVALID_REQUEST';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 409:
      return 'CONFLICT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'RATE_LIMITED';
    default:
      return status >= 500 ? 'INTERNAL' : `HTTP_${status}`;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Builds the error from a status, headers and body text. Accepts the platform shape
 * `{"error": {code, message, details}}` and the V2/TF-Serving shape `{"error": "…"}` with the code in
 * `x-aiaas-error-code`; anything else (HTML from a proxy, empty body) still yields a usable error.
 */
export function apiErrorFrom(status: number, headers: Headers, bodyText: string): AiaasApiError {
  const retryAfterHeader = headers.get('retry-after');
  const retryAfter = retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader.trim()) ? Number(retryAfterHeader.trim()) : undefined;
  const headerCode = headers.get(errorCodeHeader) ?? undefined;
  const options = (details?: Record<string, unknown>): { details?: Record<string, unknown>; retryAfterSeconds?: number } => ({
    ...(details === undefined ? {} : { details }),
    ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
  });
  let body: unknown;
  try {
    body = bodyText === '' ? undefined : JSON.parse(bodyText);
  } catch {
    body = undefined;
  }
  if (isRecord(body)) {
    const error = body.error;
    if (isRecord(error)) {
      const code = typeof error.code === 'string' ? error.code : (headerCode ?? codeForStatus(status));
      const message = typeof error.message === 'string' ? error.message : `HTTP ${status}`;
      return new AiaasApiError(status, code, message, options(isRecord(error.details) ? error.details : undefined));
    }
    if (typeof error === 'string') return new AiaasApiError(status, headerCode ?? codeForStatus(status), error, options());
  }
  const text = bodyText.trim();
  const message = text !== '' && text.length <= 200 && !text.startsWith('<') ? text : `HTTP ${status}`;
  return new AiaasApiError(status, headerCode ?? codeForStatus(status), message, options());
}

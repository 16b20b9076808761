/**
 * The one catalogue of errors a user can cause. Codes are stable and never reused:
 * clients match on `code`, humans read `message`. Modules add entries here rather
 * than throwing bare `Error`s, so every failure maps to one HTTP status in one place.
 */
export const errorCatalogue = {
  // 400 — the request or document is malformed
  INVALID_JSON: { status: 400, title: 'Malformed JSON body' },
  INVALID_REQUEST: { status: 400, title: 'Invalid request' },
  INVALID_SPEC: { status: 400, title: 'Invalid model spec' },
  INVALID_TENSOR: { status: 400, title: 'Invalid input tensor' },
  INVALID_DATA: { status: 400, title: 'Invalid data file' },
  INVALID_MODEL_FILE: { status: 400, title: 'Invalid model file' },
  INVALID_WEIGHTS: { status: 400, title: 'Invalid weights file' },
  TOO_MANY_PARAMETERS: { status: 400, title: 'Model has more parameters than the server allows' },
  CONTEXT_LENGTH_EXCEEDED: { status: 400, title: "Prompt longer than the model's context" },
  // 401/403 — who you are and what you may do
  UNAUTHENTICATED: { status: 401, title: 'Missing or invalid API key' },
  FORBIDDEN: { status: 403, title: 'Permission denied' },
  // 404 — missing, or not visible to this tenant (never distinguished)
  NOT_FOUND: { status: 404, title: 'Not found' },
  MODEL_NOT_FOUND: { status: 404, title: 'Model not found' },
  VERSION_NOT_FOUND: { status: 404, title: 'Model version not found' },
  DATASET_NOT_FOUND: { status: 404, title: 'Dataset not found' },
  JOB_NOT_FOUND: { status: 404, title: 'Job not found' },
  // 409 — conflicts with stored state
  CONFLICT: { status: 409, title: 'Conflict' },
  ALIAS_IN_USE: { status: 409, title: 'Version is referenced by an alias' },
  JOB_NOT_CANCELLABLE: { status: 409, title: 'Job cannot be cancelled' },
  // 413/429 — limits
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  TOO_MANY_ELEMENTS: { status: 413, title: 'Tensor too large' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  QUOTA_EXCEEDED: { status: 429, title: 'Quota exceeded' },
  // 5xx — the server could not do it now
  INTERNAL: { status: 500, title: 'Internal error' },
  ARTIFACT_CORRUPT: { status: 500, title: 'Stored artifact failed its integrity check' },
  MODEL_LOAD_FAILED: { status: 503, title: 'Model could not be loaded' },
  MODEL_NOT_READY: { status: 503, title: 'Model not ready' },
  QUEUE_FULL: { status: 503, title: 'Inference queue full' },
  // The client went away while its request waited; nobody reads this answer (nginx's 499).
  CLIENT_DISCONNECTED: { status: 499, title: 'Client closed the request' },
  // training-time failures (reported on jobs and by the CLI)
  TRAINING_DIVERGED: { status: 422, title: 'Training produced a non-finite loss' },
  // inference: the input passed the signature checks but the model failed on it (src/runtimes)
  INFERENCE_FAILED: { status: 422, title: 'The model failed to run on this input' },
  JOB_MEMORY_EXCEEDED: { status: 422, title: 'Training job exceeded its memory limit' },
  CONFIG_INVALID: { status: 500, title: 'Invalid server configuration' },
  // security: envelope encryption (src/security)
  KEY_DESTROYED: { status: 410, title: 'Tenant data key was destroyed; its data is unrecoverable' },
  DATA_KEY_UNWRAP_FAILED: { status: 500, title: 'Tenant data key could not be unwrapped with the master key' },
  STORED_TEXT_CORRUPT: { status: 500, title: 'Stored tenant text failed its integrity check' },
  MASTER_KEY_MISMATCH: { status: 500, title: 'The configured master key does not match this data directory' },
  // startup: one server per data directory (src/startup/data-dir-lock.ts)
  DATA_DIR_LOCKED: { status: 500, title: 'The data directory is in use by another aiaas process' },
  // backups and data-directory checks (src/storage/backup, src/startup/backups.ts)
  TARGET_NOT_EMPTY: { status: 409, title: 'Target directory exists and is not empty' },
  BACKUP_INVALID: { status: 422, title: 'Not a complete, intact backup' },
  BACKUP_NOT_CONFIGURED: { status: 409, title: 'No backup directory is configured' },
  BACKUP_IN_PROGRESS: { status: 409, title: 'A backup is already running' },
  DATABASE_CORRUPT: { status: 500, title: 'The database failed its integrity check' },
  // http: request framing (src/http)
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  INVALID_URL: { status: 400, title: 'Malformed URL (bad percent-encoding)' },
  URI_TOO_LONG: { status: 414, title: 'A path segment is longer than the server accepts' },
  NESTING_TOO_DEEP: { status: 400, title: 'JSON or tensor nested deeper than the server accepts' },
  // model pulls: downloads from a URL (src/platform/model-pull.ts)
  PULL_SOURCE_REFUSED: { status: 403, title: "Download source refused by the server's pull policy" },
  PULL_FAILED: { status: 502, title: 'The model file could not be downloaded' },
  PULL_HASH_MISMATCH: { status: 422, title: 'The downloaded file does not match the expected sha256' },
  // explanations, provenance and model protection (src/explain, src/platform/provenance.ts, output policies)
  EXPLANATION_UNSUPPORTED: { status: 400, title: 'This explanation is not available for this model or input' },
  OUTPUT_POLICY_RESTRICTED: { status: 403, title: "The model's output policy forbids this" },
  EXPORT_FORBIDDEN: { status: 403, title: 'The model is marked not exportable' },
  PROVENANCE_NOT_FOUND: { status: 404, title: 'The version has no provenance record' },
  // billing: webhooks (src/platform/webhooks.ts)
  WEBHOOK_URL_REFUSED: { status: 403, title: "Webhook URL refused by the server's SSRF rules" },
  // evaluations, promotion gates (src/quality/)
  EVALUATION_NOT_FOUND: { status: 404, title: 'Evaluation not found' },
  GATE_FAILED: { status: 409, title: "The version does not pass the alias's promotion gate" },
  // int8 quantization (src/onnx/quantize.ts, src/platform/model-quantize.ts)
  QUANTIZATION_UNSUPPORTED: { status: 422, title: 'The model cannot be quantized' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

const brand = Symbol.for('aiaas.error');

export class AiaasError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly [brand] = true;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AiaasError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = options.details;
    this.headers = options.headers;
  }

  /** Works across realms (worker threads, duplicated module copies), unlike instanceof. */
  static isInstance(value: unknown): value is AiaasError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: { ...this.details } };
  }
}

export function aiaasError(
  code: ErrorCode,
  message: string,
  options?: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown },
): AiaasError {
  return new AiaasError(code, message, options);
}

/** How many characters of a client-supplied value an error message quotes (see quoteForError). */
export const maxQuotedLength = 120;

/**
 * A client-supplied value as error messages quote it: JSON-quoted and cut to `max` characters, so a
 * 1 MB string or a deeply nested value never comes back whole (nor crashes JSON.stringify).
 */
export function quoteForError(value: unknown, max = maxQuotedLength): string {
  let text: string;
  if (typeof value === 'string') {
    // Cut before quoting: escaping a huge string only to drop most of it wastes the work.
    text = JSON.stringify(value.length > max ? value.slice(0, max) : value);
    if (value.length > max) text = `${text.slice(0, -1)}…" (${value.length} characters)`;
    return text;
  }
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // Cyclic or too deeply nested to serialize: name the type instead.
    text = Array.isArray(value) ? 'an array' : typeof value;
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

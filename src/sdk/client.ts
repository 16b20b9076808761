import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AiaasApiError, AiaasConnectionError, apiErrorFrom } from './errors.ts';
import { readServerSentEvents, ServerSentEventParser } from './sse.ts';
import { packDirectory } from './tar.ts';
import type {
  Sweep,
  SubmitSweepRequest,
  BenchReport,
  BenchReportBody,
  DatasetRows,
  DriftReport,
  Alias,
  SigningKeyInfo,
  VersionProvenance,
  EvaluateRequest,
  Evaluation,
  GateDecision,
  SetAliasRequest,
  ShadowStatus,
  ChatCompletionChunk,
  ChatCompletionRequest,
  JobKind,
  PullModelRequest,
  ApiKey,
  AuditEntry,
  AuditVerification,
  BackupListing,
  CreatedKey,
  CreatedTenant,
  CreateKeyRequest,
  CreateModelRequest,
  Dataset,
  DatasetFormat,
  HealthStatus,
  RepositoryIndexEntry,
  ServerMetadata,
  Job,
  JobEvent,
  JobStatus,
  JsonValue,
  Me,
  Model,
  ModelFileName,
  ModelVersion,
  ServerBackup,
  Plan,
  QuotaStatus,
  StoredPlan,
  TenantPlan,
  Invoice,
  InvoiceSummary,
  SubmitJobRequest,
  Tenant,
  TfServingClassifyRequest,
  TfServingClassifyResponse,
  TfServingPredictRequest,
  TfServingPredictResponse,
  UpdateModelRequest,
  UsageDimension,
  UsageRow,
  V2InferRequest,
  V2InferResponse,
  V2ModelMetadata,
  CostCard,
  QuantizationReport,
  QuantizeRequest,
} from './types.ts';
import { terminalJobStatuses } from './types.ts';

export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface AiaasClientOptions {
  /** e.g. `http://127.0.0.1:8080`; a trailing slash or path prefix (behind a proxy) is kept. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; omit for the unauthenticated routes (health). */
  apiKey?: string | undefined;
  /** Defaults to the global fetch; inject one for tests or custom agents. */
  fetch?: FetchFunction;
  /** Extra headers on every request (a proxy's auth, a tracing id). */
  headers?: Record<string, string>;
}

/** Bytes in memory, or a file (or, for model versions, a folder) on disk. */
export type UploadSource = Uint8Array | { path: string };

type QueryValue = string | number | boolean | undefined;

interface RequestOptions {
  query?: Record<string, QueryValue>;
  json?: unknown;
  /** A stream is sent chunked, never held whole (large model files). */
  body?: Uint8Array | FormData | string | ReadableStream<Uint8Array>;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

export interface SignalOption {
  signal?: AbortSignal | undefined;
}

function segment(value: string | number): string {
  return encodeURIComponent(String(value));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The contract wraps some single objects (`{dataset}`, `{job}`); accept the bare object too. */
function unwrap<T>(body: unknown, key: string): T {
  if (isRecord(body) && isRecord(body[key])) return body[key] as T;
  return body as T;
}

function listOf<T>(body: unknown, key: string): T[] {
  if (Array.isArray(body)) return body as T[];
  if (isRecord(body) && Array.isArray(body[key])) return body[key] as T[];
  return [];
}

/**
 * TF-Serving answers may hold bare `NaN`/`Infinity` tokens, which JSON.parse refuses: they are
 * turned into marker strings outside string literals and revived as numbers.
 */
export function parseJsonAllowingNonFinite(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    const marker = '\u0000aiaas-number:';
    let output = '';
    let inString = false;
    for (let index = 0; index < text.length; index++) {
      const character = text[index] as string;
      if (inString) {
        output += character;
        if (character === '\\') {
          output += text[index + 1] ?? '';
          index++;
        } else if (character === '"') inString = false;
        continue;
      }
      if (character === '"') {
        inString = true;
        output += character;
        continue;
      }
      const token = ['-Infinity', 'Infinity', 'NaN'].find((candidate) => text.startsWith(candidate, index));
      if (token !== undefined) {
        output += JSON.stringify(marker + token);
        index += token.length - 1;
        continue;
      }
      output += character;
    }
    if (output === text) throw error;
    return JSON.parse(output, (_key, value: unknown) =>
      typeof value === 'string' && value.startsWith(marker) ? Number(value.slice(marker.length)) : value,
    ) as JsonValue;
  }
}

class Transport {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetchFunction: FetchFunction;
  private readonly headers: Record<string, string>;

  constructor(options: AiaasClientOptions) {
    if (typeof options.baseUrl !== 'string' || options.baseUrl === '') throw new TypeError('AiaasClient needs a baseUrl');
    const parsed = new URL(options.baseUrl);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`baseUrl must be http or https, got ${options.baseUrl}`);
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.fetchFunction = options.fetch ?? ((input, init) => fetch(input, init));
    this.headers = options.headers ?? {};
  }

  url(path: string, query?: Record<string, QueryValue>): string {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) search.set(key, String(value));
    const text = search.toString();
    return `${this.baseUrl}${path}${text === '' ? '' : `?${text}`}`;
  }

  /** Sends the request; a non-2xx answer becomes an AiaasApiError, a failed connection an AiaasConnectionError. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    let body: RequestOptions['body'] = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    } else if (options.contentType !== undefined) {
      headers['content-type'] = options.contentType;
    }
    const url = this.url(path, options.query);
    let response: Response;
    try {
      response = await this.fetchFunction(url, {
        method,
        headers,
        // Node's fetch sends any Uint8Array; the DOM typings only admit ones backed by an ArrayBuffer.
        ...(body === undefined ? {} : { body: body as BodyInit }),
        // fetch requires this for a streamed request body (the response may start before it ends).
        ...(body instanceof ReadableStream ? ({ duplex: 'half' } as RequestInit) : {}),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (error) {
      if (options.signal?.aborted === true) throw options.signal.reason ?? error;
      throw new AiaasConnectionError(this.baseUrl, error);
    }
    if (!response.ok) throw apiErrorFrom(response.status, response.headers, await response.text().catch(() => ''));
    return response;
  }

  async json(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const response = await this.send(method, path, { ...options, headers: { accept: 'application/json', ...options.headers } });
    const text = await response.text();
    return text === '' ? undefined : parseJsonAllowingNonFinite(text);
  }
}

async function readSource(source: UploadSource): Promise<{ bytes: Uint8Array; fileName: string | undefined }> {
  if (source instanceof Uint8Array) return { bytes: source, fileName: undefined };
  return { bytes: new Uint8Array(await readFile(source.path)), fileName: basename(source.path) };
}

function blobOf(bytes: Uint8Array): Blob {
  // A copy into a plain ArrayBuffer: Blob refuses views over SharedArrayBuffer and keeps typings simple.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Blob([copy.buffer], { type: 'application/octet-stream' });
}

export interface UsageOptions {
  groupBy?: readonly UsageDimension[];
  from?: string;
  to?: string;
  model?: string;
  /** An API key id. */
  key?: string;
  version?: number;
  protocol?: string;
}

function usageQuery(options: UsageOptions): Record<string, string | undefined> {
  return {
    groupBy: options.groupBy?.join(','),
    from: options.from,
    to: options.to,
    model: options.model,
    key: options.key,
    version: options.version === undefined ? undefined : String(options.version),
    protocol: options.protocol,
  };
}

export class TenantsApi {
  constructor(private readonly transport: Transport) {}

  async create(name: string, options: SignalOption = {}): Promise<CreatedTenant> {
    return (await this.transport.json('POST', '/api/v1/tenants', { json: { name }, signal: options.signal })) as CreatedTenant;
  }

  async list(options: SignalOption = {}): Promise<Tenant[]> {
    return listOf<Tenant>(await this.transport.json('GET', '/api/v1/tenants', { signal: options.signal }), 'tenants');
  }

  /** Destroys the tenant's data key: its artifacts become unreadable for good. */
  async delete(id: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/tenants/${segment(id)}`, { signal: options.signal });
  }
}

export class KeysApi {
  constructor(private readonly transport: Transport) {}

  async create(request: CreateKeyRequest, options: SignalOption = {}): Promise<CreatedKey> {
    return unwrap<CreatedKey>(await this.transport.json('POST', '/api/v1/keys', { json: request, signal: options.signal }), 'apiKey');
  }

  async list(options: SignalOption = {}): Promise<ApiKey[]> {
    return listOf<ApiKey>(await this.transport.json('GET', '/api/v1/keys', { signal: options.signal }), 'keys');
  }

  async revoke(id: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/keys/${segment(id)}`, { signal: options.signal });
  }
}

export interface PushDatasetOptions extends SignalOption {
  name: string;
  /** The data file: CSV, JSON lines or IDX (images, for IDX pairs), optionally gzip-compressed. */
  file: UploadSource;
  /** The IDX labels file of an IDX pair; sends both as multipart `file` + `labels`. */
  labels?: UploadSource;
  /** Detected by the server when omitted. */
  format?: DatasetFormat;
  /** The label column of a CSV or JSON-lines file. */
  label?: string;
}

export class DatasetsApi {
  constructor(private readonly transport: Transport) {}

  async push(options: PushDatasetOptions): Promise<Dataset> {
    const query = { name: options.name, format: options.format, label: options.label };
    const file = await readSource(options.file);
    if (options.labels === undefined) {
      const body = await this.transport.json('POST', '/api/v1/datasets', {
        query,
        body: file.bytes,
        contentType: 'application/octet-stream',
        signal: options.signal,
      });
      return unwrap<Dataset>(body, 'dataset');
    }
    const labels = await readSource(options.labels);
    const form = new FormData();
    form.append('file', blobOf(file.bytes), file.fileName ?? 'images.idx');
    form.append('labels', blobOf(labels.bytes), labels.fileName ?? 'labels.idx');
    // fetch writes the multipart content type with its boundary itself.
    const body = await this.transport.json('POST', '/api/v1/datasets', { query, body: form, signal: options.signal });
    return unwrap<Dataset>(body, 'dataset');
  }

  async list(options: SignalOption = {}): Promise<Dataset[]> {
    return listOf<Dataset>(await this.transport.json('GET', '/api/v1/datasets', { signal: options.signal }), 'datasets');
  }

  async get(id: string, options: SignalOption = {}): Promise<Dataset> {
    return unwrap<Dataset>(await this.transport.json('GET', `/api/v1/datasets/${segment(id)}`, { signal: options.signal }), 'dataset');
  }

  async delete(id: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/datasets/${segment(id)}`, { signal: options.signal });
  }
}

export class ModelsApi {
  constructor(private readonly transport: Transport) {}

  async create(request: CreateModelRequest, options: SignalOption = {}): Promise<Model> {
    return unwrap<Model>(await this.transport.json('POST', '/api/v1/models', { json: request, signal: options.signal }), 'model');
  }

  async list(options: SignalOption = {}): Promise<Model[]> {
    return listOf<Model>(await this.transport.json('GET', '/api/v1/models', { signal: options.signal }), 'models');
  }

  async get(name: string, options: SignalOption = {}): Promise<Model> {
    return unwrap<Model>(await this.transport.json('GET', `/api/v1/models/${segment(name)}`, { signal: options.signal }), 'model');
  }

  async update(name: string, request: UpdateModelRequest, options: SignalOption = {}): Promise<Model> {
    return unwrap<Model>(await this.transport.json('PATCH', `/api/v1/models/${segment(name)}`, { json: request, signal: options.signal }), 'model');
  }

  /** Answers 409 ALIAS_IN_USE while aliases exist. */
  async delete(name: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/models/${segment(name)}`, { signal: options.signal });
  }
}

export interface UploadVersionOptions extends SignalOption {
  /**
   * Bytes of an `.onnx` file (or of a `.tar` when `contentType` says so), or a path: a folder is
   * packed as a saved-model `.tar`, a `.tar` file is sent as one, anything else as `.onnx`.
   */
  source: UploadSource;
  contentType?: 'application/octet-stream' | 'application/x-tar';
}

export class VersionsApi {
  constructor(private readonly transport: Transport) {}

  async upload(model: string, options: UploadVersionOptions): Promise<ModelVersion> {
    let bytes: Uint8Array | ReadableStream<Uint8Array>;
    let contentType = options.contentType ?? 'application/octet-stream';
    if (options.source instanceof Uint8Array) {
      bytes = options.source;
    } else if ((await stat(options.source.path)).isDirectory()) {
      bytes = await packDirectory(options.source.path);
      contentType = 'application/x-tar';
    } else if (options.contentType === 'application/x-tar' || (options.contentType === undefined && options.source.path.toLowerCase().endsWith('.tar'))) {
      bytes = new Uint8Array(await readFile(options.source.path));
      contentType = 'application/x-tar';
    } else {
      // An .onnx file streams from disk: the server stores it as it arrives, so neither side holds it whole.
      bytes = Readable.toWeb(createReadStream(options.source.path)) as ReadableStream<Uint8Array>;
    }
    const body = await this.transport.json('POST', `/api/v1/models/${segment(model)}/versions`, { body: bytes, contentType, signal: options.signal });
    return unwrap<ModelVersion>(body, 'version');
  }

  /**
   * Has the server download the file (`https://…` or `hf://OWNER/REPO/FILE`) in a pull job; the
   * job's events report the progress (`jobs.watch`) and its `resultVersion` is the new version.
   */
  async pull(model: string, request: PullModelRequest & SignalOption): Promise<Job> {
    const { signal, ...body } = request;
    return unwrap<Job>(await this.transport.json('POST', `/api/v1/models/${segment(model)}/versions`, { json: body, signal }), 'job');
  }

  async list(model: string, options: SignalOption = {}): Promise<ModelVersion[]> {
    return listOf<ModelVersion>(await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions`, { signal: options.signal }), 'versions');
  }

  /** `version` may also be an alias. */
  async get(model: string, version: number | string, options: SignalOption = {}): Promise<ModelVersion> {
    const body = await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}`, { signal: options.signal });
    return unwrap<ModelVersion>(body, 'version');
  }

  /** Answers 409 ALIAS_IN_USE while an alias points at the version. */
  async delete(model: string, version: number, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/models/${segment(model)}/versions/${segment(version)}`, { signal: options.signal });
  }

  /** The version's signed provenance record (verify it with `verifyRecord` and the server's signing key). */
  async provenance(model: string, version: number | string, options: SignalOption = {}): Promise<VersionProvenance> {
    return (await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/provenance`, { signal: options.signal })) as VersionProvenance;
  }

  /** Starts a quantize job making an int8 version of this one (`version` may be an alias). */
  async quantize(model: string, version: number | string, request: QuantizeRequest & SignalOption): Promise<Job> {
    const { signal, ...body } = request;
    return unwrap<Job>(await this.transport.json('POST', `/api/v1/models/${segment(model)}/versions/${segment(version)}/quantize`, { json: body, signal }), 'job');
  }

  /** The report of the quantize job that made this version (404 for any other version). */
  async quantization(model: string, version: number | string, options: SignalOption = {}): Promise<QuantizationReport> {
    return (await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/quantization`, { signal: options.signal })) as QuantizationReport;
  }

  /** The version's cost card; with `calibrate`, after a short calibration run on the server. */
  async cost(model: string, version: number | string, options: SignalOption & { calibrate?: boolean } = {}): Promise<CostCard> {
    const path = `/api/v1/models/${segment(model)}/versions/${segment(version)}/cost`;
    return (await (options.calibrate === true
      ? this.transport.json('POST', `${path}/calibrate`, { signal: options.signal })
      : this.transport.json('GET', path, { signal: options.signal }))) as CostCard;
  }

  async downloadFile(model: string, version: number | string, file: ModelFileName, options: SignalOption = {}): Promise<Uint8Array> {
    const response = await this.transport.send('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/files/${segment(file)}`, {
      signal: options.signal,
    });
    return new Uint8Array(await response.arrayBuffer());
  }

  /** The same file as a stream, for files too large to hold in memory (GGUF); errors are thrown before any byte. */
  async downloadFileStream(model: string, version: number | string, file: ModelFileName | 'model.gguf', options: SignalOption = {}): Promise<ReadableStream<Uint8Array>> {
    const response = await this.transport.send('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/files/${segment(file)}`, {
      signal: options.signal,
    });
    if (response.body === null) return new ReadableStream({ start: (controller) => controller.close() });
    return response.body;
  }
}

export class AliasesApi {
  constructor(private readonly transport: Transport) {}

  /** Creates the alias or moves it atomically. */
  async set(model: string, alias: string, version: number, options: SignalOption = {}): Promise<Alias> {
    const body = await this.transport.json('PUT', `/api/v1/models/${segment(model)}/aliases/${segment(alias)}`, { json: { version }, signal: options.signal });
    return unwrap<Alias>(body, 'alias');
  }

  async list(model: string, options: SignalOption = {}): Promise<Alias[]> {
    return listOf<Alias>(await this.transport.json('GET', `/api/v1/models/${segment(model)}/aliases`, { signal: options.signal }), 'aliases');
  }

  /**
   * Sets an alias's whole routing: `version` or a weighted `split`, a `shadow`, a promotion `gate`
   * (`force` for admins). While a gate's evaluations run the alias is unchanged and the answer is
   * `{status: 'evaluating', jobs}` (HTTP 202); a failing gate throws GATE_FAILED (409).
   */
  async route(
    model: string,
    alias: string,
    request: SetAliasRequest & SignalOption,
  ): Promise<{ status: 'applied'; alias: Alias; gate: { forced: boolean; decisions: GateDecision[] } | null } | { status: 'evaluating'; message: string; jobs: Job[] }> {
    const { signal, ...body } = request;
    const answer = (await this.transport.json('PUT', `/api/v1/models/${segment(model)}/aliases/${segment(alias)}`, { json: body, signal })) as Record<string, unknown>;
    if (answer.status === 'evaluating') return answer as { status: 'evaluating'; message: string; jobs: Job[] };
    return { status: 'applied', alias: answer.alias as Alias, gate: (answer.gate ?? null) as { forced: boolean; decisions: GateDecision[] } | null };
  }

  /** The live/shadow comparisons of an alias with a shadow version. */
  async shadow(model: string, alias: string, options: SignalOption = {}): Promise<ShadowStatus> {
    return (await this.transport.json('GET', `/api/v1/models/${segment(model)}/aliases/${segment(alias)}/shadow`, { signal: options.signal })) as ShadowStatus;
  }

  async delete(model: string, alias: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/models/${segment(model)}/aliases/${segment(alias)}`, { signal: options.signal });
  }
}

export class EvaluationsApi {
  constructor(private readonly transport: Transport) {}

  /** Queues an evaluation job; the report appears on the evaluation once the job succeeds. */
  async create(model: string, version: number | string, request: EvaluateRequest & SignalOption): Promise<Evaluation> {
    const { signal, ...body } = request;
    const answer = await this.transport.json('POST', `/api/v1/models/${segment(model)}/versions/${segment(version)}/evaluations`, { json: body, signal });
    return unwrap<Evaluation>(answer, 'evaluation');
  }

  async list(model: string, version: number | string, options: SignalOption = {}): Promise<Evaluation[]> {
    return listOf<Evaluation>(await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/evaluations`, { signal: options.signal }), 'evaluations');
  }

  async get(model: string, version: number | string, id: string, options: SignalOption = {}): Promise<Evaluation> {
    return (await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/evaluations/${segment(id)}`, { signal: options.signal })) as Evaluation;
  }
}

export interface WatchOptions extends SignalOption {
  /** Resume after this event id (as if reconnecting). */
  lastEventId?: string;
  /** Wait before reconnecting when the server sent no `retry:`; default 1000 ms. */
  reconnectDelayMs?: number;
  /** Consecutive failed reconnects before giving up; default 10. */
  maxReconnects?: number;
}

/** Events after which the server has nothing more to say about a job. */
export const terminalJobEvents: readonly string[] = ['job-finished', 'job-succeeded', 'job-failed', 'job-cancelled'];

function parseEventData(data: string): JsonValue {
  try {
    return JSON.parse(data) as JsonValue;
  } catch {
    return data;
  }
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError');
}

/** A 4xx answer (unknown job, bad key) will not change on retry; 429, 5xx and lost connections may. */
function isFinalApiError(error: unknown): boolean {
  return AiaasApiError.isInstance(error) && error.status < 500 && error.status !== 429;
}

export class JobsApi {
  constructor(private readonly transport: Transport) {}

  /** The spec and settings are validated before queueing: a bad spec is an INVALID_SPEC error here. */
  async submit(request: SubmitJobRequest, options: SignalOption = {}): Promise<Job> {
    return unwrap<Job>(await this.transport.json('POST', '/api/v1/jobs', { json: request, signal: options.signal }), 'job');
  }

  async get(id: string, options: SignalOption = {}): Promise<Job> {
    return unwrap<Job>(await this.transport.json('GET', `/api/v1/jobs/${segment(id)}`, { signal: options.signal }), 'job');
  }

  async list(options: SignalOption & { status?: JobStatus; kind?: JobKind } = {}): Promise<Job[]> {
    return listOf<Job>(await this.transport.json('GET', '/api/v1/jobs', { query: { status: options.status, kind: options.kind }, signal: options.signal }), 'jobs');
  }

  /** Answers 409 JOB_NOT_CANCELLABLE once the job has finished. */
  async cancel(id: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('POST', `/api/v1/jobs/${segment(id)}/cancel`, { signal: options.signal });
  }

  /**
   * The job's events as they happen, from its first (or after `lastEventId`), ending after the
   * terminal event. A dropped connection is resumed with `Last-Event-ID`, so no event is lost or
   * repeated; 4xx answers (unknown job, bad key) end the iteration with an AiaasApiError.
   */
  async *watch(id: string, options: WatchOptions = {}): AsyncGenerator<JobEvent, void, undefined> {
    const { signal } = options;
    const maxReconnects = options.maxReconnects ?? 10;
    let lastEventId = options.lastEventId;
    let retryMilliseconds = options.reconnectDelayMs ?? 1000;
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let connectionError: unknown;
      let response: Response | undefined;
      try {
        response = await this.transport.send('GET', `/api/v1/jobs/${segment(id)}/events`, {
          headers: { accept: 'text/event-stream', 'cache-control': 'no-cache', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
          signal,
        });
      } catch (error) {
        if (isAbort(error, signal) || isFinalApiError(error)) throw error;
        connectionError = error;
      }
      if (response !== undefined && response.body !== null) {
        const parser = new ServerSentEventParser(lastEventId);
        try {
          for await (const event of readServerSentEvents(response.body, parser)) {
            lastEventId = event.lastEventId;
            failures = 0;
            yield { type: event.type, id: event.lastEventId, data: parseEventData(event.data) };
            if (terminalJobEvents.includes(event.type)) return;
          }
        } catch (error) {
          if (isAbort(error, signal)) throw error;
          connectionError = error;
        } finally {
          lastEventId = parser.lastEventId;
          if (parser.retryMilliseconds !== undefined) retryMilliseconds = parser.retryMilliseconds;
        }
        if (connectionError === undefined) {
          // A clean end without a terminal event: the server may have restarted or closed a
          // finished job's stream early, so ask the job itself before reconnecting. A server still
          // restarting fails this check too: that is one more failed attempt, not the end.
          try {
            const job = await this.get(id, { signal });
            if (terminalJobStatuses.includes(job.status)) return;
          } catch (error) {
            if (isAbort(error, signal) || isFinalApiError(error)) throw error;
            connectionError = error;
          }
        }
      }
      failures++;
      if (failures > maxReconnects) {
        throw connectionError ?? new AiaasConnectionError(this.transport.baseUrl, new Error(`the event stream of job ${id} kept closing`));
      }
      await sleep(retryMilliseconds, undefined, signal === undefined ? undefined : { signal });
    }
  }
}

export class AuditApi {
  constructor(private readonly transport: Transport) {}

  async list(options: SignalOption & { after?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const body = await this.transport.json('GET', '/api/v1/audit', { query: { after: options.after, limit: options.limit }, signal: options.signal });
    return listOf<AuditEntry>(body, 'entries');
  }

  /** Walks the hash chain on the server; reports the first altered, deleted or reordered entry. */
  async verify(options: SignalOption = {}): Promise<AuditVerification> {
    return (await this.transport.json('GET', '/api/v1/audit/verify', { signal: options.signal })) as AuditVerification;
  }

  /** The whole log as JSON lines. */
  async export(options: SignalOption = {}): Promise<string> {
    const response = await this.transport.send('GET', '/api/v1/audit/export', { signal: options.signal, headers: { accept: 'application/x-ndjson' } });
    return await response.text();
  }
}

export class BackupsApi {
  constructor(private readonly transport: Transport) {}

  /** Operator admins: the server backs itself up into its configured backupDir (it picks the name). */
  async create(options: SignalOption = {}): Promise<ServerBackup> {
    return (await this.transport.json('POST', '/api/v1/admin/backups', { signal: options.signal })) as ServerBackup;
  }

  async list(options: SignalOption = {}): Promise<BackupListing[]> {
    return listOf<BackupListing>(await this.transport.json('GET', '/api/v1/admin/backups', { signal: options.signal }), 'backups');
  }
}

export class BillingApi {
  constructor(private readonly transport: Transport) {}

  /** Operator admins: every plan with its source and how many tenants are on it. */
  async listPlans(options: SignalOption = {}): Promise<StoredPlan[]> {
    return listOf<StoredPlan>(await this.transport.json('GET', '/api/v1/plans', { signal: options.signal }), 'plans');
  }

  /** Operator admins: creates or replaces the plan named in the document. */
  async putPlan(plan: Partial<Plan> & { name: string }, options: SignalOption = {}): Promise<StoredPlan> {
    return (await this.transport.json('PUT', `/api/v1/plans/${segment(plan.name)}`, { json: plan, signal: options.signal })) as StoredPlan;
  }

  async deletePlan(name: string, options: SignalOption = {}): Promise<void> {
    await this.transport.send('DELETE', `/api/v1/plans/${segment(name)}`, { signal: options.signal });
  }

  /** Operator admins: moves a tenant to a plan from now (null: no plan, unlimited). */
  async setTenantPlan(tenantId: string, plan: string | null, options: SignalOption = {}): Promise<TenantPlan> {
    return (await this.transport.json('PUT', `/api/v1/tenants/${segment(tenantId)}/plan`, { json: { plan }, signal: options.signal })) as TenantPlan;
  }

  async tenantPlan(tenantId: string, options: SignalOption = {}): Promise<TenantPlan> {
    return (await this.transport.json('GET', `/api/v1/tenants/${segment(tenantId)}/plan`, { signal: options.signal })) as TenantPlan;
  }

  /** Monthly invoices, newest first; `tenant` (operator admins) for another tenant's. */
  async invoices(options: SignalOption & { tenant?: string } = {}): Promise<InvoiceSummary[]> {
    return listOf<InvoiceSummary>(await this.transport.json('GET', '/api/v1/invoices', { query: { tenant: options.tenant }, signal: options.signal }), 'invoices');
  }

  async invoice(period: string, options: SignalOption & { tenant?: string } = {}): Promise<Invoice> {
    return (await this.transport.json('GET', `/api/v1/invoices/${segment(period)}`, { query: { tenant: options.tenant, format: 'json' }, signal: options.signal })) as Invoice;
  }

  /** The invoice as the server renders it: CSV, or a printable HTML page. */
  async invoiceText(period: string, format: 'csv' | 'html', options: SignalOption & { tenant?: string } = {}): Promise<string> {
    const response = await this.transport.send('GET', `/api/v1/invoices/${segment(period)}`, { query: { tenant: options.tenant, format }, signal: options.signal });
    return response.text();
  }

  /** The caller's tenant's plan, this month's counters and what is left of each cap. */
  async quota(options: SignalOption = {}): Promise<QuotaStatus> {
    return (await this.transport.json('GET', '/api/v1/quota', { signal: options.signal })) as QuotaStatus;
  }
}

export interface ModelTarget {
  /** A version number, or for V2 any alias (the server resolves aliases in the version segment). */
  version?: number | string;
}

export interface TfServingTarget {
  version?: number;
  /** An alias, e.g. `production`. */
  label?: string;
}

/** Drift scores and load-test reports of model versions (docs/quality.md). */
export class QualityApi {
  constructor(private readonly transport: Transport) {}

  /** Drift of a version (number or alias; the latest when omitted) against its baseline. */
  async drift(model: string, options: SignalOption & { version?: string | number } = {}): Promise<DriftReport> {
    const query = options.version === undefined ? {} : { version: String(options.version) };
    return (await this.transport.json('GET', `/api/v1/models/${segment(model)}/drift`, { query, signal: options.signal })) as DriftReport;
  }

  async addBenchReport(model: string, version: number | string, report: BenchReportBody, options: SignalOption = {}): Promise<BenchReport> {
    const body = await this.transport.json('POST', `/api/v1/models/${segment(model)}/versions/${segment(version)}/bench-reports`, { json: report, signal: options.signal });
    return unwrap<BenchReport>(body, 'benchReport');
  }

  /** Newest first. */
  async benchReports(model: string, version: number | string, options: SignalOption = {}): Promise<BenchReport[]> {
    return listOf<BenchReport>(await this.transport.json('GET', `/api/v1/models/${segment(model)}/versions/${segment(version)}/bench-reports`, { signal: options.signal }), 'benchReports');
  }

  /** Rows of a stored dataset (at most 1000 per call). */
  async datasetRows(datasetId: string, options: SignalOption & { offset?: number; limit?: number } = {}): Promise<DatasetRows> {
    return (await this.transport.json('GET', `/api/v1/datasets/${segment(datasetId)}/rows`, { query: { offset: options.offset, limit: options.limit }, signal: options.signal })) as DatasetRows;
  }
}

/** Hyperparameter sweeps (docs/quality.md "Hyperparameter search"). */
export class SweepsApi {
  constructor(private readonly transport: Transport) {}

  async submit(request: SubmitSweepRequest, options: SignalOption = {}): Promise<Sweep> {
    return unwrap<Sweep>(await this.transport.json('POST', '/api/v1/sweeps', { json: request, signal: options.signal }), 'sweep');
  }

  async get(id: string, options: SignalOption = {}): Promise<Sweep> {
    return unwrap<Sweep>(await this.transport.json('GET', `/api/v1/sweeps/${segment(id)}`, { signal: options.signal }), 'sweep');
  }

  async list(options: SignalOption = {}): Promise<Sweep[]> {
    return listOf<Sweep>(await this.transport.json('GET', '/api/v1/sweeps', { signal: options.signal }), 'sweeps');
  }

  async cancel(id: string, options: SignalOption = {}): Promise<Sweep> {
    return unwrap<Sweep>(await this.transport.json('POST', `/api/v1/sweeps/${segment(id)}/cancel`, { signal: options.signal }), 'sweep');
  }

  /** Registers the best trial's model as a version of the sweep's model (once). */
  async register(id: string, options: SignalOption = {}): Promise<Sweep> {
    return unwrap<Sweep>(await this.transport.json('POST', `/api/v1/sweeps/${segment(id)}/register`, { signal: options.signal }), 'sweep');
  }

  /**
   * The live leaderboard: the whole sweep after every change, ending when the sweep does. Each
   * event is complete, so a dropped connection is simply opened again.
   */
  async *watch(id: string, options: SignalOption = {}): AsyncGenerator<Sweep, void, undefined> {
    for (;;) {
      const response = await this.transport.send('GET', `/api/v1/sweeps/${segment(id)}/events`, { headers: { accept: 'text/event-stream' }, signal: options.signal });
      if (response.body === null) return;
      for await (const event of readServerSentEvents(response.body, new ServerSentEventParser())) {
        if (event.type === 'sweep-leaderboard') yield JSON.parse(event.data) as Sweep;
        if (event.type === 'sweep-finished') return;
      }
      const sweep = await this.get(id, options);
      if (sweep.status !== 'running') {
        yield sweep;
        return;
      }
      await sleep(1000, undefined, options.signal === undefined ? undefined : { signal: options.signal });
    }
  }
}

export class AiaasClient {
  readonly baseUrl: string;
  readonly tenants: TenantsApi;
  readonly keys: KeysApi;
  readonly datasets: DatasetsApi;
  readonly models: ModelsApi;
  readonly versions: VersionsApi;
  readonly aliases: AliasesApi;
  readonly evaluations: EvaluationsApi;
  readonly jobs: JobsApi;
  readonly audit: AuditApi;
  readonly backups: BackupsApi;
  readonly billing: BillingApi;
  readonly quality: QualityApi;
  readonly sweeps: SweepsApi;
  private readonly transport: Transport;

  constructor(options: AiaasClientOptions) {
    this.transport = new Transport(options);
    this.baseUrl = this.transport.baseUrl;
    this.tenants = new TenantsApi(this.transport);
    this.keys = new KeysApi(this.transport);
    this.datasets = new DatasetsApi(this.transport);
    this.models = new ModelsApi(this.transport);
    this.versions = new VersionsApi(this.transport);
    this.aliases = new AliasesApi(this.transport);
    this.evaluations = new EvaluationsApi(this.transport);
    this.jobs = new JobsApi(this.transport);
    this.audit = new AuditApi(this.transport);
    this.backups = new BackupsApi(this.transport);
    this.billing = new BillingApi(this.transport);
    this.quality = new QualityApi(this.transport);
    this.sweeps = new SweepsApi(this.transport);
  }

  /** `GET /api/v1/signing-key`: the server's provenance signing key (public; no API key needed). */
  async signingKey(options: SignalOption = {}): Promise<SigningKeyInfo> {
    return (await this.transport.json('GET', '/api/v1/signing-key', { signal: options.signal })) as SigningKeyInfo;
  }

  /** The tenant and key this client authenticates as. */
  async me(options: SignalOption = {}): Promise<Me> {
    return (await this.transport.json('GET', '/api/v1/me', { signal: options.signal })) as Me;
  }

  /**
   * The usage ledger, summed per group (default model and day). `from` and `to` are `YYYY-MM-DD`
   * (a `to` day is included) or ISO 8601 instants (`to` exclusive).
   */
  async usage(options: SignalOption & UsageOptions = {}): Promise<UsageRow[]> {
    const body = await this.transport.json('GET', '/api/v1/usage', { query: usageQuery(options), signal: options.signal });
    return listOf<UsageRow>(body, 'usage');
  }

  /** The same report as CSV: a header row, then one row per group. */
  async usageCsv(options: SignalOption & UsageOptions = {}): Promise<string> {
    const response = await this.transport.send('GET', '/api/v1/usage', { query: usageQuery(options), signal: options.signal, headers: { accept: 'text/csv' } });
    return await response.text();
  }

  /** `GET /healthz`: the process is up. */
  async health(options: SignalOption = {}): Promise<HealthStatus> {
    return (await this.transport.json('GET', '/healthz', { signal: options.signal })) as HealthStatus;
  }

  /** `GET /v2`: the KServe V2 server metadata, `{name, version, extensions}`. */
  async serverMetadata(options: SignalOption = {}): Promise<ServerMetadata> {
    return (await this.transport.json('GET', '/v2', { signal: options.signal })) as ServerMetadata;
  }

  /** `POST /v2/repository/index` (Triton): the caller's model versions and whether each is loaded (`READY`). */
  async repositoryIndex(options: SignalOption & { ready?: boolean } = {}): Promise<RepositoryIndexEntry[]> {
    return (await this.transport.json('POST', '/v2/repository/index', { json: options.ready === undefined ? {} : { ready: options.ready }, signal: options.signal })) as RepositoryIndexEntry[];
  }

  /** `GET /readyz`: database and artifact store reachable. A 503 answers `ready: false` rather than throwing. */
  async ready(options: SignalOption = {}): Promise<{ ready: boolean; status: string }> {
    try {
      const body = (await this.transport.json('GET', '/readyz', { signal: options.signal })) as HealthStatus | undefined;
      return { ready: true, status: body?.status ?? 'ready' };
    } catch (error) {
      if (AiaasApiError.isInstance(error) && error.status === 503) return { ready: false, status: error.message };
      throw error;
    }
  }

  /**
   * `POST /v1/chat/completions` with `stream: true`: the answer's chunks as they are generated,
   * ending at `data: [DONE]`. Aborting the signal stops the generation on the server too.
   */
  async *chatCompletionStream(request: ChatCompletionRequest, options: SignalOption = {}): AsyncGenerator<ChatCompletionChunk, void, undefined> {
    const response = await this.transport.send('POST', '/v1/chat/completions', {
      json: { ...request, stream: true, stream_options: { include_usage: true } },
      headers: { accept: 'text/event-stream' },
      signal: options.signal,
    });
    if (response.body === null) return;
    for await (const event of readServerSentEvents(response.body, new ServerSentEventParser())) {
      if (event.data === '[DONE]') return;
      const chunk = parseJsonAllowingNonFinite(event.data);
      if (isRecord(chunk) && isRecord(chunk.error)) throw apiErrorFrom(response.status >= 400 ? response.status : 500, response.headers, event.data);
      if (isRecord(chunk) && Array.isArray(chunk.choices)) yield chunk as unknown as ChatCompletionChunk;
    }
  }

  private v2Path(model: string, target: ModelTarget): string {
    const base = `/v2/models/${segment(model)}`;
    return target.version === undefined ? base : `${base}/versions/${segment(target.version)}`;
  }

  /** KServe V2 `infer`; `version` may be a number or an alias. */
  async inferV2(model: string, request: V2InferRequest, options: ModelTarget & SignalOption = {}): Promise<V2InferResponse> {
    return (await this.transport.json('POST', `${this.v2Path(model, options)}/infer`, { json: request, signal: options.signal })) as V2InferResponse;
  }

  /** KServe V2 model metadata: platform and input/output tensors. */
  async v2ModelMetadata(model: string, options: ModelTarget & SignalOption = {}): Promise<V2ModelMetadata> {
    return (await this.transport.json('GET', this.v2Path(model, options), { signal: options.signal })) as V2ModelMetadata;
  }

  /** TF-Serving REST `:predict`, by version, by label (alias), or the latest version. */
  async predictTfServing(model: string, body: TfServingPredictRequest, options: TfServingTarget & SignalOption = {}): Promise<TfServingPredictResponse> {
    return (await this.transport.json('POST', `${tfServingPath(model, options, 'predictTfServing')}:predict`, { json: body, signal: options.signal })) as TfServingPredictResponse;
  }

  /** TF-Serving REST `:classify`: feature dicts in, `[class name, score]` per class out (docs/inference.md). */
  async classifyTfServing(model: string, body: TfServingClassifyRequest, options: TfServingTarget & SignalOption = {}): Promise<TfServingClassifyResponse> {
    return (await this.transport.json('POST', `${tfServingPath(model, options, 'classifyTfServing')}:classify`, { json: body, signal: options.signal })) as TfServingClassifyResponse;
  }
}

/** `/tfserving/v1/models/NAME[/versions/V | /labels/L]`, before the `:verb`. */
function tfServingPath(model: string, options: TfServingTarget, method: string): string {
  if (options.version !== undefined && options.label !== undefined) throw new TypeError(`${method} takes a version or a label, not both`);
  let path = `/tfserving/v1/models/${segment(model)}`;
  if (options.version !== undefined) path += `/versions/${segment(options.version)}`;
  else if (options.label !== undefined) path += `/labels/${segment(options.label)}`;
  return path;
}

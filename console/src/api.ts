/**
 * The console's only way to the server: every call carries the API key as a Bearer header. The key
 * lives in sessionStorage (gone with the tab), never in a URL, a cookie or a log line.
 */
const storageKey = 'aiaas.apiKey';

export function storedKey(): string | undefined {
  return sessionStorage.getItem(storageKey) ?? undefined;
}

export function storeKey(key: string): void {
  sessionStorage.setItem(storageKey, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(storageKey);
}

/** An error answer of the API: its stable code, message and details (docs/api.md "Errors"). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Called when the server refuses the key (401): the app goes back to the login page. */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

function headers(key: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...extra };
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: unknown };
    const error = body.error;
    if (typeof error === 'string') return new ApiError(response.status, response.headers.get('x-aiaas-error-code') ?? 'ERROR', error);
    if (typeof error === 'object' && error !== null) {
      const { code, message, details } = error as { code?: unknown; message?: unknown; details?: unknown };
      return new ApiError(
        response.status,
        typeof code === 'string' ? code : 'ERROR',
        typeof message === 'string' ? message : text,
        typeof details === 'object' && details !== null ? (details as Record<string, unknown>) : {},
      );
    }
  } catch {
    // Not JSON: the text itself says what went wrong.
  }
  return new ApiError(response.status, 'HTTP_' + response.status, text.slice(0, 300) || response.statusText);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  /** Use this key instead of the stored one (the login check). */
  key?: string;
  signal?: AbortSignal;
  accept?: string;
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const key = options.key ?? storedKey();
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers: headers(key, {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.accept === undefined ? {} : { accept: options.accept }),
    }),
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && options.key === undefined) onUnauthorized?.();
    throw error;
  }
  return response;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export interface ServerSentEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Reads a text/event-stream answer of fetch() (EventSource cannot send the Authorization header),
 * calling `onEvent` per event until the server ends the stream or `signal` aborts it.
 */
export async function readEventStream(response: Response, onEvent: (event: ServerSentEvent) => void): Promise<void> {
  if (response.body === null) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let current: ServerSentEvent = { event: 'message', data: '' };
  let hasData = false;
  const dispatchLine = (line: string) => {
    if (line === '') {
      if (hasData) onEvent({ ...current, data: current.data.endsWith('\n') ? current.data.slice(0, -1) : current.data });
      current = { event: 'message', data: '' };
      hasData = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      current.data += value + '\n';
      hasData = true;
    } else if (field === 'event') current.event = value;
    else if (field === 'id') current.id = value;
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? '';
    for (const line of lines) dispatchLine(line);
  }
  if (buffer !== '') dispatchLine(buffer);
  dispatchLine('');
}

/** An upload with progress (fetch has no upload progress; XMLHttpRequest does). */
export function uploadWithProgress<T>(path: string, body: Blob | FormData, onProgress: (loaded: number, total: number) => void, signal?: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    const key = storedKey();
    if (key !== undefined) xhr.setRequestHeader('authorization', `Bearer ${key}`);
    if (body instanceof Blob) xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.withCredentials = false;
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : 0);
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'The upload failed: the server could not be reached.'));
    xhr.onabort = () => reject(new ApiError(0, 'ABORTED', 'The upload was cancelled.'));
    xhr.onload = async () => {
      const response = new Response(xhr.responseText, { status: xhr.status, headers: { 'content-type': xhr.getResponseHeader('content-type') ?? 'text/plain' } });
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText) as T);
      else {
        if (xhr.status === 401) onUnauthorized?.();
        reject(await errorOf(response));
      }
    };
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(body);
  });
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message}${error.code.startsWith('HTTP_') ? '' : ` (${error.code})`}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

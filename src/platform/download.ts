/**
 * Downloads one URL to a file, streamed (never the whole file in memory), for model pulls:
 * - the host and every address it resolves to are checked against the pull policy, the socket
 *   connects to the checked address (so DNS rebinding cannot swap it), and each redirect (followed
 *   by hand, at most `maxRedirects`) is checked again;
 * - a connection that drops mid-body is resumed with `Range: bytes=N-` (a 206 whose Content-Range
 *   starts at N continues the file; a 200 starts it over);
 * - the sha256 of the bytes is computed as they are written.
 */
import { createHash, type Hash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { open, type FileHandle } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { AiaasError } from '../errors.ts';
import { checkAddresses, checkScheme, checkUrl, normalizeHost, type PullPolicy } from './pull-policy.ts';

export interface DownloadOptions {
  policy: PullPolicy;
  /** Larger files fail the download (checked on Content-Length and while streaming). */
  maxBytes: number;
  signal: AbortSignal;
  /** Called after each chunk is written; the caller decides how often to report. */
  onProgress?: (bytesDone: number, bytesTotal: number | undefined) => void;
  /** Called before each Range request that continues a dropped download. */
  onResume?: (fromByte: number) => void;
  /** Resumes after dropped connections before giving up (default 5). */
  maxResumes?: number;
  /** Milliseconds without a byte before the connection counts as dropped (default 60 s). */
  idleTimeoutMs?: number;
}

export interface DownloadResult {
  bytes: number;
  /** Lowercase hex. */
  sha256: string;
  /** How many times a dropped connection was resumed with a Range request. */
  resumes: number;
  /** The URL the bytes came from, after redirects. */
  finalUrl: string;
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);

function failed(message: string, details: Record<string, unknown> = {}, cause?: unknown): AiaasError {
  return new AiaasError('PULL_FAILED', message, { details, ...(cause === undefined ? {} : { cause }) });
}

/** A connection that ended before the body did: worth a Range retry. */
class DroppedConnection extends Error {}

/** Backs off before a retry (0.2 s, 0.4 s, … at most 5 s); the signal ends the wait. */
function pause(attempt: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, Math.min(5000, 100 * 2 ** attempt));
    function done(): void {
      signal.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted(): void {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal.addEventListener('abort', aborted, { once: true });
  });
}

/** Resolves once, checks every address, and hands the socket exactly the checked one. */
async function pinnedLookup(policy: PullPolicy, url: URL): Promise<LookupFunction> {
  const host = normalizeHost(url.hostname);
  let addresses: { address: string; family: number }[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch (error) {
    throw failed(`cannot resolve ${host}`, { host }, error);
  }
  checkAddresses(policy, url, addresses.map((entry) => entry.address));
  const chosen = addresses[0]!;
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options.all === true) callback(null, [{ address: chosen.address, family: chosen.family }]);
    else callback(null, chosen.address, chosen.family);
  }) as unknown as LookupFunction;
}

function get(url: URL, lookupFunction: LookupFunction, headers: Record<string, string>, signal: AbortSignal, idleTimeoutMs: number): Promise<IncomingMessage> {
  const options: RequestOptions = {
    method: 'GET',
    headers: { 'user-agent': 'aiaas-model-pull', 'accept-encoding': 'identity', ...headers },
    lookup: lookupFunction,
    signal,
    timeout: idleTimeoutMs,
    // A fresh connection per request: a pooled socket could have been opened to another address.
    agent: false,
  };
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, resolve);
    request.on('timeout', () => request.destroy(new DroppedConnection('no response')));
    request.on('error', reject);
    request.end();
  });
}

/** The first hop's response after following (and checking) redirects; the body is unread. */
async function follow(start: URL, policy: PullPolicy, headers: Record<string, string>, signal: AbortSignal, idleTimeoutMs: number): Promise<{ response: IncomingMessage; url: URL }> {
  let url = start;
  for (let hop = 0; ; hop += 1) {
    checkScheme(url);
    // Addresses first: a redirect to an internal name reports the address it would have reached.
    const pinned = await pinnedLookup(policy, url);
    checkUrl(policy, url);
    const response = await get(url, pinned, headers, signal, idleTimeoutMs);
    if (!redirectStatuses.has(response.statusCode ?? 0)) return { response, url };
    response.resume();
    const location = response.headers.location;
    if (location === undefined) throw failed(`${url.host} answered ${response.statusCode} without a Location`, { status: response.statusCode });
    if (hop >= policy.maxRedirects) throw failed(`more than ${policy.maxRedirects} redirects (pullMaxRedirects)`, { redirects: hop + 1 });
    url = new URL(location, url);
  }
}

/** `bytes START-END/TOTAL` → start and total (total undefined for `*`). */
function parseContentRange(value: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[3] === '*' ? undefined : Number(match[3]) };
}

async function writeBody(response: IncomingMessage, file: FileHandle, state: { written: number; hash: Hash }, options: DownloadOptions, total: number | undefined): Promise<void> {
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      if (state.written + chunk.byteLength > options.maxBytes) {
        response.destroy();
        throw new AiaasError('PAYLOAD_TOO_LARGE', `the file is larger than the limit of ${options.maxBytes} bytes (maxModelBytes)`, { details: { limit: options.maxBytes } });
      }
      await file.write(chunk, 0, chunk.byteLength, state.written);
      state.hash.update(chunk);
      state.written += chunk.byteLength;
      options.onProgress?.(state.written, total);
    }
  } catch (error) {
    if (AiaasError.isInstance(error) || options.signal.aborted) throw error;
    throw new DroppedConnection('the connection dropped mid-body');
  }
  // Node reports a body cut short of its Content-Length as a normal end on some paths; count it.
  if (total !== undefined && state.written < total) throw new DroppedConnection('the body ended early');
}

/** Downloads `source` into `destination` (created or truncated), resuming dropped connections. */
export async function downloadToFile(source: URL, destination: string, options: DownloadOptions): Promise<DownloadResult> {
  const maxResumes = options.maxResumes ?? 5;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const file = await open(destination, 'w', 0o600);
  const state = { written: 0, hash: createHash('sha256') };
  let resumes = 0;
  let total: number | undefined;
  try {
    for (;;) {
      options.signal.throwIfAborted();
      const resuming = state.written > 0;
      let response: IncomingMessage;
      let finalUrl: URL;
      try {
        ({ response, url: finalUrl } = await follow(source, options.policy, resuming ? { range: `bytes=${state.written}-` } : {}, options.signal, idleTimeoutMs));
      } catch (error) {
        if (AiaasError.isInstance(error) || options.signal.aborted || resumes >= maxResumes) throw AiaasError.isInstance(error) || options.signal.aborted ? error : failed(`cannot reach ${source.host}`, { host: source.host }, error);
        resumes += 1;
        await pause(resumes, options.signal);
        continue;
      }
      const status = response.statusCode ?? 0;
      if (status === 206 && resuming) {
        const range = parseContentRange(response.headers['content-range']);
        if (range === undefined || range.start !== state.written) {
          response.destroy();
          throw failed(`${finalUrl.host} answered the resume request with Content-Range "${response.headers['content-range'] ?? ''}", not starting at byte ${state.written}`);
        }
        total = range.total ?? total;
      } else if (status === 200) {
        // A fresh (or non-resumable) answer: the file starts over.
        if (resuming) {
          await file.truncate(0);
          state.written = 0;
          state.hash = createHash('sha256');
        }
        const length = response.headers['content-length'];
        total = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
      } else {
        response.resume();
        throw failed(`${finalUrl.host} answered ${status}`, { status, url: `${finalUrl.origin}${finalUrl.pathname}` });
      }
      if (total !== undefined && total > options.maxBytes) {
        response.destroy();
        throw new AiaasError('PAYLOAD_TOO_LARGE', `the file is ${total} bytes; the limit is ${options.maxBytes} (maxModelBytes)`, { details: { limit: options.maxBytes, bytes: total } });
      }
      try {
        await writeBody(response, file, state, options, total);
      } catch (error) {
        if (!(error instanceof DroppedConnection) || options.signal.aborted) throw error;
        if (resumes >= maxResumes) throw failed(`the connection to ${finalUrl.host} dropped ${resumes + 1} times; giving up at byte ${state.written}`, { bytes: state.written });
        resumes += 1;
        await pause(resumes, options.signal);
        if (state.written > 0) options.onResume?.(state.written);
        continue;
      }
      await file.sync();
      return { bytes: state.written, sha256: state.hash.digest('hex'), resumes, finalUrl: finalUrl.href };
    }
  } finally {
    await file.close();
  }
}

/**
 * Runs a module in a child Node process that can use as much memory as it likes until it crosses a
 * limit, and then dies alone: the server process keeps serving. Used for everything that builds or
 * trains a network from a client's spec (training jobs, saved-model checks).
 *
 * Messages are plain objects sent over Node's IPC channel (advanced serialization, so NaN and
 * undefined survive as they did between worker threads). Every Uint8Array inside a message is
 * taken out and streamed over a separate pipe as raw bytes, so a multi-hundred-megabyte dataset or
 * checkpoint is neither encoded nor deserialized in one go on the server's main thread; the
 * receiver copies it chunk by chunk into one buffer of the announced size.
 *
 * Memory limit, honestly: `--max-old-space-size` caps only the JavaScript heap, and ONNX Runtime
 * allocates natively, so the parent also samples the child's resident set from /proc/<pid>/status
 * every `memoryPollMs` and SIGKILLs it above `memoryLimitBytes`. Growth within one poll interval
 * can overshoot the limit before the kill; where /proc is missing only the heap cap applies.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';

const mebibyte = 1024 * 1024;

/** Resident set size of a process from /proc (Linux); undefined where /proc is unavailable. */
export async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** The module next to the caller named `name`, with the caller's extension: `.ts` from the sources, `.js` from dist/. */
export function siblingModule(importMetaUrl: string, name: string): URL {
  return new URL(`./${name}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl);
}

// ---- messages with their byte payloads taken out

const payloadMarker = '__aiaasPayload';

/** What crosses the IPC channel: the message with each Uint8Array replaced by its index, and their lengths. */
interface Envelope {
  message: unknown;
  payloadLengths: number[];
  /** Sent once by the child when it listens; the parent holds its messages until then. */
  ready?: true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function extractPayloads(value: unknown, payloads: Uint8Array[]): unknown {
  if (value instanceof Uint8Array) {
    payloads.push(value);
    return { [payloadMarker]: payloads.length - 1 };
  }
  if (Array.isArray(value)) return value.map((item) => extractPayloads(item, payloads));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, extractPayloads(item, payloads)]));
  return value;
}

function restorePayloads(value: unknown, payloads: readonly Uint8Array[]): unknown {
  if (Array.isArray(value)) return value.map((item) => restorePayloads(item, payloads));
  if (isPlainObject(value)) {
    const index = value[payloadMarker];
    if (typeof index === 'number' && Object.keys(value).length === 1) return payloads[index];
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, restorePayloads(item, payloads)]));
  }
  return value;
}

interface ReadRequest {
  target: Uint8Array;
  filled: number;
  resolve: (bytes: Uint8Array) => void;
  reject: (error: Error) => void;
}

/** Serves fixed-length reads, in order, from a byte stream; each read fills one buffer as chunks arrive. */
class PayloadReader {
  readonly #chunks: Uint8Array[] = [];
  #offset = 0;
  readonly #requests: ReadRequest[] = [];
  #ended = false;

  constructor(stream: Readable) {
    stream.on('data', (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#pump();
    });
    const end = () => {
      this.#ended = true;
      this.#pump();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  read(length: number): Promise<Uint8Array> {
    // Uninitialised: every byte is overwritten before the read resolves, and zero-filling hundreds of
    // megabytes would stall the event loop for tens of milliseconds.
    const buffer = Buffer.allocUnsafeSlow(length);
    const target = new Uint8Array(buffer.buffer, buffer.byteOffset, length);
    return new Promise((resolve, reject) => {
      this.#requests.push({ target, filled: 0, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#requests.length > 0) {
      const request = this.#requests[0]!;
      while (request.filled < request.target.length && this.#chunks.length > 0) {
        const chunk = this.#chunks[0]!;
        const take = Math.min(chunk.length - this.#offset, request.target.length - request.filled);
        request.target.set(chunk.subarray(this.#offset, this.#offset + take), request.filled);
        request.filled += take;
        this.#offset += take;
        if (this.#offset === chunk.length) {
          this.#chunks.shift();
          this.#offset = 0;
        }
      }
      if (request.filled < request.target.length) {
        if (this.#ended) {
          for (const pending of this.#requests.splice(0)) pending.reject(new Error('the other process closed its byte stream'));
        }
        return;
      }
      this.#requests.shift();
      request.resolve(request.target);
    }
  }
}

/** Writes a message: the envelope over IPC, its payloads as raw bytes on `bytes`. */
function sendEnvelope(send: (envelope: Envelope, callback: (error: Error | null) => void) => void, bytes: NodeJS.WritableStream, message: unknown): Promise<void> {
  const payloads: Uint8Array[] = [];
  const envelope: Envelope = { message: extractPayloads(message, payloads), payloadLengths: payloads.map((payload) => payload.byteLength) };
  const sent = new Promise<void>((resolve, reject) => send(envelope, (error) => (error ? reject(error) : resolve())));
  const written = payloads.map((payload) => new Promise<void>((resolve, reject) => bytes.write(payload, (error) => (error ? reject(error) : resolve()))));
  return Promise.all([sent, ...written]).then(() => undefined);
}

/** Receives envelopes in order; a message is delivered once all its payload bytes have arrived. */
function createReceiver(reader: PayloadReader, deliver: (message: unknown) => void, onReady: () => void): { receive(envelope: Envelope): void; drained(): Promise<void> } {
  let chain = Promise.resolve();
  return {
    receive(envelope) {
      if (envelope.ready === true) return onReady();
      const reads = envelope.payloadLengths.map((length) => reader.read(length));
      chain = chain
        .then(async () => deliver(restorePayloads(envelope.message, await Promise.all(reads))))
        // A process killed mid-payload leaves its message incomplete: it is dropped, the exit says why.
        .catch(() => undefined);
    },
    drained: () => chain,
  };
}

// ---- parent side

export interface IsolatedProcessOptions {
  /** Resident-set limit in bytes, native memory included; above it the child is killed. */
  memoryLimitBytes: number;
  /** How often the child's RSS is sampled (default 100 ms). */
  memoryPollMs?: number;
  /** Wall-clock limit; none by default. */
  timeoutMs?: number;
  /** Called with each chunk of the child's stdout and stderr (e.g. to log it). */
  onOutput?: (text: string) => void;
}

export interface IsolatedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the parent killed the child for crossing a limit. */
  limit: 'memory' | 'time' | undefined;
  /** Highest RSS the polls saw (0 where /proc is unavailable). */
  peakResidentBytes: number;
  /** The last 2,000 characters the child wrote to stdout and stderr. */
  outputTail: string;
}

export interface IsolatedProcess<Outgoing, Incoming> {
  readonly pid: number | undefined;
  /** Resolves once the child has exited and every complete message it sent has been delivered. */
  readonly exited: Promise<IsolatedExit>;
  onMessage(handler: (message: Incoming) => void): void;
  /** Queued until the child listens; bytes inside the message travel on the byte pipe. */
  send(message: Outgoing): void;
  kill(): void;
}

const tsxEntry = fileURLToPath(new URL('./tsx-child-entry.mjs', import.meta.url));

/**
 * The server's environment without its own settings: `AIAAS_MASTER_KEY`, `AIAAS_SERVER_SECRET` and
 * `AIAAS_BOOTSTRAP_KEY` are secrets no child needs. NODE_OPTIONS may carry test-runner or loader
 * flags the child has no use for.
 */
function childEnvironment(): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('AIAAS_')) environment[name] = value;
  return { ...environment, NODE_OPTIONS: '' };
}

/**
 * Starts `moduleUrl` (see `siblingModule`) in a child process under the given limits. From the
 * TypeScript sources the child first registers tsx (tsx-child-entry.mjs); from dist/ it runs the
 * compiled module directly.
 */
export function forkIsolated<Outgoing, Incoming>(moduleUrl: URL, options: IsolatedProcessOptions): IsolatedProcess<Outgoing, Incoming> {
  const fromSources = moduleUrl.pathname.endsWith('.ts');
  // Half the limit for the JavaScript heap: the rest is for typed arrays and native allocations.
  const heapMegabytes = Math.max(64, Math.floor(options.memoryLimitBytes / mebibyte / 2));
  const child: ChildProcess = fork(fromSources ? tsxEntry : fileURLToPath(moduleUrl), fromSources ? [moduleUrl.href] : [], {
    execArgv: [`--max-old-space-size=${heapMegabytes}`],
    serialization: 'advanced',
    // fd 0: bytes to the child, 1 and 2: its output, 3: IPC, 4: bytes from the child.
    stdio: ['pipe', 'pipe', 'pipe', 'ipc', 'pipe'],
    env: childEnvironment(),
  });
  const toChild = child.stdin!;
  toChild.on('error', () => undefined);
  const fromChild = child.stdio[4] as Readable;

  let handler: ((message: Incoming) => void) | undefined;
  const early: Incoming[] = [];
  let ready = false;
  const queued: Outgoing[] = [];
  const write = (message: Outgoing) => {
    if (!child.connected) return;
    sendEnvelope((envelope, callback) => child.send(envelope, callback), toChild, message).catch(() => undefined);
  };
  const receiver = createReceiver(
    new PayloadReader(fromChild),
    (message) => (handler ? handler(message as Incoming) : early.push(message as Incoming)),
    () => {
      ready = true;
      for (const message of queued.splice(0)) write(message);
    },
  );
  child.on('message', (envelope: Envelope) => receiver.receive(envelope));

  let outputTail = '';
  const output = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    outputTail = (outputTail + text).slice(-2000);
    options.onOutput?.(text);
  };
  child.stdout!.on('data', output);
  child.stderr!.on('data', output);

  let limit: IsolatedExit['limit'];
  let peakResidentBytes = 0;
  const stop = (reason: IsolatedExit['limit']) => {
    limit ??= reason;
    child.kill('SIGKILL');
  };
  const poll = setInterval(() => {
    if (child.pid === undefined) return;
    void residentBytes(child.pid).then((rss) => {
      if (rss === undefined) return;
      peakResidentBytes = Math.max(peakResidentBytes, rss);
      if (rss > options.memoryLimitBytes && child.exitCode === null && child.signalCode === null) stop('memory');
    });
  }, options.memoryPollMs ?? 100);
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => stop('time'), options.timeoutMs);

  const exited = new Promise<IsolatedExit>((resolve) => {
    let done = false;
    const finish = async (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      await receiver.drained();
      resolve({ code, signal, limit, peakResidentBytes, outputTail });
    };
    child.on('close', (code, signal) => void finish(code, signal));
    child.on('error', () => void finish(child.exitCode, child.signalCode));
  });

  return {
    pid: child.pid,
    exited,
    onMessage(next) {
      handler = next;
      for (const message of early.splice(0)) next(message);
    },
    send(message) {
      if (ready) write(message);
      else queued.push(message);
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

// ---- one-shot scripts: a plain-JavaScript child that prints one JSON line and exits

export interface ScriptRunOptions {
  /** The child's script: plain JavaScript (.mjs), so it runs under bare `node` whatever loader the parent uses. */
  script: string;
  arguments: readonly string[];
  /** Registers tsx in the child, so a script started from the sources can import TypeScript modules beside it. */
  importTypeScript?: boolean;
  /** The child's working directory (a private directory, so nothing it resolves lands in the server's). */
  cwd?: string;
  timeoutMs: number;
  /** Resident-set limit in bytes, native memory included; the JavaScript heap is capped at half. */
  memoryLimitBytes: number;
  /** How often the child's RSS is sampled (default 50 ms). */
  memoryPollMs?: number;
}

/** How a script run ended: its reply (the last stdout line, parsed), a limit it crossed, or a crash. */
export type ScriptOutcome =
  | { kind: 'replied'; reply: Record<string, unknown> }
  | { kind: 'killed'; limit: 'memory' | 'time' }
  | { kind: 'crashed'; how: string; lastErrorLine: string; errorOutput: string }
  | { kind: 'not-started'; message: string };

/** A reply line is small (a signature, a chat template of at most 1 MiB); more output is not kept. */
const maxReplyCharacters = 8 * mebibyte;

function typeScriptLoaderArguments(): string[] {
  return ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];
}

/**
 * Runs a script that reads its arguments, does one thing (open a model, read a header) and writes
 * one JSON line, in a child process under a time and an RSS limit (sampled from /proc, as in
 * `forkIsolated`), with the server's environment minus its AIAAS_* secrets. Every model-file
 * validator uses it; each maps the outcome to its own messages.
 */
export async function runScriptInChild(options: ScriptRunOptions): Promise<ScriptOutcome> {
  const heapMegabytes = Math.max(64, Math.floor(options.memoryLimitBytes / mebibyte / 2));
  const child = spawn(
    process.execPath,
    [`--max-old-space-size=${heapMegabytes}`, ...(options.importTypeScript === true ? typeScriptLoaderArguments() : []), options.script, ...options.arguments],
    { stdio: ['pipe', 'pipe', 'pipe'], ...(options.cwd === undefined ? {} : { cwd: options.cwd }), env: childEnvironment() },
  );
  return await new Promise<ScriptOutcome>((resolve) => {
    let stdout = '';
    let stderr = '';
    let limit: 'memory' | 'time' | undefined;
    let settled = false;
    const kill = (reason: 'memory' | 'time'): void => {
      limit ??= reason;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('time'), options.timeoutMs);
    const poll = setInterval(() => {
      if (child.pid === undefined) return;
      void residentBytes(child.pid).then((rss) => {
        if (rss !== undefined && rss > options.memoryLimitBytes && child.exitCode === null && child.signalCode === null) kill('memory');
      });
    }, options.memoryPollMs ?? 50);
    const finish = (outcome: ScriptOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      resolve(outcome);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < maxReplyCharacters) stdout += chunk;
    });
    // Only the tail: a crashing child can print a lot.
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
    child.on('error', (error) => finish({ kind: 'not-started', message: error.message }));
    child.on('close', (code, signal) => {
      if (limit !== undefined) return finish({ kind: 'killed', limit });
      try {
        const reply = JSON.parse(stdout.trim().split('\n').pop() ?? '') as unknown;
        if (typeof reply === 'object' && reply !== null && !Array.isArray(reply)) return finish({ kind: 'replied', reply: reply as Record<string, unknown> });
      } catch {
        // No reply line: the child died first.
      }
      finish({
        kind: 'crashed',
        how: signal !== null ? `signal ${signal}` : `exit code ${code}`,
        lastErrorLine: stderr.trim().split('\n').slice(-1)[0] ?? '',
        errorOutput: stderr,
      });
    });
    // Scripts take their input from their arguments; stdin only signals the start (some wait for its end).
    child.stdin.on('error', () => undefined);
    child.stdin.end();
  });
}

// ---- child side

export interface ParentConnection<Outgoing> {
  /** Resolves when the message and its bytes are handed to the operating system. */
  send(message: Outgoing): Promise<void>;
}

/**
 * The child's end of `forkIsolated`: delivers the parent's messages to `handler` and tells the
 * parent it listens. The child exits when the parent goes away (even by SIGKILL), so a crashed
 * server never leaves a training process behind.
 */
export function connectToParent<Outgoing, Incoming>(handler: (message: Incoming) => void): ParentConnection<Outgoing> {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('this module runs as a child of forkIsolated (no IPC channel)');
  const toParent = new Socket({ fd: 4, readable: false, writable: true });
  toParent.on('error', () => undefined);
  process.on('disconnect', () => process.exit(0));
  const receiver = createReceiver(new PayloadReader(process.stdin), (message) => handler(message as Incoming), () => undefined);
  process.on('message', (envelope: Envelope) => receiver.receive(envelope));
  const envelopeSend = (envelope: Envelope, callback: (error: Error | null) => void) => void send(envelope, undefined, {}, callback);
  envelopeSend({ message: null, payloadLengths: [], ready: true }, () => undefined);
  return { send: (message) => sendEnvelope(envelopeSend, toParent, message) };
}

/**
 * Reads an uploaded GGUF file's header in a separate Node process with a time and memory limit, so
 * a hostile file (llama.cpp's GGUF parser has a history of out-of-bounds reads and gigabyte
 * allocations from tiny files) can at worst kill that child. Our own reader is bounds-checked, and
 * the child is the second wall: nothing of the file is parsed in the server process.
 *
 * How the child runs: `validate-gguf-child.mjs` is plain JavaScript. The build copies it into
 * `dist/runtimes/gguf/`, where it imports the compiled reader beside it. From the sources (tsx,
 * vitest) this module is a `.ts` file and starts the child with `--import tsx`, which lets it import
 * the TypeScript reader.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AiaasError } from '../../errors.ts';
import type { GgufDescription } from './gguf-signature.ts';
import { residentBytes } from '../isolated-process.ts';

export interface ValidateGgufOptions {
  /** Wall-clock limit for the child; on expiry it is killed. */
  timeoutMs?: number;
  /** Resident-set limit in bytes, sampled from /proc every `memoryPollMs`; the JS heap is capped at half. */
  memoryLimitBytes?: number;
  memoryPollMs?: number;
  /** Where the file is written for the child to read (the plaintext directory's scratch folder); the OS temp dir otherwise. */
  scratchRoot?: string;
}

/** The header's description and the file's SHA-256 (hex), computed in the child. */
export interface ValidatedGguf extends GgufDescription {
  sha256: string;
}

const childScript = fileURLToPath(new URL('./validate-gguf-child.mjs', import.meta.url));
const runningFromSources = import.meta.url.endsWith('.ts');

function reject(reason: string): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', `the uploaded file is not a valid GGUF model: ${reason}`);
}

function loaderArguments(): string[] {
  if (!runningFromSources) return [];
  const tsx = createRequire(import.meta.url).resolve('tsx');
  return ['--import', pathToFileURL(tsx).href];
}

/**
 * Writes the upload to a fresh private scratch directory (0700) for the child to read by
 * offset, validates it there and removes it. Resolves with the file's signature and chat template;
 * INVALID_MODEL_FILE for anything malformed.
 */
export async function validateGgufInChild(
  source: Uint8Array | { writeTo(path: string): Promise<void> },
  options: ValidateGgufOptions = {},
): Promise<ValidatedGguf> {
  const scratchRoot = options.scratchRoot ?? tmpdir();
  await mkdir(scratchRoot, { recursive: true, mode: 0o700 });
  const directory = await mkdtemp(join(scratchRoot, 'validate-gguf-'));
  try {
    const path = join(directory, 'model.gguf');
    // Bytes in memory, or a writer (the upload decrypted from the store a segment at a time).
    if (source instanceof Uint8Array) await writeFile(path, source, { mode: 0o600, flag: 'wx' });
    else await source.writeTo(path);
    return await validateGgufFileInChild(path, options);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Validates a GGUF file already on disk in the child process. */
export async function validateGgufFileInChild(path: string, options: ValidateGgufOptions = {}): Promise<ValidatedGguf> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
  const memoryPollMs = options.memoryPollMs ?? 50;
  const heapMegabytes = Math.max(64, Math.floor(memoryLimitBytes / 1024 ** 2 / 2));
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMegabytes}`, ...loaderArguments(), childScript, path], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // The parent's NODE_OPTIONS may carry test-runner flags the child has no use for.
    env: { ...process.env, NODE_OPTIONS: '' },
  });

  return await new Promise<ValidatedGguf>((resolve, rejectPromise) => {
    let stdout = '';
    let stderr = '';
    let failure: AiaasError | undefined;
    let settled = false;
    const kill = (error: AiaasError): void => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(reject(`reading the header did not finish within ${timeoutMs} ms`)), timeoutMs);
    const poll = setInterval(() => {
      if (child.pid === undefined) return;
      void residentBytes(child.pid).then((rss) => {
        if (rss !== undefined && rss > memoryLimitBytes) kill(reject(`reading the header exceeded the memory limit of ${Math.round(memoryLimitBytes / 1024 ** 2)} MiB`));
      });
    }, memoryPollMs);
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      outcome();
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      // One JSON line; a chat template is at most the reader's string limit (1 MiB).
      if (stdout.length < 8 * 1024 ** 2) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
    child.on('error', (error) => finish(() => rejectPromise(new AiaasError('INTERNAL', `could not start the GGUF validator: ${error.message}`))));
    child.on('close', (code, signal) =>
      finish(() => {
        if (failure !== undefined) return rejectPromise(failure);
        let message: { ok: boolean; error?: string; sha256?: string } & Partial<GgufDescription>;
        try {
          message = JSON.parse(stdout.trim().split('\n').pop() ?? '') as typeof message;
        } catch {
          const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
          const tail = stderr.trim().split('\n').slice(-1)[0] ?? '';
          return rejectPromise(reject(`the validator crashed (${how})${tail === '' ? '' : `: ${tail}`}`));
        }
        if (!message.ok || message.signature === undefined || message.sha256 === undefined) return rejectPromise(reject(message.error ?? 'unknown error'));
        resolve({ signature: message.signature, chatTemplate: message.chatTemplate ?? null, sha256: message.sha256 });
      }),
    );
  });
}

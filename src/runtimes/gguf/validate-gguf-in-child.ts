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
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AiaasError } from '../../errors.ts';
import type { GgufDescription } from './gguf-signature.ts';
import { runScriptInChild } from '../isolated-process.ts';

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
  const outcome = await runScriptInChild({
    script: childScript,
    arguments: [path],
    importTypeScript: runningFromSources,
    timeoutMs,
    memoryLimitBytes,
    ...(options.memoryPollMs === undefined ? {} : { memoryPollMs: options.memoryPollMs }),
  });
  if (outcome.kind === 'not-started') throw new AiaasError('INTERNAL', `could not start the GGUF validator: ${outcome.message}`);
  if (outcome.kind === 'killed') {
    throw reject(
      outcome.limit === 'memory'
        ? `reading the header exceeded the memory limit of ${Math.round(memoryLimitBytes / 1024 ** 2)} MiB`
        : `reading the header did not finish within ${timeoutMs} ms`,
    );
  }
  if (outcome.kind === 'crashed') throw reject(`the validator crashed (${outcome.how})${outcome.lastErrorLine === '' ? '' : `: ${outcome.lastErrorLine}`}`);
  const message = outcome.reply as { ok?: boolean; error?: string; sha256?: string } & Partial<GgufDescription>;
  if (message.ok !== true || message.signature === undefined || typeof message.sha256 !== 'string') throw reject(message.error ?? 'unknown error');
  return { signature: message.signature, chatTemplate: message.chatTemplate ?? null, sha256: message.sha256 };
}

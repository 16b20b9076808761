import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type ort from 'onnxruntime-node';
import { AiaasError } from '../errors.ts';
import { signatureFromMetadata } from './onnx-runtime.ts';
import type { ModelSignature } from './runtime.ts';

export interface ValidateOptions {
  /** Wall-clock limit for the child; on expiry it is killed. */
  timeoutMs?: number;
  /** Resident-set limit for the child in bytes (see the note on `validateOnnxInChild`). */
  memoryLimitBytes?: number;
  /** How often the child's RSS is sampled. */
  memoryPollMs?: number;
  /** Replaces the child script; for tests that need a child which hangs or crashes. */
  scriptPath?: string;
}

const defaultScript = fileURLToPath(new URL('./validate-child.mjs', import.meta.url));

/** Resident set size of a process from /proc (Linux); undefined where /proc is unavailable. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

function reject(reason: string): AiaasError {
  return new AiaasError('INVALID_MODEL_FILE', `the uploaded file is not a loadable ONNX model: ${reason}`);
}

/**
 * Opens an uploaded model in a separate Node process so that a malicious or broken file that crashes,
 * hangs or balloons ONNX Runtime takes down only the child. Resolves with the model's signature.
 *
 * Memory limit, honestly: `--max-old-space-size` caps only the child's JavaScript heap; ONNX Runtime
 * allocates natively. So the parent also samples the child's RSS from /proc every `memoryPollMs` and
 * kills it above `memoryLimitBytes`. A spike shorter than one poll interval can slip through, and on
 * systems without /proc only the heap cap and the time limit apply.
 */
export async function validateOnnxInChild(model: Uint8Array | AsyncIterable<Uint8Array>, options: ValidateOptions = {}): Promise<ModelSignature> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
  const memoryPollMs = options.memoryPollMs ?? 50;
  if (model instanceof Uint8Array && model.byteLength === 0) throw reject('the file is empty');

  const heapMegabytes = Math.max(64, Math.floor(memoryLimitBytes / 1024 ** 2 / 2));
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMegabytes}`, options.scriptPath ?? defaultScript], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // The parent's NODE_OPTIONS may carry test-runner or tsx loader flags the child has no use for.
    env: { ...process.env, NODE_OPTIONS: '' },
  });

  return await new Promise<ModelSignature>((resolve, rejectPromise) => {
    let stdout = '';
    let stderr = '';
    let failure: AiaasError | undefined;
    let settled = false;
    const kill = (error: AiaasError): void => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(reject(`validation did not finish within ${timeoutMs} ms`)), timeoutMs);
    const poll = setInterval(() => {
      if (child.pid === undefined) return;
      void residentBytes(child.pid).then((rss) => {
        if (rss !== undefined && rss > memoryLimitBytes) {
          kill(reject(`validation exceeded the memory limit of ${Math.round(memoryLimitBytes / 1024 ** 2)} MiB`));
        }
      });
    }, memoryPollMs);
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(poll);
      outcome();
    };

    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      // Keep only the tail: a crashing child can print a lot.
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('error', (error) => finish(() => rejectPromise(new AiaasError('INTERNAL', `could not start the validator: ${error.message}`))));
    child.on('close', (code, signal) =>
      finish(() => {
        if (failure !== undefined) return rejectPromise(failure);
        const line = stdout.trim().split('\n').pop() ?? '';
        let message: { ok: boolean; error?: string; inputs?: ort.InferenceSession.ValueMetadata[]; outputs?: ort.InferenceSession.ValueMetadata[] };
        try {
          message = JSON.parse(line) as typeof message;
        } catch {
          const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
          const tail = stderr.trim().split('\n').slice(-1)[0] ?? '';
          return rejectPromise(reject(`the validator crashed (${how})${tail === '' ? '' : `: ${tail}`}`));
        }
        if (!message.ok) return rejectPromise(reject(message.error ?? 'unknown ONNX Runtime error'));
        try {
          resolve(signatureFromMetadata(message.inputs ?? [], message.outputs ?? []));
        } catch (error) {
          rejectPromise(error);
        }
      }),
    );
    // The child may die before reading everything; that surfaces through 'close', not as an EPIPE throw.
    child.stdin.on('error', () => undefined);
    if (model instanceof Uint8Array) {
      child.stdin.end(Buffer.from(model.buffer, model.byteOffset, model.byteLength));
    } else {
      // Streamed (a decrypting artifact stream): the parent holds at most a segment or two of it.
      // A child killed early ends the pipeline with EPIPE; 'close' above reports why.
      pipeline(Readable.from(model), child.stdin).catch((error: unknown) => {
        if ((error as { code?: unknown }).code !== 'EPIPE' && (error as { code?: unknown }).code !== 'ERR_STREAM_PREMATURE_CLOSE') kill(AiaasError.isInstance(error) ? error : reject(`the model could not be read: ${(error as Error).message}`));
      });
    }
  });
}
